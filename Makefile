# Two words for a newcomer: `make run`, `make test`. Both bootstrap .venv from the hash-pinned
# locks: requirements.lock (runtime), and requirements-test.lock on top for test, lint and bench.
# Another interpreter: make PYTHON=python3.12 (3.11, 3.12 or 3.13).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PIP_INSTALL := $(BIN)/python -m pip install -q --disable-pip-version-check

.PHONY: run test lint template example blank bench clean web server lock

# The interpreter is checked before the venv is made from it: the locks are resolved for CPython
# 3.11 to 3.13 (Prefect 3.8.8 and the pinned wheels), and an older or newer one fails later, deep
# inside pip or at import, with a message that names neither the cause nor the cure.
$(BIN)/python:
	@version=$$($(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null); \
	case "$$version" in \
	  3.11.*|3.12.*|3.13.*) ;; \
	  *) echo "perfreport needs Python 3.11, 3.12 or 3.13, but PYTHON=$(PYTHON) is $${version:+Python }$${version:-not a Python that runs}." >&2; \
	     echo "Install Python 3.12 (python.org, the system's package manager, or pyenv), then run: make PYTHON=python3.12 (or the full path to that python)." >&2; \
	     exit 1 ;; \
	esac
	$(PYTHON) -m venv $(VENV)

# Every file is checked against the lock's hashes. The lock also pins the build backend
# (setuptools), so the editable install builds with it, without isolation and without the index:
# nothing unpinned is fetched.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) --require-hashes -r requirements.lock
	$(PIP_INSTALL) --no-index --no-build-isolation --no-deps -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) requirements-test.lock
	$(PIP_INSTALL) --require-hashes -r requirements-test.lock
	touch $(TEST_STAMP)

# Regenerate both locks from pyproject.toml (scripts/lock.sh: uv, hashes, every platform,
# CPython 3.11 to 3.13); pins already in the locks are kept unless UPGRADE=1.
lock:
	PYTHON=$(PYTHON) UPGRADE=$(UPGRADE) bash scripts/lock.sh

run: $(STAMP)
	$(BIN)/perfreport run input --output-dir output

# The upload and download page on http://127.0.0.1:8000/ (see README, "perfreport web").
web: $(STAMP)
	$(BIN)/perfreport web --input-dir input --output-dir output

# A Prefect server with its UI on http://127.0.0.1:4200/, SQLite in ~/.prefect; point runs at it
# with PREFECT_API_URL=http://127.0.0.1:4200/api.
server: $(STAMP)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/ruff format --check .

# Regenerate the shipped templates (the short report and the 财预〔2020〕10号 附件3 full report)
# and the example workbook from their scripts.
template: $(STAMP)
	$(BIN)/python scripts/make_template.py templates/report.docx
	$(BIN)/python scripts/make_template.py --outline full templates/full_report.docx
	$(BIN)/python scripts/make_template.py --outline department templates/department_report.docx

example: $(STAMP)
	$(BIN)/python scripts/make_example.py input/2020年度项目支出绩效自评表.xlsx

# A blank workbook to fill in (drop-downs, prompts, 填报说明), written to 绩效自评填报表.xlsx here,
# not into input/, whose workbooks are processed; an existing file is kept (perfreport blank --force).
blank: $(STAMP)
	$(BIN)/perfreport blank

clean:
	rm -rf $(VENV) output/*/ .pytest_cache

# Speed and memory on synthetic workbooks of 1,000 / 10,000 / 100,000 projects, and the
# naive docxtpl loop on a sample of the same projects for comparison.
bench: $(TEST_STAMP)
	$(BIN)/python scripts/bench.py

# Two words for a newcomer: `make run`, `make test`. Both bootstrap .venv from requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint template example blank bench clean web server

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/perfreport run input --output-dir output

# The upload and download page on http://127.0.0.1:8000/ (see README, "perfreport web").
web: $(STAMP)
	$(BIN)/perfreport web --input-dir input --output-dir output

# A Prefect server with its UI on http://127.0.0.1:4200/, SQLite in ~/.prefect; point runs at it
# with PREFECT_API_URL=http://127.0.0.1:4200/api.
server: $(STAMP)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
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
bench: $(STAMP)
	$(BIN)/python scripts/bench.py

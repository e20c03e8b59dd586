"""The report's date: the project's own 报告日期, else the run's date, which SOURCE_DATE_EPOCH pins.

The run's date is the office's calendar date (Asia/Shanghai), decided once per run by the steps
and handed to the pure context; a rerun with the same SOURCE_DATE_EPOCH writes the same dates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import docx
import pytest

from pipeline.config import Settings
from pipeline.run import steps
from tests.conftest import Rows

# 2021-03-14 16:00 UTC is already 2021-03-15 00:00 in Shanghai.
EPOCH_AT_SHANGHAI_MIDNIGHT = 1615737600


def test_source_date_epoch_gives_its_date_in_shanghai_not_in_utc() -> None:
    assert datetime.fromtimestamp(EPOCH_AT_SHANGHAI_MIDNIGHT, UTC).date() == date(2021, 3, 14)
    assert steps.run_date({"SOURCE_DATE_EPOCH": str(EPOCH_AT_SHANGHAI_MIDNIGHT)}) == date(2021, 3, 15)
    assert steps.run_date({"SOURCE_DATE_EPOCH": str(EPOCH_AT_SHANGHAI_MIDNIGHT - 1)}) == date(2021, 3, 14)


def test_source_date_epoch_outranks_the_clock() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert steps.run_date({"SOURCE_DATE_EPOCH": str(EPOCH_AT_SHANGHAI_MIDNIGHT)}, now) == date(2021, 3, 15)


@pytest.mark.parametrize("environ", [{}, {"SOURCE_DATE_EPOCH": ""}, {"SOURCE_DATE_EPOCH": "yesterday"}],
                         ids=["unset", "empty", "not-a-number"])
def test_without_a_usable_source_date_epoch_it_is_today_in_shanghai(environ: dict[str, str]) -> None:
    late_evening_utc = datetime(2021, 3, 14, 17, 30, tzinfo=UTC)
    assert steps.run_date(environ, late_evening_utc) == date(2021, 3, 15)


def report_date_template(folder: Path) -> Path:
    """A one-paragraph template that prints the report's dates."""
    document = docx.Document()
    document.add_paragraph("{{ report_date }}|{{ report_date_iso }}")
    folder.mkdir(parents=True)
    document.save(folder / "dates.docx")
    return folder


def prepared_contexts(workbook: Path, tmp_path: Path) -> dict[str, dict[str, object]]:
    """The report contexts `prepare_reports` writes for a workbook, by report file name."""
    settings = Settings(output_dir=tmp_path / "out", templates_dir=report_date_template(tmp_path / "templates"),
                        default_template="dates.docx")
    checked = steps.check_workbook(workbook, settings)
    staging = tmp_path / "staging"
    staging.mkdir(parents=True)
    prepared = steps.prepare_reports(checked, staging, settings)
    assert isinstance(prepared, steps.PreparedReports), prepared
    return {name: context for chunk in prepared.chunk_files for name, _, context in steps.chunk_items(chunk)}


def test_reports_without_a_report_date_carry_the_pinned_run_date(
    workbook_factory: Callable[..., Path], sheets: dict[str, Rows], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH_AT_SHANGHAI_MIDNIGHT))
    for row in sheets["项目"]:
        row["报告日期"] = None
    sheets["项目"][1]["报告日期"] = "2021/1/8"

    contexts = prepared_contexts(workbook_factory(sheets), tmp_path)

    dates = sorted((context["report_date"], context["report_date_iso"]) for context in contexts.values())
    assert dates == [("2021年1月8日", "2021-01-08"), ("2021年3月15日", "2021-03-15")]


def test_the_pinned_run_date_gives_the_same_contexts_twice(
    workbook_factory: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    workbook = workbook_factory()

    assert prepared_contexts(workbook, tmp_path / "first") == prepared_contexts(workbook, tmp_path / "second")

"""What a run writes beside the project reports: the filled 自评表, the PDF copies, the
部门汇总报告, and the download zip that holds them all.

`steps.render_chunk_file` calls `chunk_extras` in each render task (the PDFs of its chunk are made
where its reports are, in parallel across workers); `steps.finish_success` calls `workbook_extras`
once the reports are all there. Every file lands in the hidden staging folder,
published whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from pipeline.docx.department import write_department_report
from pipeline.docx.pdf import PDF_DIR, pdf_copies
from pipeline.write.formsheets import write_form_workbook

FORMS_NAME = "自评表.xlsx"
DEPARTMENT_NAME = "部门汇总报告.docx"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What every render task of a run needs besides its chunk: the run's date (the files' dates)
    and whether PDF copies and the filled 自评表 are asked for."""

    day: date
    pdf: bool = False
    forms: bool = True  # the filled 自评表 (not for workbooks beyond `Settings.forms_limit`)

    @property
    def created(self) -> datetime:
        """The creation time the files carry: the run's date at midnight (UTC, as file formats
        store it; the date is what a reader sees)."""
        return datetime.combine(self.day, time(), UTC)


def chunk_extras(reports: Sequence[Path], options: RenderOptions) -> None:
    """A chunk's reports as PDFs (into the staging folder's pdf/), when asked. One soffice process
    per render task: the tasks are the parallelism."""
    if options.pdf and reports:
        staging = reports[0].parent.parent
        pdf_copies(reports, staging / PDF_DIR, workers=1, created=options.created)


def workbook_extras(staging: Path, contexts: Iterable[Mapping[str, object]], rows: Sequence[Mapping[str, object]],
                    templates_dir: Path, options: RenderOptions, title_hint: str, year: str) -> list[Path]:
    """The filled 自评表 (one workbook, whatever the render chunks were, so that its bytes follow
    the data alone), the 部门汇总报告 and its PDF when asked; the files written."""
    written: list[Path] = []
    if options.forms:
        written.append(write_form_workbook(staging / FORMS_NAME, list(contexts), options.created))
    department = write_department_report(staging / DEPARTMENT_NAME, rows, templates_dir, options.day,
                                         title_hint, year=year)
    written.append(department)
    if options.pdf:
        written.extend(pdf_copies([department], staging / PDF_DIR, workers=1, created=options.created))
    return written


def zipped_files(staging: Path, reports: Sequence[Path]) -> list[Path]:
    """Everything the download zip holds: the reports, their PDFs, the 自评表, the department
    report and the spreadsheets, so that 汇总表's links open from the unzipped folder."""
    top = [path for path in staging.iterdir() if path.is_file() and path.suffix in (".xlsx", ".docx")]
    pdfs = [path for path in (staging / PDF_DIR).iterdir() if path.is_file()] if (staging / PDF_DIR).is_dir() else []
    return sorted({*reports, *top, *pdfs})


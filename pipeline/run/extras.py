"""What a run writes beside the project reports: the filled 自评表, the PDF copies, the
部门汇总报告, and the download zip that holds them all.

`steps.render_chunk_file` calls `chunk_extras` in each render task (the forms and PDFs of its
chunk are made where its reports are, in parallel across workers); `steps.finish_success` calls
`workbook_extras` once the reports are all there. Every file lands in the hidden staging folder,
published whole or not at all.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from pipeline.docx.department import write_department_report
from pipeline.docx.pdf import PDF_DIR, pdf_copies
from pipeline.write.formsheets import write_form_workbook

FORMS_NAME = "自评表.xlsx"
FORMS_DIR = "自评表"  # one workbook per render chunk when there are several chunks
DEPARTMENT_NAME = "部门汇总报告.docx"
CHUNK_FORMS_SUFFIX = ".forms.xlsx"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What every render task of a run needs besides its chunk: the run's date (the files' dates)
    and whether PDF copies are asked for."""

    day: date
    pdf: bool = False
    forms: bool = True  # the filled 自评表 (not for workbooks beyond `Settings.forms_limit`)

    @property
    def created(self) -> datetime:
        """The creation time the files carry: the run's date at midnight (UTC, as file formats
        store it; the date is what a reader sees)."""
        return datetime.combine(self.day, time(), UTC)


def chunk_forms_file(chunk_file: Path) -> Path:
    """Where a render task leaves its chunk's 自评表 workbook for `workbook_extras`."""
    return chunk_file.with_suffix(CHUNK_FORMS_SUFFIX)


def chunk_extras(chunk_file: Path, contexts: Sequence[Mapping[str, object]], reports: Sequence[Path],
                 options: RenderOptions) -> None:
    """A chunk's filled 自评表 (beside its chunk file) and, when asked, its reports as PDFs
    (into the staging folder's pdf/). One soffice process per task: the tasks are the parallelism."""
    if options.forms:
        write_form_workbook(chunk_forms_file(chunk_file), contexts, options.created)
    if options.pdf and reports:
        staging = reports[0].parent.parent
        pdf_copies(reports, staging / PDF_DIR, workers=1, created=options.created)


def gathered_forms(staging: Path, chunk_files: Sequence[Path]) -> list[Path]:
    """The chunks' 自评表 workbooks moved to where the office finds them: 自评表.xlsx for one
    chunk, else 自评表/自评表_001.xlsx … in project order."""
    made = [chunk_forms_file(chunk) for chunk in chunk_files if chunk_forms_file(chunk).is_file()]
    if not made:
        return []
    if len(made) == 1:
        return [Path(shutil.move(made[0], staging / FORMS_NAME))]
    folder = staging / FORMS_DIR
    folder.mkdir(exist_ok=True)
    width = max(3, len(str(len(made))))
    return [Path(shutil.move(path, folder / f"自评表_{number:0{width}d}.xlsx"))
            for number, path in enumerate(made, start=1)]


def workbook_extras(staging: Path, chunk_files: Sequence[Path], rows: Sequence[Mapping[str, object]],
                    templates_dir: Path, options: RenderOptions, title_hint: str, year: str) -> list[Path]:
    """The 自评表 workbooks gathered, the 部门汇总报告 (and its PDF when asked); the files written."""
    written = gathered_forms(staging, chunk_files)
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
    folders = [path for name in (PDF_DIR, FORMS_DIR) if (staging / name).is_dir()
               for path in (staging / name).iterdir() if path.is_file()]
    return sorted({*reports, *top, *folders})


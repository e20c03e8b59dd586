"""The pipeline's steps as plain functions over plain data; `flow.py` wraps each in a Prefect task.

Keeping them free of Prefect means tests and library users can call them directly, and the flow
stays pure wiring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import outputs
from pipeline.config import Settings
from pipeline.context import CONTEXT_KEYS, report_context, summary_row
from pipeline.errors import Problem, Severity, TemplateInvalid, ValidationFailed, WorkbookRefused
from pipeline.fastrender import CompiledTemplate
from pipeline.indicators import ProjectResult, evaluate
from pipeline.profile import DEFAULT_PROFILE, ScoringProfile
from pipeline.records import Project, projects_from
from pipeline.schemas import SHEET_MODELS, sheet_layout
from pipeline.validate import validate_workbook
from pipeline.workbook import read_workbook


class Status:
    """How a workbook's run ended; the CLI maps it to an exit code."""

    SUCCESS = "success"  # reports written (warnings allowed)
    INVALID = "invalid"  # the workbook breaks the contract: only 校验报告.xlsx
    REFUSED = "refused"  # not a readable workbook, or an unusable template


@dataclass(frozen=True, slots=True)
class CheckedWorkbook:
    """A workbook read and validated: its projects, or why there are none."""

    path: Path
    sha256: str
    projects: tuple[Project, ...] = ()
    problems: tuple[Problem, ...] = ()
    refused: str | None = None

    @property
    def status(self) -> str:
        """SUCCESS when reports can be written, else INVALID or REFUSED."""
        if self.refused is not None:
            return Status.REFUSED
        if any(p.severity is Severity.ERROR for p in self.problems):
            return Status.INVALID
        return Status.SUCCESS


@dataclass(frozen=True, slots=True)
class PlannedReport:
    """One report to write: the evaluated project and its file name."""

    result: ProjectResult
    filename: str
    template: str


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a workbook's run produced, for the CLI and the Prefect artifact."""

    workbook: Path
    status: str
    output_dir: Path | None
    projects: int = 0
    reports: int = 0
    errors: int = 0
    warnings: int = 0
    problems: tuple[Problem, ...] = ()
    message: str = ""
    summary_rows: tuple[dict[str, object], ...] = field(default=())


def available_templates(settings: Settings) -> set[str]:
    """Names of the .docx templates in the templates folder."""
    return {p.name for p in settings.templates_dir.glob("*.docx") if not p.name.startswith("~$")}


def checked_template(path: Path) -> CompiledTemplate:
    """A template compiled once, refused when it uses variables the pipeline does not provide."""
    renderer = CompiledTemplate.from_path(path)
    unknown = sorted(renderer.variables - CONTEXT_KEYS)
    if unknown:
        raise TemplateInvalid(f"模板 {path.name} 有误：使用了未提供的变量 {'、'.join(unknown)}")
    return renderer


def check_workbook(path: Path, settings: Settings, profile: ScoringProfile = DEFAULT_PROFILE) -> CheckedWorkbook:
    """Read, validate and turn a workbook into projects; every failure comes back as data."""
    try:
        digest = outputs.sha256_of(path) if path.is_file() else ""
        raw = read_workbook(path, [sheet_layout(m) for m in SHEET_MODELS], settings.header_search_rows)
        valid = validate_workbook(raw, available_templates(settings), profile)
    except WorkbookRefused as exc:
        return CheckedWorkbook(path, "", refused=exc.reason)
    except ValidationFailed as exc:
        return CheckedWorkbook(path, digest, problems=tuple(exc.problems))
    return CheckedWorkbook(path, digest, projects=tuple(projects_from(valid)), problems=valid.warnings)


def evaluate_projects(projects: Sequence[Project], profile: ScoringProfile = DEFAULT_PROFILE) -> list[ProjectResult]:
    """Every project's evaluation, in workbook order."""
    return [evaluate(p, profile) for p in projects]


def plan_reports(results: Sequence[ProjectResult], settings: Settings) -> list[PlannedReport]:
    """Each result with its unique file name and template."""
    names = outputs.report_filenames([(r.project.project_id, r.project.name) for r in results])
    return [PlannedReport(r, name, r.project.template or settings.default_template)
            for r, name in zip(results, names, strict=True)]


def chunks_of(items: Sequence[PlannedReport], size: int) -> list[list[PlannedReport]]:
    """Consecutive slices of at most `size` items."""
    return [list(items[i:i + size]) for i in range(0, len(items), max(1, size))]


def render_reports(planned: Sequence[PlannedReport], reports_dir: Path, templates_dir: Path) -> list[Path]:
    """Render and write each planned report; raises TemplateInvalid on a template error."""
    renderers: dict[str, CompiledTemplate] = {}
    written: list[Path] = []
    for item in planned:
        if item.template not in renderers:
            renderers[item.template] = checked_template(templates_dir / item.template)
        data = renderers[item.template].render(report_context(item.result))
        written.append(outputs.atomic_write(reports_dir / item.filename, data))
    return written


def check_templates(planned: Sequence[PlannedReport], settings: Settings) -> str | None:
    """None when every template the reports need is usable, else the reason in Chinese."""
    try:
        for name in sorted({p.template for p in planned}):
            checked_template(settings.templates_dir / name)
    except TemplateInvalid as exc:
        return str(exc)
    return None


def all_warnings(checked: CheckedWorkbook, results: Sequence[ProjectResult]) -> list[Problem]:
    """Validation warnings followed by those found while computing."""
    return [*checked.problems, *(w for r in results for w in r.warnings)]


def finish_failed(checked: CheckedWorkbook, settings: Settings, message: str = "") -> RunSummary:
    """Publish only 校验报告.xlsx (and the manifest) for a workbook that cannot be reported on."""
    final = outputs.workbook_output_dir(settings.output_dir, checked.path)
    status = Status.REFUSED if (checked.refused or message) else Status.INVALID
    if checked.refused is not None:
        return RunSummary(checked.path, status, None, message=checked.refused)
    staging = outputs.staging_dir(final)
    try:
        (staging / outputs.REPORTS_DIR).rmdir()
        if checked.problems:
            outputs.write_problems(staging / outputs.PROBLEMS_NAME, checked.problems)
        errors = sum(p.severity is Severity.ERROR for p in checked.problems)
        counts = {"projects": 0, "reports": 0, "errors": errors, "warnings": len(checked.problems) - errors}
        outputs.write_manifest(staging / outputs.MANIFEST_NAME, checked.path, checked.sha256, staging,
                               counts, status)
        outputs.publish(staging, final)
    except BaseException:
        outputs.discard(staging)
        raise
    return RunSummary(checked.path, status, final, errors=counts["errors"], warnings=counts["warnings"],
                      problems=checked.problems, message=message)


def finish_success(checked: CheckedWorkbook, results: Sequence[ProjectResult], planned: Sequence[PlannedReport],
                   staging: Path, settings: Settings) -> RunSummary:
    """Write 汇总表, 校验报告 (if warnings), the zip and the manifest, then publish the folder."""
    final = outputs.workbook_output_dir(settings.output_dir, checked.path)
    try:
        warnings = all_warnings(checked, results)
        rows = [{**summary_row(p.result), "报告文件": f"{outputs.REPORTS_DIR}/{p.filename}"} for p in planned]
        outputs.write_summary(staging / outputs.SUMMARY_NAME, rows)
        if warnings:
            outputs.write_problems(staging / outputs.PROBLEMS_NAME, warnings)
        reports = sorted((staging / outputs.REPORTS_DIR).glob("*.docx"))
        outputs.write_zip(staging / f"{final.name}_报告.zip", reports, staging)
        counts = {"projects": len(results), "reports": len(reports), "errors": 0, "warnings": len(warnings)}
        outputs.write_manifest(staging / outputs.MANIFEST_NAME, checked.path, checked.sha256, staging,
                               counts, Status.SUCCESS)
        outputs.publish(staging, final)
    except BaseException:
        outputs.discard(staging)
        raise
    return RunSummary(checked.path, Status.SUCCESS, final, projects=len(results), reports=len(reports),
                      warnings=len(warnings), problems=tuple(warnings), summary_rows=tuple(rows))

"""The pipeline's steps as plain functions over plain data; `flow.py` wraps each in a Prefect task.

Keeping them free of Prefect means tests and library users can call them directly, and the flow
stays pure wiring.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import orjson

from pipeline.config import Settings, chunk_size_for
from pipeline.contract.build import projects_from
from pipeline.contract.intake import FormChecks, checked_result, read_and_validate
from pipeline.core.context import report_context, summary_row
from pipeline.core.department import DEPARTMENT_TEMPLATE
from pipeline.core.indicators import ProjectResult, evaluate
from pipeline.core.narrative import with_narrative_warnings
from pipeline.core.profile import DEFAULT_PROFILE, ScoringProfile
from pipeline.core.records import Project
from pipeline.docx.checkreport import invalid_message
from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.render import template_bytes, template_error_message
from pipeline.docx.templatecheck import template_check
from pipeline.errors import (
    Counts,
    Problem,
    Severity,
    Status,
    TemplateInvalid,
    ValidationFailed,
    WorkbookRefused,
)
from pipeline.run.extras import RenderOptions, chunk_extras, workbook_extras, zipped_files
from pipeline.write.files import WrittenFile, sha256_of
from pipeline.write.manifest import write_manifest
from pipeline.write.names import (
    MANIFEST_NAME,
    PROBLEMS_NAME,
    REPORTS_DIR,
    SUMMARY_NAME,
    report_filenames,
    workbook_output_dir,
)
from pipeline.write.problembook import write_problems
from pipeline.write.staging import (
    discard,
    discarded_on_failure,
    parked_beside,
    publish,
    staged,
    staging_dir,
)
from pipeline.write.summarybook import summary_title, write_summary
from pipeline.write.zipfiles import write_zip

CHUNKS_DIR = ".chunks"
SUMMARY_DATA = "summary.json"
# How much of a large run's detail travels back to the CLI and into the Prefect artifact.
SHOWN_PROBLEMS, SHOWN_ROWS = 200, 1000


@dataclass(frozen=True, slots=True)
class CheckedWorkbook:
    """A workbook read and validated: its projects, or why there are none."""

    path: Path
    sha256: str
    projects: tuple[Project, ...] = ()
    problems: tuple[Problem, ...] = ()
    refused: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    profile: ScoringProfile = DEFAULT_PROFILE  # the one that scores it (a form may select it)
    forms: FormChecks | None = None  # a workbook of printed forms: its cells and typed figures

    @property
    def status(self) -> str:
        """SUCCESS when reports can be written, else INVALID or REFUSED."""
        if self.refused is not None:
            return Status.REFUSED
        if any(p.severity is Severity.ERROR for p in self.problems):
            return Status.INVALID
        return Status.SUCCESS


@dataclass(frozen=True, slots=True)
class PreparedReports:
    """A checked workbook whose reports are ready to render from chunk files in `staging`.

    Deliberately small: it travels between Prefect tasks, which walk every argument and return
    value (seconds for 10,000 projects' records). The bulky data waits in files in `staging`.
    """

    workbook: Path
    sha256: str
    staging: Path
    chunk_files: tuple[Path, ...]
    total: int
    warnings: int
    timings: dict[str, float]
    finished_at: float  # time.perf_counter() in the flow's process, to time the render phase
    profile: str = DEFAULT_PROFILE.name  # the display name of the profile that scored it
    options: RenderOptions = field(default_factory=lambda: RenderOptions(date(2000, 1, 1)))
    years: tuple[int, ...] = ()  # the projects' 年度, sorted (the titles of 汇总表 and the department report)


@dataclass(frozen=True, slots=True)
class RenderedChunk:
    """What one render task did: how many reports, where their hashes are, how long it took."""

    reports: int
    written_file: Path  # JSON list of WrittenFile (`written_files_json`)
    seconds: float


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a workbook's run produced, for the CLI and the Prefect artifact."""

    workbook: Path
    status: str
    output_dir: Path | None
    counts: Counts = Counts()
    problems: tuple[Problem, ...] = ()  # the first SHOWN_PROBLEMS; 校验报告.xlsx has them all
    message: str = ""
    summary_rows: tuple[dict[str, object], ...] = field(default=())  # the first SHOWN_ROWS
    timings: dict[str, float] = field(default_factory=dict)


def available_templates(settings: Settings) -> set[str]:
    """Names of the project-report templates in the templates folder (the 部门汇总报告's own
    template is not one a project may name)."""
    return {p.name for p in settings.templates_dir.glob("*.docx")
            if not p.name.startswith("~$") and p.name != DEPARTMENT_TEMPLATE}


def checked_template(path: Path) -> CompiledTemplate:
    """A template compiled once; refused, before any report is rendered, when it has a syntax
    error, reads variables the pipeline does not provide or reaches for Python's internals."""
    check = template_check(path.name, template_bytes(path))
    if check.compiled is None or check.findings:
        raise TemplateInvalid(invalid_message(path.name, check.findings))
    return check.compiled


def check_workbook(path: Path, settings: Settings) -> CheckedWorkbook:
    """Read, validate and turn a workbook into projects; every failure comes back as data."""
    started = time.perf_counter()
    try:
        with without_cyclic_gc():
            digest = sha256_of(path) if path.is_file() else ""
            intake = read_and_validate(path, settings, available_templates(settings))
            recorded = time.perf_counter()
            projects = tuple(projects_from(intake.valid))
            warnings = intake.valid.warnings
            profile, forms, read = intake.profile, intake.forms, intake.read_seconds
            del intake  # at 100,000 projects the typed tables are hundreds of MB
    except WorkbookRefused as exc:
        return CheckedWorkbook(path, "", refused=exc.reason)
    except ValidationFailed as exc:
        return CheckedWorkbook(path, digest, problems=tuple(exc.problems), profile=settings.profile)
    finally:
        release_free_memory()
    timings = {"读取": read, "校验": recorded - started - read, "整理": time.perf_counter() - recorded}
    return CheckedWorkbook(path, digest, projects=projects, problems=warnings, timings=timings,
                           profile=profile, forms=forms)


@contextlib.contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while millions of objects are built.

    Reading, validating and evaluating a workbook allocate cells, Decimals, rows and records by
    the million, and the collector walks the growing heap again and again as they accumulate:
    a third of reading and validating 10,000 projects, measured. Reference counting still frees
    everything; the collector resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def release_free_memory() -> None:
    """Hand memory freed by the reader and the tables back to the operating system.

    glibc keeps freed blocks, notably in the arenas of calamine's reader threads, so without
    this the process would hold its reading peak (GBs for a province) while the render workers
    run beside it. A no-op where there is no glibc.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def evaluate_projects(projects: Sequence[Project], profile: ScoringProfile,
                      forms: FormChecks | None = None) -> list[ProjectResult]:
    """Every project's evaluation, in workbook order, with the 警告 of its figures and of its
    narrative (where the officer's text contradicts them), and for a form workbook those of the
    figures its forms typed by hand, each at its form cell."""
    return [checked_result(with_narrative_warnings(evaluate(p, profile)), forms, profile) for p in projects]


# The reports' dates are the office's calendar dates (China keeps one zone, without summer time).
REPORT_ZONE = ZoneInfo("Asia/Shanghai")


def run_date(environ: Mapping[str, str], now: datetime | None = None) -> date:
    """The date a run gives reports without a 报告日期: that of SOURCE_DATE_EPOCH (seconds since
    1970 UTC, the reproducible-builds convention) in Asia/Shanghai when it is set to a whole
    number, so that reruns are byte-identical; else today's date there (`now` for tests)."""
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).astimezone(REPORT_ZONE).date()
    return (now or datetime.now(UTC)).astimezone(REPORT_ZONE).date()


def check_templates(names: Iterable[str], settings: Settings) -> str | None:
    """None when every named template is usable, else the reason in Chinese. Compiled into this
    process's cache: a run that renders in its own process (a small workbook, a warm worker)
    then renders with them without checking them again."""
    try:
        for name in sorted(set(names)):
            compiled_template(settings.templates_dir / name)
    except TemplateInvalid as exc:
        return str(exc)
    return None


# The files that carry a run's data between its tasks (and to Dask workers) are JSON, never pickle:
# they sit in the output folder's staging area, often on an office share that others can write to,
# and unpickling a planted file runs its code. Each is read back with a check of its shape.


class ChunkFileInvalid(ValueError):
    """A run's data file in the staging folder is not what this run wrote (changed or planted)."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path}：不是本次运行写出的数据文件（{what}）")


def json_file(path: Path) -> object:
    """The JSON value in one of the run's data files."""
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise ChunkFileInvalid(path, "不是 JSON") from None


def is_plain_name(name: object) -> bool:
    """Whether `name` is a file name with no folder part (a report or template name)."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def chunk_items(path: Path) -> list[tuple[str, str, dict[str, object]]]:
    """The (report file name, template name, context) items of a chunk file `prepare_reports` wrote.

    The names must be plain file names: they are joined to the reports and templates folders.
    """
    items = json_file(path)
    if not isinstance(items, list):
        raise ChunkFileInvalid(path, "不是列表")
    checked = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 3 and is_plain_name(item[0]) and is_plain_name(item[1])
                and isinstance(item[2], dict)):
            raise ChunkFileInvalid(path, "项目不是（报告文件名, 模板名, 内容）")
        checked.append((item[0], item[1], item[2]))
    return checked


def summary_json(rows: Sequence[dict[str, object]], warnings: Sequence[Problem]) -> bytes:
    """The summary rows and warnings of a run as JSON, for `finish_success`."""
    return orjson.dumps({"rows": rows, "warnings": [w.as_list() for w in warnings]})


def summary_data(path: Path) -> tuple[list[dict[str, object]], list[Problem]]:
    """What `summary_json` wrote: the summary rows and the warnings."""
    data = json_file(path)
    try:
        rows, warnings = data["rows"], data["warnings"]  # type: ignore[index]
        if not (isinstance(rows, list) and all(isinstance(row, dict) for row in rows)):
            raise TypeError("rows")
        if not isinstance(warnings, list):
            raise TypeError("warnings")
        problems = [Problem.from_list(fields) for fields in warnings]
    except (KeyError, TypeError, ValueError):
        raise ChunkFileInvalid(path, "汇总数据不完整") from None
    return rows, problems


def written_files(path: Path) -> list[WrittenFile]:
    """The reports one render task wrote, as its `.written.json` lists them."""
    data = json_file(path)
    try:
        if not isinstance(data, list):
            raise TypeError("not a list")
        return [WrittenFile(str(name), int(size), str(sha256)) for name, size, sha256 in data]
    except (TypeError, ValueError):
        raise ChunkFileInvalid(path, "报告清单不完整") from None


def prepare_reports(checked: CheckedWorkbook, staging: Path, settings: Settings) -> PreparedReports | str:
    """Evaluate every project and write the report contexts into chunk files for the renderers.

    Returns the reason in Chinese instead when a template the reports need is unusable. Render
    tasks get a chunk file's path, not the data: a task's arguments travel through Prefect (and
    to Dask workers), where large objects cost seconds each.
    """
    started = time.perf_counter()
    projects = checked.projects
    filenames = report_filenames([(p.project_id, p.name) for p in projects])
    templates = [p.template or settings.default_template for p in projects]
    template_problem = check_templates(templates, settings)
    if template_problem is not None:
        return template_problem
    chunk_dir = staging / CHUNKS_DIR
    chunk_dir.mkdir(exist_ok=True)
    chunk_files: list[Path] = []
    rows: list[dict[str, object]] = []
    warnings = list(checked.problems)
    computed = 0.0
    size = chunk_size_for(len(projects), settings.workers or os.cpu_count() or 1, settings.chunk_size)
    day = run_date(os.environ)  # once per run: every report and file of the workbook carries it
    # One chunk at a time: a province's evaluated projects and report contexts are never all
    # in memory at once, only the summary rows and the warnings.
    with without_cyclic_gc():
        for number, first in enumerate(range(0, len(projects), size), start=1):
            chunk = slice(first, first + size)
            evaluated = time.perf_counter()
            results = evaluate_projects(projects[chunk], checked.profile, checked.forms)
            computed += time.perf_counter() - evaluated
            items = [(filename, template, report_context(result, day))
                     for result, filename, template in zip(results, filenames[chunk], templates[chunk], strict=True)]
            path = chunk_dir / f"chunk-{number:06d}.json"
            path.write_bytes(orjson.dumps(items))
            chunk_files.append(path)
            rows.extend({**summary_row(result, checked.profile), "报告文件": f"{REPORTS_DIR}/{filename}"}
                        for result, filename in zip(results, filenames[chunk], strict=True))
            warnings.extend(w for result in results for w in result.warnings)
        (chunk_dir / SUMMARY_DATA).write_bytes(summary_json(rows, warnings))
    now = time.perf_counter()
    timings = {**checked.timings, "计算": computed, "准备渲染": now - started - computed}
    return PreparedReports(checked.path, checked.sha256, staging, tuple(chunk_files), len(projects),
                           len(warnings), timings, now, checked.profile.name, RenderOptions(day, settings.pdf, len(projects) <= settings.forms_limit),
                           tuple(sorted({p.year for p in projects})))


def prepare_run(path: Path, settings: Settings) -> PreparedReports | RunSummary:
    """Check a workbook and stage its render chunks; a workbook that fails is finished here."""
    checked = check_workbook(path, settings)
    if checked.status != Status.SUCCESS:
        return finish_failed(checked, settings)
    # Published by `finish_success`, a later task, once the reports are rendered into it.
    staging = staging_dir(workbook_output_dir(settings.output_dir, path))
    with discarded_on_failure(staging):
        prepared = prepare_reports(checked, staging, settings)
    if isinstance(prepared, str):
        discard(staging)
        return finish_failed(checked, settings, prepared)
    return prepared


# Compiled templates of this process, so a worker compiles each template once per run and file.
_COMPILED: dict[tuple[Path, int, int], CompiledTemplate] = {}


def compiled_template(path: Path) -> CompiledTemplate:
    """The template at `path`, compiled once per process (recompiled when the file changes)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise TemplateInvalid(f"模板 {path.name} 无法读取：{exc.strerror or exc}") from exc
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    if key not in _COMPILED:
        _COMPILED[key] = checked_template(path)
    return _COMPILED[key]


def render_chunk_file(chunk_file: Path, reports_dir: Path, templates_dir: Path,
                      options: RenderOptions | None = None) -> RenderedChunk:
    """Render the reports of one chunk file into `reports_dir`, and with `options` their PDF
    copies when asked (`extras.chunk_extras`); raises TemplateInvalid or PdfFailed."""
    started = time.perf_counter()
    items = chunk_items(chunk_file)
    files: list[WrittenFile] = []
    for filename, template, context in items:
        compiled = compiled_template(templates_dir / template)
        try:
            data = compiled.render(context)
        except TemplateInvalid as exc:
            raise TemplateInvalid(f"{exc}（生成 {filename} 时）") from exc
        except Exception as exc:  # noqa: BLE001 - whatever the template's code raised is its fault
            raise TemplateInvalid(f"{template_error_message(template, exc)}（生成 {filename} 时）") from exc
        # No temp-and-rename (nor fsync, 0.7 ms a file here) per report: the hidden staging
        # folder is only ever published whole, after every report in it is complete.
        (reports_dir / filename).write_bytes(data)
        files.append(WrittenFile(f"{REPORTS_DIR}/{filename}", len(data), hashlib.sha256(data).hexdigest()))
    if options is not None:
        chunk_extras([reports_dir / filename for filename, _, _ in items], options)
    written = chunk_file.with_suffix(".written.json")
    written.write_bytes(orjson.dumps([[f.path, f.bytes, f.sha256] for f in files]))
    return RenderedChunk(len(files), written, time.perf_counter() - started)


def finish_failed(checked: CheckedWorkbook, settings: Settings, message: str = "") -> RunSummary:
    """Publish only 校验报告.xlsx (and the manifest) for a workbook that cannot be reported on."""
    final = workbook_output_dir(settings.output_dir, checked.path)
    status = Status.REFUSED if (checked.refused or message) else Status.INVALID
    if checked.refused is not None:
        return RunSummary(checked.path, status, None, message=checked.refused)
    with staged(final) as staging:
        (staging / REPORTS_DIR).rmdir()
        if checked.problems:
            write_problems(staging / PROBLEMS_NAME, checked.problems)
        errors = sum(p.severity is Severity.ERROR for p in checked.problems)
        counts = Counts(errors=errors, warnings=len(checked.problems) - errors)
        write_manifest(staging / MANIFEST_NAME, checked.path, checked.sha256, staging, counts, status,
                       profile=checked.profile.name)
    # Errors first, so the CLI shows what blocks the reports.
    shown = sorted(checked.problems, key=lambda p: p.severity is not Severity.ERROR)[:SHOWN_PROBLEMS]
    return RunSummary(checked.path, status, final, counts, problems=tuple(shown), message=message)


def finish_success(prepared: PreparedReports, rendered: Sequence[RenderedChunk], settings: Settings) -> RunSummary:
    """Write 汇总表, 校验报告 (if warnings), the zip and the manifest, then publish the folder."""
    final = workbook_output_dir(settings.output_dir, prepared.workbook)
    started = time.perf_counter()
    # The staging folder `prepare_run` made and the renderers filled. Kept when this step fails,
    # so that a retry (flow.py retries an OSError) starts again from the same chunk files: every
    # name written below is fixed and rewritten whole, and the chunk files go only just before the
    # manifest (which lists every file). The flow discards the folder when the run gives up.
    staging = prepared.staging
    chunk_dir, parked = staging / CHUNKS_DIR, parked_beside(staging)
    if parked.exists() and not chunk_dir.exists():  # a retry after they were moved out: back in
        os.replace(parked, chunk_dir)
    rows, warnings = summary_data(chunk_dir / SUMMARY_DATA)
    reports = sorted((f for chunk in rendered for f in written_files(chunk.written_file)), key=lambda f: f.path)
    options, years = prepared.options, prepared.years
    contexts = (context for chunk in prepared.chunk_files for _, _, context in chunk_items(chunk))
    workbook_extras(staging, contexts, rows, settings.templates_dir, options, final.name,
                    str(years[0]) if len(years) == 1 else "")
    write_summary(staging / SUMMARY_NAME, rows, summary_title(rows, final.name, years), options.created)
    if warnings:
        write_problems(staging / PROBLEMS_NAME, warnings, created=options.created)
    write_zip(staging / f"{final.name}_报告.zip", zipped_files(staging, [staging / f.path for f in reports]),
              staging)
    counts = Counts(projects=prepared.total, reports=len(reports), warnings=len(warnings))
    # Out of what the manifest lists, but kept until the folder is published: a retry after a
    # failed manifest or publish still has them.
    os.replace(chunk_dir, parked)
    write_manifest(staging / MANIFEST_NAME, prepared.workbook, prepared.sha256, staging,
                   counts, Status.SUCCESS, known=reports, profile=prepared.profile)
    publish(staging, final)
    shutil.rmtree(parked, ignore_errors=True)
    timings = {**prepared.timings, "渲染": started - prepared.finished_at,
               "渲染(各任务合计)": sum(c.seconds for c in rendered), "写出": time.perf_counter() - started}
    return RunSummary(prepared.workbook, Status.SUCCESS, final, counts, problems=tuple(warnings[:SHOWN_PROBLEMS]),
                      summary_rows=tuple(rows[:SHOWN_ROWS]), timings=timings)


def outputs_markdown(summary: RunSummary, web_url: str | None = None) -> str:
    """Where a run's outputs are, as Markdown for the Prefect UI: the folder and each file, and
    the run's page on `perfreport web` when its address is configured (browsers do not follow
    file:// links from a web page, so the paths are also written out to copy)."""
    if summary.output_dir is None:
        return f"**{summary.workbook.name}**：{summary.message or '文件无法读取'}，未生成任何输出。"
    folder = summary.output_dir.resolve()
    if summary.status == Status.SUCCESS:
        head = f"**{summary.workbook.name}**：{summary.counts.reports} 份报告，{summary.counts.warnings} 条警告"
    else:
        head = f"**{summary.workbook.name}**：{summary.counts.errors} 个错误，未生成报告"
    lines = [head, "", f"- 输出文件夹：`{folder}`"]
    names = [p.name for p in sorted(folder.glob("*.zip"))] + [
        name for name in (SUMMARY_NAME, PROBLEMS_NAME) if (folder / name).is_file()]
    lines += [f"- [{name}]({(folder / name).as_uri()})" for name in names]
    if web_url:
        lines.append(f"- 网页查看与下载：{web_url.rstrip('/')}/runs/{quote(folder.name)}")
    return "\n".join(lines)

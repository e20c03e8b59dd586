"""Prefect wiring only: each task is one call into `steps.py`; no arithmetic or formatting here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict, cast
from uuid import UUID

from prefect import Task, flow, get_run_logger, task, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.client.schemas.objects import TaskRun
from prefect.events import emit_event
from prefect.futures import as_completed
from prefect.states import State
from prefect.task_runners import ProcessPoolTaskRunner

from pipeline import config, inputs
from pipeline.config import Settings, chosen_profile
from pipeline.docx.pdf import PdfFailed
from pipeline.errors import Status, TemplateInvalid
from pipeline.run import outcomes, runtime, steps
from pipeline.run.extras import RenderOptions
from pipeline.run.steps import PreparedReports, RenderedChunk, RunSummary
from pipeline.write import folders
from pipeline.write.locks import output_lock
from pipeline.write.names import REPORTS_DIR, workbook_output_dir
from pipeline.write.staging import discarded_on_failure


class TaskOptions(TypedDict):
    """The options every task shares, typed so that `@task(**TASK_OPTIONS)` is checked keyword by keyword."""

    cache_policy: CachePolicy
    persist_result: bool
    retries: int
    retry_delay_seconds: list[float]
    retry_condition_fn: Callable[[Task[..., Any], TaskRun, State[Any]], bool]


# Inputs are large and never reused across runs: hashing them for a cache key would be waste.
# Every task reads or writes the output folder, often an office share that drops for a moment:
# an OSError is retried twice, after 2 s then 10 s (long enough for a share to reconnect, short
# enough for someone waiting at the web page); nothing else is (`outcomes.is_transient`). Each
# task is safe to repeat: prepare_run works in a fresh staging folder per attempt (and discards
# it on failure), a render task rewrites the same report names with the same bytes, and
# finish_success rewrites fixed names in the staging folder, which it keeps on failure.
TASK_OPTIONS: TaskOptions = {"cache_policy": NO_CACHE, "persist_result": False, "retries": 2,
                             "retry_delay_seconds": [2.0, 10.0],
                             "retry_condition_fn": outcomes.retry_on_os_error}
# Time limits per task, far above what 100,000 projects take on 2 cores (docs/benchmark.md:
# read, validate and prepare 75 s; a render task of 2,000 reports 10 s, with PDFs a few minutes;
# write-out 33 s), so that only a hung share or LibreOffice ends a task, not a slow machine.
PREPARE_TIMEOUT, RENDER_TIMEOUT, FINISH_TIMEOUT = 1800.0, 3600.0, 1800.0
# The summary rows' columns the UI's table shows (the rows also carry texts for the department report).
ARTIFACT_COLUMNS = ("项目编号", "项目名称", "全年预算数(万元)", "全年执行数(万元)", "预算执行率", "总得分", "评价等级",
                    "警告数", "评分规则", "报告文件")
SUMMARY_KEY, PROGRESS_KEY, OUTPUTS_KEY = "perfreport-summary", "perfreport-progress", "perfreport-outputs"


@task(name=outcomes.PREPARE_TASK, task_run_name=outcomes.PREPARE_TASK, timeout_seconds=PREPARE_TIMEOUT,
      **TASK_OPTIONS)
def prepare_run(path: Path, settings: Settings) -> PreparedReports | RunSummary:
    """Read, validate and evaluate the workbook and stage its render chunks (or its 校验报告)."""
    prepared = steps.prepare_run(path, settings)
    get_run_logger().info("%s: %s", path.name, type(prepared).__name__)
    return prepared


@task(name=outcomes.RENDER_TASK, task_run_name=outcomes.RENDER_RUN_NAME, timeout_seconds=RENDER_TIMEOUT,
      **TASK_OPTIONS)
def render_chunk(chunk_file: Path, reports_dir: Path, templates_dir: Path, options: RenderOptions,
                 part: str = "") -> RenderedChunk:
    """Render one chunk of reports (and their PDFs) into the staging folder (in a worker process,
    or in the flow's own for a small workbook); `part` ("2/4") names its task run."""
    return steps.render_chunk_file(chunk_file, reports_dir, templates_dir, options)


@task(name=outcomes.FINISH_TASK, task_run_name=outcomes.FINISH_TASK, timeout_seconds=FINISH_TIMEOUT,
      **TASK_OPTIONS)
def finish_success(prepared: PreparedReports, rendered: list[RenderedChunk], settings: Settings) -> RunSummary:
    """Write the summary, problems, zip and manifest; publish the folder."""
    return steps.finish_success(prepared, rendered, settings)


def render_all(prepared: PreparedReports, settings: Settings) -> list[RenderedChunk]:
    """Run the render task on every chunk file, reporting progress as chunks finish: in worker
    processes, or for a small workbook in this process (`config.IN_PROCESS_PROJECTS`: below it,
    starting the workers costs more than they save). Either way each chunk is a task run."""
    logger = get_run_logger()
    # A sync context: prefect's dual sync/async function returns the artifact's id, not a coroutine.
    progress = cast(UUID, create_progress_artifact(progress=0.0, key=PROGRESS_KEY, description="已生成报告的比例"))
    parts = outcomes.render_parts(len(prepared.chunk_files))
    reports_dir = prepared.staging / REPORTS_DIR
    done = 0

    def report(chunk: RenderedChunk) -> None:
        nonlocal done
        done += chunk.reports
        update_progress_artifact(progress, progress=100.0 * done / prepared.total)
        logger.info("已生成 %d/%d 份报告", done, prepared.total, extra={"progress": (done, prepared.total)})

    if renders_in_process(prepared, settings):
        rendered = []
        for chunk_file, part in zip(prepared.chunk_files, parts, strict=True):
            rendered.append(render_chunk(chunk_file, reports_dir, settings.templates_dir, prepared.options, part))
            report(rendered[-1])
        return rendered
    with runtime.api_shared_with_workers():
        futures = render_chunk.map(list(prepared.chunk_files), unmapped(reports_dir),
                                   unmapped(settings.templates_dir), unmapped(prepared.options), parts)
        for future in as_completed(futures):
            report(future.result())
        return [future.result() for future in futures]


def renders_in_process(prepared: PreparedReports, settings: Settings) -> bool:
    """Whether the reports render in the flow's own process: a small workbook, unless worker
    processes were asked for by number (`--workers`) or a Dask cluster is configured."""
    return prepared.total <= config.IN_PROCESS_PROJECTS and settings.workers is None and not settings.dask_address


def publish_artifact(summary: RunSummary) -> None:
    """The summary table as a Prefect artifact, visible in the UI when a server is used."""
    create_table_artifact(
        key=SUMMARY_KEY,
        table=[{k: str(row.get(k, "")) for k in ARTIFACT_COLUMNS} for row in summary.summary_rows],
        description=(f"{summary.workbook.name}: {summary.counts.reports} 份报告，{summary.counts.warnings} 条警告"
                     f"（表中列出前 {len(summary.summary_rows)} 个项目，完整见 汇总表.xlsx）"),
    )


def publish_links(summary: RunSummary) -> None:
    """Where the outputs are (and the web page's link to them) as a Markdown artifact."""
    create_markdown_artifact(key=OUTPUTS_KEY, markdown=steps.outputs_markdown(summary, config.web_url()),
                             description=f"{summary.workbook.name} 的输出文件")


# Default: one render process per core; run_workbook() swaps in what the settings ask for.
# The ignore: prefect's TaskRunner is invariant in its future type, so its own process-pool runner does
# not match the decorator's TaskRunner[PrefectFuture] (prefect casts its default runner alike).
@flow(name="perfreport", flow_run_name=outcomes.FLOW_RUN_NAME, log_prints=False,
      task_runner=ProcessPoolTaskRunner())  # type: ignore[arg-type]
def report_workbook(workbook: Path, settings: Settings) -> State[RunSummary]:
    """One workbook in, its reports, summary, 校验报告, manifest and zip out; the flow run ends
    Completed, or Failed with the Chinese reason for 有错误 and 拒收, and says so in an event."""
    try:
        summary = workbook_summary(workbook, settings)
    except Exception as exc:
        # Failed with the exception as Prefect ends it; the event says which workbook it was.
        emit_event(outcomes.FAILED_EVENT, resource=outcomes.workbook_resource(workbook),
                   payload=outcomes.failure_payload(workbook, exc))
        raise
    emit_event(outcomes.EVENT_OF_STATUS[summary.status], resource=outcomes.workbook_resource(workbook),
               payload=outcomes.event_payload(summary))
    return outcomes.final_state(summary)


def workbook_summary(workbook: Path, settings: Settings) -> RunSummary:
    """The tasks of one workbook's run, and what they produced."""
    prepared = prepare_run(workbook, settings)
    if isinstance(prepared, RunSummary):  # the workbook or a template was refused
        publish_links(prepared)
        return prepared
    try:
        with discarded_on_failure(prepared.staging):  # published by finish_success
            rendered = render_all(prepared, settings)
            summary = finish_success(prepared, rendered, settings)
    except (TemplateInvalid, PdfFailed) as exc:
        # Raised while rendering: refused like a bad file (exit 2), the staging folder discarded.
        return RunSummary(workbook, Status.REFUSED, None, message=str(exc))
    publish_artifact(summary)
    publish_links(summary)
    return summary


def run_workbook(workbook: Path, settings: Settings) -> RunSummary:
    """Run the flow on one workbook with the task runner the settings ask for.

    The output lock is taken before the flow starts, so a second run on the same folder is
    refused (OutputBusy) at once, without starting a Prefect server. So is a workbook
    whose name may not write to its output folder (the archive's name, another workbook's folder).
    The flow's final state carries the summary, whether Completed or Failed (有错误, 拒收); any
    other failure (an OSError that outlived the retries) is raised as the tasks raised it.
    """
    refused = folders.output_folder_refusal(settings.output_dir, workbook)
    if refused is not None:
        return RunSummary(workbook, Status.REFUSED, None, message=refused)
    with output_lock(workbook_output_dir(settings.output_dir, workbook)), runtime.heartbeats_unless_asked():
        state = report_workbook.with_options(task_runner=runtime.task_runner(settings))(
            workbook, settings, return_state=True)
        result = state.result(raise_on_failure=False)
        if isinstance(result, RunSummary):
            return result
        if isinstance(result, (TemplateInvalid, PdfFailed)):  # raised outside the render tasks
            return RunSummary(workbook, Status.REFUSED, None, message=str(result))
        if isinstance(result, BaseException):
            raise result
        raise TypeError(f"the flow ended in {state.type.value} without a summary")


@flow(name="perfreport-folder", log_prints=False)
def report_folder(input_dir: str = "input", output_dir: str = "output", workbook: str | None = None,
                  profile: str | None = None, pdf: bool = False) -> State[list[str]]:
    """The flow `perfreport serve` serves: every workbook in `input_dir` (the annual schedule), or
    only `workbook` (a file the hot folder saw arrive), scored by `profile` (a name or a file;
    None: the national default), with PDF copies when `pdf`. Its data is each workbook's status;
    it ends Failed, naming them, when any workbook got no reports."""
    settings = Settings(output_dir=Path(output_dir), profile=chosen_profile(profile),
                        profile_chosen=bool(profile), pdf=pdf)
    paths = [Path(workbook)] if workbook else [Path(entry.path) for entry in inputs.workbook_entries(Path(input_dir))]
    statuses = [str(run_workbook(path, settings).status) for path in paths]
    return outcomes.folder_state([path.name for path in paths], statuses)

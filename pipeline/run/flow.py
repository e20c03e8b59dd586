"""Prefect wiring only: each task is one call into `steps.py`; no arithmetic or formatting here."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict, cast
from uuid import UUID

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner

from pipeline import config, inputs
from pipeline.config import Settings, chosen_profile
from pipeline.docx.pdf import PdfFailed
from pipeline.errors import Status, TemplateInvalid
from pipeline.run import runtime, steps
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


# Inputs are large and never reused across runs: hashing them for a cache key would be waste.
TASK_OPTIONS: TaskOptions = {"cache_policy": NO_CACHE, "persist_result": False}
# The summary rows' columns the UI's table shows (the rows also carry texts for the department report).
ARTIFACT_COLUMNS = ("项目编号", "项目名称", "全年预算数(万元)", "全年执行数(万元)", "预算执行率", "总得分", "评价等级",
                    "警告数", "评分规则", "报告文件")
SUMMARY_KEY, PROGRESS_KEY, OUTPUTS_KEY = "perfreport-summary", "perfreport-progress", "perfreport-outputs"


@task(name="读取校验并准备渲染", **TASK_OPTIONS)
def prepare_run(path: Path, settings: Settings) -> PreparedReports | RunSummary:
    """Read, validate and evaluate the workbook and stage its render chunks (or its 校验报告)."""
    prepared = steps.prepare_run(path, settings)
    get_run_logger().info("%s: %s", path.name, type(prepared).__name__)
    return prepared


@task(name="渲染报告", **TASK_OPTIONS)
def render_chunk(chunk_file: Path, reports_dir: Path, templates_dir: Path, options: RenderOptions) -> RenderedChunk:
    """Render one chunk of reports (and their PDFs) into the staging folder (in a worker process)."""
    return steps.render_chunk_file(chunk_file, reports_dir, templates_dir, options)


@task(name="写出汇总与清单", **TASK_OPTIONS)
def finish_success(prepared: PreparedReports, rendered: list[RenderedChunk], settings: Settings) -> RunSummary:
    """Write the summary, problems, zip and manifest; publish the folder."""
    return steps.finish_success(prepared, rendered, settings)


def render_all(prepared: PreparedReports, settings: Settings) -> list[RenderedChunk]:
    """Map the render task over the chunk files, reporting progress as chunks finish."""
    logger = get_run_logger()
    # A sync context: prefect's dual sync/async function returns the artifact's id, not a coroutine.
    progress = cast(UUID, create_progress_artifact(progress=0.0, key=PROGRESS_KEY, description="已生成报告的比例"))
    with runtime.api_shared_with_workers():
        futures = render_chunk.map(list(prepared.chunk_files), unmapped(prepared.staging / REPORTS_DIR),
                                   unmapped(settings.templates_dir), unmapped(prepared.options))
        done = 0
        for future in as_completed(futures):
            done += future.result().reports
            update_progress_artifact(progress, progress=100.0 * done / prepared.total)
            logger.info("已生成 %d/%d 份报告", done, prepared.total, extra={"progress": (done, prepared.total)})
        return [future.result() for future in futures]


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
@flow(name="perfreport", log_prints=False, task_runner=ProcessPoolTaskRunner())  # type: ignore[arg-type]
def report_workbook(workbook: Path, settings: Settings) -> RunSummary:
    """One workbook in, its reports, summary, 校验报告, manifest and zip out."""
    prepared = prepare_run(workbook, settings)
    if isinstance(prepared, RunSummary):  # the workbook or a template was refused
        publish_links(prepared)
        return prepared
    with discarded_on_failure(prepared.staging):  # published by finish_success
        rendered = render_all(prepared, settings)
    summary = finish_success(prepared, rendered, settings)
    publish_artifact(summary)
    publish_links(summary)
    return summary


def run_workbook(workbook: Path, settings: Settings) -> RunSummary:
    """Run the flow on one workbook with the task runner the settings ask for.

    The output lock is taken before the flow starts, so a second run on the same folder is
    refused (OutputBusy) at once, without starting a Prefect server. So is a workbook
    whose name may not write to its output folder (the archive's name, another workbook's folder).
    """
    refused = folders.output_folder_refusal(settings.output_dir, workbook)
    if refused is not None:
        return RunSummary(workbook, Status.REFUSED, None, message=refused)
    with output_lock(workbook_output_dir(settings.output_dir, workbook)):
        try:
            return report_workbook.with_options(task_runner=runtime.task_runner(settings))(workbook, settings)
        except (TemplateInvalid, PdfFailed) as exc:
            # Raised while rendering, in a worker: Prefect re-raises the task's own exception here,
            # after report_workbook discarded the staging folder. Refused like a bad file (exit 2).
            return RunSummary(workbook, Status.REFUSED, None, message=str(exc))


@flow(name="perfreport-folder", log_prints=False)
def report_folder(input_dir: str = "input", output_dir: str = "output", workbook: str | None = None,
                  profile: str | None = None, pdf: bool = False) -> list[str]:
    """The flow `perfreport serve` serves: every workbook in `input_dir` (the annual schedule), or
    only `workbook` (a file the hot folder saw arrive), scored by `profile` (a name or a file;
    None: the national default), with PDF copies when `pdf`. Returns each workbook's status."""
    settings = Settings(output_dir=Path(output_dir), profile=chosen_profile(profile),
                        profile_chosen=bool(profile), pdf=pdf)
    paths = [Path(workbook)] if workbook else [Path(entry.path) for entry in inputs.workbook_entries(Path(input_dir))]
    return [run_workbook(path, settings).status for path in paths]

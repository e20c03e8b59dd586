"""Prefect wiring only: each task is one call into `steps.py`; no arithmetic or formatting here."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner

from pipeline import outputs, runtime, steps
from pipeline.config import Settings
from pipeline.steps import CheckedWorkbook, PreparedReports, RenderedChunk, RunSummary

# Inputs are large and never reused across runs: hashing them for a cache key would be waste.
TASK_OPTIONS = {"cache_policy": NO_CACHE, "persist_result": False}
SUMMARY_KEY, PROGRESS_KEY = "perfreport-summary", "perfreport-progress"


@task(name="读取并校验工作簿", **TASK_OPTIONS)
def check_workbook(path: Path, settings: Settings) -> CheckedWorkbook:
    """Read and validate the workbook."""
    checked = steps.check_workbook(path, settings)
    get_run_logger().info("%s: %s, %d 个项目, %d 个问题", path.name, checked.status,
                          len(checked.projects), len(checked.problems))
    return checked


@task(name="计算指标并准备渲染", **TASK_OPTIONS)
def prepare_reports(checked: CheckedWorkbook, staging: Path, settings: Settings) -> PreparedReports:
    """Compute every project's scores and write the render chunks."""
    return steps.prepare_reports(checked, staging, settings)


@task(name="渲染报告", **TASK_OPTIONS)
def render_chunk(chunk_file: Path, reports_dir: Path, templates_dir: Path) -> RenderedChunk:
    """Render one chunk of reports into the staging folder (runs in a worker process)."""
    return steps.render_chunk_file(chunk_file, reports_dir, templates_dir)


@task(name="写出汇总与清单", **TASK_OPTIONS)
def finish_success(checked: CheckedWorkbook, prepared: PreparedReports, rendered: list[RenderedChunk],
                   staging: Path, settings: Settings) -> RunSummary:
    """Write the summary, problems, zip and manifest; publish the folder."""
    return steps.finish_success(checked, prepared, rendered, staging, settings)


@task(name="写出校验报告", **TASK_OPTIONS)
def finish_failed(checked: CheckedWorkbook, settings: Settings, message: str = "") -> RunSummary:
    """Publish the 校验报告 of a workbook that cannot be reported on."""
    return steps.finish_failed(checked, settings, message)


def render_all(prepared: PreparedReports, staging: Path, settings: Settings) -> list[RenderedChunk]:
    """Map the render task over the chunk files, reporting progress as chunks finish."""
    logger = get_run_logger()
    progress = create_progress_artifact(progress=0.0, key=PROGRESS_KEY, description="已生成报告的比例")
    with runtime.api_shared_with_workers():
        futures = render_chunk.map(list(prepared.chunk_files), unmapped(staging / outputs.REPORTS_DIR),
                                   unmapped(settings.templates_dir))
        done = 0
        for future in as_completed(futures):
            done += len(future.result().files)
            update_progress_artifact(progress, progress=100.0 * done / prepared.total)
            logger.info("已生成 %d/%d 份报告", done, prepared.total, extra={"progress": (done, prepared.total)})
        return [future.result() for future in futures]


def publish_artifact(summary: RunSummary) -> None:
    """The summary table as a Prefect artifact, visible in the UI when a server is used."""
    create_table_artifact(
        key=SUMMARY_KEY,
        table=[{k: str(v) for k, v in row.items()} for row in summary.summary_rows],
        description=f"{summary.workbook.name}: {summary.reports} 份报告，{summary.warnings} 条警告",
    )


# Default: one render process per core; run_workbook() swaps in what the settings ask for.
@flow(name="perfreport", log_prints=False, task_runner=ProcessPoolTaskRunner())
def report_workbook(workbook: Path, settings: Settings) -> RunSummary:
    """One workbook in, its reports, summary, 校验报告, manifest and zip out."""
    checked = check_workbook(workbook, settings)
    if checked.status != steps.Status.SUCCESS:
        return finish_failed(checked, settings)
    staging = outputs.staging_dir(outputs.workbook_output_dir(settings.output_dir, workbook))
    try:
        prepared = prepare_reports(checked, staging, settings)
        if prepared.template_problem:
            outputs.discard(staging)
            return finish_failed(checked, settings, prepared.template_problem)
        rendered = render_all(prepared, staging, settings)
    except BaseException:
        outputs.discard(staging)
        raise
    summary = finish_success(checked, prepared, rendered, staging, settings)
    publish_artifact(summary)
    return summary


def run_workbook(workbook: Path, settings: Settings) -> RunSummary:
    """Run the flow on one workbook with the task runner the settings ask for."""
    return report_workbook.with_options(task_runner=runtime.task_runner(settings))(workbook, settings)

"""Prefect wiring only: each task is one call into `steps.py`; no arithmetic or formatting here."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from pipeline import outputs, steps
from pipeline.config import Settings
from pipeline.indicators import ProjectResult
from pipeline.steps import CheckedWorkbook, PlannedReport, RunSummary

# Inputs are large and never reused across runs: hashing them for a cache key would be waste.
TASK_OPTIONS = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="读取并校验工作簿", **TASK_OPTIONS)
def check_workbook(path: Path, settings: Settings) -> CheckedWorkbook:
    """Read and validate the workbook."""
    checked = steps.check_workbook(path, settings)
    get_run_logger().info("%s: %s, %d 个项目, %d 个问题", path.name, checked.status,
                          len(checked.projects), len(checked.problems))
    return checked


@task(name="计算指标", **TASK_OPTIONS)
def evaluate_projects(checked: CheckedWorkbook) -> list[ProjectResult]:
    """Compute every project's scores."""
    return steps.evaluate_projects(checked.projects)


@task(name="渲染报告", **TASK_OPTIONS)
def render_chunk(chunk: list[PlannedReport], reports_dir: Path, settings: Settings) -> int:
    """Render one chunk of reports into the staging folder."""
    written = steps.render_reports(chunk, reports_dir, settings.templates_dir)
    get_run_logger().info("已生成 %d 份报告", len(written))
    return len(written)


@task(name="写出汇总与清单", **TASK_OPTIONS)
def finish_success(checked: CheckedWorkbook, results: list[ProjectResult], planned: list[PlannedReport],
                   staging: Path, settings: Settings) -> RunSummary:
    """Write the summary, problems, zip and manifest; publish the folder."""
    return steps.finish_success(checked, results, planned, staging, settings)


@task(name="写出校验报告", **TASK_OPTIONS)
def finish_failed(checked: CheckedWorkbook, settings: Settings, message: str = "") -> RunSummary:
    """Publish the 校验报告 of a workbook that cannot be reported on."""
    return steps.finish_failed(checked, settings, message)


def publish_artifact(summary: RunSummary) -> None:
    """The summary table as a Prefect artifact, visible in the UI when a server is used."""
    create_table_artifact(
        key="perfreport-summary",
        table=[{k: str(v) for k, v in row.items()} for row in summary.summary_rows],
        description=f"{summary.workbook.name}: {summary.reports} 份报告，{summary.warnings} 条警告",
    )


@flow(name="perfreport", log_prints=False)
def report_workbook(workbook: Path, settings: Settings) -> RunSummary:
    """One workbook in, its reports, summary, 校验报告, manifest and zip out."""
    checked = check_workbook(workbook, settings)
    if checked.status != steps.Status.SUCCESS:
        return finish_failed(checked, settings)
    results = evaluate_projects(checked)
    planned = steps.plan_reports(results, settings)
    template_problem = steps.check_templates(planned, settings)
    if template_problem:
        return finish_failed(checked, settings, template_problem)
    staging = outputs.staging_dir(outputs.workbook_output_dir(settings.output_dir, workbook))
    try:
        chunks = steps.chunks_of(planned, settings.chunk_size)
        render_chunk.map(chunks, unmapped(staging / outputs.REPORTS_DIR), unmapped(settings)).result()
    except BaseException:
        outputs.discard(staging)
        raise
    summary = finish_success(checked, results, planned, staging, settings)
    publish_artifact(summary)
    return summary

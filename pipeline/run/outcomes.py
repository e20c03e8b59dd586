"""What a workbook's run tells Prefect and the people watching it: the names of the flow run and
its task runs, the final state with its Chinese message, the event per outcome, and which
failures a task retries.

An invalid or refused workbook is not a crash of the program, but it is a run that produced no
reports, and whoever watches Prefect has to act on it: so it ends in a state of type FAILED named
"Failed" (every standard "flow run failed" automation and notification fires on it), with a message
an officer can read, and an event of its own carrying the workbook's name and counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import Completed, Failed, State

from pipeline.errors import Status
from pipeline.run.steps import RunSummary
from pipeline.write.locks import OutputBusy

# The flow run is named after the workbook file (Prefect formats it with the flow's parameters),
# so the UI's list of runs reads as the list of workbooks, and a run can be found by its file.
FLOW_RUN_NAME = "{workbook.name}"
PREPARE_TASK, RENDER_TASK, FINISH_TASK = "读取校验并准备渲染", "渲染报告", "写出汇总与清单"
# The render tasks' run names: "渲染报告 2/4" (Prefect formats it with the task's `part`).
RENDER_RUN_NAME = RENDER_TASK + " {part}"

EVENT_OF_STATUS: Mapping[str, str] = {
    Status.SUCCESS: "perfreport.workbook.succeeded",
    Status.INVALID: "perfreport.workbook.invalid",
    Status.REFUSED: "perfreport.workbook.refused",
}
# A run that ended on an error no outcome covers (a share still failing after the retries, a
# task's time limit): the flow run is Failed with the exception, and this event says which workbook.
FAILED_EVENT = "perfreport.workbook.failed"
RESOURCE_PREFIX = "perfreport.workbook."
# How a status reads in a message (the folder flow's list of workbooks without reports).
STATUS_WORDS: Mapping[str, str] = {Status.SUCCESS: "成功", Status.INVALID: "有错误", Status.REFUSED: "拒收",
                                   Status.FAILED: "失败"}


def render_parts(count: int) -> list[str]:
    """The labels "1/4" … "4/4" of `count` render tasks, in chunk order."""
    return [f"{number}/{count}" for number in range(1, count + 1)]


def outcome_message(summary: RunSummary) -> str:
    """The final state's message, in Chinese, for the UI, the notifications and the event."""
    counts = summary.counts
    if summary.status == Status.SUCCESS:
        return f"成功：{counts.projects} 个项目，生成 {counts.reports} 份报告，{counts.warnings} 条警告"
    if summary.status == Status.INVALID:
        return f"有错误：{counts.errors} 个错误、{counts.warnings} 条警告，未生成报告；见 校验报告.xlsx"
    return f"拒收：{summary.message or '文件无法读取'}"


def final_state(summary: RunSummary) -> State[RunSummary]:
    """Completed for a workbook with reports; Failed (named so) with the Chinese message for 有错误
    and 拒收. The summary travels as the state's data, so the caller reads it back either way."""
    if summary.status == Status.SUCCESS:
        return Completed(data=summary, message=outcome_message(summary))
    return Failed(data=summary, message=outcome_message(summary))


def workbook_resource(workbook: Path) -> dict[str, str]:
    """The Prefect resource an outcome event is about: the workbook, by its file name."""
    return {"prefect.resource.id": f"{RESOURCE_PREFIX}{workbook.name}", "prefect.resource.name": workbook.name}


def event_payload(summary: RunSummary) -> dict[str, Any]:
    """What an automation's template can quote: the workbook, its status, counts and message."""
    counts = summary.counts
    return {"workbook": summary.workbook.name, "status": str(summary.status), "projects": counts.projects,
            "reports": counts.reports, "errors": counts.errors, "warnings": counts.warnings,
            "output_dir": str(summary.output_dir) if summary.output_dir is not None else "",
            "message": outcome_message(summary)}


def folder_message(outcomes: Sequence[tuple[str, str]]) -> str | None:
    """The served folder flow's failure message: the (file name, status) pairs that did not succeed,
    or None when every workbook did."""
    failed = [f"{name}（{STATUS_WORDS.get(status, status)}）" for name, status in outcomes if status != Status.SUCCESS]
    if not failed:
        return None
    return f"{len(failed)} 个工作簿未生成报告：{'、'.join(failed)}"


def folder_state(names: Sequence[str], statuses: Sequence[str]) -> State[list[str]]:
    """The served folder flow's final state: Completed, or Failed naming the workbooks that got no
    reports; its data is the statuses, in the order of `names`."""
    message = folder_message(list(zip(names, statuses, strict=True)))
    if message is None:
        return Completed(data=list(statuses))
    return Failed(data=list(statuses), message=message)


def is_transient(error: BaseException | None) -> bool:
    """Whether a task's failure is worth retrying: an OSError (a share reconnecting, a file held
    for a moment, EMFILE), never a busy output folder, a task's own timeout (it would only time
    out again), a template, PDF or validation error, nor a data file that is not ours."""
    from prefect.task_engine import TaskRunTimeoutError

    return isinstance(error, OSError) and not isinstance(error, (OutputBusy, TaskRunTimeoutError))


def retry_on_os_error(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's `retry_condition_fn`: retry when the failed state carries a transient error."""
    error = state.data if isinstance(state.data, BaseException) else None
    return is_transient(error)


def failure_payload(workbook: Path, exc: BaseException) -> dict[str, Any]:
    """The FAILED_EVENT's payload: the workbook and, in Chinese, what stopped its run."""
    return {"workbook": workbook.name, "status": str(Status.FAILED),
            "message": f"失败：{type(exc).__name__}: {exc}（未生成报告；已有的输出未被改动）"}

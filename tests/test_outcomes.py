"""What a run tells Prefect: flow and task run names, final states, events, and which failures retry.

The runs are the real `perfreport run` pointed at the session's `prefect server start`; what they
left is read back through the server's REST API, filtered by this test's own workbook names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from prefect import flow, task

from pipeline.config import Settings
from pipeline.errors import TemplateInvalid
from pipeline.run import flow as run_flow
from pipeline.run import steps
from pipeline.run.flow import TASK_OPTIONS
from pipeline.run.outcomes import retry_on_os_error
from pipeline.write.names import REPORTS_DIR
from tests.conftest import valid_sheets, write_workbook
from tests.prefectapi import api, events_named, flow_runs_named, server_env, task_runs_of

ROOT = Path(__file__).resolve().parents[1]
EVENT_SECONDS = 60  # the server writes events in the background


def perfreport_run(server: str, workbook: Path, out: Path, home: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """The real `perfreport run` on `workbook`, reporting to the Prefect server at `server`."""
    env = {**server_env(home), "PREFECT_API_URL": server}
    return subprocess.run([sys.executable, "-m", "pipeline", "run", str(workbook), "--output-dir", str(out), *options],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def unique_name(stem: str) -> str:
    """A workbook file name no other test's run on the shared server has."""
    return f"{stem}-{uuid.uuid4().hex[:8]}.xlsx"


def broken_sheets() -> dict[str, list[dict[str, object]]]:
    """The valid workbook with one error: more spent than budgeted."""
    sheets = valid_sheets()
    sheets["资金"][0]["全年执行数(万元)"] = 120
    return sheets


def own_events(server: str, event: str, name: str) -> list[dict[str, object]]:
    """The `event`s about workbook `name`, waited for while the server records them."""
    deadline = time.monotonic() + EVENT_SECONDS
    while not (found := events_named(server, event, f"perfreport.workbook.{name}")):
        assert time.monotonic() < deadline, f"no {event} event for {name} within {EVENT_SECONDS} s"
        time.sleep(1)
    return found


def test_a_run_is_named_after_its_workbook_and_its_render_tasks_are_numbered(
        prefect_server: str, tmp_path: Path) -> None:
    name = unique_name("两个项目")
    workbook = write_workbook(tmp_path / name, valid_sheets())

    run = perfreport_run(prefect_server, workbook, tmp_path / "out", tmp_path / "home", "--chunk-size", "1")

    assert run.returncode == 0, run.stderr[-2000:]
    [flow_run] = flow_runs_named(prefect_server, name)
    assert (flow_run["state_type"], flow_run["state_name"]) == ("COMPLETED", "Completed")
    assert flow_run["state"]["message"] == "成功：2 个项目，生成 2 份报告，1 条警告"  # type: ignore[index]
    tasks = task_runs_of(prefect_server, str(flow_run["id"]))
    assert sorted(str(t["name"]) for t in tasks) == ["写出汇总与清单", "渲染报告 1/2", "渲染报告 2/2", "读取校验并准备渲染"]
    # The run's last log lines reached the server before the process left (it skips its teardown).
    logs = api(prefect_server, "/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run["id"]]}}})
    assert "Finished in state Completed('成功：2 个项目，生成 2 份报告，1 条警告')" in [
        entry["message"] for entry in logs]  # type: ignore[union-attr, index]
    [event] = own_events(prefect_server, "perfreport.workbook.succeeded", name)
    assert event["payload"] == {"workbook": name, "status": "success", "projects": 2, "reports": 2, "errors": 0,
                                "warnings": 1, "output_dir": str(tmp_path / "out" / Path(name).stem),
                                "message": "成功：2 个项目，生成 2 份报告，1 条警告"}


def test_a_workbook_with_errors_ends_failed_with_the_chinese_message_and_its_event(
        prefect_server: str, tmp_path: Path) -> None:
    name = unique_name("有错误")
    workbook = write_workbook(tmp_path / name, broken_sheets())

    run = perfreport_run(prefect_server, workbook, tmp_path / "out", tmp_path / "home")

    assert run.returncode == 1, run.stderr[-2000:]
    [flow_run] = flow_runs_named(prefect_server, name)
    assert (flow_run["state_type"], flow_run["state_name"]) == ("FAILED", "Failed")
    message = flow_run["state"]["message"]  # type: ignore[index]
    assert message == "有错误：1 个错误、0 条警告，未生成报告；见 校验报告.xlsx"
    [event] = own_events(prefect_server, "perfreport.workbook.invalid", name)
    assert event["payload"]["errors"] == 1 and event["payload"]["message"] == message  # type: ignore[index]
    related = {r["prefect.resource.id"] for r in event["related"]}  # type: ignore[attr-defined]
    assert f"prefect.flow-run.{flow_run['id']}" in related


def test_a_refused_file_ends_failed_with_the_reason(prefect_server: str, tmp_path: Path) -> None:
    name = unique_name("不是工作簿")
    (tmp_path / name).write_bytes(b"plain text, not a zip")

    run = perfreport_run(prefect_server, tmp_path / name, tmp_path / "out", tmp_path / "home")

    assert run.returncode == 2, run.stderr[-2000:]
    [flow_run] = flow_runs_named(prefect_server, name)
    assert (flow_run["state_type"], flow_run["state_name"]) == ("FAILED", "Failed")
    assert str(flow_run["state"]["message"]).startswith("拒收：")  # type: ignore[index]
    [event] = own_events(prefect_server, "perfreport.workbook.refused", name)
    assert event["payload"]["status"] == "refused"  # type: ignore[index]


# The flow's retry policy, on tasks that fail on their first attempt only (a file records attempts).
@task(**{**TASK_OPTIONS, "retry_delay_seconds": [0.0, 0.0]})
def fails_once(counter: Path, error: str) -> int:
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    if attempts == 1:
        raise OSError("共享文件夹暂时不可用") if error == "os" else TemplateInvalid("模板 report.docx 有误")
    return attempts


@flow
def one_task(counter: Path, error: str) -> int:
    return fails_once(counter, error)


@pytest.mark.usefixtures("prefect_harness")
def test_an_os_error_is_retried_and_a_template_error_is_not(tmp_path: Path) -> None:
    assert one_task(tmp_path / "os.count", "os") == 2

    with pytest.raises(TemplateInvalid):
        one_task(tmp_path / "template.count", "template")
    assert (tmp_path / "template.count").read_text() == "1"


def test_the_tasks_that_touch_shared_folders_retry_only_on_os_errors() -> None:
    for shared in (run_flow.prepare_run, run_flow.render_chunk, run_flow.finish_success):
        assert shared.retries == 2 and shared.retry_condition_fn is retry_on_os_error
        assert shared.timeout_seconds is not None and shared.timeout_seconds >= 1800


def published_outputs(workbook: Path, settings: Settings, obstacle: str | None = None) -> dict[str, str]:
    """Run the steps as the flow's tasks would, each render task twice (a retry) and, with
    `obstacle`, finish_success first failing on a real OSError (a folder where a file goes) then
    retried: the published files and their hashes, from the manifest."""
    prepared = steps.prepare_run(workbook, settings)
    assert isinstance(prepared, steps.PreparedReports)
    reports_dir = prepared.staging / REPORTS_DIR
    for _attempt in range(2):
        rendered = [steps.render_chunk_file(chunk, reports_dir, settings.templates_dir, prepared.options)
                    for chunk in prepared.chunk_files]
    if obstacle is not None:
        (prepared.staging / obstacle).mkdir()
        with pytest.raises(OSError):
            steps.finish_success(prepared, rendered, settings)
        (prepared.staging / obstacle).rmdir()
    summary = steps.finish_success(prepared, rendered, settings)
    assert summary.output_dir is not None
    manifest = json.loads((summary.output_dir / "manifest.json").read_text(encoding="utf-8"))
    return {output["path"]: output["sha256"] for output in manifest["outputs"]}


# manifest.json: the last write, after the chunk files left the folder (parked beside it until published).
@pytest.mark.parametrize("obstacle", ["汇总表.xlsx", "部门汇总报告.docx", "重试_报告.zip", "manifest.json"])
def test_retried_render_and_finish_steps_publish_what_one_clean_run_publishes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obstacle: str) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # the same dates in both runs
    workbook = write_workbook(tmp_path / "重试.xlsx", valid_sheets())
    clean = published_outputs(workbook, Settings(output_dir=tmp_path / "clean", chunk_size=1, workers=1))
    retried = published_outputs(workbook, Settings(output_dir=tmp_path / "retried", chunk_size=1, workers=1),
                                obstacle)

    assert retried == clean
    assert sorted(p.name for p in (tmp_path / "retried").iterdir()) == ["重试"]  # no staging left behind

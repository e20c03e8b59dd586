"""Warm runs: `web` and `serve` run each workbook as a flow run in worker processes that stay.

Against the session's real `prefect server` on loopback: the flow run is named after the workbook,
the same worker process runs one workbook after another, and a worker killed in the middle of a
run is replaced while its flow run is set Crashed (not left RUNNING) and the run reported failed.
Also the pieces around them: the watcher runs workbooks side by side up to its limit, an upload
is taken without the settling wait, and Prefect's settings sources outrank the product's defaults.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from pipeline.errors import Status
from pipeline.serve import hotfolder, watcher
from pipeline.serve.warm import RunNotStarted, WarmRunner
from pipeline.write.locks import output_lock
from tests.prefectapi import api, flow_runs_named, server_env
from tests.processes import stop_group

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "input" / "2020年度项目支出绩效自评表.xlsx"
BIG_PROJECTS = 1500  # long enough to be killed while its flow run is RUNNING
WAIT_SECONDS = 240
SUCCEEDED = 'id="status">成功<'  # the run page's status badge once the reports are there


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Poll `condition` until it is true; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def runner(prefect_server: str) -> Iterator[WarmRunner]:
    """One warm worker pointed at the session's Prefect server."""
    warm = WarmRunner(1, api_url=prefect_server)
    warm.start()
    try:
        yield warm
    finally:
        warm.close()


def synthetic_workbook(path: Path, projects: int) -> Path:
    """A valid workbook of `projects` projects, as the benchmark writes them."""
    spec = importlib.util.spec_from_file_location("make_synthetic", ROOT / "scripts" / "make_synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_synthetic_workbook(path, projects)  # type: ignore[no-any-return]


def test_workbooks_run_one_after_another_as_named_flow_runs_in_the_same_worker(
        runner: WarmRunner, prefect_server: str, tmp_path: Path) -> None:
    inbox, out = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    workbook = Path(shutil.copy(EXAMPLE, inbox / "温热运行.xlsx"))
    before = {r["id"] for r in flow_runs_named(prefect_server, workbook.name)}

    first = runner(workbook, inbox, out)
    workers = runner.pids()
    second = runner(workbook, inbox, out)

    assert first == second == (Status.SUCCESS, "")
    assert runner.pids() == workers  # warm: the same process ran both
    assert len(list((out / "温热运行" / "reports").glob("*.docx"))) == 7
    mine = [r for r in flow_runs_named(prefect_server, workbook.name) if r["id"] not in before]
    assert [r["state_type"] for r in mine] == ["COMPLETED", "COMPLETED"]


def test_a_killed_worker_is_replaced_and_its_flow_run_set_crashed(
        runner: WarmRunner, prefect_server: str, tmp_path: Path) -> None:
    inbox, out = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    big = synthetic_workbook(inbox / "中途退出.xlsx", BIG_PROJECTS)
    outcome: list[tuple[str, str]] = []
    [victim] = runner.pids()
    run = threading.Thread(target=lambda: outcome.append(runner(big, inbox, out)))
    run.start()

    def running() -> bool:
        return any(r["state_type"] == "RUNNING" for r in flow_runs_named(prefect_server, big.name))

    wait_for(running, WAIT_SECONDS, "the big workbook's flow run to be RUNNING")
    wait_for(lambda: psutil.Process(victim).children(), WAIT_SECONDS, "the worker's render processes")
    renderers = psutil.Process(victim).children(recursive=True)
    os.kill(victim, signal.SIGKILL)  # as the system's out-of-memory killer would
    run.join(timeout=WAIT_SECONDS)

    assert not run.is_alive()
    [(status, message)] = outcome
    assert status == Status.FAILED
    assert "处理进程意外退出" in message and "信号 9" in message
    [flow_run] = flow_runs_named(prefect_server, big.name)
    assert flow_run["state_type"] == "CRASHED"
    assert "处理进程意外退出" in str(api(prefect_server, f"/flow_runs/{flow_run['id']}")["state"]["message"])  # type: ignore[index]
    assert not (out / "中途退出").exists()  # nothing half-written was published
    _, alive = psutil.wait_procs(renderers, timeout=30)
    assert not alive, "the dead worker's render processes ran on"
    [replacement] = runner.pids()
    assert replacement != victim
    # The replacement takes the next workbook.
    assert runner(Path(shutil.copy(EXAMPLE, inbox / "之后.xlsx")), inbox, out) == (Status.SUCCESS, "")


def test_a_workbook_whose_folder_is_busy_is_not_run_and_nothing_is_recorded(
        runner: WarmRunner, tmp_path: Path) -> None:
    inbox, out = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    workbook = Path(shutil.copy(EXAMPLE, inbox / "忙.xlsx"))
    with output_lock(out / "忙"), pytest.raises(RunNotStarted, match="另一个 perfreport 正在处理"):
        runner(workbook, inbox, out)
    assert runner(workbook, inbox, out) == (Status.SUCCESS, "")  # once the folder is free


def test_with_the_prefect_api_away_a_workbook_is_not_run_but_tried_again_later(tmp_path: Path) -> None:
    inbox, out = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    workbook = Path(shutil.copy(EXAMPLE, inbox / "无服务器.xlsx"))
    away = WarmRunner(1, api_url="http://127.0.0.1:9/api")  # nothing listens on the discard port
    try:
        with pytest.raises(RunNotStarted, match="Prefect 服务器暂时无法访问"):
            away(workbook, inbox, out)
    finally:
        away.close()
    assert not (out / "无服务器").exists()


def test_the_watcher_runs_different_workbooks_side_by_side_up_to_its_limit(tmp_path: Path) -> None:
    inbox, out = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    out.mkdir()
    for name in ("甲.xlsx", "乙.xlsx", "丙.xlsx"):
        shutil.copy(EXAMPLE, inbox / name)
    together = threading.Barrier(2, timeout=60)
    at_once: list[int] = []
    running = 0
    guard = threading.Lock()

    def start_run(workbook: Path, input_dir: Path, output_dir: Path, profile: str | None = None, *,
                  pdf: bool = False) -> tuple[str, str]:
        nonlocal running
        with guard:
            running += 1
            at_once.append(running)
        if len(at_once) <= 2:
            together.wait()  # the first two meet: they run at the same time
        time.sleep(0.2)
        with guard:
            running -= 1
        return Status.SUCCESS, ""

    stop = threading.Event()
    options = watcher.WatchOptions(settle_seconds=0.2, max_runs=2)
    thread = threading.Thread(target=watcher.watch_folder, args=(inbox, out, stop, 0.1),
                              kwargs={"start_run": start_run, "options": options})
    thread.start()
    try:
        state_file = hotfolder.state_path(out)

        def all_recorded() -> bool:
            return state_file.exists() and len(hotfolder.load_state(state_file).processed) == 3

        wait_for(all_recorded, 60, "three recorded runs")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert max(at_once) == 2  # two at once, never three
    assert {run.outcome for run in hotfolder.load_state(state_file).processed.values()} == {Status.SUCCESS}


def test_an_upload_is_taken_at_the_first_look_and_a_copied_file_only_once_it_settled(tmp_path: Path) -> None:
    uploaded, copied = tmp_path / "上传.xlsx", tmp_path / "复制.xlsx"
    shutil.copy(EXAMPLE, uploaded)
    shutil.copy(EXAMPLE, copied)

    first = hotfolder.poll(tmp_path, {}, now=100.0, settle_seconds=2.0, settled={uploaded.name})
    assert first.ready == (uploaded,)
    assert first.observations[uploaded.name].sha256 is not None
    later = hotfolder.poll(tmp_path, first.observations, now=102.5, settle_seconds=2.0)
    assert copied in later.ready


def profile_home(tmp_path: Path, settings: dict[str, str]) -> Path:
    """A PREFECT_HOME whose active profile holds `settings`, as `prefect config set` writes them."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    lines = "\n".join(f'{key} = "{value}"' for key, value in settings.items())
    (home / "profiles.toml").write_text(f'active = "office"\n\n[profiles.office]\n{lines}\n', encoding="utf-8")
    return home


def test_prefect_settings_an_administrator_made_outrank_the_products_defaults(tmp_path: Path) -> None:
    home = profile_home(tmp_path, {"PREFECT_SERVER_ANALYTICS_ENABLED": "true",
                                   "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "77"})
    (tmp_path / "prefect.toml").write_text('[tasks]\nrefresh_cache = true\n', encoding="utf-8")
    script = ("import json, os\n"
              "from pipeline.config import apply_prefect_defaults, prefect_defaults_to_apply\n"
              "missing = prefect_defaults_to_apply()\n"
              "apply_prefect_defaults()\n"
              "from prefect.settings import get_current_settings\n"
              "s = get_current_settings()\n"
              "print(json.dumps({'missing': sorted(missing), 'analytics': s.server.analytics_enabled,\n"
              "  'timeout': s.server.ephemeral.startup_timeout_seconds, 'refresh': s.tasks.refresh_cache,\n"
              "  'prompt': s.cli.prompt, 'persist': s.results.persist_by_default}))\n")
    env = {**server_env(home), "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_SERVER_ANALYTICS_ENABLED")  # the profile's, not the environment's
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    seen = json.loads(done.stdout)

    assert seen["analytics"] is True and seen["timeout"] == 77  # the profile's
    assert seen["refresh"] is True  # prefect.toml's
    assert seen["prompt"] is False and seen["persist"] is False  # the product's, where nobody set one
    assert not {"PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                "PREFECT_TASKS_REFRESH_CACHE"} & set(seen["missing"])


def test_serve_uses_the_prefect_server_a_profile_names(prefect_server: str, tmp_path: Path) -> None:
    inbox, out = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    home = profile_home(tmp_path, {"PREFECT_API_URL": prefect_server})
    env = server_env(home)  # no PREFECT_API_URL in the environment: only the profile names it
    with (tmp_path / "serve.log").open("w") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "serve", "--input-dir", str(inbox), "--output-dir", str(out),
             "--poll-seconds", "0.2", "--settle-seconds", "0.5"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            shutil.copy(EXAMPLE, inbox / "按配置.xlsx")
            wait_for((out / "按配置" / "manifest.json").exists, WAIT_SECONDS, "the dropped workbook's reports")
            # Recorded once the flow run has ended (stopping the service sooner would crash it).
            wait_for(hotfolder.state_path(out).exists, WAIT_SECONDS, "the hot folder's record of the run")
        finally:
            stop_group(service)
    assert len(list((out / "按配置" / "reports").glob("*.docx"))) == 7
    assert [r["state_type"] for r in flow_runs_named(prefect_server, "按配置.xlsx")] == ["COMPLETED"]


def test_serve_without_any_prefect_server_configured_is_refused_with_how_to_configure_one(tmp_path: Path) -> None:
    env = server_env(tmp_path / "empty-home")
    done = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--input-dir", str(tmp_path),
                           "--output-dir", str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 2
    assert "prefect config set PREFECT_API_URL" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("given", "inside"), [(None, "None"), ("45", "45")])
def test_flow_heartbeats_are_off_unless_a_settings_source_asks_for_them(
        tmp_path: Path, given: str | None, inside: str) -> None:
    home = profile_home(tmp_path, {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": given} if given else {})
    script = ("from pipeline.config import apply_prefect_defaults\n"
              "apply_prefect_defaults()\n"
              "from prefect.settings import get_current_settings\n"
              "from pipeline.run.runtime import heartbeats_unless_asked\n"
              "with heartbeats_unless_asked():\n"
              "    print(get_current_settings().flows.heartbeat_frequency)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**server_env(home), "PYTHONPATH": str(ROOT)}, timeout=120, check=True)
    assert done.stdout.strip() == inside  # a profile's value is kept; none given: no heartbeat thread


def uploaded(origin: str, name: str) -> str:
    """POST the example under `name` as the page's form does; the run page's address."""
    import urllib.request
    import uuid

    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="workbook"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + EXAMPLE.read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{origin}/upload", data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": origin})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return str(answer.url)


def page(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as answer:
        return str(answer.read().decode("utf-8"))


def temporary_servers(web: psutil.Process) -> list[psutil.Process]:
    """The Prefect temporary servers `web` started for its workers."""
    return [child for child in web.children(recursive=True)
            if "prefect.server.api.server:create_app" in " ".join(child.cmdline())]


def test_the_web_pages_temporary_prefect_server_is_started_again_when_it_ends(tmp_path: Path) -> None:
    from tests.processes import free_port, wait_for_port

    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    (tmp_path / "input").mkdir()
    with (tmp_path / "web.log").open("w") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "web", "--input-dir", str(tmp_path / "input"),
             "--output-dir", str(tmp_path / "output"), "--port", str(port), "--max-runs", "1"],
            cwd=ROOT, env=server_env(tmp_path / "home"), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            wait_for_port(port, web, 120)
            first = uploaded(origin, "先.xlsx")
            wait_for(lambda: SUCCEEDED in page(first), WAIT_SECONDS, "the first upload's reports")
            [server] = temporary_servers(psutil.Process(web.pid))
            server.kill()  # as the system's out-of-memory killer would
            wait_for(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, 30,
                     "the temporary server to end")  # a zombie until the web process looks at it

            second = uploaded(origin, "后.xlsx")
            wait_for(lambda: SUCCEEDED in page(second), WAIT_SECONDS, "the second upload's reports")
            [restarted] = temporary_servers(psutil.Process(web.pid))
        finally:
            stop_group(web)
    assert restarted.pid != server.pid
    assert len(list((tmp_path / "output" / "后" / "reports").glob("*.docx"))) == 7

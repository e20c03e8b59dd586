"""perfreport against a real Prefect server on loopback, as the README tells an administrator to run it.

The server is started with Prefect's own command (`prefect server start`, SQLite in a temporary
PREFECT_HOME); `perfreport run` is pointed at it with PREFECT_API_URL, and the flow run and its
artifacts are then read back through the server's REST API, as the UI shows them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import free_port, stop_group

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "input" / "2020年度项目支出绩效自评表.xlsx"
PREFECT = Path(sys.executable).parent / "prefect"


def api(url: str, path: str, body: dict[str, object] | None = None) -> object:
    """GET (no body) or POST (a JSON body) one endpoint of the Prefect REST API."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, headers={"Content-Type": "application/json"})
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            # The server answers 503 while its SQLite database is busy with the run's own writes.
            if exc.code != 503 or attempt == 19:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    return env


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    server = subprocess.Popen(
        [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if api(url, "/health") is True:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert server.poll() is None, "prefect server start exited"
            assert time.monotonic() < deadline, "the Prefect server did not answer within 180 s"
            time.sleep(1)
        yield url
    finally:
        stop_group(server)


def test_a_run_pointed_at_a_prefect_server_shows_its_flow_run_and_artifacts(
        prefect_server: str, tmp_path: Path) -> None:
    env = {**server_env(tmp_path / "client-home"), "PREFECT_API_URL": prefect_server,
           "PERFREPORT_WEB_URL": "http://127.0.0.1:8000"}
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(EXAMPLE), "--output-dir", str(tmp_path / "out")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(list((tmp_path / "out").glob("*/reports/*.docx"))) == 7
    flows = api(prefect_server, "/flows/filter", {})
    assert [flow["name"] for flow in flows] == ["perfreport"]  # type: ignore[index, union-attr]
    flow_runs = api(prefect_server, "/flow_runs/filter", {})
    assert [r["state_type"] for r in flow_runs] == ["COMPLETED"]  # type: ignore[index, union-attr]
    task_runs = api(prefect_server, "/task_runs/filter", {})
    assert {t["state_type"] for t in task_runs} == {"COMPLETED"}  # type: ignore[union-attr]
    # The task names the README lists.
    assert {t["name"].rsplit("-", 1)[0] for t in task_runs} == {  # type: ignore[union-attr]
        "读取校验并准备渲染", "渲染报告", "写出汇总与清单"}
    summary = api(prefect_server, "/artifacts/filter", {"artifacts": {"key": {"any_": ["perfreport-summary"]}}})
    [table] = summary  # type: ignore[misc]
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert len(rows) == 7 and "RG2020-001" in {row["项目编号"] for row in rows}
    progress = api(prefect_server, "/artifacts/filter", {"artifacts": {"key": {"any_": ["perfreport-progress"]}}})
    assert [artifact["data"] for artifact in progress] == [100.0]  # type: ignore[index, union-attr]
    # Links to the outputs: the folder, the zip and 汇总表 as file links, and the run's web page.
    [links] = api(prefect_server, "/artifacts/filter",  # type: ignore[misc]
                  {"artifacts": {"key": {"any_": ["perfreport-outputs"]}}})
    folder = (tmp_path / "out" / EXAMPLE.stem).resolve()
    assert links["type"] == "markdown"
    assert f"`{folder}`" in links["data"]
    assert (folder / "汇总表.xlsx").as_uri() in links["data"]
    assert (folder / f"{EXAMPLE.stem}_报告.zip").as_uri() in links["data"]
    assert f"http://127.0.0.1:8000/runs/{urllib.parse.quote(EXAMPLE.stem)}" in links["data"]


def corrected_example(path: Path) -> Path:
    """The example workbook with one project's overview corrected."""
    import openpyxl

    book = openpyxl.load_workbook(EXAMPLE)
    book["项目"]["F3"] = f"{book['项目']['F3'].value}（已更正）"
    book.save(path)
    return path


def wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:.0f} s"
        time.sleep(0.5)


def deployment_of(url: str) -> dict[str, object] | None:
    try:
        return api(url, "/deployments/name/perfreport-folder/annual")  # type: ignore[return-value]
    except urllib.error.HTTPError:
        return None


def test_serve_runs_a_dropped_workbook_and_its_deployment_as_the_schedule_would(
        prefect_server: str, tmp_path: Path) -> None:
    inbox, out = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    env = {**server_env(tmp_path / "client-home"), "PREFECT_API_URL": prefect_server}
    log = (tmp_path / "serve.log").open("w")
    service = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--input-dir", str(inbox), "--output-dir", str(out),
         "--poll-seconds", "0.5"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(lambda: deployment_of(prefect_server) is not None, 120, "the deployment's registration")
        deployment = deployment_of(prefect_server)
        assert deployment["schedules"][0]["schedule"]["cron"] == "0 8 15 1 *"  # type: ignore[index]
        assert deployment["schedules"][0]["schedule"]["timezone"] == "Asia/Shanghai"  # type: ignore[index]

        (inbox / "~$2020年度项目支出绩效自评表.xlsx").write_bytes(b"an Office lock file")
        dropped = time.monotonic()
        partial = inbox / ".copying.tmp"
        partial.write_bytes(EXAMPLE.read_bytes())
        partial.rename(inbox / EXAMPLE.name)  # a finished copy, as a file manager ends one
        manifest = out / EXAMPLE.stem / "manifest.json"
        wait_for(manifest.exists, 180, "the dropped workbook's reports")
        print(f"dropped to ready: {time.monotonic() - dropped:.1f} s")
        assert len(list((out / EXAMPLE.stem / "reports").glob("*.docx"))) == 7
        assert not (out / "~$2020年度项目支出绩效自评表").exists()
        state_file = out / ".perfreport-hotfolder.json"  # written once the run has ended
        wait_for(state_file.exists, 60, "the hot folder's record of the run")
        assert EXAMPLE.name in state_file.read_text(encoding="utf-8")

        # The annual schedule starts a run of the deployment; the API does the same, now.
        started = api(prefect_server, f"/deployments/{deployment['id']}/create_flow_run", {})  # type: ignore[index]

        def finished() -> bool:
            run = api(prefect_server, f"/flow_runs/{started['id']}")  # type: ignore[index]
            return run["state_type"] in ("COMPLETED", "FAILED", "CRASHED")  # type: ignore[index]

        wait_for(finished, 180, "the scheduled run")
        run = api(prefect_server, f"/flow_runs/{started['id']}")  # type: ignore[index]
        assert run["state_type"] == "COMPLETED"  # type: ignore[index]
        assert len(list((out / EXAMPLE.stem / "reports").glob("*.docx"))) == 7
        assert EXAMPLE.read_bytes() == (inbox / EXAMPLE.name).read_bytes()  # input never changed

        # A corrected workbook under the same name runs again; the earlier outputs are archived.
        corrected = corrected_example(tmp_path / "corrected.xlsx")
        corrected.rename(inbox / EXAMPLE.name)

        def corrected_published() -> bool:
            return (manifest.exists() and hashlib.sha256(corrected_bytes).hexdigest()
                    in manifest.read_text(encoding="utf-8"))

        corrected_bytes = (inbox / EXAMPLE.name).read_bytes()
        wait_for(corrected_published, 180, "the corrected workbook's reports")
        archived = list((out / "_archive").iterdir())
        assert len(archived) == 1 and (archived[0] / "manifest.json").exists()
        assert (inbox / EXAMPLE.name).read_bytes() == corrected_bytes
    finally:
        stop_group(service)
        log.close()

"""perfreport against a real Prefect server on loopback, as the README tells an administrator to run it.

The server is started with Prefect's own command (`prefect server start`, SQLite in a temporary
PREFECT_HOME); `perfreport run` is pointed at it with PREFECT_API_URL, and the flow run and its
artifacts are then read back through the server's REST API, as the UI shows them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
from pathlib import Path

from tests.prefectapi import api, flow_runs_named, server_env, task_runs_of
from tests.processes import stop_group

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "input" / "2020年度项目支出绩效自评表.xlsx"


def own_artifacts(url: str, key: str, flow_run_id: str) -> list[dict[str, object]]:
    """The artifacts with `key` of one flow run (other tests' runs share the server)."""
    found = api(url, "/artifacts/filter", {"artifacts": {"key": {"any_": [key]},
                                                         "flow_run_id": {"any_": [flow_run_id]}}})
    assert isinstance(found, list)
    return found


def test_a_run_pointed_at_a_prefect_server_shows_its_flow_run_and_artifacts(
        prefect_server: str, tmp_path: Path) -> None:
    env = {**server_env(tmp_path / "client-home"), "PREFECT_API_URL": prefect_server,
           "PERFREPORT_WEB_URL": "http://127.0.0.1:8000"}
    earlier = {r["id"] for r in flow_runs_named(prefect_server, EXAMPLE.name)}
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(EXAMPLE), "--output-dir", str(tmp_path / "out")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(list((tmp_path / "out").glob("*/reports/*.docx"))) == 7
    [flow_run] = [r for r in flow_runs_named(prefect_server, EXAMPLE.name) if r["id"] not in earlier]
    flow = api(prefect_server, f"/flows/{flow_run['flow_id']}")
    assert flow["name"] == "perfreport"  # type: ignore[index]
    assert flow_run["state_type"] == "COMPLETED"
    task_runs = task_runs_of(prefect_server, str(flow_run["id"]))
    assert {t["state_type"] for t in task_runs} == {"COMPLETED"}
    # The task names the README lists, the render tasks numbered.
    assert {str(t["name"]).split(" ")[0] for t in task_runs} == {"读取校验并准备渲染", "渲染报告", "写出汇总与清单"}
    [table] = own_artifacts(prefect_server, "perfreport-summary", str(flow_run["id"]))
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert len(rows) == 7 and "RG2020-001" in {row["项目编号"] for row in rows}  # type: ignore[union-attr]
    progress = own_artifacts(prefect_server, "perfreport-progress", str(flow_run["id"]))
    assert [artifact["data"] for artifact in progress] == [100.0]
    # Links to the outputs: the folder, the zip and 汇总表 as file links, and the run's web page.
    [links] = own_artifacts(prefect_server, "perfreport-outputs", str(flow_run["id"]))
    folder = (tmp_path / "out" / EXAMPLE.stem).resolve()
    assert links["type"] == "markdown"
    text = str(links["data"])
    assert f"`{folder}`" in text
    assert (folder / "汇总表.xlsx").as_uri() in text
    assert (folder / f"{EXAMPLE.stem}_报告.zip").as_uri() in text
    assert f"http://127.0.0.1:8000/runs/{urllib.parse.quote(EXAMPLE.stem)}" in text


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

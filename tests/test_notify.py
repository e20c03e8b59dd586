"""The notification recipe of docs/notify.md, end to end: `perfreport notify` against the session's
Prefect server, then a workbook with errors, then the robot's message at a webhook on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.serve.notify import AUTOMATION_NAME, BLOCK_NAME
from tests.conftest import write_workbook
from tests.prefectapi import api, server_env
from tests.test_outcomes import broken_sheets, perfreport_run, unique_name

ROOT = Path(__file__).resolve().parents[1]
DELIVERY_SECONDS = 180  # events, the trigger and the action each run in the server's background


class Receiver(ThreadingHTTPServer):
    """A webhook on loopback that keeps the JSON bodies POSTed to /hook."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Hook)
        self.bodies: list[object] = []


class Hook(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/hook":
            self.server.bodies.append(json.loads(data))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errcode":0,"errmsg":"ok"}')

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def perfreport_notify(server: str, home: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**server_env(home), "PREFECT_API_URL": server}
    return subprocess.run([sys.executable, "-m", "pipeline", "notify", *options], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_notify_recipe_delivers_an_invalid_workbook_to_a_wecom_webhook(
        prefect_server: str, receiver: Receiver, tmp_path: Path) -> None:
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    first = perfreport_notify(prefect_server, tmp_path / "home", "--webhook", "http://127.0.0.1:9/old", "--kind", "generic")
    again = perfreport_notify(prefect_server, tmp_path / "home", "--webhook", hook, "--kind", "wecom")
    assert (first.returncode, again.returncode) == (0, 0), first.stderr[-2000:] + again.stderr[-2000:]
    automations = api(prefect_server, "/automations/filter", {"automations": {"name": {"any_": [AUTOMATION_NAME]}}})
    assert isinstance(automations, list) and len(automations) == 1  # replaced, not added
    block = api(prefect_server, f"/block_types/slug/custom-webhook/block_documents/name/{BLOCK_NAME}")
    assert block["data"]["url"] == "{{webhook_url}}"  # type: ignore[index]
    assert hook not in json.dumps(block)  # the robot's key is a secret, shown masked
    revealed = api(prefect_server, f"/block_types/slug/custom-webhook/block_documents/name/{BLOCK_NAME}"
                                   "?include_secrets=true")
    assert revealed["data"]["secrets"] == {"webhook_url": hook}  # type: ignore[index]

    name = unique_name("通知")
    run = perfreport_run(prefect_server, write_workbook(tmp_path / name, broken_sheets()), tmp_path / "out",
                         tmp_path / "home")
    assert run.returncode == 1, run.stderr[-2000:]

    deadline = time.monotonic() + DELIVERY_SECONDS
    while not (mine := [b for b in receiver.bodies if name in json.dumps(b, ensure_ascii=False)]):
        assert time.monotonic() < deadline, f"no notification for {name} within {DELIVERY_SECONDS} s"
        time.sleep(1)
    [message] = mine
    assert message["msgtype"] == "text"  # type: ignore[index]
    content = message["text"]["content"]  # type: ignore[index]
    assert f"工作簿 {name}：有错误：1 个错误、0 条警告，未生成报告；见 校验报告.xlsx" in content
    assert f"输出文件夹：{tmp_path / 'out' / Path(name).stem}" in content


def test_notify_refuses_a_webhook_that_is_not_http(prefect_server: str, tmp_path: Path) -> None:
    refused = perfreport_notify(prefect_server, tmp_path / "home", "--webhook", "file:///etc/passwd")
    assert refused.returncode == 2 and "Webhook 地址无效" in refused.stderr

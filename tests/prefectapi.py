"""A real `prefect server start` on loopback for tests, and its REST API read as the UI reads it.

One server serves the whole test session (starting one costs 10-40 s here); every test that uses
it reads only its own flow runs (by name or id), since other tests share the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import free_port, stop_group

PREFECT = Path(sys.executable).parent / "prefect"
STARTUP_SECONDS = 180


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
    """This environment without any Prefect setting, with a private PREFECT_HOME, no UI and no
    telemetry (there is no network here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    return env


def healthy(url: str) -> bool:
    """Whether the server at `url` answers its health check."""
    try:
        return api(url, "/health") is True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def prefect_server_at(home: Path, log: Path) -> Iterator[str]:
    """`prefect server start` on a free loopback port (SQLite in `home`, every background service
    on, among them the triggers and actions that run automations); yields its API URL."""
    port = free_port()
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env(home), stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}/api"
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not healthy(url):
                assert server.poll() is None, f"prefect server start exited: {log.read_text(errors='replace')[-2000:]}"
                assert time.monotonic() < deadline, f"the Prefect server did not answer within {STARTUP_SECONDS} s"
                time.sleep(1)
            yield url
        finally:
            stop_group(server)


def flow_runs_named(url: str, name: str) -> list[dict[str, object]]:
    """The flow runs of this server whose name is `name` (a test's own workbook name)."""
    runs = api(url, "/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
    assert isinstance(runs, list)
    return runs


def task_runs_of(url: str, flow_run_id: str) -> list[dict[str, object]]:
    """The task runs of one flow run."""
    runs = api(url, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    assert isinstance(runs, list)
    return runs


def events_named(url: str, event: str, resource_id: str) -> list[dict[str, object]]:
    """The events called `event` about the resource `resource_id` (e.g. one workbook's)."""
    page = api(url, "/events/filter", {"filter": {"event": {"name": [event]},
                                                   "resource": {"id": [resource_id]},
                                                   "occurred": {"since": "2000-01-01T00:00:00Z"}},
                                        "limit": 50})
    assert isinstance(page, dict)
    return page["events"]

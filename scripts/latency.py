"""How long an officer waits for the example workbook's reports, every way they can be asked for.

Usage: python scripts/latency.py [--work bench/] [--uploads 5]

On the example workbook (7 projects), each in fresh processes as an administrator starts them:
- `perfreport run` with the embedded Prefect server (none configured), best of 3 after one run
  that creates Prefect's database;
- `perfreport run` against a running `prefect server start` on loopback, best of 3;
- `perfreport web` (no server configured): the 1st and the Nth upload, from the POST to the run
  page showing 成功; the 1st is sent as soon as the page answers, while its workers still warm up;
- `perfreport serve` against the same server: a workbook renamed into input/ (as a finished copy
  ends) until its manifest is published, the 1st and the Nth drop.
The naive way, a fresh `perfreport run` per workbook, is what the embedded figure measures: the web
page and `serve` paid it for every upload and drop before their workers stayed warm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.processes, tests.prefectapi: the tests' server helpers

from tests.prefectapi import prefect_server_at  # noqa: E402
from tests.processes import free_port, stop_group, wait_for_port  # noqa: E402

EXAMPLE = REPO / "input" / "2020年度项目支出绩效自评表.xlsx"
TARGETS = {"embedded": 8.0, "server": 4.0, "warm": 2.0}
WAIT_SECONDS = 300.0
POLL = 0.05
SUCCEEDED = 'class="status status-成功"'  # the run page's status badge once the reports are there


def clean_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """This environment without Prefect or perfreport settings, a private PREFECT_HOME, and the
    API address when one is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PERFREPORT_"))}
    env["PREFECT_HOME"] = str(home)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def timed_run(work: Path, env: dict[str, str]) -> float:
    """Seconds of one `perfreport run` on the example in a fresh process (exit 0 required)."""
    out = Path(tempfile.mkdtemp(prefix="latency-run-", dir=work))
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "run", str(EXAMPLE), "--output-dir", str(out)],
                       cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(out, ignore_errors=True)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` every POLL seconds; fail naming `what` after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(POLL)


@contextmanager
def service(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running perfreport command in its own process group, stopped at the end."""
    with log.open("wb") as output:
        child = subprocess.Popen([sys.executable, "-m", "pipeline", *command], cwd=REPO, env=env,
                                 stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield child
        finally:
            stop_group(child)


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    """A browser's form body with one workbook file: (body, content type)."""
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="workbook"; filename="{name}"\r\n'
            "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n")
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def page_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode("utf-8", "replace")


def web_uploads(work: Path, count: int) -> list[float]:
    """Seconds from each upload's POST to its run page showing 成功, `count` uploads in a row."""
    root = Path(tempfile.mkdtemp(prefix="latency-web-", dir=work))
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = clean_env(work / "prefect-home")
    times = []
    command = ["web", "--input-dir", str(root / "input"), "--output-dir", str(root / "output"), "--port", str(port)]
    with service(command, env, root / "web.log") as child:
        wait_for_port(port, child, 120)
        for number in range(1, count + 1):
            name = f"上传{number}.xlsx"
            body, kind = multipart(name, EXAMPLE.read_bytes())
            request = urllib.request.Request(f"{origin}/upload", data=body, method="POST",
                                             headers={"Content-Type": kind, "Origin": origin})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60):
                pass  # followed the redirect to the run page
            run_page = f"{origin}/runs/{quote(Path(name).stem)}"
            wait_until(lambda page=run_page: SUCCEEDED in page_text(page), f"{name} to succeed")
            times.append(time.perf_counter() - started)
    shutil.rmtree(root, ignore_errors=True)
    return times


def serve_drops(work: Path, api_url: str, count: int) -> list[float]:
    """Seconds from renaming a finished copy into input/ to its manifest being published."""
    root = Path(tempfile.mkdtemp(prefix="latency-serve-", dir=work))
    inbox, out = root / "input", root / "output"
    inbox.mkdir()
    env = clean_env(work / "prefect-home", api_url)
    times = []
    command = ["serve", "--input-dir", str(inbox), "--output-dir", str(out), "--poll-seconds", "0.2",
               "--settle-seconds", "0.5"]
    with service(command, env, root / "serve.log"):
        warmed = inbox / "预热.xlsx"  # the service is up and its workers warm once this is done
        shutil.copy(EXAMPLE, warmed)
        wait_until((out / warmed.stem / "manifest.json").exists, "serve to start")
        for number in range(1, count + 1):
            partial = root / f"copy{number}.tmp"
            shutil.copy(EXAMPLE, partial)
            target = inbox / f"放入{number}.xlsx"
            started = time.perf_counter()
            partial.rename(target)
            wait_until((out / target.stem / "manifest.json").exists, f"{target.name}'s reports")
            times.append(time.perf_counter() - started)
    shutil.rmtree(root, ignore_errors=True)
    return times


def verdict(seconds: float, target: float) -> str:
    return f"{'met' if seconds <= target else 'MISSED'} (target ≤ {target:.0f} s)"


def latency_lines(work: Path, uploads: int = 5) -> list[str]:
    """Every figure above, one line each."""
    work.mkdir(parents=True, exist_ok=True)
    home = work / "prefect-home"
    embedded_env = clean_env(home)
    first = timed_run(work, embedded_env)  # creates Prefect's database in `home`, as a first run does
    embedded = min(timed_run(work, embedded_env) for _ in range(3))
    lines = [f"perfreport run, embedded Prefect server: {embedded:.1f} s (best of 3; the very first run, "
             f"which creates Prefect's database, {first:.1f} s) — {verdict(embedded, TARGETS['embedded'])}"]
    with prefect_server_at(work / "server-home", work / "prefect-server.log") as url:
        served = min(timed_run(work, clean_env(home, url)) for _ in range(3))
        lines.append(f"perfreport run, with a running prefect server: {served:.1f} s (best of 3) — "
                     f"{verdict(served, TARGETS['server'])}")
        drops = serve_drops(work, url, uploads)
    web = web_uploads(work, uploads)
    lines.append(f"perfreport web, upload → 成功: 1st upload {web[0]:.1f} s (workers still warming), "
                 f"{len(web)}th {web[-1]:.1f} s — {verdict(web[-1], TARGETS['warm'])}; "
                 f"each: {', '.join(f'{t:.1f}' for t in web)} s")
    lines.append(f"perfreport serve, drop → reports: 1st drop {drops[0]:.1f} s, {len(drops)}th {drops[-1]:.1f} s "
                 f"(0.2 s polls, 0.5 s settle) — {verdict(drops[-1], TARGETS['warm'])}; "
                 f"each: {', '.join(f'{t:.1f}' for t in drops)} s")
    lines.append(f"the naive way, a fresh perfreport run per upload or drop: {embedded:.1f} s each")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench")
    parser.add_argument("--uploads", type=int, default=5)
    args = parser.parse_args(argv)
    for line in latency_lines(args.work, args.uploads):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

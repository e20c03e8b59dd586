"""Benchmark the whole pipeline on synthetic workbooks and compare with the naive docxtpl loop.

Usage: python scripts/bench.py [--sizes 1000 10000 100000] [--sample 200] [--work bench/] [--render-only]

For each size: generate (once, cached in --work) a realistic workbook, run `perfreport run` on it
in a fresh process (so Prefect's start is included), sample the memory of that process and all
its children, and print wall time, projects per second, peak memory and the time of each stage.
Then render the same sample of projects with each shipped template two ways in this process, on
one core: docxtpl as documented (a new DocxTemplate per report, render, save) and the pipeline's
compiled template, and print the throughput ratio (`--render-only` for just that, on the smallest
size's workbook); and read the 10,000-project workbook with openpyxl
alone and with the pipeline's reader, and serve the largest run's page of `perfreport web` with and without
its cache; then load the real `perfreport web` server (requests per second of the listing and of a 3,000-project
run's page, its memory after 10,000 requests; `--web-only` for just that); and the PDF copies' throughput on
200 projects, batched on every core against one LibreOffice call per report (`--pdf-only`). Last, each target
of the speed issue with its figure. First of all, the example workbook's waits (scripts/latency.py:
`perfreport run` embedded and with a Prefect server, uploads through `web`, drops through `serve`;
`--latency-only` for just those).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO))  # tests.processes: the child-process helpers of the tests

from latency import latency_lines  # noqa: E402
from make_synthetic import write_synthetic_workbook  # noqa: E402

from pipeline.config import Settings  # noqa: E402
from pipeline.core.context import report_context  # noqa: E402
from pipeline.core.department import DEPARTMENT_TEMPLATE  # noqa: E402
from pipeline.docx.fastrender import CompiledTemplate  # noqa: E402
from pipeline.run import steps  # noqa: E402

TEMPLATE = REPO / "templates" / "report.docx"
PDF_PROJECTS = 200  # the workbook the PDF throughput is measured on
# Every shipped template, the default first: the speed target holds for each.
TEMPLATES = [TEMPLATE, *sorted(p for p in (REPO / "templates").glob("*.docx")
                               if p not in (TEMPLATE, REPO / "templates" / DEPARTMENT_TEMPLATE))]
STAGES = ("读取", "校验", "整理", "计算", "准备渲染", "渲染", "写出")


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a process may end while we look
            total += proc.memory_info().rss
    return total


def run_pipeline(workbook: Path, out: Path, timings: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS of the whole process tree, peak RSS of the main process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(workbook), "--output-dir", str(out),
         "--timings", str(timings)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    process = psutil.Process(child.pid)
    peaks = [0, 0]

    def sample() -> None:
        while child.poll() is None:
            try:
                peaks[0] = max(peaks[0], tree_rss(process))
                peaks[1] = max(peaks[1], process.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = child.communicate()
    wall = time.perf_counter() - started
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"perfreport failed on {workbook} ({child.returncode}):\n{err[-2000:]}")
    return wall, peaks[0], peaks[1]


def sample_contexts(workbook: Path, sample: int) -> list[dict[str, object]]:
    """Report contexts of the first `sample` projects of a workbook."""
    settings = Settings()
    checked = steps.check_workbook(workbook, settings)
    results = steps.evaluate_projects(checked.projects[:sample], settings.profile)
    day = steps.run_date(os.environ)
    return [report_context(r, day) for r in results]


def naive_vs_compiled(contexts: list[dict[str, object]], template_path: Path = TEMPLATE) -> tuple[float, float]:
    """Seconds per report on one core: docxtpl as documented, and the compiled template.

    Both produce the finished .docx bytes in memory; writing them to disk costs the same for
    both and is measured with the whole pipeline above.
    """
    from docxtpl import DocxTemplate

    from pipeline.docx.render import jinja_environment

    started = time.perf_counter()
    for context in contexts:
        template = DocxTemplate(str(template_path))
        template.render(context, jinja_env=jinja_environment(), autoescape=True)
        template.save(io.BytesIO())
    naive = (time.perf_counter() - started) / len(contexts)

    # Compiled once per run (and per worker process): not part of a report's cost.
    compiled = CompiledTemplate.from_path(template_path)
    started = time.perf_counter()
    for context in contexts:
        compiled.render(context)
    fast = (time.perf_counter() - started) / len(contexts)
    return naive, fast


def table_rows(contexts: list[dict[str, object]], template_path: Path) -> float:
    """Table rows per report, on average (the attachment's form grows with the indicators)."""
    import zipfile

    compiled = CompiledTemplate.from_path(template_path)
    rows = 0
    for context in contexts:
        with zipfile.ZipFile(io.BytesIO(compiled.render(context))) as report:
            body = report.read("word/document.xml")
        rows += body.count(b"<w:tr>") + body.count(b"<w:tr ")
    return rows / len(contexts)


def rendering_ratios(contexts: list[dict[str, object]]) -> float:
    """Print docxtpl against the compiled template for every shipped template; the lowest ratio."""
    ratios = []
    for template_path in TEMPLATES:
        naive, fast = naive_vs_compiled(contexts, template_path)
        ratios.append(naive / fast)
        print(f"Rendering {len(contexts)} reports with {template_path.name} ({table_rows(contexts, template_path):.1f} "
              f"table rows per report) on one core, same data: docxtpl as documented {naive * 1000:.1f} ms/report, "
              f"compiled template {fast * 1000:.2f} ms/report, ratio {naive / fast:.1f}x", flush=True)
    return min(ratios)


def naive_vs_fast_reading(workbook: Path) -> tuple[float, float]:
    """Seconds to read a workbook's four sheets: openpyxl alone (read-only), and the pipeline's reader."""
    from pipeline.contract.schemas import SHEET_MODELS, sheet_layout
    from pipeline.xlsx.fallback import read_workbook_openpyxl
    from pipeline.xlsx.reader import read_workbook

    layouts = [sheet_layout(m) for m in SHEET_MODELS]
    started = time.perf_counter()
    read_workbook_openpyxl(workbook, layouts)
    naive = time.perf_counter() - started
    started = time.perf_counter()
    read_workbook(workbook, layouts)
    return naive, time.perf_counter() - started


def web_page_times(output_dir: Path, name: str, repeats: int = 5) -> tuple[float, float]:
    """Seconds to serve one run page of `perfreport web`: a new app (so nothing cached) per
    request, the naive way, against one app whose FolderCache keeps what it read; best of
    `repeats` each. The page refreshes every 3 s while any run is under way."""
    from fastapi.testclient import TestClient

    from pipeline.serve.web import WebSettings, create_app, run_url

    settings = WebSettings(input_dir=output_dir / "no-input", output_dir=output_dir, watch=False,
                           allowed_hosts=("testserver",))  # the Host TestClient sends
    naive = []
    for _ in range(repeats):
        with TestClient(create_app(settings)) as client:
            started = time.perf_counter()
            assert client.get(run_url(name)).status_code == 200
            naive.append(time.perf_counter() - started)
    cached = []
    with TestClient(create_app(settings)) as client:
        client.get(run_url(name))
        for _ in range(repeats):
            started = time.perf_counter()
            assert client.get(run_url(name)).status_code == 200
            cached.append(time.perf_counter() - started)
    return min(naive), min(cached)


WEB_PROJECTS = 3_000
WEB_REQUESTS = 10_000
WEB_RUN_PAGE_REQUESTS = 300
WEB_CLIENTS = 8  # keep-alive connections, as a few officers' browsers and their refreshes


def web_run(work: Path) -> tuple[Path, Path, str]:
    """(input folder, output folder, run name) holding one finished run of a 3,000-project workbook;
    made once with `perfreport run` and kept in `work`, like the workbooks."""
    root = work / f"web-{WEB_PROJECTS}"
    input_dir, output_dir = root / "input", root / "output"
    workbook = input_dir / f"synthetic-{WEB_PROJECTS}.xlsx"
    if not (output_dir / workbook.stem / "manifest.json").is_file():
        input_dir.mkdir(parents=True, exist_ok=True)
        if not workbook.exists():
            write_synthetic_workbook(workbook, WEB_PROJECTS)
        run_pipeline(workbook, output_dir, root / "timings.jsonl")
    return input_dir, output_dir, workbook.stem


@contextlib.contextmanager
def served_web(input_dir: Path, output_dir: Path, checkout: Path) -> Iterator[tuple[int, psutil.Process]]:
    """The real `perfreport web` of `checkout` (as an administrator starts it, `--no-watch`) on a
    free loopback port: (port, its process)."""
    from tests.processes import free_port, stop_group, wait_for_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PERFREPORT_"))}
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "web", "--no-watch", "--input-dir", str(input_dir),
         "--output-dir", str(output_dir), "--port", str(port)],
        cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for_port(port, child, 60)
        yield port, psutil.Process(child.pid)
    finally:
        stop_group(child)


def request_rate(port: int, path: str, total: int, clients: int = WEB_CLIENTS) -> float:
    """Requests per second for `total` GETs of `path`, spread over `clients` keep-alive connections."""
    import http.client

    def client(count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(count):
            connection.request("GET", path)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"{path} answered {answer.status}")
        connection.close()

    threads = [threading.Thread(target=client, args=(total // clients,)) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients * (total // clients) / (time.perf_counter() - started)


@dataclass(frozen=True)
class WebLoad:
    """The served page under load. Requests per second depend on the client sharing the two cores
    (a Python client is the bottleneck of the listing); the server's CPU time per request does not,
    so it is the figure to compare between two versions."""

    index_rate: float
    index_cpu_us: float  # server CPU (user + system) per index request, in microseconds
    run_rate: float
    run_cpu_us: float
    started_rss: int
    final_rss: int


def server_cpu(process: psutil.Process) -> float:
    """Seconds of CPU the server process has used so far."""
    times = process.cpu_times()
    return times.user + times.system


def web_load(work: Path, checkout: Path = REPO) -> WebLoad:
    """The real server under load: the index listing WEB_REQUESTS times, then the run page of the
    3,000-project run; rates, server CPU per request and RSS after start-up and at the end."""
    from urllib.parse import quote

    input_dir, output_dir, name = web_run(work)
    with served_web(input_dir, output_dir, checkout) as (port, process):
        request_rate(port, "/", 50)  # first look: hashes and manifests read once
        started_rss = process.memory_info().rss
        cpu = server_cpu(process)
        index_rate = request_rate(port, "/", WEB_REQUESTS)
        index_cpu, cpu = server_cpu(process) - cpu, server_cpu(process)
        run_rate = request_rate(port, f"/runs/{quote(name)}", WEB_RUN_PAGE_REQUESTS)
        run_cpu = server_cpu(process) - cpu
        return WebLoad(index_rate, 1e6 * index_cpu / WEB_REQUESTS, run_rate, 1e6 * run_cpu / WEB_RUN_PAGE_REQUESTS,
                       started_rss, process.memory_info().rss)


def web_load_line(load: WebLoad, checkout: Path) -> str:
    """The load figures as one line."""
    return (f"`perfreport web` of {checkout} on loopback, {WEB_CLIENTS} keep-alive clients: index listing "
            f"{load.index_rate:.0f} req/s, {load.index_cpu_us:,.0f} µs server CPU each ({WEB_REQUESTS:,} requests); "
            f"run page of the {WEB_PROJECTS:,}-project run {load.run_rate:.1f} req/s, "
            f"{load.run_cpu_us:,.0f} µs each ({WEB_RUN_PAGE_REQUESTS} requests); server RSS "
            f"{load.started_rss / 2**20:.0f} MiB after start-up, {load.final_rss / 2**20:.0f} MiB after "
            f"{WEB_REQUESTS + WEB_RUN_PAGE_REQUESTS:,} requests")


def staged_reports(workbook: Path, out: Path) -> list[Path]:
    """The reports of `workbook` rendered in this process (no Prefect), left in the staging folder."""
    settings = Settings(output_dir=out, workers=1)
    prepared = steps.prepare_run(workbook, settings)
    assert isinstance(prepared, steps.PreparedReports), prepared
    reports = prepared.staging / "reports"
    for chunk in prepared.chunk_files:
        steps.render_chunk_file(chunk, reports, settings.templates_dir)
    return sorted(reports.glob("*.docx"))


def pdf_throughput(work: Path, size: int = PDF_PROJECTS, naive_sample: int = 10) -> str:
    """PDF copies, reports per second: the pipeline's batches (one soffice process per core, up
    to 100 files a call) against one soffice call per report, the way a script would do it."""
    from pipeline.docx.pdf import pdf_copies, soffice_command

    if soffice_command() is None:
        return "PDF copies: LibreOffice is not installed here; skipped"
    workbook = work / f"synthetic-{size}.xlsx"
    if not workbook.exists():
        write_synthetic_workbook(workbook, size)
    out = Path(tempfile.mkdtemp(prefix="bench-pdf-", dir=work))
    try:
        reports = staged_reports(workbook, out / "output")
        cores = os.cpu_count() or 1
        started = time.perf_counter()
        pdf_copies(reports, out / "batched", workers=cores)
        batched = len(reports) / (time.perf_counter() - started)
        sample = reports[:naive_sample]
        started = time.perf_counter()
        for report in sample:
            pdf_copies([report], out / "naive", workers=1)
        naive = len(sample) / (time.perf_counter() - started)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return (f"PDF copies of {len(reports)} reports: {batched:.1f} reports/s in batches on {cores} soffice "
            f"processes; one soffice call per report {naive:.2f} reports/s (a sample of {len(sample)}); "
            f"ratio {batched / naive:.1f}x")


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def target_lines(rows: list[tuple[int, float, int, int, dict[str, float]]], ratio: float) -> list[str]:
    """Each target of the speed issue with the figure measured for it, met or not."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    lines = [f"rendering >= 20x docxtpl per core (every shipped template): {ratio:.1f}x, {verdict(ratio >= 20)}"]
    for size, wall, peak_tree, _, timings in rows:
        if size == 10_000:
            lines.append(f"10,000 projects end to end <= 60 s: {wall:.1f} s, {verdict(wall <= 60)}")
            read = timings.get("读取", 0) + timings.get("校验", 0)
            lines.append(f"reading and validating 10,000 projects <= 5 s: {read:.1f} s, {verdict(read <= 5)}")
        if size == 100_000:
            ok = wall <= 360 and peak_tree < 2e9  # 2 GB read strictly: 2 x 10^9 bytes (1907 MiB)
            lines.append(f"100,000 projects <= 6 min, peak < 2 GB: {wall:.0f} s, {peak_tree / 1e9:.2f} GB "
                         f"({peak_tree / 2**20:.0f} MiB), {verdict(ok)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--work", type=Path, default=REPO / "bench")
    parser.add_argument("--web-only", action="store_true", help="only the load figures of `perfreport web`")
    parser.add_argument("--web-checkout", type=Path, default=REPO,
                        help="the checkout whose `perfreport web` is loaded (e.g. a worktree of an older commit)")
    parser.add_argument("--pdf-only", action="store_true", help="only the PDF throughput, on 200 projects")
    parser.add_argument("--latency-only", action="store_true",
                        help="only the example workbook's waits: run, run with a server, web uploads, serve drops")
    parser.add_argument("--render-only", action="store_true",
                        help="only docxtpl against the compiled template, on the smallest size's workbook")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)

    print(f"Machine: {machine()}")
    print("\nThe example workbook (7 projects), as an officer waits for it:")
    for line in latency_lines(args.work):
        print(f"  {line}", flush=True)
    if args.latency_only:
        return 0
    if args.web_only:
        print(web_load_line(web_load(args.work, args.web_checkout), args.web_checkout))
        return 0
    if args.pdf_only:
        print(pdf_throughput(args.work), flush=True)
        return 0
    if args.render_only:
        smallest = args.work / f"synthetic-{min(args.sizes)}.xlsx"
        if not smallest.exists():
            write_synthetic_workbook(smallest, min(args.sizes))
        ratio = rendering_ratios(sample_contexts(smallest, args.sample))
        print(f"\nTargets of the speed issue:\n  {target_lines([], ratio)[0]}")
        return 0
    rows = []
    for size in args.sizes:
        workbook = args.work / f"synthetic-{size}.xlsx"
        if not workbook.exists():
            started = time.perf_counter()
            write_synthetic_workbook(workbook, size)
            print(f"generated {workbook.name} in {time.perf_counter() - started:.1f} s", flush=True)
        out = Path(tempfile.mkdtemp(prefix=f"bench-{size}-", dir=args.work))
        timings_file = out / "timings.jsonl"
        try:
            wall, peak_tree, peak_main = run_pipeline(workbook, out / "output", timings_file)
            timings = json.loads(timings_file.read_text(encoding="utf-8").splitlines()[-1])
            if size == max(args.sizes):
                page_times = web_page_times(out / "output", workbook.stem)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        rows.append((size, wall, peak_tree, peak_main, timings))
        stages = "  ".join(f"{s} {timings.get(s, 0):.1f}s" for s in STAGES)
        print(f"{size:>7} projects: {wall:6.1f} s wall, {size / wall:7.0f} projects/s, "
              f"peak {peak_tree / 2**20:5.0f} MiB (main process {peak_main / 2**20:.0f} MiB) | {stages}",
              flush=True)

    smallest = args.work / f"synthetic-{min(args.sizes)}.xlsx"
    ratio = rendering_ratios(sample_contexts(smallest, args.sample))

    reading = args.work / "synthetic-10000.xlsx"
    if 10_000 in args.sizes:
        slow, quick = naive_vs_fast_reading(reading)
        print(f"Reading {reading.name}: openpyxl read-only {slow:.1f} s, the pipeline's reader (calamine + sheet "
              f"XML scan) {quick:.1f} s, ratio {slow / quick:.1f}x")

    naive_page, cached_page = page_times
    print(f"The web page's run page for the {max(args.sizes):,}-project run (manifest, 汇总表, HTML): "
          f"read afresh for each request {naive_page * 1000:.0f} ms, with the page's cache "
          f"{cached_page * 1000:.1f} ms, ratio {naive_page / cached_page:.0f}x")

    print(web_load_line(web_load(args.work, args.web_checkout), args.web_checkout), flush=True)
    print(pdf_throughput(args.work), flush=True)

    print("\nTargets of the speed issue:")
    for line in target_lines(rows, ratio):
        print(f"  {line}")

    print("\n| projects | wall (s) | projects/s | peak memory, all processes (MiB) | main process (MiB) | "
          + " | ".join(f"{s} (s)" for s in STAGES) + " |")
    print("|" + "---|" * (5 + len(STAGES)))
    for size, wall, peak_tree, peak_main, timings in rows:
        print(f"| {size:,} | {wall:.1f} | {size / wall:.0f} | {peak_tree / 2**20:.0f} | {peak_main / 2**20:.0f} | "
              + " | ".join(f"{timings.get(s, 0):.1f}" for s in STAGES) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

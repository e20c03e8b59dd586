"""`perfreport serve`: the annual run as a served Prefect deployment, and the input/ hot folder.

One long-running process. `prefect.serve` registers the deployment `perfreport-folder/annual`
(flow `flow.report_folder`) with a cron schedule and runs what the schedule, the Prefect UI or
the API start. Beside it a thread polls the input folder with `hotfolder` and, for each workbook
that arrives complete and whose content was not processed yet, archives the earlier outputs and
starts a run of the same deployment for that one file, so every run shows in the Prefect UI.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pipeline import hotfolder, outputs
from pipeline.errors import WorkbookRefused

DEPLOYMENT = "annual"
ANNUAL_CRON = "0 8 15 1 *"  # 15 January, 08:00
TIMEZONE = "Asia/Shanghai"
POLL_SECONDS = 5.0


def folder_parameters(input_dir: Path, output_dir: Path) -> dict[str, str]:
    """The served flow's folder parameters, as absolute paths (runs start in other processes)."""
    return {"input_dir": str(input_dir.resolve()), "output_dir": str(output_dir.resolve())}


def folder_deployment(input_dir: Path, output_dir: Path, cron: str = ANNUAL_CRON, timezone: str = TIMEZONE):  # noqa: ANN201 - prefect's RunnerDeployment
    """The deployment of `flow.report_folder` on the input folder, on the annual schedule."""
    from prefect.schedules import Cron

    from pipeline.flow import report_folder

    return report_folder.to_deployment(
        name=DEPLOYMENT, schedules=[Cron(cron, timezone=timezone)],
        parameters=folder_parameters(input_dir, output_dir),
        description="每年按计划处理 input/ 中的全部工作簿；放入 input/ 的新工作簿由 perfreport serve 随即处理。",
    )


# What starts one workbook's run and waits for it: (outcome, message). `serve` runs the served
# deployment; `web` without a Prefect server runs `perfreport run` in a child process.
RunStarter = Callable[[Path, Path, Path], tuple[str, str]]
# steps.Status's values, spelled here so the watcher does not import steps (and pandera), and
# `perfreport run`'s exit codes (cli.py) as the outcome each stands for.
SUCCESS, INVALID, REFUSED = "success", "invalid", "refused"
EXIT_OUTCOMES = {0: SUCCESS, 1: INVALID, 2: REFUSED}


def run_for_file(workbook: Path, input_dir: Path, output_dir: Path) -> tuple[str, str]:
    """Run the served deployment on one workbook and wait for it; its final state's type."""
    from prefect.deployments import run_deployment

    from pipeline.flow import report_folder

    flow_run = run_deployment(
        f"{report_folder.name}/{DEPLOYMENT}", timeout=None, as_subflow=False, poll_interval=1,
        parameters={**folder_parameters(input_dir, output_dir), "workbook": str(workbook.resolve())},
    )
    return (flow_run.state.type.value if flow_run.state is not None else "UNKNOWN"), ""


def run_in_child_process(workbook: Path, input_dir: Path, output_dir: Path) -> tuple[str, str]:
    """`perfreport run` on one workbook in a child process: (steps.Status or "failed", message).

    A process per run, as the command line does it: the run's memory goes back to the system when
    it ends, and a crash cannot take the web page down with it. The message is the run's own
    first "✘" line, which the page shows for a file that produced no 校验报告.
    """
    command = [sys.executable, "-m", "pipeline", "run", str(workbook.resolve()),
               "--output-dir", str(output_dir.resolve())]
    done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace",
                          check=False)
    lines = [line.removeprefix("✘").strip() for line in done.stderr.splitlines() if line.startswith("✘")]
    return EXIT_OUTCOMES.get(done.returncode, "failed"), (lines[0] if lines else "")


def refusal(workbook: Path) -> tuple[str, str] | None:
    """("refused", why) when the file cannot be a workbook at all (a zip bomb, a DTD, …), else None.

    Checked by the watcher before it starts a run, with the run's own first check, so the reason
    is recorded in the hot-folder state for the web page: a deployment run reports only its
    final state, and it would have refused the file without writing anything.
    """
    from pipeline.workbook import refuse_unreadable

    try:
        refuse_unreadable(workbook)
    except WorkbookRefused as exc:
        return REFUSED, exc.reason
    return None


def watch_folder(input_dir: Path, output_dir: Path, stop: threading.Event,
                 poll_seconds: float = POLL_SECONDS, start_run: RunStarter = run_for_file,
                 wake: threading.Event | None = None) -> None:
    """Poll `input_dir` until `stop` is set, starting one run per new or corrected workbook.

    Setting `wake` polls at once instead of at the next interval (the web page does after an
    upload). Only one watcher per output folder: a second one (say `web` beside `serve`) logs
    that the folder is watched already and returns, so no workbook is ever run twice.
    """
    logger = logging.getLogger("perfreport.hotfolder")
    try:
        with outputs.held_lock(output_dir / hotfolder.WATCHER_LOCK_NAME):
            logger.info("watching %s", input_dir)
            poll_until_stopped(input_dir, output_dir, stop, poll_seconds, start_run, wake or threading.Event())
    except outputs.OutputBusy:
        logger.warning("%s 已由另一个 perfreport 进程监视，本进程不再重复处理", input_dir)


def poll_until_stopped(input_dir: Path, output_dir: Path, stop: threading.Event, poll_seconds: float,
                       start_run: RunStarter, wake: threading.Event) -> None:
    """The watcher's loop, run while holding the watcher lock."""
    logger = logging.getLogger("perfreport.hotfolder")
    state_file = hotfolder.state_path(output_dir)
    previous: hotfolder.Observations = {}
    while not stop.is_set():
        polled = hotfolder.poll(input_dir, previous, time.monotonic())
        previous = polled.observations
        for path in polled.ready:
            if stop.is_set():
                return
            sha256 = polled.observations[path.name].sha256
            try:
                state = hotfolder.load_state(state_file)
            except hotfolder.StateUnreadable as exc:
                # Treating it as empty would run (and archive) every workbook again: stop instead,
                # loudly, until an administrator looks at the file.
                logger.error("%s 无法读取（%s），暂停自动处理 %s", state_file, exc, path.name)
                continue
            if not hotfolder.needs_run(path, state, sha256):
                continue
            try:
                hotfolder.archive_previous_outputs(output_dir, path)
                outcome, message = refusal(path) or start_run(path, input_dir, output_dir)
            except (WorkbookRefused, OSError) as exc:
                logger.warning("%s: %s", path.name, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. the deployment not registered yet: next poll
                logger.warning("%s: run not started (%s); trying again", path.name, exc)
                previous = {}
                continue
            hotfolder.save_state(state_file, hotfolder.with_run(state, path.name, sha256 or "", outcome,
                                                                datetime.now(), message))
        wake.wait(poll_seconds)
        wake.clear()


def serve(input_dir: Path, output_dir: Path, cron: str = ANNUAL_CRON, timezone: str = TIMEZONE,
          poll_seconds: float = POLL_SECONDS) -> None:
    """Serve the deployment and watch the input folder until interrupted."""
    from prefect import serve as prefect_serve

    output_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    watcher = threading.Thread(target=watch_folder, args=(input_dir, output_dir, stop, poll_seconds),
                               name="perfreport-hotfolder", daemon=True)
    watcher.start()
    try:
        prefect_serve(folder_deployment(input_dir, output_dir, cron, timezone))
    finally:
        stop.set()

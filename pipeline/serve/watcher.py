"""The input/ hot folder's watcher: one thread per output folder that polls the folder with
`hotfolder` and, for each workbook that arrives complete and whose content was not processed yet,
archives the earlier outputs and starts a run with the run starter it was given.

`serve` and `web` give it their warm workers (`warm.WarmRunner`); `run_in_child_process` (a
`perfreport run` child per workbook) is the fallback. This module does not import Prefect.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pipeline.errors import EXIT_CODES, Status, WorkbookRefused, os_error_reason
from pipeline.serve import hotfolder, profilechoice
from pipeline.write import folders
from pipeline.write.locks import OutputBusy, held_lock

POLL_SECONDS = 5.0


class RunStarter(Protocol):
    """What starts one workbook's run and waits for it: (outcome, message). `serve` runs the served
    deployment; `web` without a Prefect server runs `perfreport run` in a child process. `profile`
    is the scoring profile an upload chose (a shipped stem), or None: the starter's default; `pdf`
    True when the upload asked for PDF copies (False: the starter's default)."""

    def __call__(self, workbook: Path, input_dir: Path, output_dir: Path, profile: str | None = None, *,
                 pdf: bool = False) -> tuple[str, str]: ...


def run_in_child_process(workbook: Path, input_dir: Path, output_dir: Path,
                         profile: str | None = None, *, pdf: bool = False) -> tuple[str, str]:
    """`perfreport run` on one workbook in a child process: (its Status, FAILED if it crashed, and a message).

    A process per run, as the command line does it: the run's memory goes back to the system when
    it ends, and a crash cannot take the web page down with it. The message is the run's own
    first "✘" line, which the page shows for a file that produced no 校验报告.
    """
    command = [sys.executable, "-m", "pipeline", "run", str(workbook.resolve()),
               "--output-dir", str(output_dir.resolve()), *(["--profile", profile] if profile else []),
               *(["--pdf"] if pdf else [])]
    # UTF-8 whatever the console's encoding (GBK on Chinese Windows): its "✘" lines are read back here.
    done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace",
                          check=False, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    lines = [line.removeprefix("✘").strip() for line in done.stderr.splitlines() if line.startswith("✘")]
    outcome = next((status for status, code in EXIT_CODES.items() if code == done.returncode), Status.FAILED)
    return outcome, (lines[0] if lines else "")


def refusal(workbook: Path) -> tuple[str, str] | None:
    """("refused", why) when the file cannot be a workbook at all (a zip bomb, a DTD, …), else None.

    Checked by the watcher before it starts a run, with the run's own first check, so the reason
    is recorded in the hot-folder state for the web page: a deployment run reports only its
    final state, and it would have refused the file without writing anything.
    """
    from pipeline.xlsx.refusal import refuse_unreadable

    try:
        refuse_unreadable(workbook)
    except WorkbookRefused as exc:
        return Status.REFUSED, exc.reason
    return None


# After a failure of the folders themselves (a share gone, too many open files), wait this long
# before looking again, up to RETRY_MAX_SECONDS as the failure goes on.
RETRY_MAX_SECONDS = 60.0


class SettledNames:
    """Names of workbooks known to be complete as they are (the web page renamed an upload into
    place whole), which the next poll takes without waiting for them to settle. Thread-safe."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.names: set[str] = set()

    def add(self, name: str) -> None:
        with self.guard:
            self.names.add(name)

    def discard(self, names: Iterable[str]) -> None:
        with self.guard:
            self.names.difference_update(names)

    def snapshot(self) -> frozenset[str]:
        with self.guard:
            return frozenset(self.names)


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """How the watcher works: how often it looks, how long a file must stay still, how many
    workbooks run at once, and which names are known complete."""

    poll_seconds: float = POLL_SECONDS
    settle_seconds: float = hotfolder.DEFAULT_SETTLE_SECONDS
    max_runs: int = 1
    settled: SettledNames | None = None
    # Called once this watcher holds the folder (another process's watcher may hold it instead):
    # `web` starts its warm workers only then, not beside a `serve` that does the work.
    on_watching: Callable[[], None] | None = None


def watch_folder(input_dir: Path, output_dir: Path, stop: threading.Event,
                 poll_seconds: float = POLL_SECONDS, start_run: RunStarter = run_in_child_process,
                 wake: threading.Event | None = None, options: WatchOptions | None = None) -> None:
    """Poll `input_dir` until `stop` is set, starting one run per new or corrected workbook.

    Setting `wake` polls at once instead of at the next interval (the web page does after an
    upload). Only one watcher per output folder: a second one (say `web` beside `serve`) logs
    that the folder is watched already and returns, so no workbook is ever run twice. Up to
    `options.max_runs` workbooks run at once (each its own output folder, so never one folder
    twice); the folder is still polled while they run.

    It never ends on its own: an input folder that does not exist yet, a share that disappears
    for a while or a process out of file handles is logged once, shown on the web page
    (`hotfolder.save_health`) and retried, with the wait growing to RETRY_MAX_SECONDS.
    """
    logger = OnceLogger(logging.getLogger("perfreport.hotfolder"))
    wake = wake or threading.Event()
    options = replace(options or WatchOptions(), poll_seconds=poll_seconds)
    failures = 0
    while not stop.is_set():
        try:
            with held_lock(output_dir / hotfolder.WATCHER_LOCK_NAME):
                logger.info("watching", "watching %s", input_dir)
                if options.on_watching is not None:
                    options.on_watching()
                poll_until_stopped(input_dir, output_dir, stop, options, start_run, wake, logger)
            return
        except OutputBusy:
            logger.warning("busy", "%s 已由另一个 perfreport 进程监视，本进程不再重复处理", input_dir)
            return
        except OSError as exc:  # the output folder itself: no lock, so no health file either
            failures += 1
            logger.error("lock", "无法在输出文件夹 %s 中开始监视（%s），稍后重试", output_dir, os_error_reason(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not end automatic processing for good
            failures += 1
            logger.error("crash", "监视 %s 时出错（%s: %s），稍后重试", input_dir, type(exc).__name__, exc)
            logging.getLogger("perfreport.hotfolder").debug("watcher error", exc_info=True)
        wake.wait(retry_seconds(poll_seconds, failures))
        wake.clear()


class OnceLogger:
    """A logger that writes a message only when it differs from the last one of its topic.

    The watcher meets the same condition on every poll for as long as it lasts (a missing folder,
    an unreadable state file): once in the log, and again only when it changes or ends.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.last: dict[str, str] = {}

    def log(self, level: int, topic: str, message: str, *args: object) -> None:
        """Log `message % args` at `level` unless it is what `topic` said last."""
        text = message % args if args else message
        if self.last.get(topic) != text:
            self.last[topic] = text
            self.logger.log(level, text)

    def info(self, topic: str, message: str, *args: object) -> None:
        self.log(logging.INFO, topic, message, *args)

    def warning(self, topic: str, message: str, *args: object) -> None:
        self.log(logging.WARNING, topic, message, *args)

    def error(self, topic: str, message: str, *args: object) -> None:
        self.log(logging.ERROR, topic, message, *args)

    def forget(self, topic: str) -> None:
        """The condition of `topic` ended: log it again should it come back."""
        self.last.pop(topic, None)


def retry_seconds(poll_seconds: float, failures: int) -> float:
    """How long to wait after `failures` failures in a row: the poll interval, doubling, capped."""
    return min(RETRY_MAX_SECONDS, poll_seconds * 2 ** min(failures - 1, 10))


def poll_until_stopped(input_dir: Path, output_dir: Path, stop: threading.Event, options: WatchOptions,
                       start_run: RunStarter, wake: threading.Event, logger: OnceLogger) -> None:
    """The watcher's loop, run while holding the watcher lock; runs go to a pool of
    `options.max_runs` threads, and this loop waits for them before it returns."""
    state_file = hotfolder.state_path(output_dir)
    previous: hotfolder.Observations = {}
    failures = 0
    settled = options.settled or SettledNames()
    hotfolder.save_health(output_dir, None)  # what a watcher killed earlier may have left
    running: dict[str, Future[None]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, options.max_runs), thread_name_prefix="perfreport-run")
    try:
        while not stop.is_set():
            known = settled.snapshot()
            try:
                polled = hotfolder.poll(input_dir, previous, time.monotonic(), options.settle_seconds, known)
            except OSError as exc:  # the folder is missing, unmounted, or no handle is left to list it
                failures += 1
                problem = f"无法读取输入文件夹 {input_dir}（{os_error_reason(exc)}），恢复后将自动继续"
                logger.error("poll", "%s", problem)
                hotfolder.save_health(output_dir, problem)
                wake.wait(retry_seconds(options.poll_seconds, failures))
                wake.clear()
                continue
            if failures:
                failures = 0
                logger.forget("poll")
                logger.info("poll", "输入文件夹 %s 已恢复，继续自动处理", input_dir)
                hotfolder.save_health(output_dir, None)
            previous = polled.observations
            running = {name: future for name, future in running.items() if not future.done()}
            for path in polled.ready:
                if stop.is_set():
                    return
                if path.name in running:  # its run is under way; the next poll after it tells
                    continue
                sha256 = polled.observations[path.name].sha256 or ""
                running[path.name] = pool.submit(run_logged, path, sha256, input_dir, output_dir, state_file,
                                                 start_run, logger, stop)
            settled.discard(known)  # one look without settling; after it, the usual rules
            wake.wait(options.poll_seconds)
            wake.clear()
    finally:
        # Runs under way finish and are recorded; those still queued are not started.
        pool.shutdown(wait=True, cancel_futures=True)


def run_logged(path: Path, sha256: str, input_dir: Path, output_dir: Path, state_file: Path,
               start_run: RunStarter, logger: OnceLogger, stop: threading.Event) -> None:
    """`run_if_needed` in a run thread, unless the watcher is stopping, with what can go wrong
    logged: nothing is recorded then, the file stays hashed and the next poll tries again."""
    if stop.is_set():
        return
    try:
        run_if_needed(path, sha256, input_dir, output_dir, state_file, start_run, logger)
    except OSError as exc:  # the output folder (state, archive) failed: the next poll tries again
        logger.error(f"file:{path.name}", "%s：无法处理（%s），稍后重试", path.name, os_error_reason(exc))
    except Exception as exc:  # noqa: BLE001 - another run writing its outputs, the Prefect API
        # away, no worker able to start (warm.RunNotStarted): tried again at the next poll.
        logger.warning(f"file:{path.name}", "%s: run not started (%s); trying again", path.name, exc)


# Runs of different workbooks end at any time; each records its outcome into the one state file.
STATE_LOCK = threading.Lock()


def run_if_needed(path: Path, sha256: str, input_dir: Path, output_dir: Path, state_file: Path,
                  start_run: RunStarter, logger: OnceLogger) -> None:
    """Run one ready workbook unless its content was processed already, and record how it ended.

    A workbook that cannot run for a reason that would repeat (a reserved name, a zip bomb) is
    recorded as refused with that reason, once: the same content is not tried again, and the web
    page shows why. The same content uploaded again with another scoring profile, or with the PDF
    copies asked for or no longer asked for, runs again.
    """
    try:
        state = hotfolder.load_state(state_file)
    except hotfolder.StateUnreadable as exc:
        # Treating it as empty would run (and archive) every workbook again: stop instead,
        # loudly, until an administrator looks at the file.
        logger.error("state", "%s 无法读取（%s），暂停自动处理", state_file, exc)
        return
    logger.forget("state")
    chosen = profilechoice.uploaded_choice(output_dir, path.name, sha256)
    pdf = profilechoice.uploaded_pdf(output_dir, path.name, sha256)
    if not hotfolder.needs_run(path, state, sha256, chosen, pdf):
        return
    refused = folders.output_folder_refusal(output_dir, path)
    outcome: str  # a Status, or a Prefect state type for a deployment run (see RunStarter)
    if refused is not None:
        outcome, message = Status.REFUSED, refused
    else:
        hotfolder.archive_previous_outputs(output_dir, path)
        outcome, message = refusal(path) or start_run(path, input_dir, output_dir, chosen or None, pdf=bool(pdf))
    logger.forget(f"file:{path.name}")
    with STATE_LOCK:  # read again: runs of other workbooks may have recorded theirs meanwhile
        latest = hotfolder.load_state(state_file)
        hotfolder.save_state(state_file, hotfolder.with_run(latest, path.name, sha256, outcome, datetime.now(),
                                                            message, chosen or "", bool(pdf)))

"""`perfreport serve`: the annual run as a served Prefect deployment, beside the hot-folder watcher.

One long-running process. `prefect.serve` registers the deployment `perfreport-folder/annual`
(flow `flow.report_folder`) with a cron schedule and runs what the schedule, the Prefect UI or
the API start. Beside it the watcher (`watcher.watch_folder`) hands each workbook dropped into the
input folder to a warm worker process (`warm.WarmRunner`), where it runs as a flow run of the flow
`perfreport` on the same server: in the Prefect UI with its tasks and artifacts, in about a second
instead of the half minute a fresh flow-run process takes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pipeline.config import DEFAULT_MAX_RUNS, DEFAULT_SETTLE_SECONDS
from pipeline.serve.warm import WarmRunner
from pipeline.serve.watcher import POLL_SECONDS, WatchOptions, watch_folder

DEPLOYMENT = "annual"
ANNUAL_CRON = "0 8 15 1 *"  # 15 January, 08:00
TIMEZONE = "Asia/Shanghai"


def folder_parameters(input_dir: Path, output_dir: Path, profile: str | None = None,
                      pdf: bool = False) -> dict[str, str | bool]:
    """The served flow's folder parameters, as absolute paths (runs start in other processes), the
    scoring profile's name or file when one was chosen, and `pdf` when PDF copies were asked for
    (a run the watcher starts leaves out what was not chosen and gets the deployment's)."""
    folders: dict[str, str | bool] = {"input_dir": str(input_dir.resolve()), "output_dir": str(output_dir.resolve())}
    return {**folders, **({"profile": profile} if profile else {}), **({"pdf": True} if pdf else {})}


def folder_deployment(input_dir: Path, output_dir: Path, cron: str = ANNUAL_CRON, timezone: str = TIMEZONE,  # noqa: ANN201 - prefect's RunnerDeployment
                      profile: str | None = None, pdf: bool = False):
    """The deployment of `flow.report_folder` on the input folder, on the annual schedule."""
    from prefect.schedules import Cron

    from pipeline.run.flow import report_folder

    return report_folder.to_deployment(
        name=DEPLOYMENT, schedules=[Cron(cron, timezone=timezone)],
        parameters=folder_parameters(input_dir, output_dir, profile, pdf),
        description="每年按计划处理 input/ 中的全部工作簿；放入 input/ 的新工作簿由 perfreport serve 随即处理。",
    )


def serve(input_dir: Path, output_dir: Path, cron: str = ANNUAL_CRON, timezone: str = TIMEZONE,
          poll_seconds: float = POLL_SECONDS, profile: str | None = None, pdf: bool = False,
          max_runs: int = DEFAULT_MAX_RUNS, settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> None:
    """Serve the deployment and watch the input folder until interrupted.

    At most `max_runs` flow runs at once: the served deployment's (`limit`, what the schedule and
    the UI start) and, apart from them, the hot folder's (its warm workers).
    """
    from prefect import serve as prefect_serve

    output_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    runner = WarmRunner(max_runs, profile=profile, pdf=pdf)
    options = WatchOptions(settle_seconds=settle_seconds, max_runs=max_runs, on_watching=runner.start)
    watcher = threading.Thread(target=watch_folder, args=(input_dir, output_dir, stop, poll_seconds),
                               kwargs={"start_run": runner, "options": options},
                               name="perfreport-hotfolder", daemon=True)
    watcher.start()
    try:
        prefect_serve(folder_deployment(input_dir, output_dir, cron, timezone, profile, pdf), limit=max_runs)
    finally:
        stop.set()
        watcher.join(timeout=60)
        runner.close()

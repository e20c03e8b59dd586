"""`perfreport serve`: the annual run as a served Prefect deployment, beside the hot-folder watcher.

One long-running process. `prefect.serve` registers the deployment `perfreport-folder/annual`
(flow `flow.report_folder`) with a cron schedule and runs what the schedule, the Prefect UI or
the API start. Beside it the watcher (`watcher.watch_folder`) starts a run of the same deployment
for each workbook dropped into the input folder, so every run shows in the Prefect UI.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pipeline.serve.watcher import POLL_SECONDS, watch_folder

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

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


def run_for_file(workbook: Path, input_dir: Path, output_dir: Path, profile: str | None = None, *,
                 pdf: bool = False) -> tuple[str, str]:
    """Run the served deployment on one workbook and wait for it; its final state's type. `profile`:
    the one an upload on the web page chose; None leaves the deployment's (`serve --profile`).
    `pdf`: the upload asked for PDF copies; False leaves the deployment's (`serve --pdf`)."""
    from prefect.deployments import run_deployment

    from pipeline.run.flow import report_folder

    # The watcher's thread is a sync context: prefect's dual sync/async function returns the run,
    # not a coroutine.
    flow_run = cast("FlowRun", run_deployment(
        f"{report_folder.name}/{DEPLOYMENT}", timeout=None, as_subflow=False, poll_interval=1,
        parameters={**folder_parameters(input_dir, output_dir, profile, pdf), "workbook": str(workbook.resolve())},
    ))
    return (flow_run.state.type.value if flow_run.state is not None else "UNKNOWN"), ""


def serve(input_dir: Path, output_dir: Path, cron: str = ANNUAL_CRON, timezone: str = TIMEZONE,
          poll_seconds: float = POLL_SECONDS, profile: str | None = None, pdf: bool = False) -> None:
    """Serve the deployment and watch the input folder until interrupted."""
    from prefect import serve as prefect_serve

    output_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    watcher = threading.Thread(target=watch_folder, args=(input_dir, output_dir, stop, poll_seconds),
                               kwargs={"start_run": run_for_file},
                               name="perfreport-hotfolder", daemon=True)
    watcher.start()
    try:
        prefect_serve(folder_deployment(input_dir, output_dir, cron, timezone, profile, pdf))
    finally:
        stop.set()

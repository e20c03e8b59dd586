"""Run settings: one frozen object built by the CLI and passed down; nothing happens at import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.profile import DEFAULT_PROFILE, ScoringProfile

# Prefect settings this product needs on every run, applied before prefect is imported. The
# ephemeral API server starts in 21-43 s on a 2-core machine (beyond prefect's default timeout),
# and there is no network for its telemetry.
PREFECT_DEFAULTS: Mapping[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_CLI_PROMPT": "false",
    # Flow and task logs go to the Prefect API (and UI); the console is the CLI's, in Chinese.
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    # The embedded server's own noise ("database is locked", tracebacks on exit) stays off it too.
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_INTERNAL_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_TASKS_REFRESH_CACHE": "false",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def apply_prefect_defaults(environ: dict[str, str] | None = None) -> None:
    """Set the product's Prefect defaults in the environment unless the user set them already."""
    target = os.environ if environ is None else environ
    for key, value in PREFECT_DEFAULTS.items():
        target.setdefault(key, value)


# Projects per render task when not set: enough tasks to keep every worker busy and show
# progress, few enough that Prefect's bookkeeping (each task run costs its API server 15-30 ms
# and more under load) stays small, and a chunk file small enough for a worker's memory.
MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, TASKS_PER_WORKER = 50, 2000, 4


def chunk_size_for(projects: int, workers: int, chosen: int | None = None) -> int:
    """Projects per render task: `chosen` if given, else about TASKS_PER_WORKER tasks per worker."""
    if chosen:
        return chosen
    per_task = -(-projects // max(1, workers * TASKS_PER_WORKER))
    return max(MIN_CHUNK_SIZE, min(MAX_CHUNK_SIZE, per_task))


@dataclass(frozen=True, slots=True)
class Settings:
    """Where things are, how a run is cut into tasks, and how its projects are scored."""

    output_dir: Path = Path("output")
    templates_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "templates")
    default_template: str = "report.docx"
    chunk_size: int | None = None  # None: chosen from the number of projects and workers
    # Render processes on this machine (None: one per core), or a Dask scheduler to use instead.
    workers: int | None = None
    dask_address: str | None = None
    header_search_rows: int = 10
    # The evaluation scheme every step scores and validates by (weights, bands, grades).
    profile: ScoringProfile = DEFAULT_PROFILE


# The address of `perfreport web` as officers reach it (e.g. http://10.0.0.5:8000), so the Prefect
# UI can link each run's outputs to its page there. Unset: the UI shows the file paths only.
WEB_URL_ENV = "PERFREPORT_WEB_URL"


def web_url() -> str | None:
    """The configured address of `perfreport web`, or None."""
    return os.environ.get(WEB_URL_ENV) or None

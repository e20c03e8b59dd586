"""What the web page shows: every workbook's latest run, read from the input and output folders.

The folders are the record. Whoever started a run (the web page, `perfreport serve`'s hot folder
or schedule, an officer at the command line), its outputs land in output/<workbook>/ with a
manifest, its lock's holder record says while it is under way, and the hot folder's state file
says how the runs it started ended. So the page needs no database of its own and shows every run
alike.

Nothing here writes anything.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from python_calamine import CalamineError, CalamineWorkbook

from pipeline import inputs
from pipeline.errors import Counts, Status
from pipeline.serve import hotfolder, profilechoice
from pipeline.write import folders
from pipeline.write.files import sha256_of
from pipeline.write.locks import LOCK_SUFFIX, is_held, is_running, lock_path, locked_folder
from pipeline.write.names import MANIFEST_NAME, PROBLEMS_NAME, SUMMARY_NAME, workbook_output_dir

# The three states the office sees. A workbook waiting for its turn counts as 处理中: it will be
# processed without anyone doing anything.
RUNNING, SUCCEEDED, FAILED = "处理中", "成功", "有错误"
SHOWN_PROBLEM_ROWS = 1000
SHOWN_SUMMARY_ROWS = 500
CHARTED_PROJECTS = 50
# Outcomes of runs that published a folder: without it now, someone moved it, not a refusal.
WROTE_OUTPUTS = (Status.SUCCESS, Status.INVALID)
WAITING = "等待开始"
UNWATCHED = "等待开始；目前没有 perfreport serve 或 perfreport web 在处理输入文件夹，请联系管理员"
# The hot folder waits for a file that is not a whole zip yet: it may still be being copied.
INCOMPLETE = ("等待复制完成：文件还不是完整的 Excel 工作簿（.xlsx）。如果复制早已完成，"
              "请用 Excel 打开后另存为“Excel 工作簿(*.xlsx)”再放入")
# Columns of 汇总表 shown with two decimals: amounts in 万元 and scores; its rate, stored as a
# fraction shown 0.00%; the rows a table may have above its header (title, unit).
TWO_DECIMAL_COLUMNS = ("万元", "得分", "预算数", "执行数")
RATE_COLUMNS = frozenset({"预算执行率"})
LEAD_ROWS = 5
# The last row of 汇总表: its totals, not a project.
TOTAL_LABEL = "合计"


@dataclass(frozen=True, slots=True)
class RunView:
    """One workbook's latest run as the page lists it."""

    name: str  # the output folder's name, which is also the run's address on the page
    workbook: str  # the input file's name
    status: str  # RUNNING, SUCCEEDED or FAILED
    detail: str  # e.g. 等待开始, or why a file was refused
    time: datetime | None
    counts: Counts = Counts()
    files: frozenset[str] = frozenset()  # the outputs the manifest lists, relative to the folder
    downloads: tuple[str, ...] = ()  # those at the top of the folder: the zip, 汇总表, 校验报告
    input_sha256: str = ""  # the content the run read
    profile: str = ""  # the scoring profile's display name: the one the run used, or the one an upload chose


@dataclass(frozen=True, slots=True)
class Table:
    """The first rows of one of our output workbooks, and how many it holds in all."""

    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    total: int


@dataclass(frozen=True, slots=True)
class Bar:
    """One project in the chart: its total score (0-100) and budget execution rate (%)."""

    label: str
    score: float
    rate: float | None
    rate_text: str


StatKey = tuple[int, int, int, int]


def stat_key(path: Path) -> StatKey:
    """What changes when a file is rewritten or replaced: size, times and inode."""
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


@dataclass
class FolderCache:
    """What the page would otherwise read again on every refresh (every 3 s while a run is under
    way), kept while the file it came from is unchanged.

    - the content hash of each input workbook: a province's workbook is tens of megabytes;
    - the view of each published run: its manifest lists every report, 15 MB of JSON for
      100,000 projects.
    One entry per path, replaced when the file changes, so it does not grow with time.
    """

    hashes: dict[Path, tuple[StatKey, str]] = field(default_factory=dict)
    finished: dict[Path, tuple[StatKey, RunView | None]] = field(default_factory=dict)
    tables: dict[tuple[Path, int], tuple[StatKey, Table]] = field(default_factory=dict)

    def sha256(self, path: Path) -> str | None:
        """The file's hex sha256, or None when it cannot be read just now."""
        try:
            key = stat_key(path)
            cached = self.hashes.get(path)
            if cached is None or cached[0] != key:
                cached = self.hashes[path] = (key, sha256_of(path))
            return cached[1]
        except OSError:
            return None

    def finished_run(self, folder: Path) -> RunView | None:
        """The view of the run published in `folder`, or None when it has no readable manifest."""
        try:
            key = stat_key(folder / MANIFEST_NAME)
        except OSError:
            return None
        cached = self.finished.get(folder)
        if cached is None or cached[0] != key:
            manifest = read_manifest(folder)
            cached = self.finished[folder] = (key, finished_view(folder, manifest) if manifest else None)
        return cached[1]

    def table(self, path: Path, limit: int, closing: str = "") -> Table | None:
        """The first `limit` rows of an output workbook (read_table), or None when there is none."""
        try:
            key = stat_key(path)
        except OSError:
            return None
        cached = self.tables.get((path, limit))
        if cached is None or cached[0] != key:
            try:
                cached = self.tables[(path, limit)] = (key, read_table(path, limit, closing))
            except (CalamineError, OSError, ValueError):
                return None  # damaged since it was written: the page still offers its download
        return cached[1]


def read_manifest(folder: Path) -> dict[str, object] | None:
    """A workbook's manifest.json, or None when the folder has none (or not a readable one)."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def modified_at(path: Path) -> datetime | None:
    """The local time a file was last written, or None when it is gone."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime)
    except OSError:
        return None


def finished_view(folder: Path, manifest: Mapping[str, object]) -> RunView:
    """The view of a run that published its folder."""
    given_input, given_outputs = manifest.get("input"), manifest.get("outputs")
    source = given_input if isinstance(given_input, dict) else {}
    listed = given_outputs if isinstance(given_outputs, list) else []
    files = frozenset(str(entry["path"]) for entry in listed if isinstance(entry, dict) and "path" in entry)
    succeeded = manifest.get("status") == Status.SUCCESS
    detail = "" if succeeded else ("工作簿有错误，未生成报告" if files else "无法生成报告")
    return RunView(
        name=folder.name, workbook=str(source.get("file", folder.name + ".xlsx")),
        status=SUCCEEDED if succeeded else FAILED, detail=detail,
        time=modified_at(folder / MANIFEST_NAME),
        counts=Counts.from_manifest(manifest.get("counts")), files=files,
        downloads=tuple(sorted(name for name in files if "/" not in name)),
        input_sha256=str(source.get("sha256", "")), profile=str(manifest.get("profile") or ""),
    )


def input_workbooks(input_dir: Path) -> list[Path]:
    """The workbooks in the input folder, by the hot folder's rules."""
    if not input_dir.is_dir():
        return []
    return [Path(entry.path) for entry in inputs.workbook_entries(input_dir)]


def output_folders(output_dir: Path) -> list[Path]:
    """The workbook folders of output/: not hidden, not the archive."""
    if not output_dir.is_dir():
        return []
    return sorted(p for p in output_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name != folders.ARCHIVE_DIR)


def pending_view(workbook: Path, name: str, processed: hotfolder.Processed | None,
                 sha256: str | None, published: RunView | None, chosen: str | None = None,
                 pdf: bool = False) -> RunView | None:
    """The view of a workbook in input/ whose current content no run has read yet, else None.

    Its content hash is compared with both what the hot folder last ran and what the published
    manifest read, so a workbook an officer ran by hand does not show as waiting. Content an
    upload chose a scoring profile for (`chosen`, see profilechoice.uploaded_choice) waits until
    the hot folder has run it with that profile (and with the PDF copies it asked for, `pdf`): the
    same bytes uploaded again with another one run again.
    """
    if sha256 is None:
        return None
    if chosen is None:
        done = {h for h in (processed.sha256 if processed else None,
                            published.input_sha256 if published else None) if h}
        if sha256 in done:
            return None
    elif processed is not None and (processed.sha256, processed.profile, processed.pdf) == (sha256, chosen, pdf):
        return None
    detail = WAITING if hotfolder.is_complete_zip(workbook) else INCOMPLETE
    shown = profilechoice.shown_name(chosen, profilechoice.shipped_options()) if chosen is not None else ""
    return RunView(name, workbook.name, RUNNING, detail, modified_at(workbook), profile=shown)


def is_watched(output_dir: Path) -> bool:
    """Whether a `serve` or `web` process watches the input folder of `output_dir` now."""
    return is_held(output_dir / hotfolder.WATCHER_LOCK_NAME)


def watcher_problem(output_dir: Path) -> str | None:
    """Why the hot-folder watcher of `output_dir` cannot process workbooks now, or None.

    Only a live watcher's record counts (its lock is held): a watcher that was killed leaves its
    last record behind, and the next one clears it as it starts.
    """
    if not is_watched(output_dir):
        return None
    return hotfolder.load_health(output_dir)


def refused_view(workbook: Path, name: str, processed: hotfolder.Processed) -> RunView:
    """The view of a run that ended without publishing outputs (a file that could not be read)."""
    when = None
    with contextlib.suppress(ValueError):
        when = datetime.fromisoformat(processed.processed_at)
    reason = processed.message or "文件无法读取，未生成任何输出（详见运行日志）"
    return RunView(name, workbook.name, FAILED, reason, when)


def list_runs(input_dir: Path, output_dir: Path, cache: FolderCache) -> list[RunView]:
    """Every workbook's latest run, newest first: running, waiting, and finished ones."""
    try:
        state = hotfolder.load_state(hotfolder.state_path(output_dir))
    except hotfolder.StateUnreadable:
        state = hotfolder.HotfolderState()
    views: dict[str, RunView] = {}
    for folder in output_folders(output_dir):
        finished = cache.finished_run(folder)
        if finished is not None:
            views[folder.name] = finished
    for workbook in input_workbooks(input_dir):
        name = workbook_output_dir(output_dir, workbook).name
        processed = state.processed.get(workbook.name)
        published = views.get(name)
        sha256 = cache.sha256(workbook)
        chosen = profilechoice.uploaded_choice(output_dir, workbook.name, sha256)
        pdf = bool(profilechoice.uploaded_pdf(output_dir, workbook.name, sha256))
        waiting = pending_view(workbook, name, processed, sha256, published, chosen, pdf)
        if waiting is not None:
            views[name] = waiting
        elif published is None and processed is not None and processed.outcome not in WROTE_OUTPUTS:
            views[name] = refused_view(workbook, name, processed)
    if not is_watched(output_dir):
        views = {name: replace(view, detail=UNWATCHED) if view.detail == WAITING else view
                 for name, view in views.items()}
    for name in running_names(output_dir):
        earlier = views.get(name)
        views[name] = RunView(name, earlier.workbook if earlier else name + ".xlsx", RUNNING, "正在生成",
                              modified_at(lock_path(output_dir / name)),
                              # An upload's choice while its run is under way; not the last run's.
                              profile=earlier.profile if earlier and earlier.status == RUNNING else "")
    return sorted(views.values(), key=lambda v: (v.status != RUNNING, -v.time.timestamp() if v.time else 0.0,
                                                 v.name))


def running_names(output_dir: Path) -> list[str]:
    """The workbook folders whose run is under way now (its lock is held by a live process)."""
    if not output_dir.is_dir():
        return []
    folders = (locked_folder(lock) for lock in output_dir.glob(f".*{LOCK_SUFFIX}")
               if lock.name != hotfolder.WATCHER_LOCK_NAME)
    return sorted(f.name for f in folders if f is not None and is_running(f))


def find_run(runs: Sequence[RunView], name: str) -> RunView | None:
    """The run listed under `name`, or None."""
    return next((run for run in runs if run.name == name), None)


def header_index(rows: Sequence[Sequence[object]]) -> int:
    """Where the header row is: the first row with no empty cell (汇总表 has a title and
    "单位：万元" above it, each one merged cell; older tables start with it)."""
    for number, row in enumerate(rows[:LEAD_ROWS + 1]):
        if row and all(str(cell).strip() for cell in row):
            return number
    return 0


def read_table(path: Path, limit: int, closing: str = "") -> Table:
    """The first `limit` data rows of a workbook we wrote (汇总表 or 校验报告), header first.

    The rows above the header (a title) are skipped; a last row whose first cell is `closing`
    (汇总表's 合计) is no data row. calamine, not openpyxl: a province's 汇总表 has 100,000 rows,
    and only the first few hundred are shown; calamine reads just those.
    """
    workbook = CalamineWorkbook.from_path(str(path))
    sheet = workbook.get_sheet_by_index(0)
    rows = sheet.to_python(nrows=limit + LEAD_ROWS + 2)
    if not rows:
        return Table((), (), 0)
    top = header_index(rows)
    header = tuple(str(cell) for cell in rows[top])
    last = sheet.height - 1  # the used range, title and header included
    if len(rows) > last:  # the whole sheet was read: its last row shows whether it closes with 合计
        closed = bool(closing) and last > top and str(rows[last][0]) == closing
    else:  # a long table: only a titled one (汇总表) closes with 合计
        closed = bool(closing) and top > 0
    total = max(0, last - top - int(closed))
    body = tuple(tuple(shown_cell(column, cell) for column, cell in zip(header, row, strict=False))
                 for row in rows[top + 1: top + 1 + min(limit, total)])
    return Table(header, body, max(total, len(body)))


def shown_cell(column: str, value: object) -> object:
    """A cell as the page prints it: money and scores with two decimals as in the reports
    ("5.00", "97.61"), a rate stored as a fraction as a percentage ("85.62%"), counts and row
    numbers as whole numbers (calamine reads every number as a float)."""
    if not isinstance(value, float):
        return value
    if column in RATE_COLUMNS:
        return f"{value * 100:.2f}%"
    if any(mark in column for mark in TWO_DECIMAL_COLUMNS):
        return f"{value:.2f}"
    return int(value) if value.is_integer() else value


def shown_table(output_dir: Path, run: RunView, relative: str, cache: FolderCache, limit: int,
                closing: str = "") -> Table | None:
    """The first rows of one of `run`'s output workbooks, read only as a download would be
    (`output_file`: listed, inside the folder, no link), or None; `closing` as in `read_table`."""
    path = output_file(output_dir, run, relative)
    return cache.table(path, limit, closing) if path is not None else None


def problems_table(output_dir: Path, run: RunView, cache: FolderCache,
                   limit: int = SHOWN_PROBLEM_ROWS) -> Table | None:
    """The run's 校验报告 (root causes first, then in workbook order, as written), or None when it has none."""
    return shown_table(output_dir, run, PROBLEMS_NAME, cache, limit)


def summary_table(output_dir: Path, run: RunView, cache: FolderCache,
                  limit: int = SHOWN_SUMMARY_ROWS) -> Table | None:
    """The run's 汇总表, or None when it has none."""
    return shown_table(output_dir, run, SUMMARY_NAME, cache, limit, TOTAL_LABEL)


def percent_value(text: object) -> float | None:
    """"96.72%" as 96.72; None for an empty or unreadable rate (no budget)."""
    try:
        return float(Decimal(str(text).strip().rstrip("%")))
    except (InvalidOperation, ValueError):
        return None


def chart_bars(summary: Table, limit: int = CHARTED_PROJECTS) -> list[Bar]:
    """The first `limit` projects of the summary as chart bars."""
    column = {name: i for i, name in enumerate(summary.columns)}
    needed = ("项目名称", "总得分", "预算执行率")
    if not all(name in column for name in needed):
        return []
    bars = []
    for row in summary.rows[:limit]:
        try:
            score = float(str(row[column["总得分"]]))
        except ValueError:
            continue
        rate_text = str(row[column["预算执行率"]] or "")
        bars.append(Bar(str(row[column["项目名称"]]), score, percent_value(rate_text), rate_text))
    return bars


def output_file(output_dir: Path, run: RunView, relative: str) -> Path | None:
    """The file `relative` of `run`'s folder when the manifest lists it and it lies, with no
    link on the way, inside that folder; otherwise None.

    Only names the manifest lists can be asked for, so `..`, absolute paths, encoded slashes and
    hidden files are refused by construction; the resolved path is checked as well, so a link
    planted in the folder cannot lead out of it either.
    """
    if relative not in run.files:
        return None
    folder = output_dir / run.name
    candidate = folder / relative
    for part in [candidate, *candidate.parents]:
        if part == output_dir:
            break
        if part.is_symlink():
            return None
    try:
        real = candidate.resolve(strict=True)
        root = folder.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_relative_to(root) and real.is_file() else None

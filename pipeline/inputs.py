"""Which files are workbooks: one rule for `perfreport run <folder>`, the hot folder of `serve`,
the uploads of `web` and the annual flow alike.

Decided by name and file type only, before anything is opened: a file that passes may still be
refused later by its content (`pipeline.xlsx.refusal`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

WORKBOOK_SUFFIX = ".xlsx"
# Excel's owner file of an open workbook ("~$预算.xlsx") ends in .xlsx but only names the user
# who has the workbook open.
OFFICE_LOCK_PREFIX = "~$"
# What browsers, copy tools and editors call a file they are still writing. None of them ends in
# .xlsx, so today the suffix rule already excludes them; checked anyway so that accepting more
# suffixes later (.xlsm) cannot let a half-written file in.
TEMPORARY_SUFFIXES = (".tmp", ".part", ".crdownload", "~")


def is_workbook_name(name: str) -> bool:
    """Whether a file name can be a finished workbook the office dropped: `*.xlsx` in any case,
    not an Office lock file, not hidden, not a download or copy still under way."""
    lowered = name.lower()
    return (lowered.endswith(WORKBOOK_SUFFIX)
            and not name.startswith((OFFICE_LOCK_PREFIX, "."))
            and not lowered.endswith(TEMPORARY_SUFFIXES))


def is_file_in_folder(entry: os.DirEntry[str]) -> bool:
    """Whether `entry` is a regular file of its folder itself. A symlink never counts: one that
    leads elsewhere would feed the service a file from outside, and one to a workbook beside it
    would run that workbook a second time under another name."""
    return entry.is_file(follow_symlinks=False)


def workbook_entries(folder: Path) -> Iterator[os.DirEntry[str]]:
    """The entries of `folder` (not its subfolders) that count as workbooks, by name.

    The one rule of which files are workbooks, for `perfreport run <folder>`, the hot folder,
    the web page and the annual flow alike.
    """
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if is_workbook_name(entry.name) and is_file_in_folder(entry):
                yield entry


def workbooks_named(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The workbooks named by the arguments, and what is missing. A folder means its workbooks
    by the hot folder's rule (`inputs.workbook_entries`), so `run input/`, `serve`, `web` and
    the annual flow agree on which files those are; a file named explicitly is taken as it is."""
    found: list[Path] = []
    missing: list[str] = []
    for path in paths:
        if path.is_dir():
            files = [Path(entry.path) for entry in workbook_entries(path)]
            if not files:
                missing.append(f"文件夹 {path} 中没有 .xlsx 工作簿")
            found.extend(files)
        elif path.exists():
            found.append(path)
        else:
            missing.append(f"找不到文件或文件夹：{path}")
    return found, missing

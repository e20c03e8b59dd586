"""Problem records and the exception family that crosses module boundaries.

Library code never prints: it returns `Problem` records or raises one of these exceptions, and
only `cli.py` turns them into Chinese text and an exit code.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """How a workbook's run ended: in the manifest, the hot-folder state, the web page, and the
    CLI's exit code (`EXIT_CODES`)."""

    SUCCESS = "success"  # reports written (warnings allowed)
    INVALID = "invalid"  # the workbook breaks the contract: only 校验报告.xlsx
    REFUSED = "refused"  # not a readable workbook, a reserved name, or an unusable template
    FAILED = "failed"  # a `perfreport run` child that ended with no outcome of its own (it crashed)


# The exit code of `perfreport run` for each outcome: printed by the CLI, read back by the web
# page's watcher from the child run it started (so the map sits here, below both, not in cli.py).
# FAILED has none: it is what any other exit code means.
EXIT_CODES: dict[Status, int] = {Status.SUCCESS: 0, Status.INVALID: 1, Status.REFUSED: 2}


@dataclass(frozen=True, slots=True)
class Counts:
    """What a run counted: in its summary (CLI, Prefect artifact), its manifest and the web page."""

    projects: int = 0
    reports: int = 0
    errors: int = 0
    warnings: int = 0

    def as_dict(self) -> dict[str, int]:
        """The manifest's "counts", in this order."""
        return {"projects": self.projects, "reports": self.reports, "errors": self.errors,
                "warnings": self.warnings}

    @classmethod
    def from_manifest(cls, counts: object) -> Counts:
        """The counts a manifest states; zeros for what is missing or not a whole number (a
        manifest is read back from a folder others can write to)."""
        given = counts if isinstance(counts, dict) else {}

        def whole(key: str) -> int:
            value = given.get(key, 0)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        return cls(whole("projects"), whole("reports"), whole("errors"), whole("warnings"))


class Severity(StrEnum):
    """How bad a problem is: 错误 blocks every report, 警告 is reported alongside them."""

    ERROR = "错误"
    WARNING = "警告"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the workbook, located as the user sees it in Excel."""

    sheet: str
    excel_row: int | None
    column: str
    value: str
    severity: Severity
    message: str

    def as_row(self) -> dict[str, object]:
        """The record with the Chinese column names of 校验报告.xlsx."""
        return {
            "工作表": self.sheet,
            "行": self.excel_row if self.excel_row is not None else "",
            "列": self.column,
            "值": self.value,
            "级别": str(self.severity),
            "说明": self.message,
        }


PROBLEM_COLUMNS: tuple[str, ...] = ("工作表", "行", "列", "值", "级别", "说明")


def has_errors(problems: list[Problem] | tuple[Problem, ...]) -> bool:
    """True when any problem is an 错误 (which means no report may be written)."""
    return any(p.severity is Severity.ERROR for p in problems)


class PerfreportError(Exception):
    """Base of the errors the CLI turns into a Chinese message and an exit code."""


class WorkbookRefused(PerfreportError):
    """The file is not a workbook we can read at all (exit code 2)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}：{reason}")
        self.path = path
        self.reason = reason


class ValidationFailed(PerfreportError):
    """The workbook was read but breaks the contract; carries every problem found (exit code 1)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} 个问题")
        self.problems = problems


class TemplateInvalid(PerfreportError):
    """A report template cannot be read or rendered safely (exit code 2)."""


# The file-system failures an office meets, in its words; others keep the system's own text.
OS_ERROR_REASONS = {
    errno.EEXIST: "同名的文件占用了文件夹的位置", errno.ENOTDIR: "路径中有一个文件而不是文件夹",
    errno.EACCES: "没有访问权限", errno.EPERM: "没有访问权限", errno.EROFS: "只读",
    errno.ENOSPC: "磁盘已满", errno.EDQUOT: "磁盘配额已满", errno.EFBIG: "文件超过了系统允许的大小",
    errno.ENOENT: "文件或文件夹不存在，或已被移走", errno.EMFILE: "打开的文件过多", errno.EIO: "读写出错",
}


def os_error_reason(exc: OSError) -> str:
    """Why a file operation failed, in Chinese where the office meets it, else the system's text."""
    return OS_ERROR_REASONS.get(exc.errno or 0, exc.strerror or str(exc))

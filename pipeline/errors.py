"""Problem records and the exception family that crosses module boundaries.

Library code never prints: it returns `Problem` records or raises one of these exceptions, and
only `cli.py` turns them into Chinese text and an exit code.
"""

from __future__ import annotations

import errno
import re
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


# Where a message's advice starts: the clause that asks ("请…"), or one that proposes ("是否应为").
ASKING = re.compile(r"请|是否应为")
CLAUSE_END = "，；：。,;:"
CONDITIONAL = ("如", "若", "如果")
# What 校验报告 says to change when nothing more precise is known.
ERROR_ADVICE = "按说明改正此格后重新运行"
WARNING_ADVICE = "核对此格；无误时可不改（报告已按说明中的值生成）"


def closing_advice(message: str) -> str:
    """The closing advice a message already gives ("请核对此格或分子、分母"), or "".

    It starts at the clause that asks; a conditional clause just before it ("如指标确为“≥”，请改写
    指标值") belongs to it.
    """
    match = ASKING.search(message)
    if match is None or match.start() == 0:
        return ""
    start = max(message.rfind(mark, 0, match.start()) for mark in CLAUSE_END) + 1
    if start <= 0:
        return ""
    before = max(message.rfind(mark, 0, start - 1) for mark in CLAUSE_END) + 1
    if message[before:start - 1].startswith(CONDITIONAL):
        start = before
    return message[start:].strip()


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the workbook, located as the user sees it in Excel.

    The first six fields are what every check states. The rest are filled where the check knows
    them (the contract's `problemsort.py` adds them to every problem it sees) and default to "",
    so a problem built with six fields stays valid: `cell` the Excel address (D21, or the form's
    F14), `project_id` and `item` the project and its 三级指标 or 项目名称, `fix` what to change,
    and `cause` the place of the problem this one follows from (as messages write a place:
    "项目 第3行「项目编号」"), so that 校验报告 can list the cause first and point back to it.
    """

    sheet: str
    excel_row: int | None
    column: str
    value: str
    severity: Severity
    message: str
    cell: str = ""
    project_id: str = ""
    item: str = ""
    fix: str = ""
    cause: str = ""

    @property
    def place(self) -> str:
        """Where the problem is, in the words a message (and another problem's `cause`) uses."""
        if self.excel_row is None:
            return f"{self.sheet}「{self.column}」"
        return f"{self.sheet} 第{self.excel_row}行「{self.column}」"

    @property
    def advice(self) -> str:
        """What to change (校验报告's 怎么改): `fix`, else the message's own closing advice, else a
        general one; never empty."""
        if self.fix:
            return self.fix
        return closing_advice(self.message) or (ERROR_ADVICE if self.severity is Severity.ERROR else WARNING_ADVICE)

    @property
    def explanation(self) -> str:
        """The message without its closing advice when that advice is `fix` (校验报告's 说明)."""
        advice = self.advice
        if self.message.endswith(advice) and len(self.message) > len(advice):
            return self.message[:-len(advice)].rstrip("，；：,; ")
        return self.message

    def as_row(self) -> dict[str, object]:
        """The record with the Chinese column names of 校验报告.xlsx (`PROBLEM_COLUMNS`)."""
        return {
            "工作表": self.sheet,
            "单元格": self.cell or (f"第{self.excel_row}行" if self.excel_row is not None else ""),
            "项目编号": self.project_id,
            "指标/项目名称": self.item,
            "值": self.value,
            "级别": str(self.severity),
            "说明": self.explanation,
            "怎么改": self.advice,
        }

    def as_list(self) -> list[object]:
        """Every field as JSON values, in field order (a run's data between its tasks)."""
        return [self.sheet, self.excel_row, self.column, self.value, str(self.severity), self.message,
                self.cell, self.project_id, self.item, self.fix, self.cause]

    @classmethod
    def from_list(cls, fields: object) -> Problem:
        """What `as_list` gave; raises TypeError or ValueError for anything else (six fields, as
        written before the optional ones existed, are accepted)."""
        if not isinstance(fields, list) or not 6 <= len(fields) <= 11:
            raise TypeError("a problem is a list of 6 to 11 fields")
        sheet, row, column, value, severity, message, *rest = fields
        if row is not None and (not isinstance(row, int) or isinstance(row, bool)):
            raise TypeError("row")
        return cls(str(sheet), row, str(column), str(value), Severity(severity), str(message),
                   *(str(extra) for extra in rest))


# 校验报告.xlsx's columns: where (sheet, cell), whose (project, indicator or project name), what.
PROBLEM_COLUMNS: tuple[str, ...] = ("工作表", "单元格", "项目编号", "指标/项目名称", "值", "级别", "说明", "怎么改")


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

"""Problems made ready for fixing: whose they are, what to change, and what follows from what.

The checks state a problem where they find it ("资金 第3行「项目编号」为 P-002，该项目编号在「项目」
表中不存在"). An officer fixing the workbook also needs the cell (D21), the project and its
indicator, what to change, and, above all, which problems are only consequences of another: a
duplicated or empty 项目编号 on 项目 makes every row of the other sheets that refers to the
project it replaced "不存在", and merges two projects' weights into one sum. This module adds
those fields (`Problem.cell`, `project_id`, `item`, `fix`, `cause`); 校验报告 sorts by them
(`pipeline.write.problembook`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import pandas as pd

from pipeline.contract.cells import shown
from pipeline.core.columns import column_name
from pipeline.core.headers import INDICATOR_SHEET, PROJECT_SHEET
from pipeline.core.indicators import ProjectResult
from pipeline.errors import ERROR_ADVICE, WARNING_ADVICE, Problem, Severity, closing_advice
from pipeline.xlsx.layout import RawSheet

ID = "项目编号"
NAME = "项目名称"
INDICATOR_NAME = "三级指标"
# The sheets whose rows name a project by its 项目编号, in workbook order.
PROJECT_SHEETS = ("项目", "资金", "使用原则", "绩效指标")
MISSING_ID = "该项目编号在「项目」表中不存在"
DUPLICATE = "与其他行重复，应唯一"
EMPTY = "不能为空"
NO_ROWS = re.compile(r"该项目在「(?P<sheet>[^」]+)」表中没有")
PROJECT_SUM = re.compile(r"：项目 (?P<id>.+?) 的(?:全年预算数|指标分值)合计为")
SEQ_DUPLICATE = "重复：同一项目的序号不能相同"



def letters_of(raw_sheets: Mapping[str, RawSheet]) -> dict[str, dict[str, str]]:
    """Each sheet's column letters by header, both as the contract names it and as typed."""
    letters: dict[str, dict[str, str]] = {}
    for name, raw in raw_sheets.items():
        found: dict[str, str] = {}
        for canonical, position in raw.positions.items():
            found[canonical] = column_name(position)
            found[raw.labels.get(canonical, canonical)] = column_name(position)
        letters[name] = found
    return letters


def cell_of(problem: Problem, letters: Mapping[str, Mapping[str, str]]) -> str:
    """The Excel address of the problem's cell ("D21"), or "" when it has no single cell."""
    if problem.cell or problem.excel_row is None:
        return problem.cell
    letter = letters.get(problem.sheet, {}).get(problem.column)
    return f"{letter}{problem.excel_row}" if letter else ""


# The advice for problems whose message does not say what to change, by what the message says.
# Each is a (pattern, advice) pair; "{v}" is the value, "{0}" the pattern's first group.
ADVICE: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), advice) for pattern, advice in (
    (MISSING_ID, "改为「项目」表中已有的项目编号；如是新项目，先在「项目」表中补上项目编号为 {v} 的一行"),
    (r"该项目在「资金」表中没有任何行", "在「资金」表中为项目 {v} 至少填写一行（每个资金来源一行），项目编号与此格一致"),
    (r"该项目在「绩效指标」表中没有指标", "在「绩效指标」表中填写项目 {v} 的指标，项目编号与此格一致"),
    (r"全年预算数合计为 0", "填写该项目各资金来源的全年预算数（合计应大于 0）"),
    (r"指标分值合计为 .+?应为 (\S+?)（", "调整该项目各指标的分值，使合计为 {0}"),
    (SEQ_DUPLICATE, "把序号改为该项目中不重复的数字（1、2、3……）"),
    (r"templates 文件夹中没有这个模板", "改为 templates 文件夹中已有的模板文件名，或留空使用默认模板"),
    (r"超过全年预算数", "核对全年执行数和全年预算数：执行数不能超过预算数"),
    (r"超过分值", "核对自评得分和分值：自评得分不能超过分值"),
    (r"与「分子」须同时填写或同时留空", "补填分子或分母，或把两格都清空"),
    (r"应为以下之一：(.+)$", "改为以下之一：{0}"),
    (r"，应为：(.+)$", "改为：{0}"),
    (r"应不小于 (\S+)", "改为不小于 {0} 的数"),
    (r"应大于 (\S+)", "改为大于 {0} 的数"),
    (r"应在 (\S+ 到 \S+) 之间", "改为 {0} 之间的数"),
    (r"长度应为 (\S+ 到 \S+) 个字符", "改写为 {0} 个字符"),
    (r"最多保留两位小数", "改为最多两位小数"),
    (r"与其他行重复，应唯一", "改为不与其他行重复的值"),
    (r"不能为空", "在此格填写内容"),
    (r"已忽略$", "如是要填写的列，把列名改为填报说明中的写法；否则可不理会"),
    (r"重复出现", "只保留其中一列"),
    (r"报告使用「", "把此格改为报告使用的等级，或核对得分"),
    (r"(?:报告使用计算值|采用计算得分|报告按 .+ 分计)", "把此格改为计算值，或核对据以计算的各格"),
))


def advice_for(problem: Problem) -> str:
    """What to change, in Chinese: the message's own advice, else the rule's, else a general one."""
    if problem.fix:
        return problem.fix
    own = closing_advice(problem.message)
    if own:
        return own
    for pattern, advice in ADVICE:
        found = pattern.search(problem.message)
        if found is not None:
            return advice.format(*found.groups(), v=problem.value)
    return ERROR_ADVICE if problem.severity is Severity.ERROR else WARNING_ADVICE


def column_values(frame: pd.DataFrame, column: str, rows: Iterable[int]) -> dict[int, str]:
    """The text of `column` at the Excel rows `rows` of a typed sheet ("" where empty or absent)."""
    wanted = sorted(set(rows))
    if column not in frame.columns or not wanted:
        return {}
    values = frame[column].reindex(wanted).tolist()
    return {row: shown(value) if isinstance(value, str | Decimal | int) else "" for row, value in zip(
        wanted, values, strict=True)}


def project_names(projects: pd.DataFrame | None) -> dict[str, str]:
    """Each 项目编号's 项目名称 (its first row's), from the typed 项目 sheet."""
    if projects is None or ID not in projects.columns or NAME not in projects.columns:
        return {}
    names: dict[str, str] = {}
    for key, name in zip(projects[ID].tolist(), projects[NAME].tolist(), strict=True):
        if isinstance(key, str):
            names.setdefault(key, shown(name) if name is not None else "")
    return names


def owners(problems: Sequence[Problem], tables: Mapping[str, pd.DataFrame]) -> dict[tuple[str, int], tuple[str, str]]:
    """(项目编号, 三级指标 or 项目名称) of each (sheet, Excel row) a problem is on."""
    names = project_names(tables.get(PROJECT_SHEET))
    found: dict[tuple[str, int], tuple[str, str]] = {}
    for sheet in PROJECT_SHEETS:
        frame = tables.get(sheet)
        rows = [p.excel_row for p in problems if p.sheet == sheet and p.excel_row is not None]
        if frame is None or not rows:
            continue
        ids = column_values(frame, ID, rows)
        items = column_values(frame, INDICATOR_NAME if sheet == INDICATOR_SHEET else NAME, rows)
        for row in ids:
            key = ids[row]
            item = items.get(row, "") if sheet in (INDICATOR_SHEET, PROJECT_SHEET) else names.get(key, "")
            found[(sheet, row)] = (key, item)
    return found


def id_rows(projects: pd.DataFrame | None) -> list[tuple[int, str | None]]:
    """(Excel row, 项目编号 or None) of every row of the typed 项目 sheet, in order."""
    if projects is None or ID not in projects.columns:
        return []
    return [(int(row), key if isinstance(key, str) else None)
            for row, key in zip(projects.index.tolist(), projects[ID].tolist(), strict=True)]


def root_rows(problems: Sequence[Problem], rows: Sequence[tuple[int, str | None]]) -> dict[int, Problem]:
    """The 项目 rows whose 项目编号 is wrong in a way that hides a project: empty, or a repeat of an
    earlier row's (the first of equal ids is taken as the right one), by Excel row."""
    seen: set[str] = set()
    suspects: set[int] = set()
    for row, key in rows:
        if key is None or key in seen:
            suspects.add(row)
        elif key is not None:
            seen.add(key)
    return {p.excel_row: p for p in problems
            if p.sheet == PROJECT_SHEET and p.column == ID and p.excel_row in suspects
            and p.severity is Severity.ERROR}


def first_rows_of(frame: pd.DataFrame | None) -> dict[str, int]:
    """The first Excel row of each 项目编号 on a sheet."""
    if frame is None or ID not in frame.columns:
        return {}
    firsts: dict[str, int] = {}
    for row, key in zip(frame.index.tolist(), frame[ID].tolist(), strict=True):
        if isinstance(key, str):
            firsts.setdefault(key, int(row))
    return firsts


def cause_of_missing(problem: Problem, rows: Sequence[tuple[int, str | None]], roots: Mapping[int, Problem],
                     sheet_firsts: Mapping[str, int]) -> Problem | None:
    """The root whose 项目 row stands where the project this row names should be.

    Offices list projects in the same order on every sheet: the missing id's rows follow those of
    some project (the nearest earlier one on this sheet that 项目 has), so the project it lost is
    the first wrong row after that project's row on 项目.
    """
    if not roots:
        return None
    row_of = {key: row for row, key in rows if key is not None}
    before = [key for key, first in sheet_firsts.items() if problem.excel_row is not None
              and first < problem.excel_row and key in row_of]
    after_row = max((row_of[key] for key in before), default=0)
    return next((roots[row] for row in sorted(roots) if row > after_row), roots[min(roots)])


def root_advice(problem: Problem, rows: Sequence[tuple[int, str | None]], lost: Sequence[str]) -> str:
    """What to change at a wrong 项目编号 of 项目: which rows repeat it, and the id other sheets use
    that 项目 lacks (what this row probably should be)."""
    same = [row for row, key in rows if problem.value and key == problem.value]
    if len(same) > 1:
        others = "、".join(f"第{row}行" for row in same if row != problem.excel_row)
        head = f"项目编号 {problem.value} 与{others}重复：把填错的一行改为该项目自己的编号"
    else:
        head = "填写该项目的项目编号"
    if lost:
        head += f"（其他表中有 {'、'.join(dict.fromkeys(lost))}，「项目」表中却没有，此行可能应为它）"
    return head + "；资金、使用原则、绩效指标各表中该项目的行用同一编号"


def with_causes(problems: Sequence[Problem], tables: Mapping[str, pd.DataFrame]) -> list[Problem]:
    """The problems with `cause` set on those that follow from a wrong 项目编号 on 项目, and the
    advice of each such 项目编号 saying what it probably should be."""
    rows = id_rows(tables.get(PROJECT_SHEET))
    roots = root_rows(problems, rows)
    repeated = {p.value: p for _, p in sorted(roots.items()) if p.value}
    firsts = {sheet: first_rows_of(tables.get(sheet)) for sheet in PROJECT_SHEETS[1:]}
    linked: list[Problem] = []
    lost: dict[str, list[str]] = {}
    for problem in problems:
        cause: Problem | None = None
        if MISSING_ID in problem.message:
            cause = cause_of_missing(problem, rows, roots, firsts.get(problem.sheet, {}))
        elif NO_ROWS.search(problem.message) is None and (
                found := PROJECT_SUM.search(problem.message)) is not None:
            cause = repeated.get(found["id"])
        elif SEQ_DUPLICATE in problem.message:
            cause = repeated.get(problem.project_id)
        if cause is not None and MISSING_ID in problem.message:
            lost.setdefault(cause.place, []).append(problem.value)
        linked.append(problem if cause is None else dataclasses.replace(problem, cause=cause.place))
    ids = {p.place for p in problems if p.sheet == PROJECT_SHEET and p.column == ID and (
        DUPLICATE in p.message or p.message.endswith(EMPTY))}
    return [dataclasses.replace(p, fix=root_advice(p, rows, lost.get(p.place, ()))) if p.place in ids else p
            for p in linked]


def enriched(problems: Sequence[Problem], tables: Mapping[str, pd.DataFrame],
             raw_sheets: Mapping[str, RawSheet]) -> list[Problem]:
    """Every problem with its cell, project, indicator or project name, advice and cause."""
    letters = letters_of(raw_sheets)
    found = owners(problems, tables)
    filled = []
    for problem in problems:
        key, item = found.get((problem.sheet, problem.excel_row or 0), ("", ""))
        filled.append(dataclasses.replace(
            problem, cell=cell_of(problem, letters), project_id=problem.project_id or key,
            item=problem.item or item, fix=advice_for(problem)))
    return with_causes(filled, tables)


def result_enriched(result: ProjectResult, letters: Mapping[str, Mapping[str, str]]) -> ProjectResult:
    """A scored project whose 警告 name its cells, the project, the indicator and what to change."""
    if not result.warnings:
        return result
    project = result.project
    names = {indicator.excel_row: indicator.name for indicator in project.indicators}

    def item(problem: Problem) -> str:
        if problem.sheet == INDICATOR_SHEET and problem.excel_row is not None:
            return names.get(problem.excel_row, "")
        return project.name

    warnings = tuple(dataclasses.replace(
        w, cell=cell_of(w, letters), project_id=w.project_id or project.project_id, item=w.item or item(w),
        fix=advice_for(w)) for w in result.warnings)
    return dataclasses.replace(result, warnings=warnings)

"""Messages about the made-up contract sheets of a form workbook, put back on the forms.

A form workbook is validated as the four contract sheets `formbook.py` makes of it, so the
contract's messages name those sheets ("绩效指标 第5行「实际完成值」…"). The office never saw
them: each such place, in a problem's location and anywhere in its sentence, becomes the form
cell it came from ("信访救助专项资金!F14「实际完成值」…").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from pipeline.contract.formbook import Origins
from pipeline.errors import Problem
from pipeline.xlsx.formgrid import address

CONTRACT_SHEETS = ("项目", "资金", "使用原则", "绩效指标")
PLACE = re.compile(rf"(?P<sheet>{'|'.join(CONTRACT_SHEETS)}) 第(?P<row>\d+)行(?:「(?P<column>[^」]+)」)?")


def form_place(sheet: str, row: int, column: str | None, origins: Origins) -> str | None:
    """The form's words for a contract place: "表!F14「实际完成值」", "表 第14行", or None."""
    if column is not None and (sheet, row, column) in origins.cells:
        form, cell, label = origins.cells[(sheet, row, column)]
        return f"{form}!{address(cell)}「{label}」"
    if (sheet, row) in origins.rows:
        form, form_row = origins.rows[(sheet, row)]
        return f"{form} 第{form_row}行" + (f"「{column}」" if column else "")
    return None


def relocated_text(text: str, origins: Origins) -> str:
    """A sentence with each contract place in it replaced by its form place."""
    def replace(match: re.Match[str]) -> str:
        place = form_place(match["sheet"], int(match["row"]), match["column"], origins)
        return place if place is not None else match[0]

    return PLACE.sub(replace, text)


def relocated(problem: Problem, origins: Origins) -> Problem:
    """A problem located on the form instead of the made-up contract sheets."""
    if problem.sheet not in CONTRACT_SHEETS or problem.excel_row is None:
        return problem
    key = (problem.sheet, problem.excel_row, problem.column)
    if key in origins.cells:
        form, cell, label = origins.cells[key]
        sheet, row, column, where = form, cell[0], f"{address(cell)}（{label}）", address(cell)
    elif (problem.sheet, problem.excel_row) in origins.rows:
        sheet, row = origins.rows[(problem.sheet, problem.excel_row)]
        column, where = problem.column, ""
    else:
        return problem
    # The rest (project, item, cause) travels along; texts that name contract places are moved too.
    return dataclasses.replace(
        problem, sheet=sheet, excel_row=row, column=column, cell=where,
        message=relocated_text(problem.message, origins), fix=relocated_text(problem.fix, origins),
        cause=relocated_text(problem.cause, origins))


def relocated_all(problems: Iterable[Problem], origins: Origins) -> tuple[Problem, ...]:
    """Every problem put back on the forms (problems already there unchanged)."""
    return tuple(relocated(problem, origins) for problem in problems)

"""A workbook in either layout, validated: the four-sheet contract or a book of printed forms.

The four-sheet contract stays the primary layout. A workbook without its sheets whose pages are
项目支出绩效自评表 forms is read as forms (`formbook.py`), validated by the same rules, and its
messages put back on the forms' cells (`relocate.py`). A form's budget 分值 of 20 selects the
20-point profile (湖北) unless the user named one. After scoring, each form's hand-typed figures
are checked against the computed ones (`core/formfigures.py`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import Settings, profile_for_budget_weight
from pipeline.contract.formbook import FormWorkbook, Origins, form_workbook
from pipeline.contract.problemsort import advice_for, letters_of, result_enriched
from pipeline.contract.relocate import relocated_all
from pipeline.contract.schemas import SHEET_LAYOUTS
from pipeline.contract.validate import ValidWorkbook, validate_workbook
from pipeline.core.formfigures import TypedFigures, typed_figure_warnings
from pipeline.core.indicators import ProjectResult
from pipeline.core.profile import ScoringProfile
from pipeline.errors import Problem, Severity, ValidationFailed
from pipeline.xlsx.formsheet import is_contract_workbook, read_forms
from pipeline.xlsx.reader import read_workbook

# The sheets that make a workbook a four-sheet one (使用原则 is optional in spirit, so not asked).
CONTRACT_SHEETS = ("项目", "资金", "绩效指标")


NEITHER_LAYOUT = Problem(
    "", None, "", "", Severity.ERROR,
    "这个工作簿既没有「项目」「资金」「绩效指标」等工作表，也没有《项目支出绩效自评表》格式的工作表"
    "（标题“项目支出绩效自评表”，表中有“项目名称”和“一级指标、二级指标、三级指标、年度指标值、实际完成值”表头）。"
    "请按四张表填写（perfreport blank 可生成空白工作簿），或提交印好的自评表")


@dataclass(frozen=True, slots=True)
class FormChecks:
    """What the scoring step needs to place its 警告: for a form workbook, where its messages go
    and its typed figures; for a four-sheet one, the column letters of its sheets (D21)."""

    origins: Origins = field(default_factory=Origins)
    figures: Mapping[str, TypedFigures] = field(default_factory=dict)
    letters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Intake:
    """A valid workbook, the profile that scores it, and its forms' checks (None: four sheets)."""

    valid: ValidWorkbook
    profile: ScoringProfile
    forms: FormChecks | None = None  # None only when nothing is known of the cells
    read_seconds: float = 0.0  # of the time it took, how long reading the file took


def form_profile(book: FormWorkbook, settings: Settings) -> ScoringProfile:
    """The user's profile when named; else the one the forms' budget 分值 selects (20: 湖北)."""
    if settings.profile_chosen:
        return settings.profile
    for weight in sorted(set(book.budget_weights), reverse=True):
        found = profile_for_budget_weight(weight)
        if found is not None and found.budget_weight != settings.profile.budget_weight:
            return found
    return settings.profile


def read_and_validate(path: Path, settings: Settings, template_names: Collection[str] | None) -> Intake:
    """The workbook at `path` validated in whichever layout it has.

    Raises WorkbookRefused (not a readable .xlsx) or ValidationFailed (every problem, located
    where the office typed it).
    """
    started = time.perf_counter()
    contract = is_contract_workbook(path, CONTRACT_SHEETS)
    forms = [] if contract else read_forms(path)
    if not forms:  # the four sheets, or neither layout: the contract reader names what it misses
        raw = read_workbook(path, SHEET_LAYOUTS, settings.header_search_rows)
        read = time.perf_counter() - started
        try:
            return Intake(validate_workbook(raw, template_names, settings.profile), settings.profile,
                          FormChecks(letters=letters_of(raw.sheets)), read_seconds=read)
        except ValidationFailed as failed:
            if contract:
                raise
            raise ValidationFailed([NEITHER_LAYOUT, *failed.problems]) from None
    read = time.perf_counter() - started
    book = form_workbook(path, forms, settings.profile)
    profile = form_profile(book, settings)
    if profile is not settings.profile:
        book = form_workbook(path, forms, profile)  # block points are checked by the profile used
    try:
        valid = validate_workbook(book.raw, template_names, profile)
    except ValidationFailed as failed:
        raise ValidationFailed(list(relocated_all(failed.problems, book.origins))) from None
    valid = dataclasses.replace(valid, warnings=relocated_all(valid.warnings, book.origins))
    return Intake(valid, profile, FormChecks(book.origins, book.figures), read)


def checked_result(result: ProjectResult, forms: FormChecks | None, profile: ScoringProfile) -> ProjectResult:
    """A scored project with its 警告 placed (cell, project, indicator, what to change), put back on
    its form, and its form's typed figures checked."""
    if forms is None:
        return result_enriched(result, {})
    result = result_enriched(result, forms.letters)
    figures = forms.figures.get(result.project.project_id)
    found = typed_figure_warnings(result, figures, profile.name) if figures is not None else ()
    if not forms.origins.cells and not forms.origins.rows and not found:
        return result
    placed = tuple(dataclasses.replace(w, project_id=result.project.project_id, item=result.project.name,
                                       fix=advice_for(w)) for w in found)
    return dataclasses.replace(result, warnings=(*relocated_all(result.warnings, forms.origins), *placed))

"""Properties of the scoring arithmetic and of reading workbooks, checked on generated cases."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.core.formatting import round_half_up
from pipeline.core.indicators import completion, evaluate, indicator_score
from pipeline.core.profile import DEFAULT_PROFILE, AtMostRule, ScoringProfile
from pipeline.xlsx.fallback import read_workbook_openpyxl
from pipeline.xlsx.layout import SheetLayout
from pipeline.xlsx.reader import read_workbook
from tests.test_indicators import indicator, project

LINEAR = ScoringProfile(at_most_rule=AtMostRule.LINEAR)
PROFILES = [DEFAULT_PROFILE, LINEAR]
QUICK = settings(max_examples=150, deadline=None)
FILES = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals in [low, high] with at most `places` decimals."""
    return st.decimals(Decimal(low), Decimal(high), places=places, allow_nan=False, allow_infinity=False)


# 分值 as typed in workbooks: positive, at most two decimals.
weights = decimals("0.01", "90", 2)
amounts = decimals("0", "100000", 4)
fractions_01 = decimals("0", "1", 6)


def reference_half_up(value: Fraction, places: int = 2) -> Decimal:
    """Half-up rounding done on exact fractions: away from zero at the half."""
    magnitude = Decimal(math.floor(abs(value) * 10**places + Fraction(1, 2)))
    return (magnitude if value >= 0 else -magnitude).scaleb(-places)


# --- indicator arithmetic -----------------------------------------------------------------------


@QUICK
@given(direction=st.sampled_from(["≥", "≤", "="]), target=amounts, actual=amounts, weight=weights,
       profile=st.sampled_from(PROFILES))
def test_indicator_score_stays_between_zero_and_its_weight(
        direction: str, target: Decimal, actual: Decimal, weight: Decimal, profile: ScoringProfile) -> None:
    done = completion(direction, target, actual, profile)
    assert 0 <= done <= 1
    assert 0 <= indicator_score(weight, done) <= weight


@QUICK
@given(target=amounts, low=amounts, high=amounts, weight=weights, profile=st.sampled_from(PROFILES))
def test_score_never_falls_as_an_at_least_indicator_achieves_more(
        target: Decimal, low: Decimal, high: Decimal, weight: Decimal, profile: ScoringProfile) -> None:
    low, high = sorted((low, high))
    assert (indicator_score(weight, completion("≥", target, low, profile))
            <= indicator_score(weight, completion("≥", target, high, profile)))


@QUICK
@given(target=amounts, low=amounts, high=amounts, weight=weights, profile=st.sampled_from(PROFILES))
def test_score_never_rises_as_an_at_most_indicator_spends_more(
        target: Decimal, low: Decimal, high: Decimal, weight: Decimal, profile: ScoringProfile) -> None:
    low, high = sorted((low, high))
    assert (indicator_score(weight, completion("≤", target, low, profile))
            >= indicator_score(weight, completion("≤", target, high, profile)))


@QUICK
@given(value=decimals("-1000", "1000", 6))
@example(value=Decimal("0.125"))
@example(value=Decimal("2.675"))
@example(value=Decimal("1.005"))
@example(value=Decimal("-0.125"))
def test_rounding_is_half_up_on_the_decimal_value(value: Decimal) -> None:
    assert round_half_up(value) == reference_half_up(Fraction(value))


@QUICK
@given(weight=weights, done=fractions_01)
@example(weight=Decimal(1), done=Decimal("0.125"))
@example(weight=Decimal("2.675"), done=Decimal(1))
@example(weight=Decimal(5), done=Decimal("0.535"))
def test_indicator_score_is_weight_times_completion_rounded_half_up(weight: Decimal, done: Decimal) -> None:
    assert indicator_score(weight, done) == reference_half_up(Fraction(weight) * Fraction(done))


@st.composite
def weights_adding_to_90(draw: st.DrawFn) -> list[Decimal]:
    """1–8 weights with two decimals, each > 0, adding up to exactly 90 (as validation demands)."""
    count = draw(st.integers(1, 8))
    cuts = sorted(draw(st.sets(st.integers(1, 8999), min_size=count - 1, max_size=count - 1)))
    edges = [0, *cuts, 9000]
    return [Decimal(b - a) / 100 for a, b in zip(edges, edges[1:], strict=False)]


@st.composite
def scored_indicator(draw: st.DrawFn, weight: Decimal):  # noqa: ANN202 - an Indicator
    """A valid indicator of any kind with the given weight."""
    kind = draw(st.sampled_from(["≥", "≤", "=", "定性", "分子分母"]))
    if kind == "定性":
        grade = draw(st.sampled_from(["达成", "部分达成", "未达成"]))
        band = DEFAULT_PROFILE.qualitative_bands[grade]
        self_score = draw(st.none() | decimals("0", str(weight), 2).filter(lambda s: band.contains(s / weight)))
        return indicator(direction="定性", target=None, target_text="群众满意", actual=None, grade=grade,
                         actual_text=grade, weight=weight, self_score=self_score, deviation="原因")
    target = draw(amounts)
    if kind == "分子分母":
        denominator = draw(decimals("1", "1000", 0))
        numerator = draw(decimals("0", "1000", 0))
        return indicator(direction="≥", target=target, actual=None, numerator=numerator, denominator=denominator,
                         weight=weight, deviation="原因")
    return indicator(direction=kind, target=target, actual=draw(amounts), weight=weight, deviation="原因")


@st.composite
def scored_project(draw: st.DrawFn):  # noqa: ANN202 - a Project
    """A project with a positive budget, any spend and indicators whose weights add up to 90."""
    inds = tuple(draw(scored_indicator(w)) for w in draw(weights_adding_to_90()))
    return project(inds, budget=draw(decimals("0.01", "100000", 2)), spent=draw(decimals("0", "200000", 2)))


@QUICK
@given(subject=scored_project(), profile=st.sampled_from(PROFILES))
def test_project_total_stays_between_0_and_100_and_adds_up(subject, profile: ScoringProfile) -> None:  # noqa: ANN001
    result = evaluate(subject, profile)
    assert 0 <= result.total_score <= 100
    assert result.total_score == result.budget_score + sum(r.score for r in result.indicators)
    for r in result.indicators:
        assert 0 <= r.score <= r.indicator.weight
        assert r.score == round_half_up(r.score)


# --- workbook round trip --------------------------------------------------------------------------

LAYOUT = SheetLayout("数据", required=("编号", "文字", "数字"), optional=("备注",))
# Excel's escape for characters XML cannot hold: calamine decodes _x0041_ to "A", openpyxl keeps it.
EXCEL_ESCAPE = re.compile(r"_x[0-9A-Fa-f]{4}_")
SPECIAL_TEXT = ["<b>&amp;</b>", "{{ title }}", "{% for x in y %}", "😀👨‍👩‍👧", "𠀀𪚥", "  前后空格  ", "＝全角",
                "1,234.50", "５万元", "'引号\"", "\u3000全角空格\u3000"]

# openpyxl writes "=…" as a formula and "#N/A" and the like as error cells: not text tables.
OPENPYXL_ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})
texts = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn")), min_size=1, max_size=30),
).filter(lambda s: not s.startswith("=") and s not in OPENPYXL_ERRORS and not EXCEL_ESCAPE.search(s))


def significant_digits(value: Decimal) -> int:
    return len(value.normalize().as_tuple().digits)


numbers = st.decimals(Decimal("-1e12"), Decimal("1e12"), places=6, allow_nan=False, allow_infinity=False).filter(
    lambda d: significant_digits(d) <= 15)
cells = st.one_of(st.none(), texts, numbers)


def expected_cell(value: object) -> object:
    """What the reader hands on for a written value: trimmed text or None, numbers as Decimal."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def write_table(path: Path, rows: list[list[object]], title_rows: int) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = LAYOUT.name
    for n in range(title_rows):
        sheet.append([f"2020年度项目支出绩效自评汇总表（{n + 1}）"])
    sheet.append(list(LAYOUT.known))
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


@FILES
@given(rows=st.lists(st.lists(cells, min_size=4, max_size=4), max_size=12), title_rows=st.integers(0, 4))
def test_any_table_written_with_openpyxl_is_read_back_identically_by_both_readers(
        tmp_path: Path, rows: list[list[object]], title_rows: int) -> None:
    path = write_table(tmp_path / "表.xlsx", rows, title_rows)
    header_row = title_rows + 1
    expected = {header_row + 1 + i: [expected_cell(v) for v in row] for i, row in enumerate(rows)
                if any(expected_cell(v) is not None for v in row)}
    for reader in (read_workbook, read_workbook_openpyxl):
        raw = reader(path, [LAYOUT])
        assert raw.problems == ()
        sheet = raw.sheets[LAYOUT.name]
        assert sheet.header_row == header_row
        frame = sheet.frame
        assert list(frame.index) == list(expected)
        read = {row: list(values) for row, values in zip(frame.index, frame.itertuples(index=False), strict=True)}
        assert read == expected, reader.__name__
        for row, values in read.items():  # same types too: Decimal is not text, None is not ""
            assert [type(v) for v in values] == [type(v) for v in expected[row]], reader.__name__

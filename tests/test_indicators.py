"""Each scoring rule of the spec pinned with a hand-computed case."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from pipeline.core.formatting import money_text, percent, round_half_up
from pipeline.core.indicators import (
    budget_score,
    completion,
    evaluate,
    evaluate_indicator,
    execution_rate,
    fraction_actual,
    grade,
    indicator_score,
    qualitative_completion,
)
from pipeline.core.profile import DEFAULT_PROFILE, AtMostRule, ScoringProfile
from pipeline.core.records import Funding, Indicator, Project


def indicator(**changes: object) -> Indicator:
    """A quantitative ≥ indicator with sensible defaults, changed as asked."""
    fields: dict[str, object] = dict(
        excel_row=2, level1="产出指标", level2="数量指标", name="积案化解率", direction="≥",
        target=D(90), target_text="≥90%", unit="%", actual=D(95), grade=None, actual_text="95%",
        weight=D(15), numerator=None, denominator=None, self_score=None, deviation="",
    )
    fields.update(changes)
    return Indicator(**fields)  # type: ignore[arg-type]


def project(indicators: tuple[Indicator, ...], budget: D = D(100), spent: D = D("85.62")) -> Project:
    """A project with one source of money and the given indicators."""
    return Project(
        excel_row=2, project_id="P-1", name="信访救助专项资金", year=2020, department="信访局",
        implementing_unit="信访局", overview="", annual_goal="", performance="", template=None,
        funding=(Funding("财政拨款", budget, budget, spent),), principles=(), indicators=indicators,
    )


@pytest.mark.parametrize(
    ("direction", "target", "actual", "expected"),
    [
        ("≥", D(90), D(95), D(1)),
        ("≥", D(90), D(45), D("0.5")),
        ("≥", D(0), D(0), D(1)),
        ("≤", D(20), D("14.68"), D(1)),
        ("≤", D(20), D(25), D("0.8")),
        ("≤", D(0), D(3), D(0)),
        ("=", D(100), D(100), D(1)),
        ("=", D(100), D(80), D("0.8")),
        ("=", D(100), D(125), D("0.8")),
    ],
    ids=["at-least-met", "at-least-half", "at-least-zero-target", "at-most-met", "at-most-missed-ratio",
         "at-most-zero-target-missed", "exactly-equal", "exactly-under", "exactly-over"],
)
def test_quantitative_completion_follows_direction(direction: str, target: D, actual: D, expected: D) -> None:
    assert completion(direction, target, actual, DEFAULT_PROFILE) == expected


def test_completion_is_capped_at_full() -> None:
    assert completion("≥", D(50), D(74), DEFAULT_PROFILE) == D(1)


def test_linear_profile_scores_missed_at_most_down_to_zero_at_twice_target() -> None:
    linear = ScoringProfile(at_most_rule=AtMostRule.LINEAR)
    assert completion("≤", D(20), D(25), linear) == D("0.75")
    assert completion("≤", D(20), D(40), linear) == D(0)


def test_twelve_of_fourteen_against_ninety_percent_scores_14_29_of_15() -> None:
    ind = indicator(numerator=D(12), denominator=D(14), actual=None, deviation="原因")
    result, _ = evaluate_indicator(ind, DEFAULT_PROFILE)
    assert result.score == D("14.29")
    assert round_half_up(result.actual, 1) == D("85.7")


def test_budget_85_62_of_100_scores_8_56() -> None:
    rate = execution_rate(D("85.62"), D(100))
    assert percent(rate) == "85.62%"
    assert budget_score(rate, DEFAULT_PROFILE) == D("8.56")


def test_overspent_budget_scores_at_most_full_weight() -> None:
    assert budget_score(D("1.2"), DEFAULT_PROFILE) == D("10.00")


def test_typed_rate_that_disagrees_with_fraction_warns_quoting_computed_value() -> None:
    ind = indicator(numerator=D(59), denominator=D(61), actual=D("97.6"), actual_text="97.6%", excel_row=18)
    result, warnings = evaluate_indicator(ind, DEFAULT_PROFILE)
    assert round_half_up(result.actual, 1) == D("96.7")
    [warning] = warnings
    assert warning.severity == "警告"
    assert (warning.sheet, warning.excel_row, warning.column) == ("绩效指标", 18, "实际完成值")
    # It says what the 自评表 does, and does not claim the narrative was changed too.
    assert warning.message == ("绩效指标 第18行「实际完成值」填写为 97.6%，但按分子/分母 59/61 计算为 96.7%："
                               "自评表采用计算值 96.7% 并据此评分，请核对此格或分子、分母")


def test_typed_rate_agreeing_to_one_decimal_gives_no_warning() -> None:
    ind = indicator(numerator=D(12), denominator=D(14), actual=D("85.7"), deviation="原因")
    assert evaluate_indicator(ind, DEFAULT_PROFILE)[1] == []


def test_fraction_is_a_percentage_only_when_unit_is_percent() -> None:
    assert fraction_actual(D(1), D(4), "%") == D(25)
    assert fraction_actual(D(1), D(4), "") == D("0.25")


@pytest.mark.parametrize(
    ("grade_text", "self_score", "expected"),
    [("达成", None, D(1)), ("部分达成", None, D("0.7")), ("未达成", None, D("0.3")), ("达成", D(9), D("0.9"))],
    ids=["met-default", "partly-default", "missed-default", "self-score-used"],
)
def test_qualitative_completion_uses_grade_band(grade_text: str, self_score: D | None, expected: D) -> None:
    assert qualitative_completion(grade_text, self_score, D(10), DEFAULT_PROFILE) == expected


def test_qualitative_indicator_scores_its_band_default() -> None:
    ind = indicator(direction="定性", target=None, target_text="群众满意", actual=None, grade="部分达成",
                    actual_text="部分达成年度指标并具有一定效果", weight=D(10), deviation="原因")
    result, warnings = evaluate_indicator(ind, DEFAULT_PROFILE)
    assert result.score == D("7.00")
    assert warnings == []


def test_self_score_that_differs_from_computed_warns() -> None:
    result, warnings = evaluate_indicator(indicator(actual=D(45), self_score=D(15), deviation="原因"), DEFAULT_PROFILE)
    assert result.score == D("7.50")
    assert [w.column for w in warnings] == ["自评得分"]
    assert warnings[0].message == "绩效指标 第2行「自评得分」填写为 15，按完成值计算的得分为 7.50：自评表采用计算得分 7.50"


def test_missed_indicator_without_deviation_warns() -> None:
    _, warnings = evaluate_indicator(indicator(actual=D(45)), DEFAULT_PROFILE)
    assert [w.column for w in warnings] == ["偏差原因分析及改进措施"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(D("0.125"), D("0.13")), (D("2.675"), D("2.68")), (D("14.285"), D("14.29")), (D("-0.125"), D("-0.13"))],
)
def test_rounding_is_half_up_on_decimals(value: D, expected: D) -> None:
    assert round_half_up(value) == expected


def test_indicator_score_rounds_half_up() -> None:
    assert indicator_score(D(1), D("0.125")) == D("0.13")


@pytest.mark.parametrize(
    ("total", "expected"),
    [(D(90), "优"), (D("89.99"), "良"), (D(80), "良"), (D("79.99"), "中"), (D(60), "中"), (D("59.99"), "差")],
)
def test_grade_bands(total: D, expected: str) -> None:
    assert grade(total, DEFAULT_PROFILE) == expected


def test_total_is_budget_score_plus_rounded_indicator_scores() -> None:
    inds = (
        indicator(numerator=D(12), denominator=D(14), actual=None, weight=D(15), deviation="原因"),
        indicator(actual=D(100), weight=D(75)),
    )
    result = evaluate(project(inds), DEFAULT_PROFILE)
    assert result.budget_score == D("8.56")
    assert result.total_score == D("8.56") + D("14.29") + D("75.00")
    assert result.grade == "优"
    assert result.weight_total == D(100)


def test_money_in_text_drops_trailing_zeros() -> None:
    assert money_text(D("5.00")) == "5"
    assert money_text(D("2.970")) == "2.97"
    assert money_text(D("85.62")) == "85.62"


def test_the_settings_holding_a_profile_stay_hashable_and_compare_by_value() -> None:
    from pipeline.config import Settings

    assert hash(Settings()) == hash(Settings()) and Settings() == Settings(profile=DEFAULT_PROFILE)
    other = ScoringProfile(qualitative_bands={"达成": DEFAULT_PROFILE.qualitative_bands["达成"]})
    assert Settings(profile=other) != Settings()

"""Pure Decimal arithmetic of the evaluation: execution rate, completion, scores, grade.

No I/O and no pandas: values in, values out. The rules' parameters live in `profile.py`, and
each rule takes the run's profile (`Settings.profile`) as an argument, never a default of its own.
Fractions (execution rate, completion) are exact Decimals in [0, 1]; only scores are rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pipeline.core import headers
from pipeline.core.formatting import HUNDRED, computed_value, plain_number, round_half_up, score
from pipeline.core.profile import AtMostRule, ScoringProfile
from pipeline.core.records import Indicator, Project
from pipeline.errors import Problem, Severity

ZERO, ONE = Decimal(0), Decimal(1)
SCORE_TOLERANCE = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    """An indicator with what was computed for it."""

    indicator: Indicator
    actual: Decimal | None  # exact; from 分子/分母 when given
    from_fraction: bool
    completion: Decimal  # exact fraction in [0, 1]
    score: Decimal  # rounded half-up to 2 decimals


@dataclass(frozen=True, slots=True)
class ProjectResult:
    """A project with its money totals, indicator results, total, grade and warnings."""

    project: Project
    initial_budget_wan: Decimal
    adjusted_budget_wan: Decimal
    spent_wan: Decimal
    execution_rate: Decimal  # exact fraction
    budget_weight: Decimal
    budget_score: Decimal
    indicators: tuple[IndicatorResult, ...]
    total_score: Decimal
    grade: str
    warnings: tuple[Problem, ...]
    # The rules that produced these figures: the report names them (评分说明), since a 湖北 85
    # and a national 85 are not the same figure. Each result carries its own, so the report of
    # a project scored by a profile other than the run's default still names the right one.
    profile: ScoringProfile

    @property
    def profile_name(self) -> str:
        """The name of the scoring rules the figures follow (财预〔2020〕10号, 湖北)."""
        return self.profile.name

    @property
    def weight_total(self) -> Decimal:
        """The 分值 of budget execution and every indicator together (100)."""
        return self.budget_weight + sum((r.indicator.weight for r in self.indicators), ZERO)


def clamp(fraction: Decimal) -> Decimal:
    """A completion limited to [0, 1]."""
    return max(ZERO, min(ONE, fraction))


def execution_rate(spent_wan: Decimal, adjusted_budget_wan: Decimal) -> Decimal:
    """预算执行率 as an exact fraction: spent / adjusted budget (0 when there is no budget)."""
    return spent_wan / adjusted_budget_wan if adjusted_budget_wan > 0 else ZERO


def budget_score(rate: Decimal, profile: ScoringProfile) -> Decimal:
    """The budget-execution score: weight × min(rate, 100%), rounded half-up."""
    return round_half_up(profile.budget_weight * clamp(rate))


def fraction_actual(numerator: Decimal, denominator: Decimal, unit: str) -> Decimal:
    """实际完成值 from 分子/分母: the ratio, ×100 when the unit is %."""
    ratio = numerator / denominator
    return ratio * HUNDRED if unit == "%" else ratio


def completion(direction: str, target: Decimal, actual: Decimal, profile: ScoringProfile) -> Decimal:
    """How far a quantitative indicator is met, as a fraction in [0, 1]."""
    if direction == "≥":
        return ONE if target <= 0 else clamp(actual / target)
    if direction == "≤":
        if actual <= target:
            return ONE
        if target <= 0:
            return ZERO
        if profile.at_most_rule is AtMostRule.LINEAR:
            return clamp(ONE - (actual - target) / target)
        return clamp(target / actual)
    if direction == "=":
        if actual == target:
            return ONE
        if actual <= 0 or target <= 0:
            return ZERO
        return clamp(min(actual / target, target / actual))
    raise ValueError(f"not a quantitative direction: {direction!r}")


def qualitative_completion(grade: str, self_score: Decimal | None, weight: Decimal,
                           profile: ScoringProfile) -> Decimal:
    """A 定性 indicator's share of its 分值: the self-score's share if given, else the grade's default."""
    if self_score is not None and weight > 0:
        return clamp(self_score / weight)
    return profile.qualitative_bands[grade].default


def indicator_score(weight: Decimal, completion_fraction: Decimal) -> Decimal:
    """得分 = 分值 × completion, rounded half-up to 2 decimals."""
    return round_half_up(weight * completion_fraction)


def grade(total: Decimal, profile: ScoringProfile) -> str:
    """优 良 中 差 for a total score."""
    return next(name for low, name in profile.grade_bands if total >= low)


def fully_met(result: IndicatorResult, profile: ScoringProfile) -> bool:
    """True when an indicator needs no deviation analysis: full completion, or the top 定性 grade."""
    if result.indicator.qualitative:
        return result.indicator.grade == profile.met_grade
    return result.completion >= ONE


def shown_precision(unit: str, typed: Decimal) -> int:
    """Decimals at which a typed rate and a computed one must agree: one for %, else as typed."""
    if unit == "%":
        return 1
    exponent = typed.as_tuple().exponent
    # NaN and Infinity have a letter for exponent ('n', 'N', 'F') and no decimals to match.
    return max(0, -exponent) if isinstance(exponent, int) else 0


def warning(indicator: Indicator, column: str, value: str, message: str) -> Problem:
    """A 警告 about an indicator, located at its row of 绩效指标."""
    where = f"{headers.INDICATOR_SHEET} 第{indicator.excel_row}行「{column}」"
    return Problem(headers.INDICATOR_SHEET, indicator.excel_row, column, value, Severity.WARNING,
                   f"{where}{message}")


def typed_actual_disagrees(indicator: Indicator, computed: Decimal) -> bool:
    """Whether a typed 实际完成值 disagrees, at its shown precision, with 分子/分母's `computed`."""
    if indicator.actual is None:
        return False
    places = shown_precision(indicator.unit, indicator.actual)
    return round_half_up(computed, places) != round_half_up(indicator.actual, places)


def typed_actual_warnings(indicator: Indicator, numerator: Decimal, denominator: Decimal,
                          computed: Decimal) -> list[Problem]:
    """The 警告 when a typed 实际完成值 disagrees with 分子/分母's `computed`: it says what the report
    does (the 自评表 shows and scores the computed value) and nothing more (the narrative is the
    officer's text and is checked on its own, in `narrative.py`)."""
    if not typed_actual_disagrees(indicator, computed):
        return []
    shown = computed_value(computed, indicator.unit)
    return [warning(
        indicator, headers.ACTUAL, indicator.actual_text,
        f"填写为 {indicator.actual_text}，但按分子/分母 {plain_number(numerator)}/"
        f"{plain_number(denominator)} 计算为 {shown}：自评表采用计算值 {shown} 并据此评分，"
        "请核对此格或分子、分母")]


def strict_target_warnings(indicator: Indicator, actual: Decimal) -> list[Problem]:
    """The 警告 when a target typed with a strict > or < is exactly reached: the report prints the
    target as typed (">95%") but scores it as ≥ / ≤ (the contract's reading), so a reader would see
    95% meet ">95%" at full marks without a word."""
    if indicator.typed_operator not in (">", "<") or indicator.target is None or actual != indicator.target:
        return []
    reading = "≥" if indicator.typed_operator == ">" else "≤"
    typed = f"{indicator.typed_operator}{plain_number(indicator.target)}{indicator.unit}"
    return [warning(indicator, headers.TARGET, typed,
                    f"写为 {typed}，实际完成值正好是 {plain_number(actual)}{indicator.unit}：按 {reading} 计为完成并得满分，"
                    f"自评表照录 {typed}；如指标确为“{reading}”，请改写指标值")]


def rate_typed_as_fraction_warnings(indicator: Indicator, from_fraction: bool) -> list[Problem]:
    """The 警告 when a rate seems typed as a fraction (0.96 under unit % against ≥90%): it is
    scored as 0.96 %, which nobody meant, so the officer is asked before the report is trusted."""
    actual, target = indicator.actual, indicator.target
    if (from_fraction or actual is None or target is None or indicator.unit != "%"
            or not ZERO < actual < ONE or target <= ONE):
        return []
    meant = f"{plain_number(actual * HUNDRED)}%"
    return [warning(indicator, headers.ACTUAL, indicator.actual_text,
                    f"填写为 {indicator.actual_text}，单位为 %，而指标值为 {plain_number(target)}%：是否应为 {meant}？"
                    f"自评表按 {plain_number(actual)}% 评分，如完成率是 {meant} 请改填 {meant}")]


def evaluate_indicator(indicator: Indicator, profile: ScoringProfile) -> tuple[IndicatorResult, list[Problem]]:
    """Completion and score of one indicator, and the warnings its typed figures deserve."""
    found: list[Problem] = []
    if indicator.qualitative:
        assert indicator.grade is not None, "validation guarantees a grade for 定性"
        done = qualitative_completion(indicator.grade, indicator.self_score, indicator.weight, profile)
        result = IndicatorResult(indicator, None, False, done, indicator_score(indicator.weight, done))
    else:
        assert indicator.target is not None, "validation guarantees a number for ≥ ≤ ="
        numerator, denominator = indicator.numerator, indicator.denominator
        from_fraction = numerator is not None and denominator is not None
        actual: Decimal | None = indicator.actual
        if numerator is not None and denominator is not None:  # not `from_fraction`: mypy narrows only this
            actual = fraction_actual(numerator, denominator, indicator.unit)
            found.extend(typed_actual_warnings(indicator, numerator, denominator, actual))
        assert actual is not None, "validation guarantees 实际完成值 or 分子/分母"
        done = completion(indicator.direction, indicator.target, actual, profile)
        result = IndicatorResult(indicator, actual, from_fraction, done, indicator_score(indicator.weight, done))
        found.extend(strict_target_warnings(indicator, actual))
        found.extend(rate_typed_as_fraction_warnings(indicator, from_fraction))
        if indicator.self_score is not None and abs(indicator.self_score - result.score) > SCORE_TOLERANCE:
            found.append(warning(
                indicator, headers.SELF_SCORE, plain_number(indicator.self_score),
                f"填写为 {plain_number(indicator.self_score)}，按完成值计算的得分为 {score(result.score)}："
                f"自评表采用计算得分 {score(result.score)}"))
    if not fully_met(result, profile) and not indicator.deviation.strip():
        found.append(warning(indicator, headers.DEVIATION, "",
                             "为空：该指标未完全达成，请说明偏差原因及改进措施"))
    return result, found


def evaluate(project: Project, profile: ScoringProfile) -> ProjectResult:
    """Every figure of a project's evaluation, from its money and indicators."""
    initial = sum((f.initial_budget_wan for f in project.funding), ZERO)
    adjusted = sum((f.adjusted_budget_wan for f in project.funding), ZERO)
    spent = sum((f.spent_wan for f in project.funding), ZERO)
    rate = execution_rate(spent, adjusted)
    money_score = budget_score(rate, profile)
    results: list[IndicatorResult] = []
    warnings: list[Problem] = []
    for indicator in project.indicators:
        result, found = evaluate_indicator(indicator, profile)
        results.append(result)
        warnings.extend(found)
    total = money_score + sum((r.score for r in results), ZERO)
    return ProjectResult(
        project=project, initial_budget_wan=initial, adjusted_budget_wan=adjusted, spent_wan=spent,
        execution_rate=rate, budget_weight=profile.budget_weight, budget_score=money_score,
        indicators=tuple(results), total_score=total, grade=grade(total, profile), warnings=tuple(warnings),
        profile=profile,
    )

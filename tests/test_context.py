"""The template context: formatted text only, honest money sentences, exactly the documented keys."""

from __future__ import annotations

from decimal import Decimal as D

from pipeline.core.context import CONTEXT_KEYS, money_sentence, paragraphs, report_context
from pipeline.core.indicators import evaluate
from tests.test_indicators import indicator, project


def test_fully_spent_budget_reads_like_the_seed() -> None:
    result = evaluate(project((indicator(weight=D(90)),), budget=D(5), spent=D(5)))
    assert money_sentence(result) == "2020年度信访救助专项资金5万元使用完毕。"


def test_partly_spent_budget_states_budget_spend_and_rate() -> None:
    result = evaluate(project((indicator(weight=D(90)),)))
    assert money_sentence(result) == "2020年度全年预算100万元，实际执行85.62万元，预算执行率85.62%。"


def test_blank_lines_separate_paragraphs() -> None:
    assert paragraphs("第一段。\n\n第二段。\r\n") == ["第一段。", "第二段。"]


def test_context_has_exactly_the_documented_keys_and_only_text() -> None:
    context = report_context(evaluate(project((indicator(weight=D(90)),))))
    assert set(context) == CONTEXT_KEYS
    assert context["budget"] == {"initial": "100.00", "adjusted": "100.00", "spent": "85.62", "rate": "85.62%",
                                 "weight": "10", "score": "8.56"}
    [row] = context["indicators"]
    assert (row["target"], row["actual"], row["weight"], row["score"]) == ("≥90%", "95%", "90", "90.00")
    assert context["weight_total"] == "100"


def test_rate_from_fraction_is_shown_with_one_decimal() -> None:
    ind = indicator(numerator=D(59), denominator=D(61), actual=None, weight=D(90), deviation="x")
    [row] = report_context(evaluate(project((ind,))))["indicators"]
    assert row["actual"] == "96.7%"

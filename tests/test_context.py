"""The template context: formatted text only, honest money sentences, exactly the field table."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal as D
from pathlib import Path

import pytest

from pipeline.core.context import (
    CONTEXT_KEYS,
    CONTEXT_VARIABLES,
    DICT_FIELDS,
    ITEM_FIELDS,
    ContextVariable,
    Shape,
    money_sentence,
    paragraphs,
    report_context,
)
from pipeline.core.indicators import evaluate
from pipeline.core.profile import DEFAULT_PROFILE
from tests.test_indicators import indicator, project

TEMPLATES_README = (Path(__file__).resolve().parent.parent / "templates" / "README.md").read_text(encoding="utf-8")
# A context in which every list has items, so each item's fields can be compared with the table.
FULL_CONTEXT = report_context(evaluate(dataclasses.replace(
    project((indicator(weight=D(90)),)), overview="概况一\n\n概况二", performance="绩效", principles=("专款专用",)),
    DEFAULT_PROFILE))


def test_fully_spent_budget_reads_like_the_seed() -> None:
    result = evaluate(project((indicator(weight=D(90)),), budget=D(5), spent=D(5)), DEFAULT_PROFILE)
    assert money_sentence(result) == "2020年度信访救助专项资金5万元使用完毕。"


def test_partly_spent_budget_states_budget_spend_and_rate() -> None:
    result = evaluate(project((indicator(weight=D(90)),)), DEFAULT_PROFILE)
    assert money_sentence(result) == "2020年度全年预算100万元，实际执行85.62万元，预算执行率85.62%。"


def test_blank_lines_separate_paragraphs() -> None:
    assert paragraphs("第一段。\n\n第二段。\r\n") == ["第一段。", "第二段。"]


def test_context_has_exactly_the_documented_keys_and_only_text() -> None:
    context = report_context(evaluate(project((indicator(weight=D(90)),)), DEFAULT_PROFILE))
    assert set(context) == CONTEXT_KEYS
    assert context["budget"] == {"initial": "100.00", "adjusted": "100.00", "spent": "85.62", "rate": "85.62%",
                                 "weight": "10", "score": "8.56"}
    [row] = context["indicators"]
    assert (row["target"], row["actual"], row["weight"], row["score"]) == ("≥90%", "95%", "90", "90.00")
    assert context["weight_total"] == "100"


def test_rate_from_fraction_is_shown_with_one_decimal() -> None:
    ind = indicator(numerator=D(59), denominator=D(61), actual=None, weight=D(90), deviation="x")
    [row] = report_context(evaluate(project((ind,)), DEFAULT_PROFILE))["indicators"]
    assert row["actual"] == "96.7%"


def test_field_lists_match_the_context_the_pipeline_builds() -> None:
    dicts = {key for key, value in FULL_CONTEXT.items() if isinstance(value, dict)}
    lists = {key for key, value in FULL_CONTEXT.items()
             if isinstance(value, list) and value and isinstance(value[0], dict)}
    assert dicts == set(DICT_FIELDS) and lists == set(ITEM_FIELDS)
    assert all(set(FULL_CONTEXT[key]) == DICT_FIELDS[key] for key in dicts)
    assert all(set(FULL_CONTEXT[key][0]) == ITEM_FIELDS[key] for key in lists)


def test_the_field_table_names_each_variable_once() -> None:
    names = [variable.name for variable in CONTEXT_VARIABLES]
    assert len(names) == len(set(names)) == len(CONTEXT_KEYS)


@pytest.mark.parametrize("variable", CONTEXT_VARIABLES, ids=lambda variable: variable.name)
def test_each_variable_has_the_shape_and_fields_of_the_table(variable: ContextVariable) -> None:
    value = FULL_CONTEXT[variable.name]
    if variable.shape is Shape.TEXT:
        assert isinstance(value, str) and not variable.fields
    elif variable.shape is Shape.TEXT_LIST:
        assert isinstance(value, list) and value and all(isinstance(item, str) for item in value)
        assert not variable.fields
    elif variable.shape is Shape.RECORD:
        assert isinstance(value, dict) and set(value) == variable.fields
        assert all(isinstance(item, str) for item in value.values())
    else:
        assert isinstance(value, list) and value
        assert all(isinstance(item, dict) and set(item) == variable.fields for item in value)
        assert all(isinstance(text, str) for item in value for text in item.values())


@pytest.mark.parametrize("variable", [v for v in CONTEXT_VARIABLES if v.fields], ids=lambda variable: variable.name)
def test_every_field_is_documented_for_template_authors(variable: ContextVariable) -> None:
    # templates/README.md writes a dict's fields as `budget.rate` and a list's in the list's own row.
    if variable.shape is Shape.RECORD:
        missing = {field for field in variable.fields if f"`{variable.name}.{field}`" not in TEMPLATES_README}
    else:
        row = re.search(rf"^\| `{re.escape(variable.name)}` \|.*$", TEMPLATES_README, re.MULTILINE)
        assert row is not None, f"templates/README.md has no row for `{variable.name}`"
        missing = {field for field in variable.fields if f"`{field}`" not in row.group(0)}
    assert not missing, f"templates/README.md lacks fields of `{variable.name}`: {sorted(missing)}"

"""The grammar of a quantity typed in one cell: a direction in signs or words, a number, a unit and
a direction word after it (≥95%, 不低于95%, 95%以上, 控制在5%以内), and a result that carries its
own fraction ("85.7%（12/14）").

`cells.py` applies it to an indicator row; here are only the spellings and what each means, so
that the words real tables use are listed once.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from pipeline.core.forms import UNIT_WORDS
from pipeline.core.headers import folded

NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
NUMBER_RE = re.compile(rf"^{NUMBER}$")
# Words real tables write for a direction before the number (不低于95%, 控制在5%以内) and after it
# (95%以上), each with its direction; 控制在 says nothing alone and takes its suffix's.
PREFIX_WORDS = {"大于等于": "≥", "不低于": "≥", "不少于": "≥", "达到": "≥",
                "小于等于": "≤", "不高于": "≤", "不超过": "≤", "控制在": ""}
SUFFIX_WORDS = {"以上": "≥", "以下": "≤", "以内": "≤"}
QUANTITY_RE = re.compile(
    rf"^(?P<direction>>=|<=|==|≥|≤|≧|≦|=|>|<|{'|'.join(PREFIX_WORDS)})?(?P<number>{NUMBER})"
    rf"(?P<unit>[^\d].*?)??(?P<suffix>{'|'.join(SUFFIX_WORDS)})?$")
# A result followed by the fraction it was computed from, in half- or full-width brackets (folded
# text: NFKC has made （12／14） into (12/14) and removed the spaces).
RESULT_FRACTION_RE = re.compile(r"^(?P<result>.+?)\((?P<numerator>\d+(?:\.\d+)?)/(?P<denominator>\d+(?:\.\d+)?)\)$")
DIRECTION_ALIASES = {">=": "≥", ">": "≥", "≥": "≥", "≧": "≥", "<=": "≤", "<": "≤", "≤": "≤", "≦": "≤",
                     "=": "=", "==": "=", "定性": "定性",
                     **{word: sign for word, sign in PREFIX_WORDS.items() if sign}, **SUFFIX_WORDS}
# Operators as the report prints them: as typed, except that two ASCII characters become one sign.
OPERATOR_SHOWN = {">=": "≥", "<=": "≤", "==": "=", "≥": "≥", "≤": "≤", "≧": "≧", "≦": "≦", "=": "=", ">": ">",
                  "<": "<", **{word: word for word in PREFIX_WORDS}}
UNIT_ALIASES = {"百分比": "%", "%": "%"}


@lru_cache(maxsize=8192)
def normalized_text(text: str) -> str:
    """Text as compared for numbers and units (`headers.folded`), remembered: the same few
    spellings come back on every row."""
    return folded(text)


@lru_cache(maxsize=1024)
def direction_of(text: str | None) -> str | None:
    """The canonical direction (≥ ≤ = 定性) of a typed direction, or None if unknown."""
    return None if text is None else DIRECTION_ALIASES.get(normalized_text(text))


@lru_cache(maxsize=1024)
def unit_of(text: str | None) -> str:
    """A unit in canonical form (百分比 -> %), "" when absent."""
    if not text:
        return ""
    unit = normalized_text(text)
    return UNIT_ALIASES.get(unit, unit)


def cell_direction(match: re.Match[str]) -> tuple[str | None, str | None]:
    """The direction a target cell states by its sign or words (≥95%, 不低于95%, 95%以上, 控制在
    5%以内), None when it states none; and why not, when its words before and after the number
    point opposite ways."""
    before = DIRECTION_ALIASES.get(match["direction"] or "")
    after = SUFFIX_WORDS.get(match["suffix"] or "")
    if before and after and before != after:
        return None, f"「{match['direction']}」与「{match['suffix']}」方向相反，请只写一个方向"
    return before or after, None


def unit_problem(typed_unit: str, row_unit: str, example: str) -> str | None:
    """Why the text after a number is not its unit, or None when it is: a known unit word
    (`forms.UNIT_WORDS`), or the row's own 计量单位 (`row_unit`, canonical), which an office may
    fill with a unit of its own. `example` shows the cell written right (≥95%、≥50个)."""
    if typed_unit in UNIT_WORDS or unit_of(typed_unit) == row_unit:
        return None
    return (f"「{typed_unit}」不是计量单位：请只填数字和单位，如 {example}；其他单位请同时填在「计量单位」列，"
            "说明文字请写在「偏差原因分析及改进措施」列")


def result_fraction(text: str) -> tuple[str, Decimal, Decimal] | None:
    """A folded result cell split into the result typed before its bracketed fraction and that
    fraction's numerator and denominator ("96.7%(59/61)" -> "96.7%", 59, 61); None without one."""
    match = RESULT_FRACTION_RE.match(text)
    if match is None:
        return None
    return match["result"], Decimal(match["numerator"]), Decimal(match["denominator"])

"""The only place numbers and dates become text: half-up rounding on exact decimals, 万元, percentages,
dates as documents print them."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)


def round_half_up(value: Decimal, places: int = 2) -> Decimal:
    """`value` rounded half-up to `places` decimals (0.125 -> 0.13, never binary-float 0.12)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def plain_number(value: Decimal) -> str:
    """A number without exponent or trailing zeros: 5, 2.97, 0.5."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def fixed(value: Decimal, places: int = 2) -> str:
    """A number rounded half-up and shown with exactly `places` decimals (85.62, 100.00)."""
    return format(round_half_up(value, places), "f")


def money_table(amount_wan: Decimal) -> str:
    """An amount in 万元 as tables show it: two decimals (5.00)."""
    return fixed(amount_wan, 2)


def money_text(amount_wan: Decimal) -> str:
    """An amount in 万元 as running text shows it: at most two decimals, no trailing zeros (5, 2.97)."""
    return plain_number(round_half_up(amount_wan, 2))


def percent(fraction: Decimal, places: int = 2) -> str:
    """A fraction (0.8562) as a percentage with `places` decimals ("85.62%")."""
    return f"{fixed(fraction * HUNDRED, places)}%"


def quantity(value: Decimal, unit: str) -> str:
    """A measured value with its unit as typed in the workbook (74批, 99.19%)."""
    return f"{plain_number(value)}{unit}"


def score(value: Decimal) -> str:
    """A score with two decimals (14.29)."""
    return fixed(value, 2)


def weight(value: Decimal) -> str:
    """A 分值 as typed, without trailing zeros (15, 7.5)."""
    return plain_number(value)


def computed_value(value: Decimal, unit: str) -> str:
    """A value computed from 分子/分母 as the 自评表 shows it: a rate with one decimal (96.7%),
    anything else with two (12.00件, 1.08万元)."""
    return f"{fixed(value, 1 if unit == '%' else 2)}{unit}"


def chinese_date(day: date) -> str:
    """A date as a document's 成文日期 (GB/T 9704): 2021年3月15日, no leading zeros."""
    return f"{day.year}年{day.month}月{day.day}日"

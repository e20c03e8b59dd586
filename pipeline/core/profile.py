"""The scoring rules in one place, so a province's variant is a new profile, not new code."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class AtMostRule(StrEnum):
    """How a missed `≤` target scores."""

    RATIO = "ratio"  # 指标值/实际 × 分值 (the published self-evaluation form's notes)
    LINEAR = "linear"  # down linearly to 0 at twice the target (used by some systems)


@dataclass(frozen=True, slots=True)
class QualitativeBand:
    """A 定性 grade's share of the 分值: [low, high) or [low, high] when `high_inclusive`."""

    low: Decimal
    high: Decimal
    default: Decimal
    high_inclusive: bool = False

    def contains(self, share: Decimal) -> bool:
        """True when `share` (score / 分值) lies in the band."""
        return self.low <= share and (share <= self.high if self.high_inclusive else share < self.high)


@dataclass(frozen=True, slots=True)
class ScoringProfile:
    """Weights, bands and rules of one evaluation scheme (财预〔2020〕10号 by default)."""

    name: str = "财预〔2020〕10号"
    budget_weight: Decimal = Decimal(10)
    indicator_weight_total: Decimal = Decimal(90)
    at_most_rule: AtMostRule = AtMostRule.RATIO
    # Order matters: "部分达成" and "未达成" must be tried before "达成" would match their tail.
    # Left out of the hash (a dict has none) so that a profile, and the Settings holding it, can
    # still be a key; equality still compares it.
    qualitative_bands: dict[str, QualitativeBand] = field(
        hash=False,
        default_factory=lambda: {
            "部分达成": QualitativeBand(Decimal("0.6"), Decimal("0.8"), Decimal("0.7")),
            "未达成": QualitativeBand(Decimal(0), Decimal("0.6"), Decimal("0.3")),
            "达成": QualitativeBand(Decimal("0.8"), Decimal(1), Decimal(1), high_inclusive=True),
        }
    )
    met_grade: str = "达成"
    # Points of each 一级 block (湖北: 产出指标 40, 效益指标 40), checked only where a form states
    # its blocks; empty: the split of the indicator total is free. Out of the hash like the bands.
    block_totals: dict[str, Decimal] = field(hash=False, default_factory=dict)
    # (lowest total, grade), best first.
    grade_bands: tuple[tuple[Decimal, str], ...] = (
        (Decimal(90), "优"),
        (Decimal(80), "良"),
        (Decimal(60), "中"),
        (Decimal(0), "差"),
    )

    def grade_of(self, text: str) -> str | None:
        """The 定性 grade a completion text starts with (达成预期指标 -> 达成), or None."""
        return next((g for g in self.qualitative_bands if text.startswith(g)), None)


DEFAULT_PROFILE = ScoringProfile()

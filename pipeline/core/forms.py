"""What the official 项目支出绩效自评表 (财预〔2020〕10号 附件1) fixes: its sources of money and
its indicator levels, each in the form's order.

The contract accepts exactly these names (`contract/schemas.py`), and the report lists sources
and indicators in this order (`context.py`), so both read them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

FUNDING_SOURCES: tuple[str, ...] = ("财政拨款", "上年结转", "其他资金")

# 一级指标 in the form's order, each with its 二级指标 in the form's order.
LEVEL2_BY_LEVEL1: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "产出指标": ("数量指标", "质量指标", "时效指标", "成本指标"),
    "效益指标": ("经济效益指标", "社会效益指标", "生态效益指标", "可持续影响指标"),
    "满意度指标": ("服务对象满意度指标",),
    "成本指标": ("经济成本指标", "社会成本指标", "生态环境成本指标"),
})
LEVEL1_ORDER: tuple[str, ...] = tuple(LEVEL2_BY_LEVEL1)


def level_rank(level1: str, level2: str) -> tuple[int, int]:
    """Where an indicator sits in the form: its 一级's place, then its 二级's place under it.

    Names the form does not know come after the known ones; sorting by this key with a stable
    sort keeps the workbook's order among indicators of the same place.
    """
    if level1 not in LEVEL2_BY_LEVEL1:
        return len(LEVEL1_ORDER), 0
    level2s = LEVEL2_BY_LEVEL1[level1]
    return LEVEL1_ORDER.index(level1), level2s.index(level2) if level2 in level2s else len(level2s)

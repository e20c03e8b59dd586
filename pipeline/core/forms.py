"""What the official 项目支出绩效自评表 (财预〔2020〕10号 附件1) fixes: its sources of money and
its indicator levels, each in the form's order.

The contract accepts these names and the other spellings real tables use for them
(`contract/schemas.py`), and the report lists sources and indicators in this order
(`context.py`), so both read them from here. A name is shown as typed; only where it counts
(sums by source, the form's order) is it read as the form's name.
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

# Other names real tables give a source of money (湖北, 安徽, 四川 …), each with the form's name.
SOURCE_ALIASES: Mapping[str, str] = MappingProxyType({
    "当年财政拨款": "财政拨款",
    "本年财政拨款": "财政拨款",
    "财政资金": "财政拨款",
    "上年结转资金": "上年结转",
    "单位资金": "其他资金",
    "财政专户管理资金": "其他资金",
})
# Every 资金来源 accepted: the form's names first, so a message listing them starts with those.
ACCEPTED_SOURCES: tuple[str, ...] = FUNDING_SOURCES + tuple(SOURCE_ALIASES)

# Other names real tables give a 二级指标 (湖北 writes 进度指标 for 时效指标), each with the form's name.
LEVEL2_ALIASES: Mapping[str, str] = MappingProxyType({
    "进度指标": "时效指标",
    "满意度指标": "服务对象满意度指标",
})
# 二级 that real tables put under a second 一级: the cost indicators also sit under 产出指标,
# where they take the place of its 成本指标.
LEVEL2_ALSO_UNDER: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "产出指标": MappingProxyType({name: "成本指标" for name in LEVEL2_BY_LEVEL1["成本指标"]}),
})


def funding_source(typed: str) -> str:
    """The form's name of a typed 资金来源 (本年财政拨款 -> 财政拨款); an unknown name unchanged."""
    return SOURCE_ALIASES.get(typed, typed)


def form_level2(level1: str, level2: str) -> str:
    """The form's 二级 for a typed one under `level1` (进度指标 -> 时效指标, 经济成本指标 under
    产出指标 -> 成本指标); a name the form does not know unchanged."""
    level2 = LEVEL2_ALIASES.get(level2, level2)
    return LEVEL2_ALSO_UNDER.get(level1, {}).get(level2, level2)


def accepted_level2(level1: str) -> frozenset[str]:
    """Every 二级 accepted under `level1`: the form's, their other names, and those also placed
    there; empty for an 一级 the form does not know."""
    if level1 not in LEVEL2_BY_LEVEL1:
        return frozenset()
    return frozenset(name for name in (*LEVEL2_BY_LEVEL1[level1], *LEVEL2_ALIASES, *LEVEL2_ALSO_UNDER.get(level1, {}))
                     if form_level2(level1, name) in LEVEL2_BY_LEVEL1[level1])


def level_rank(level1: str, level2: str) -> tuple[int, int]:
    """Where an indicator sits in the form: its 一级's place, then its 二级's place under it.

    Names the form does not know come after the known ones; sorting by this key with a stable
    sort keeps the workbook's order among indicators of the same place.
    """
    if level1 not in LEVEL2_BY_LEVEL1:
        return len(LEVEL1_ORDER), 0
    level2s = LEVEL2_BY_LEVEL1[level1]
    level2 = form_level2(level1, level2)
    return LEVEL1_ORDER.index(level1), level2s.index(level2) if level2 in level2s else len(level2s)


# The units real tables write after a number in 年度指标值 and 实际完成值 (≥95%, ≥50个, ≤90万元),
# as compared after `headers.folded`. Text after the number that is none of these (and not the
# row's own 计量单位) is not read as a unit: "95%左右" or "96（预计）" would otherwise print words
# the office typed as a remark as if they were its unit.
UNIT_WORDS: frozenset[str] = frozenset((
    "%", "百分比", "‰", "个百分点", "百分点",
    "个", "件", "起", "宗", "例", "人", "人次", "万人", "万人次", "户", "户次", "万户", "名", "家", "所", "项", "批", "批次",
    "次", "轮", "届", "场", "场次", "台次", "车次", "架次",
    "天", "日", "周", "月", "个月", "季度", "年", "小时", "分钟", "工作日", "课时", "学时", "期", "班",
    "元", "万元", "亿元",
    "台", "套", "辆", "艘", "座", "处", "片", "间", "栋", "张", "份", "篇", "册", "本", "条", "部", "组", "门",
    "公里", "千米", "米", "平方米", "万平方米", "立方米", "亩", "万亩", "公顷", "吨", "万吨", "千克", "公斤",
    "千瓦", "千瓦时", "万千瓦时", "株", "棵", "头", "只", "种", "分", "倍",
))

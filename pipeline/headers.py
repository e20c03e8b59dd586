"""Headers that pure modules quote in messages; schemas.py uses the same constants as aliases."""

INDICATOR_SHEET = "绩效指标"
ACTUAL = "实际完成值"
SELF_SCORE = "自评得分"
DEVIATION = "偏差原因分析及改进措施"

"""Headers that pure modules quote in messages; schemas.py uses the same constants as aliases.
And how typed text is compared with them: `folded`."""

import unicodedata

INDICATOR_SHEET = "绩效指标"
PROJECT_SHEET = "项目"
ACTUAL = "实际完成值"
TARGET = "年度指标值"
SELF_SCORE = "自评得分"
DEVIATION = "偏差原因分析及改进措施"
# Sheet 项目's narrative columns, which the contradiction warnings of `narrative.py` name.
OVERVIEW = "项目概况"
PERFORMANCE = "完成情况"
BUDGET_DEVIATION = "预算执行偏差原因"
PROBLEMS = "存在问题"
IMPROVEMENTS = "改进措施"
SIGNATURE = "署名"
REPORT_DATE = "报告日期"


def folded(text: str) -> str:
    """Text as compared, not as shown: NFKC (full-width digits, letters and brackets to their
    ordinary forms) without any white space or line break. Headers and typed units alike."""
    return "".join(unicodedata.normalize("NFKC", text).split())

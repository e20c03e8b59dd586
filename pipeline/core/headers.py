"""Headers that pure modules quote in messages; schemas.py uses the same constants as aliases.
And how typed text is compared with them: `folded`."""

import unicodedata

INDICATOR_SHEET = "绩效指标"
ACTUAL = "实际完成值"
SELF_SCORE = "自评得分"
DEVIATION = "偏差原因分析及改进措施"


def folded(text: str) -> str:
    """Text as compared, not as shown: NFKC (full-width digits, letters and brackets to their
    ordinary forms) without any white space or line break. Headers and typed units alike."""
    return "".join(unicodedata.normalize("NFKC", text).split())

"""The body text of the two templates, as (style name, paragraph text) pairs, and the shared ending.

Each paragraph is one run, so every docxtpl tag stays whole. `{%p … %}` paragraphs disappear
from the report and only decide how often the paragraphs between them appear. Where the
workbook may hold nothing, the full report prints a neutral sentence that is true whatever the
data ("无。"), never an invented fact.
"""

from __future__ import annotations

# (style name, text) or (style name, text, keep with next): one paragraph each.
Block = tuple[str, str] | tuple[str, str, bool]


def kept(blocks: list[Block]) -> list[Block]:
    """The same paragraphs, each kept on the page of the next: the end of the text moves to a
    new page together with the 署名 and 成文日期 rather than leaving them alone on the last page
    (GB/T 9704 7.3.5.1 wants the seal within a line of the text above)."""
    return [(block[0], block[1], True) for block in blocks]


N = "Normal"  # the body style (正文 in Chinese Word and WPS)
H1 = "一级标题"
H2 = "二级标题"


def each(items: str, var: str, line: str, otherwise: str | None = None) -> list[Block]:
    """One Normal paragraph per item of a list variable, or `otherwise` when it is empty."""
    blocks = [(N, f"{{%p for {var} in {items} %}}"), (N, line)]
    if otherwise is not None:
        blocks += [(N, "{%p else %}"), (N, otherwise)]
    return [*blocks, (N, "{%p endfor %}")]


def when(condition: str, *lines: Block) -> list[Block]:
    """Paragraphs printed only when `condition` holds."""
    return [(N, f"{{%p if {condition} %}}"), *lines, (N, "{%p endif %}")]


def principles_blocks() -> list[Block]:
    """One principle reads as prose in the source reports; several are a numbered list."""
    return [
        (N, "{%p if principles|length == 1 %}"),
        (N, "{{ principles[0] }}"),
        (N, "{%p elif principles %}"),
        *each("principles", "p", "{{ loop.index }}. {{ p }}"),
        (N, "{%p else %}"),
        (N, "无。"),
        (N, "{%p endif %}"),
    ]


def conclusion_blocks() -> list[Block]:
    """评价结论 (score and grade, then the 评分说明 naming the scoring rules that gave them, where a
    reader of the grade asks what it means) with (一)存在的问题及原因 and (二)下一步改进措施 when
    the workbook has them; the improvements are (一) when there are no problems, so the numbering
    never skips. Any of them may be the text's last paragraph, so all stay with the ending."""
    return kept([
        (N, "{{ conclusion }}{{ scoring_note }}"),
        *when("problems", (H2, "（一）存在的问题及原因"), *each("problems", "para", "{{ para }}")),
        *when("improvements", (H2, "{% if problems %}（二）{% else %}（一）{% endif %}下一步改进措施"),
              *each("improvements", "para", "{{ para }}")),
    ])


def report_outline() -> list[Block]:
    """report.docx: the county's short report (一、项目情况 … 四、评价结论)."""
    return [
        ("报告标题", "{{ title }}"),
        (H1, "一、项目情况"),
        *each("overview", "para", "{{ para }}"),
        *when("money_sentence", (N, "{{ money_sentence }}")),
        *when("goal_sentence", (N, "{{ goal_sentence }}")),
        (H1, "二、使用原则"),
        *principles_blocks(),
        (H1, "三、项目绩效"),
        *each("performance", "para", "{{ para }}", otherwise="无。"),
        (H1, "四、评价结论"),
        *conclusion_blocks(),
    ]


def indicator_analysis(title: str, condition: str) -> list[Block]:
    """One numbered paragraph per indicator of a group: target, actual, score, deviation."""
    line = ("{{ loop.index }}. {{ ind.name }}：年度指标值{{ ind.target }}，实际完成值{{ ind.actual }}"
            "{% if ind.fraction %}（{{ ind.fraction }}）{% endif %}，得分{{ ind.score }}分（分值{{ ind.weight }}分）。"
            "{% if ind.deviation %}偏差原因分析及改进措施：{{ ind.deviation }}{% endif %}")
    return [
        (H2, title),
        (N, f"{{%p for ind in indicators if {condition} %}}"),
        (N, line),
        (N, "{%p else %}"),
        (N, "无。"),
        (N, "{%p endfor %}"),
    ]


# 财预〔2020〕10号's common indicators count 成本 under 产出; everything else (效益, 满意度 and
# groups of the office's own) is analysed as 效益.
OUTPUT_GROUP = "ind.level1 in ('产出指标', '成本指标')"


def full_outline() -> list[Block]:
    """full_report.docx: the outline of 财预〔2020〕10号 附件3 (项目支出绩效评价报告参考提纲)."""
    return [
        ("报告标题", "{{ title }}"),
        (H1, "一、基本情况"),
        (H2, "（一）项目概况"),
        *each("overview", "para", "{{ para }}"),
        *when("money_sentence", (N, "{{ money_sentence }}")),
        (N, "{%p if principles|length == 1 %}"),
        (N, "项目资金使用原则：{{ principles[0] }}"),
        (N, "{%p elif principles %}"),
        (N, "项目资金按以下原则使用："),
        *each("principles", "p", "{{ loop.index }}. {{ p }}"),
        (N, "{%p endif %}"),
        (H2, "（二）项目绩效目标"),
        *when("goal_sentence", (N, "{{ goal_sentence }}")),
        (N, "{%p if indicators %}"),
        (N, "项目共设置{{ indicators|length }}项绩效指标，各项指标的年度指标值见附件。"),
        (N, "{%p elif not goal_sentence %}"),
        (N, "无。"),
        (N, "{%p endif %}"),
        (H1, "二、绩效评价工作开展情况"),
        (H2, "（一）绩效评价目的、对象和范围"),
        (N, "本次评价的对象为{{ project_name }}项目，范围为该项目{{ year }}年度预算资金的使用情况和绩效目标的完成情况。"
            "评价的目的是了解资金使用效果，总结经验，查找问题，提高财政资金使用效益。"),
        (H2, "（二）绩效评价原则、评价指标体系、评价方法和标准"),
        # The 办法 is the legal basis whatever the profile; the scoring rules (weights, grade
        # bands) are the profile's and named by it in the 评分说明 that closes the paragraph.
        (N, "评价依据《项目支出绩效评价管理办法》（财预〔2020〕10号），采取单位自评方式，"
            "遵循科学公正、统筹兼顾、激励约束、公开透明的原则。"
            "评价指标由预算执行率和{{ indicators|length }}项绩效指标组成，"
            "各项指标按实际完成值与年度指标值的对比计分。{{ scoring_note }}"),
        (H2, "（三）绩效评价工作过程"),
        (N, "对照年初设定的绩效目标，核对项目预算执行数据和各项绩效指标的实际完成情况，逐项计分，形成本报告。"),
        (H1, "三、综合评价情况及评价结论"),
        *each("performance", "para", "{{ para }}"),
        (N, "{{ conclusion }}各项指标的得分见附件。"),
        (H1, "四、绩效评价指标分析"),
        (H2, "（一）项目决策情况"),
        (N, "项目的立项依据和年度绩效目标见本报告第一部分。"),
        (H2, "（二）项目过程情况"),
        (N, "项目全年预算数{{ budget.adjusted_text }}万元，全年执行数{{ budget.spent_text }}万元，"
            "预算执行率{{ budget.rate }}，得分{{ budget.score }}分（分值{{ budget.weight }}分）。"),
        *indicator_analysis("（三）项目产出情况", OUTPUT_GROUP),
        *indicator_analysis("（四）项目效益情况", f"not ({OUTPUT_GROUP})"),
        (H1, "五、主要经验及做法、存在的问题及原因分析"),
        *each("problems", "para", "{{ para }}", otherwise="无。"),
        (H1, "六、有关建议"),
        *each("improvements", "para", "{{ para }}", otherwise="无。"),
        (H1, "七、其他需要说明的问题"),
        *kept([(N, "无。")]),
    ]


# The ending both templates share (GB/T 9704 7.3.4 and 7.3.5.1): 附件说明 one line below the
# text, then 署名 centred over the 成文日期, which is right-aligned four characters in.
ENDING: tuple[Block, ...] = (
    ("附件说明", "附件：项目支出绩效自评表"),
    ("署名", "\t{{ signature }}"),
    ("成文日期", "{{ report_date }}"),
)

OUTLINES = {"report": report_outline, "full": full_outline}

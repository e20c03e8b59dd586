"""Tests of pipeline/docx/render.py: real .docx files rendered, then opened again with python-docx."""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
import pytest
from docx.document import Document as DocumentObject

from pipeline.docx.render import Renderer, jinja_environment, template_variables
from pipeline.errors import TemplateInvalid

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = ROOT / "templates" / "report.docx"
TEMPLATE_SCRIPT = ROOT / "scripts" / "make_template.py"

# Text a clerk may type that must reach the report verbatim: XML specials, Jinja look-alikes,
# an emoji outside the BMP and a CJK Extension B character.
SPECIAL = '<b> & "引号" {{ x }} {% if %} 😀 𠀀'

CONTRACT_KEYS = {
    "title",
    "project_id",
    "project_name",
    "year",
    "department",
    "implementing_unit",
    "overview",
    "money_sentence",
    "annual_goal",
    "principles",
    "performance",
    "budget",
    "funding",
    "indicators",
    "weight_total",
    "total_score",
    "grade",
    "goal_sentence",
    "budget_deviation",
    "sources",
    "conclusion",
    "scoring_rule",
    "scoring_note",
    "problems",
    "improvements",
    "signature",
    "report_date",
    "report_date_iso",
}

SAMPLE_CONTEXT: dict[str, object] = {
    "title": "领导接访费用绩效评价报告",
    "project_id": "XF-2020-01",
    "project_name": "领导接访费用",
    "year": "2020",
    "department": "如皋市信访局",
    "implementing_unit": "如皋市信访局办公室",
    "overview": [
        "根据《关于印发〈南通市信访工作要点〉的通知》，市委市政府主要领导每月安排一天时间在信访局接访。",
        f"为做好领导接访工作，我局需按领导批示交办来访事项。{SPECIAL}",
    ],
    "money_sentence": "2020年度领导接访费用5万元使用完毕。",
    "annual_goal": "保障市党政领导按要求完成接访工作。",
    "goal_sentence": "该项目年度总体目标是：保障市党政领导按要求完成接访工作。",
    "principles": [
        "充分发挥资金使用效能。",
        f"发挥领导接访包案机制作用。{SPECIAL}",
        "保障市党政领导按要求完成接访工作要求。",
    ],
    "performance": ["2020年度市信访局推动市党政领导接待信访群众 74 批 74 人次。"],
    "budget": {
        "initial": "5.00",
        "adjusted": "5.00",
        "spent": "5.00",
        "rate": "100.00%",
        "weight": "10",
        "score": "10.00",
        "balance": "0.00",
    },
    "budget_deviation": "",
    "funding": [{"source": "财政拨款", "initial": "5.00", "adjusted": "5.00", "spent": "5.00"}],
    "sources": [
        {"label": "财政拨款", "initial": "5.00", "adjusted": "5.00", "spent": "5.00"},
        {"label": "上年结转", "initial": "", "adjusted": "", "spent": ""},
        {"label": "其他资金", "initial": "", "adjusted": "", "spent": ""},
    ],
    "indicators": [
        {
            "level1": "产出指标",
            "level2": "数量指标",
            "name": "接待信访群众批次",
            "target": "≥60批",
            "actual": "74批",
            "unit": "批",
            "weight": "20",
            "score": "20.00",
            "deviation": "",
            "fraction": "",
        },
        {
            "level1": "效益指标",
            "level2": "社会效益指标",
            "name": f"信访积案化解率{SPECIAL}",
            "target": "≥90%",
            "actual": "85.7%",
            "unit": "%",
            "weight": "15",
            "score": "14.29",
            "deviation": f"个别积案历史久远{SPECIAL}",
            "fraction": "12/14",
        },
    ],
    "weight_total": "100",
    "total_score": "96.34",
    "grade": "优",
    "conclusion": "经自评，该项目得分96.34分，评价等级为优。",
    "scoring_rule": "财预〔2020〕10号",
    "scoring_note": ("本次评价按「财预〔2020〕10号」评分规则计分：预算执行率10分，绩效指标90分，满分100分；"
                     "按总分确定评价等级，90分（含）以上为优、80分（含）至90分为良、60分（含）至80分为中、60分以下为差。"),
    "problems": ["个别事项办结用时较长。"],
    "improvements": [f"落实包案机制。{SPECIAL}"],
    "signature": "如皋市信访局",
    "report_date": "2021年3月15日",
    "report_date_iso": "2021-03-15",
}


def sample_context(**changes: object) -> dict[str, object]:
    """A deep copy of the sample context with some keys replaced."""
    context = copy.deepcopy(SAMPLE_CONTEXT)
    context.update(changes)
    return context


def reopen(data: bytes) -> DocumentObject:
    """The rendered bytes opened again with python-docx."""
    return docx.Document(io.BytesIO(data))


def texts(document: DocumentObject) -> list[str]:
    """Text of every body paragraph outside tables."""
    return [paragraph.text for paragraph in document.paragraphs]


def make_template(path: Path, *paragraphs: str, header: str | None = None) -> Path:
    """A small template built with python-docx, one run per paragraph so tags stay whole."""
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph().add_run(text)
    if header is not None:
        document.sections[0].header.paragraphs[0].add_run(header)
    document.save(str(path))
    return path


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """The shipped default template, loaded once."""
    return Renderer.from_path(DEFAULT_TEMPLATE)


@pytest.fixture(scope="module")
def report(renderer: Renderer) -> DocumentObject:
    """The default template rendered with the sample context."""
    return reopen(renderer.render(SAMPLE_CONTEXT))


def test_default_template_renders_title_headings_and_paragraphs(report: DocumentObject) -> None:
    body = texts(report)
    assert body[0] == "领导接访费用绩效评价报告"
    for heading in ("一、项目情况", "二、使用原则", "三、项目绩效", "四、评价结论", "附件"):
        assert heading in body
    for paragraph in SAMPLE_CONTEXT["overview"]:  # type: ignore[union-attr]
        assert paragraph in body
    assert "2020年度领导接访费用5万元使用完毕。" in body
    assert "该项目年度总体目标是：保障市党政领导按要求完成接访工作。" in body
    assert "2020年度市信访局推动市党政领导接待信访群众 74 批 74 人次。" in body
    assert body[body.index("四、评价结论") + 1] == f"经自评，该项目得分96.34分，评价等级为优。{SAMPLE_CONTEXT['scoring_note']}"
    assert not any(text.startswith("实施单位：") for text in body)
    assert not any(text.startswith("{%") for text in body)


def test_default_template_uses_named_styles(report: DocumentObject) -> None:
    styles = {paragraph.text: paragraph.style.name for paragraph in report.paragraphs}
    assert styles["领导接访费用绩效评价报告"] == "报告标题"
    assert styles["一、项目情况"] == "一级标题"
    # Body text is Word's built-in Normal (正文 in Chinese Word), not a custom style named 正文.
    assert styles["2020年度领导接访费用5万元使用完毕。"] == "Normal"
    assert styles["（一）存在的问题及原因"] == "二级标题"
    assert styles["2021年3月15日"] == "成文日期"
    assert "正文" not in {style.name for style in report.styles}


def test_special_characters_appear_exactly_as_typed(report: DocumentObject) -> None:
    body = texts(report)
    assert f"为做好领导接访工作，我局需按领导批示交办来访事项。{SPECIAL}" in body
    assert f"2. 发挥领导接访包案机制作用。{SPECIAL}" in body
    cells = [cell.text for table in report.tables for row in table.rows for cell in row.cells]
    assert f"信访积案化解率{SPECIAL}" in cells
    assert f"个别积案历史久远{SPECIAL}" in cells


def test_form_head_has_the_budget_row_and_the_three_sources(report: DocumentObject) -> None:
    rows = [[cell.text for cell in row.cells] for row in report.tables[0].rows]
    assert rows[0][:2] == ["项目名称", "领导接访费用"]
    assert rows[1] == ["主管部门"] + ["如皋市信访局"] * 3 + ["实施单位"] + ["如皋市信访局办公室"] * 3
    budget = next(row for row in rows if row[1] == "年度资金总额")
    assert budget[2:] == ["5.00", "5.00", "5.00", "10", "100.00%", "10.00"]
    sources = [row[1:] for row in rows if row[1].endswith(("财政拨款", "上年结转", "其他资金"))]
    assert sources == [
        ["其中：财政拨款", "5.00", "5.00", "5.00", "—", "—", "—"],
        ["\u3000\u3000\u3000上年结转", "", "", "", "—", "—", "—"],
        ["\u3000\u3000\u3000其他资金", "", "", "", "—", "—", "—"],
    ]


def test_indicator_table_has_one_row_per_indicator_then_total_and_grade(report: DocumentObject) -> None:
    rows = [[cell.text for cell in row.cells] for row in report.tables[1].rows]
    # The label 绩效指标 starts in the first indicator row (merged down from there), so that the header
    # row a new page repeats is whole on its own.
    assert rows[0] == ["", "一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "分值", "得分",
                       "偏差原因分析\n及改进措施"]
    assert rows[1][0] == rows[2][0] == "绩\n效\n指\n标"
    assert rows[1][1:] == ["产出指标", "数量指标", "接待信访群众批次", "≥60批", "74批", "20", "20.00", ""]
    # A rate from 分子/分母 has its count below it.
    assert rows[2][1:8] == ["效益指标", "社会效益指标", f"信访积案化解率{SPECIAL}", "≥90%", "85.7%\n（12/14）",
                            "15", "14.29"]
    assert rows[3] == ["总分"] * 6 + ["100", "96.34", ""]
    assert rows[4] == ["自评等级"] * 6 + ["优", "优", ""]
    assert len(rows) == 5


def test_table_header_row_repeats_and_has_borders(report: DocumentObject) -> None:
    table = report.tables[1]
    assert table.rows[0]._tr.xpath("./w:trPr/w:tblHeader")
    assert table._tbl.xpath("./w:tblPr/w:tblBorders/w:insideH[@w:val='single']")


def test_no_indicators_leaves_the_header_total_and_grade_rows(renderer: Renderer) -> None:
    document = reopen(renderer.render(sample_context(indicators=[])))
    rows = [[cell.text for cell in row.cells] for row in document.tables[1].rows]
    assert [row[1] for row in rows] == ["一级指标", "总分", "自评等级"]


def test_one_principle_is_a_single_paragraph_without_number(renderer: Renderer) -> None:
    principle = "主要用于驻京驻宁导访经费，严格管理，厉行节约。"
    body = texts(reopen(renderer.render(sample_context(principles=[principle]))))
    assert principle in body
    assert not any(text.startswith("1.") for text in body)


def test_several_principles_are_numbered(renderer: Renderer) -> None:
    body = texts(reopen(renderer.render(sample_context(principles=["甲。", "乙。", "丙。"]))))
    start = body.index("二、使用原则")
    assert body[start + 1 : start + 4] == ["1. 甲。", "2. 乙。", "3. 丙。"]


def test_missing_principles_performance_and_goal_read_as_none(renderer: Renderer) -> None:
    context = sample_context(principles=[], performance=[], annual_goal="", goal_sentence="")
    body = texts(reopen(renderer.render(context)))
    assert body[body.index("二、使用原则") + 1] == "无。"
    assert body[body.index("三、项目绩效") + 1] == "无。"
    assert not any(text.startswith("该项目年度总体目标") for text in body)


def test_renderer_renders_each_context_afresh(renderer: Renderer) -> None:
    first = texts(reopen(renderer.render(sample_context(title="甲项目绩效评价报告"))))
    second = texts(reopen(renderer.render(sample_context(title="乙项目绩效评价报告"))))
    assert first[0] == "甲项目绩效评价报告"
    assert second[0] == "乙项目绩效评价报告"


def test_renderer_does_not_change_the_context(renderer: Renderer) -> None:
    context = sample_context()
    renderer.render(context)
    assert context == SAMPLE_CONTEXT


def test_renderer_survives_pickling_for_worker_processes(renderer: Renderer) -> None:
    clone = pickle.loads(pickle.dumps(renderer))
    assert texts(reopen(clone.render(SAMPLE_CONTEXT)))[0] == "领导接访费用绩效评价报告"


def test_control_characters_in_data_cannot_break_the_document(renderer: Renderer) -> None:
    # \a and \f would become a new paragraph and a page break in docxtpl; \x0b is illegal XML.
    context = sample_context(money_sentence="甲\a乙\f丙\x0b丁")
    body = texts(reopen(renderer.render(context)))
    assert "甲乙丙丁" in body


def test_page_setup_is_a4_with_official_margins(report: DocumentObject) -> None:
    section = report.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    margins = (section.top_margin, section.bottom_margin, section.left_margin, section.right_margin)
    assert [round(margin.mm) for margin in margins] == [37, 35, 28, 26]


def test_styles_carry_east_asian_fonts() -> None:
    styles_xml = zipfile.ZipFile(DEFAULT_TEMPLATE).read("word/styles.xml").decode("utf-8")
    for font in ("仿宋_GB2312", "黑体", "楷体_GB2312", "方正小标宋简体"):
        assert f'w:eastAsia="{font}"' in styles_xml
    document = docx.Document(str(DEFAULT_TEMPLATE))
    for name in ("Normal", "报告标题", "一级标题", "二级标题", "表格文字", "署名", "成文日期"):
        rfonts = document.styles[name].element.xpath("./w:rPr/w:rFonts")
        assert rfonts and rfonts[0].get(
            "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia"
        ), name
    # Theme fonts would win over the explicit names and map to MS Mincho.
    assert "eastAsiaTheme" not in styles_xml.split("</w:docDefaults>")[0]


def test_footer_contains_a_page_field(report: DocumentObject) -> None:
    section = report.sections[0]
    for footer in (section.footer, section.even_page_footer):
        instructions = footer._element.xpath(".//w:instrText/text()")
        assert any("PAGE" in text for text in instructions)
        assert footer.paragraphs[0].text.startswith("— ")


def test_header_values_are_escaped_too(tmp_path: Path) -> None:
    path = make_template(tmp_path / "header.docx", "{{ title }}", header="{{ title }}")
    document = reopen(Renderer.from_path(path).render({"title": SPECIAL}))
    assert document.sections[0].header.paragraphs[0].text == SPECIAL
    assert document.paragraphs[0].text == SPECIAL


def test_unknown_variable_raises_template_invalid_naming_it(tmp_path: Path) -> None:
    path = make_template(tmp_path / "typo.docx", "{{ title }}", "{{ projcet_name }}")
    with pytest.raises(TemplateInvalid, match="typo.docx.*projcet_name"):
        Renderer.from_path(path).render(SAMPLE_CONTEXT)


def test_unknown_field_raises_template_invalid_naming_it(tmp_path: Path) -> None:
    path = make_template(tmp_path / "field.docx", "{{ budget.adjustd }}")
    with pytest.raises(TemplateInvalid, match="field.docx.*adjustd"):
        Renderer.from_path(path).render(SAMPLE_CONTEXT)


def test_sandbox_escape_raises_template_invalid(tmp_path: Path) -> None:
    path = make_template(tmp_path / "escape.docx", "{{ ''.__class__.__mro__ }}")
    with pytest.raises(TemplateInvalid, match="escape.docx.*不允许"):
        Renderer.from_path(path).render(SAMPLE_CONTEXT)


def test_shell_command_through_globals_is_refused(tmp_path: Path) -> None:
    path = make_template(tmp_path / "popen.docx", "{{ cycler.__init__.__globals__.os }}")
    with pytest.raises(TemplateInvalid, match="popen.docx.*不允许"):
        Renderer.from_path(path).render(SAMPLE_CONTEXT)


def test_syntax_error_is_refused_when_the_template_is_loaded(tmp_path: Path) -> None:
    path = make_template(tmp_path / "broken.docx", "{%p for para in overview %}", "{{ para }}")
    with pytest.raises(TemplateInvalid, match="broken.docx.*语法"):
        Renderer.from_path(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip", b"PK\x03\x04garbage"],
    ids=["empty", "text", "broken-zip"],
)
def test_a_file_that_is_not_a_docx_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "坏模板.docx"
    path.write_bytes(content)
    with pytest.raises(TemplateInvalid, match="坏模板.docx"):
        Renderer.from_path(path)


def test_a_missing_template_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateInvalid, match="absent.docx"):
        Renderer.from_path(tmp_path / "absent.docx")


def test_default_template_reads_only_contract_variables() -> None:
    variables = template_variables(DEFAULT_TEMPLATE)
    assert variables <= CONTRACT_KEYS
    assert {"title", "overview", "principles", "indicators", "grade"} <= variables


def test_environment_is_sandboxed_strict_and_escaping() -> None:
    env = jinja_environment()
    assert env.autoescape is True
    assert env.from_string("{{ v }}").render(v="<&>") == "&lt;&amp;&gt;"
    assert env.from_string("{{ v }}").render(v="{{ 7 * 7 }}") == "{{ 7 * 7 }}"


def test_shipped_template_is_what_the_script_builds(tmp_path: Path) -> None:
    built = tmp_path / "report.docx"
    subprocess.run([sys.executable, str(TEMPLATE_SCRIPT), str(built)], check=True, cwd=ROOT)
    with zipfile.ZipFile(built) as fresh, zipfile.ZipFile(DEFAULT_TEMPLATE) as shipped:
        for part in ("word/document.xml", "word/styles.xml", "word/settings.xml"):
            assert fresh.read(part) == shipped.read(part), part


def test_the_template_script_rebuilds_the_shipped_template_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_template.py"), str(tmp_path / "report.docx")],
                   check=True, capture_output=True, timeout=120)
    assert (tmp_path / "report.docx").read_bytes() == DEFAULT_TEMPLATE.read_bytes()

"""The shipped templates as Word reads them: fonts, styles, settings, properties, sections, the 附件 form.

Reports are made by the pipeline's own steps (the functions the Prefect flow wires) from a copy
of the shipped example workbook in which one project asks for full_report.docx; the .docx files
are then read back as zips. What is checked is what an office's Word sees: fontTable.xml,
styles.xml, settings.xml, docProps, the section properties, the runs and the form's cells.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
from lxml import etree

from pipeline.docx.render import Renderer
from tests.inprocess import reports_of

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
SHIPPED = {"report": TEMPLATES / "report.docx", "full": TEMPLATES / "full_report.docx"}
EPOCH = "1700000000"
FULL_PROJECT = "RG2020-001"  # 领导接访费用, rendered with full_report.docx here
FORM_PROJECT = "RG2020-004"  # 信访救助专项资金: two funding sources, 59/61, not fully spent

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W_NS, "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
      "dc": "http://purl.org/dc/elements/1.1/", "dcterms": "http://purl.org/dc/terms/",
      "ep": "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"}


def w(name: str) -> str:
    """A w: attribute or tag in Clark notation."""
    return f"{{{W_NS}}}{name}"


@dataclass(frozen=True)
class Report:
    """One generated report: its parts parsed, and the context it was rendered from."""

    name: str
    parts: dict[str, etree._Element]
    raw: dict[str, bytes]
    context: dict[str, object]

    @property
    def body(self) -> etree._Element:
        return self.parts["word/document.xml"].find("w:body", NS)

    def paragraphs(self) -> list[etree._Element]:
        """Body paragraphs outside tables, in order."""
        return self.body.findall("w:p", NS)

    def tables(self) -> list[etree._Element]:
        return self.body.findall("w:tbl", NS)


def plain_text(element: etree._Element) -> str:
    """The text of a run or paragraph, tabs included."""
    return "".join("\t" if node.tag == w("tab") else node.text or ""
                   for node in element.iter(w("t"), w("tab")) if node.getparent().tag == w("r"))


def text_of(element: etree._Element) -> str:
    """The text of a run, paragraph or cell (a cell's paragraphs joined by newlines)."""
    if element.tag in (w("r"), w("p")):
        return plain_text(element)
    return "\n".join(plain_text(p) for p in element.findall(".//w:p", NS))


def style_of(paragraph: etree._Element) -> str | None:
    """The paragraph's style id; None means Normal."""
    node = paragraph.find("w:pPr/w:pStyle", NS)
    return None if node is None else node.get(w("val"))


def read_report(path: Path, context: dict[str, object]) -> Report:
    with zipfile.ZipFile(path) as archive:
        raw = {name: archive.read(name) for name in archive.namelist()}
    parts = {name: etree.fromstring(data) for name, data in raw.items() if name.endswith(".xml")}
    return Report(path.name, parts, raw, context)


def generate(workbook: Path, output_dir: Path) -> dict[str, Report]:
    """Run the pipeline's steps on `workbook`; the reports by project id."""
    reports_dir, contexts = reports_of(workbook, output_dir)
    reports = {}
    for path in sorted(reports_dir.glob("*.docx")):
        reports[path.name.split("_")[0]] = read_report(path, contexts[path.name])
    return reports


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    """The example's reports, one project switched to full_report.docx through the 模板 column."""
    root = tmp_path_factory.mktemp("template-word")
    [example] = sorted((ROOT / "input").glob("*.xlsx"))
    book = openpyxl.load_workbook(example)
    sheet = book["项目"]
    header_row = next(row for row in sheet.iter_rows() if any(cell.value == "模板" for cell in row))
    template_column = next(cell.column for cell in header_row if cell.value == "模板")
    id_column = next(cell.column for cell in header_row if cell.value == "项目编号")
    for row in range(header_row[0].row + 1, sheet.max_row + 1):
        if sheet.cell(row, id_column).value == FULL_PROJECT:
            sheet.cell(row, template_column).value = "full_report.docx"
    workbook = root / example.name
    book.save(workbook)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", EPOCH)
        return generate(workbook, root / "output")


@pytest.fixture(scope="module")
def form(reports: dict[str, Report]) -> Report:
    """The report of the 信访救助 project (short template)."""
    return reports[FORM_PROJECT]


@pytest.fixture(scope="module")
def full(reports: dict[str, Report]) -> Report:
    """The report of the 领导接访 project (full template)."""
    return reports[FULL_PROJECT]


FALLBACKS = {"仿宋_GB2312": "仿宋", "楷体_GB2312": "楷体", "方正小标宋简体": "宋体", "黑体": "SimHei", "宋体": "SimSun"}


def test_font_table_names_each_chinese_font_with_a_fallback(form: Report) -> None:
    fonts = {font.get(w("name")): font for font in form.parts["word/fontTable.xml"].findall("w:font", NS)}
    for name, fallback in FALLBACKS.items():
        assert name in fonts, f"fontTable.xml lacks {name}"
        assert fonts[name].find("w:altName", NS).get(w("val")) == fallback
        assert fonts[name].find("w:charset", NS).get(w("val")) == "86"  # GB2312
    assert fonts["仿宋_GB2312"].find("w:panose1", NS).get(w("val")) == "02010609030101010101"
    # The blank document's Japanese and Mac leftovers are gone.
    assert not {"ＭＳ 明朝", "ＭＳ ゴシック", "Cambria", "Calibri"} & set(fonts)


def test_every_font_the_report_names_is_in_the_font_table(form: Report) -> None:
    table = {font.get(w("name")) for font in form.parts["word/fontTable.xml"].findall("w:font", NS)}
    used = set()
    for name, part in form.parts.items():
        if name.startswith("word/") and name != "word/fontTable.xml":
            for rfonts in part.iter(w("rFonts")):
                used |= {rfonts.get(w(attr)) for attr in ("ascii", "hAnsi", "eastAsia", "cs")} - {None}
    assert used and used <= table, used - table


def styles_by_id(report: Report) -> dict[str, etree._Element]:
    return {style.get(w("styleId")): style for style in report.parts["word/styles.xml"].findall("w:style", NS)}


def style_name(style: etree._Element) -> str:
    return style.find("w:name", NS).get(w("val"))


def test_no_custom_style_is_named_正文_and_body_text_is_normal(form: Report) -> None:
    styles = styles_by_id(form)
    names = {style_name(style) for style in styles.values()}
    assert "正文" not in names
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    for name in ("报告标题", "一级标题", "二级标题", "附件说明", "署名", "成文日期", "附件标识", "附件标题",
                 "附件副标题", "表格文字", "表格文字（居左）", "表格文字（相同合并）", "表格标题行", "页码"):
        assert name in names and name in readme, name
    assert style_name(styles["ReportTableMerge"]) == "表格文字（相同合并）"
    normal = styles["Normal"]
    assert normal.get(w("default")) == "1" and style_name(normal) == "Normal"
    assert normal.find("w:rPr/w:rFonts", NS).get(w("eastAsia")) == "仿宋_GB2312"
    assert normal.find("w:rPr/w:sz", NS).get(w("val")) == "32"  # 三号
    overview = form.context["overview"]
    assert isinstance(overview, list)
    body = {text_of(p): style_of(p) for p in form.paragraphs()}
    for paragraph in overview:
        assert body[paragraph] is None  # no w:pStyle: Normal
    assert body[f"{form.context['conclusion']}{form.context['scoring_note']}"] is None


def test_body_runs_carry_the_east_asian_hint(form: Report) -> None:
    runs = [run for run in form.body.iter(w("r")) if run.find("w:t", NS) is not None]
    assert len(runs) > 50
    unhinted = [text_of(run) for run in runs
                if run.find("w:rPr/w:rFonts", NS) is None
                or run.find("w:rPr/w:rFonts", NS).get(w("hint")) != "eastAsia"]
    assert not unhinted
    quoted = [run for run in runs if "“" in text_of(run)]
    assert quoted, "the example's text has Chinese quotes"


def test_compatibility_mode_is_word_2013(form: Report) -> None:
    settings = form.parts["word/settings.xml"]
    modes = [node.get(w("val")) for node in settings.iter(w("compatSetting")) if node.get(w("name")) == "compatibilityMode"]
    assert modes == ["15"]
    assert settings.find("w:evenAndOddHeaders", NS) is not None


def test_core_properties_carry_the_reports_title_signature_and_date(form: Report) -> None:
    core = form.parts["docProps/core.xml"]
    assert core.find("dc:title", NS).text == form.context["title"]
    assert core.find("dc:creator", NS).text == form.context["signature"]
    day = str(form.context["report_date_iso"])
    for tag in ("dcterms:created", "dcterms:modified"):
        assert core.find(tag, NS).text.startswith(day), tag
    raw = form.raw["docProps/core.xml"].decode("utf-8")
    assert "2013" not in raw and "模板" not in raw


def test_application_is_perfreport_not_another_program(form: Report) -> None:
    app = form.parts["docProps/app.xml"]
    assert app.find("ep:Application", NS).text == "perfreport"
    raw = form.raw["docProps/app.xml"].decode("utf-8")
    assert "Macintosh" not in raw and "Microsoft" not in raw and "AppVersion" not in raw


@pytest.mark.parametrize("template", sorted(SHIPPED))
def test_template_properties_are_tags_and_a_neutral_date(template: str) -> None:
    with zipfile.ZipFile(SHIPPED[template]) as archive:
        core = archive.read("docProps/core.xml").decode("utf-8")
        app = archive.read("docProps/app.xml").decode("utf-8")
    assert "<dc:title>{{ title }}</dc:title>" in core
    assert core.count("1980-01-01T00:00:00Z") == 2
    assert "2013" not in core and "绩效评价报告模板" not in core and "Macintosh" not in app


def twips(element: etree._Element, attr: str) -> int:
    return int(element.get(w(attr)))


def mm(value: int) -> float:
    return value * 25.4 / 1440


def type_area(sect: etree._Element) -> tuple[int, int]:
    """Width and height of a section's type area in twips."""
    size, margins = sect.find("w:pgSz", NS), sect.find("w:pgMar", NS)
    return (twips(size, "w") - twips(margins, "left") - twips(margins, "right"),
            twips(size, "h") - twips(margins, "top") - twips(margins, "bottom"))


def body_section(report: Report) -> tuple[etree._Element, etree._Element]:
    """The paragraph ending the body section and its w:sectPr."""
    [carrier] = [p for p in report.paragraphs() if p.find("w:pPr/w:sectPr", NS) is not None]
    return carrier, carrier.find("w:pPr/w:sectPr", NS)


def test_body_section_is_a4_portrait_with_the_official_margins(form: Report) -> None:
    _, sect = body_section(form)
    size, margins = sect.find("w:pgSz", NS), sect.find("w:pgMar", NS)
    assert (round(mm(twips(size, "w"))), round(mm(twips(size, "h")))) == (210, 297)
    assert [round(mm(twips(margins, side))) for side in ("top", "bottom", "left", "right")] == [37, 35, 28, 26]


def test_page_number_dash_lies_seven_mm_below_the_type_area(form: Report) -> None:
    # 宋体 四号's line is one em (14 pt) tall and its 一字线 sits half an em above the line's
    # bottom, which Word places at the footer distance: dash = bottom margin - footer - 7 pt.
    _, body = body_section(form)
    annex = form.body.find("w:sectPr", NS)
    for sect in (body, annex):
        margins = sect.find("w:pgMar", NS)
        dash_below_type_area = mm(twips(margins, "bottom") - twips(margins, "footer")) - 7 * 25.4 / 72
        assert dash_below_type_area == pytest.approx(7.0, abs=0.05)
    footer_styles = [style_of(p) for name, part in form.parts.items() if name.startswith("word/footer")
                     for p in part.iter(w("p"))]
    assert set(footer_styles) == {"ReportPageNumber"}
    page_number = styles_by_id(form)["ReportPageNumber"]
    assert page_number.find("w:rPr/w:sz", NS).get(w("val")) == "28"  # 四号
    assert page_number.find("w:pPr/w:snapToGrid", NS).get(w("val")) == "0"


def test_body_grid_is_28_characters_by_22_lines(form: Report) -> None:
    _, sect = body_section(form)
    grid = sect.find("w:docGrid", NS)
    assert grid.get(w("type")) == "linesAndChars"
    assert grid.get(w("linePitch")) == "579" and grid.get(w("charSpace")) == "-842"
    width_pt, height_pt = (length / 20 for length in type_area(sect))
    # Word's grid pitch: 16 pt + charSpace/4096.
    assert int(width_pt // (16 + int(grid.get(w("charSpace"))) / 4096)) == 28
    assert int(height_pt // (int(grid.get(w("linePitch"))) / 20)) == 22
    # The body text narrows its own characters to the same pitch (LibreOffice does not apply
    # Word's grid to 三号 text the way Word does): 28 characters fit a line, 29 do not.
    normal = styles_by_id(form)["Normal"]
    pitch = 16 + int(normal.find("w:rPr/w:spacing", NS).get(w("val"))) / 20
    assert 28 * pitch <= width_pt < 29 * pitch
    assert normal.find("w:pPr/w:snapToGrid", NS).get(w("val")) == "0"


def test_attachment_is_a_landscape_section_after_the_date(form: Report) -> None:
    carrier, _ = body_section(form)
    assert text_of(carrier) == form.context["report_date"]
    children = list(form.body)
    following = children[children.index(carrier) + 1]
    assert text_of(following) == "附件" and style_of(following) == "ReportAnnexLabel"
    annex = form.body.find("w:sectPr", NS)
    size = annex.find("w:pgSz", NS)
    assert size.get(w("orient")) == "landscape"
    assert (round(mm(twips(size, "w"))), round(mm(twips(size, "h")))) == (297, 210)
    assert annex.find("w:type", NS).get(w("val")) == "nextPage"
    assert annex.find("w:footerReference", NS) is None  # the body's page numbers continue
    assert [round(mm(length)) for length in type_area(annex)] == [225, 156]  # GB/T 9704's, turned


def body_texts(report: Report) -> list[str]:
    return [text_of(p) for p in report.paragraphs()]


def test_report_ends_with_conclusion_annex_note_signature_and_date(form: Report) -> None:
    texts = body_texts(form)
    start = texts.index("四、评价结论")
    problems, improvements = form.context["problems"], form.context["improvements"]
    assert isinstance(problems, list) and isinstance(improvements, list) and problems and improvements
    expected = [f"{form.context['conclusion']}{form.context['scoring_note']}", "（一）存在的问题及原因", *problems, "（二）下一步改进措施",
                *improvements, "附件：项目支出绩效自评表", f"\t{form.context['signature']}",
                str(form.context["report_date"])]
    assert texts[start + 1 : start + 1 + len(expected)] == expected
    styles = [style_of(p) for p in form.paragraphs()]
    assert styles[start + len(expected) - 2 : start + len(expected) + 1] == [
        "ReportAnnexNote", "ReportSignature", "ReportDate"]


def test_date_is_four_characters_in_and_the_signature_centred_over_it(form: Report) -> None:
    styles = styles_by_id(form)
    date = styles["ReportDate"].find("w:pPr", NS)
    assert date.find("w:jc", NS).get(w("val")) == "right"
    assert date.find("w:ind", NS).get(w("rightChars")) == "400"
    [tab] = styles["ReportSignature"].findall("w:pPr/w:tabs/w:tab", NS)
    assert tab.get(w("val")) == "center"
    width, _ = type_area(body_section(form)[1])
    pitch = width / 28
    # The tab lies in the middle of a date ending four characters from the margin.
    middle_from_right = (width - int(tab.get(w("pos")))) / pitch
    assert 4 + 3 <= middle_from_right <= 4 + 4.5


def test_generated_money_and_goal_sentences_are_in_the_text(form: Report) -> None:
    texts = body_texts(form)
    for key in ("money_sentence", "goal_sentence"):
        assert form.context[key] and form.context[key] in texts, key
    assert not any(text.startswith("实施单位：") for text in texts)  # the old note under the table


def test_empty_sentences_and_lists_leave_no_paragraph(form: Report) -> None:
    context = {**form.context, "money_sentence": "", "goal_sentence": "", "problems": [], "improvements": ["甲。"]}
    rendered = Renderer.from_path(SHIPPED["report"]).render(context)
    document = etree.fromstring(zipfile.ZipFile(io.BytesIO(rendered)).read("word/document.xml"))
    texts = [text_of(p) for p in document.find("w:body", NS).findall("w:p", NS)]
    assert "" not in texts[: texts.index("附件：项目支出绩效自评表")]
    assert "（一）下一步改进措施" in texts and "（一）存在的问题及原因" not in texts
    assert str(form.context["money_sentence"]) not in texts


def rows_of(table: etree._Element) -> list[list[str]]:
    return [[text_of(cell) for cell in row.findall("w:tc", NS)] for row in table.findall("w:tr", NS)]


def test_form_head_has_project_units_money_block_and_goal(form: Report) -> None:
    head, _ = form.tables()
    rows = rows_of(head)
    context = form.context
    budget, sources = context["budget"], context["sources"]
    assert isinstance(budget, dict) and isinstance(sources, list)
    assert rows[0] == ["项目名称", context["project_name"]]
    assert rows[1] == ["主管部门", context["department"], "实施单位", context["implementing_unit"]]
    assert rows[2] == ["项目资金（万元）", "", "年初预算数", "全年预算数", "全年执行数", "分值", "执行率", "得分"]
    assert rows[3] == ["", "年度资金总额", budget["initial"], budget["adjusted"], budget["spent"],
                       budget["weight"], budget["rate"], budget["score"]]
    labels = ["其中：财政拨款", "\u3000\u3000\u3000上年结转", "\u3000\u3000\u3000其他资金"]
    for row, source, label in zip(rows[4:7], sources, labels, strict=True):
        assert row == ["", label, source["initial"], source["adjusted"], source["spent"], "—", "—", "—"]
    assert rows[4][2] and rows[5][2] and not rows[6][2]  # 财政拨款 and 上年结转 in the example, no 其他资金
    assert rows[7] == ["年度总体目标", "预期目标", "实际完成情况"]
    assert rows[8] == ["", context["annual_goal"], "\n".join(context["performance"])]  # type: ignore[arg-type]
    assert len(rows) == 9


LABEL = "绩\n效\n指\n标"  # the 绩效指标 label, one character a line


def test_form_indicators_show_counts_below_rates_then_total_and_grade(form: Report) -> None:
    _, table = form.tables()
    rows = rows_of(table)
    assert rows[0] == ["", "一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "分值", "得分",
                       "偏差原因分析\n及改进措施"]
    indicators = form.context["indicators"]
    assert isinstance(indicators, list)
    body = rows[1 : 1 + len(indicators)]
    assert [row[0] for row in body] == [LABEL, *[""] * (len(indicators) - 1)]
    for row, ind in zip(body, indicators, strict=True):
        actual = f"{ind['actual']}\n（{ind['fraction']}）" if ind["fraction"] else ind["actual"]
        assert row[3:] == [ind["name"], ind["target"], actual, ind["weight"], ind["score"], ind["deviation"]]
    assert any(row[5] == "96.7%\n（59/61）" for row in body)
    assert rows[-2] == ["总分", form.context["weight_total"], form.context["total_score"], ""]
    assert rows[-1] == ["自评等级", form.context["grade"], ""]
    assert len(rows) == len(indicators) + 3


def vmerge(cell: etree._Element) -> str | None:
    node = cell.find("w:tcPr/w:vMerge", NS)
    return None if node is None else node.get(w("val"), "continue")


def test_equal_level_cells_are_merged_and_the_label_column_spans_the_block(full: Report, form: Report) -> None:
    for report in (full, form):
        _, table = report.tables()
        rows = table.findall("w:tr", NS)
        indicators = report.context["indicators"]
        assert isinstance(indicators, list)
        # The form's label column: 绩效指标 over every indicator row, from the first one down; the
        # header row (repeated on each page) has a cell of its own, so a continuation page's
        # header does not cut through the label.
        assert [vmerge(row.findall("w:tc", NS)[0]) for row in rows[: 1 + len(indicators)]] == [
            None, "restart", *["continue"] * (len(indicators) - 1)]
        assert text_of(rows[0].findall("w:tc", NS)[0]) == ""
        assert text_of(rows[1].findall("w:tc", NS)[0]) == LABEL
        level1 = [ind["level1"] for ind in indicators]
        # A run of equal neighbours: the first restarts the merge, the others continue it.
        expected = [("continue" if i and level1[i - 1] == level1[i] else
                     "restart" if i + 1 < len(level1) and level1[i + 1] == level1[i] else None)
                    for i in range(len(level1))]
        cells = [row.findall("w:tc", NS)[1] for row in rows[1 : 1 + len(indicators)]]
        assert [vmerge(cell) for cell in cells] == expected
        assert all(text_of(cell) == "" for cell, state in zip(cells, expected, strict=True) if state == "continue")
        assert "continue" in expected, f"{report.name}: the example has equal 一级 neighbours"


def test_indicator_header_repeats_on_each_page_and_the_head_does_not(form: Report) -> None:
    head, table = form.tables()
    assert table.find("w:tr/w:trPr/w:tblHeader", NS) is not None
    assert len(table.findall("w:tr/w:trPr/w:tblHeader", NS)) == 1
    assert head.find("w:tr/w:trPr/w:tblHeader", NS) is None
    # A paragraph separates the tables (else Word joins them), 0.1 pt high.
    children = list(form.body)
    gap = children[children.index(head) + 1]
    assert gap.tag == w("p") and style_of(gap) == "ReportTableGap"
    assert children[children.index(gap) + 1] is table


def test_no_form_row_splits_and_the_total_and_grade_keep_with_the_last_indicator(form: Report) -> None:
    head, table = form.tables()
    for row in head.findall("w:tr", NS) + table.findall("w:tr", NS):
        assert row.find("w:trPr/w:cantSplit", NS) is not None, rows_of_one(row)
    rows = table.findall("w:tr", NS)

    def keeps(row: etree._Element) -> bool:
        paragraphs = row.findall(".//w:p", NS)
        return all(p.find("w:pPr/w:keepNext", NS) is not None for p in paragraphs)

    # Header: repeated, not chained; indicator rows and 总分 keep with the next; 自评等级 ends the chain.
    assert [keeps(row) for row in rows] == [False, *[True] * (len(rows) - 2), False]
    assert not any(p.find("w:pPr/w:keepNext", NS) is not None for p in head.iter(w("p")))


def rows_of_one(row: etree._Element) -> list[str]:
    return [text_of(cell) for cell in row.findall("w:tc", NS)]


def test_form_tables_are_fixed_padded_and_as_wide_as_the_type_area(form: Report) -> None:
    width, _ = type_area(form.body.find("w:sectPr", NS))
    for table in form.tables():
        assert table.find("w:tblPr/w:tblLayout", NS).get(w("type")) == "fixed"
        grid = [int(col.get(w("w"))) for col in table.findall("w:tblGrid/w:gridCol", NS)]
        assert sum(grid) == width
        for side in ("left", "right"):
            assert table.find(f"w:tblPr/w:tblCellMar/w:{side}", NS).get(w("w")) == "85"  # 1.5 mm
    content_pt = [(int(col.get(w("w"))) - 170) / 20 for col in form.tables()[1].findall("w:tblGrid/w:gridCol", NS)]
    # 五号 is 10.5 pt: "服务对象满意度指标" needs nine characters in the 二级 column.
    assert content_pt[2] >= 9 * 10.5
    assert content_pt[1] >= 5 * 10.5  # 满意度指标
    assert content_pt[4] >= (1 + 2 + 1) * 10.5  # ≥4000件: sign, four half-width digits, 件
    assert content_pt[4] >= 7 * 10.5  # 年度指标值: a 定性 target seven characters a line
    assert content_pt[8] >= 10 * 10.5  # 偏差原因分析: ten characters a line
    assert 10.5 <= content_pt[0] < 2 * 10.5  # the label: one character a line


def test_full_report_follows_the_outline_of_附件3(full: Report) -> None:
    texts = body_texts(full)
    headings = ["一、基本情况", "（一）项目概况", "（二）项目绩效目标", "二、绩效评价工作开展情况",
                "三、综合评价情况及评价结论", "四、绩效评价指标分析", "五、主要经验及做法、存在的问题及原因分析",
                "六、有关建议", "七、其他需要说明的问题"]
    positions = [texts.index(heading) for heading in headings]
    assert positions == sorted(positions)
    assert f"{full.context['conclusion']}各项指标的得分见附件。" in texts
    assert texts[-4:] == ["附件", "项目支出绩效自评表", f"（{full.context['year']}年度）", ""]
    end = texts.index("附件：项目支出绩效自评表")
    assert texts[end + 1 : end + 3] == [f"\t{full.context['signature']}", full.context["report_date"]]
    assert not any("{" in text for text in texts)


def test_check_template_passes_both_shipped_templates() -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline", "check-template", *map(str, SHIPPED.values())],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("没有发现问题") == 2


def template_commands() -> list[list[str]]:
    """The Makefile's `template` recipe, one argument list per line."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^template:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    return [line.strip().split() for line in recipe.group(1).splitlines()]


def test_make_template_rebuilds_both_shipped_templates_byte_for_byte(tmp_path: Path) -> None:
    commands = template_commands()
    written = set()
    for command in commands:
        assert command[0] == "$(BIN)/python" and command[1] == "scripts/make_template.py"
        shipped = command[-1]
        arguments = [sys.executable, str(ROOT / command[1]), *command[2:-1], str(tmp_path / Path(shipped).name)]
        subprocess.run(arguments, check=True, capture_output=True, timeout=120, cwd=tmp_path)
        assert (tmp_path / Path(shipped).name).read_bytes() == (ROOT / shipped).read_bytes(), shipped
        written.add(Path(shipped).name)
    assert written == {path.name for path in SHIPPED.values()} | {"department_report.docx"}


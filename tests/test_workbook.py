"""Tests of the reading rules: where sheets, headers and rows are, how cells become values, and
which files are refused before anything is read. Every workbook here is a real .xlsx file.
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import Settings
from pipeline.contract.schemas import SHEET_MODELS, sheet_layout
from pipeline.core.profile import DEFAULT_PROFILE
from pipeline.errors import Problem, Severity, WorkbookRefused
from pipeline.run import steps
from pipeline.xlsx.layout import RawSheet, RawWorkbook
from pipeline.xlsx.merged import filled_down, merged_cell_problems
from pipeline.xlsx.reader import read_workbook

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = [sheet_layout(m) for m in SHEET_MODELS]
Sheets = dict[str, list[dict[str, object]]]

# Text a clerk may type that must come through verbatim: XML specials, quotes, Jinja look-alikes,
# an emoji outside the BMP and a CJK Extension B character.
SPECIAL = '<b> & "引号" \'单引号\' {{ x }} {% if %} 😀 𠀀'


def excel_row(index: int, title_rows: int = 0) -> int:
    """The Excel row of data row `index` as conftest writes it (header in row 1 + title rows)."""
    return title_rows + 2 + index


def check(path: Path) -> steps.CheckedWorkbook:
    return steps.check_workbook(path, Settings())


def read(path: Path) -> RawWorkbook:
    return read_workbook(path, LAYOUTS)


def describe(problems: tuple[Problem, ...] | list[Problem]) -> str:
    return "\n".join(f"{p.severity} {p.sheet}:{p.excel_row}:{p.column}: {p.message}" for p in problems)


def error_at(checked: steps.CheckedWorkbook, sheet: str, row: int | None, column: str) -> Problem:
    """The one 错误 at (sheet, row, column); fails with every problem listed otherwise."""
    found = [p for p in checked.problems if (p.sheet, p.excel_row, p.column) == (sheet, row, column)
             and p.severity is Severity.ERROR]
    assert found, f"no 错误 at {sheet}:{row}:{column} in\n{describe(checked.problems)}"
    return found[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- where things are ------------------------------------------------------------------------

def test_title_rows_above_the_header_are_skipped_and_counted_in_row_numbers(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    titles = {name: 2 for name in sheets}
    valid = workbook_factory(sheets, title_rows=titles)
    raw = read(valid)
    assert raw.problems == ()
    assert {s.header_row for s in raw.sheets.values()} == {3}
    assert list(raw.sheets["资金"].frame.index) == [excel_row(0, 2), excel_row(1, 2)] == [4, 5]
    assert check(valid).status == "success"

    sheets["资金"][1]["资金来源"] = "自筹资金"
    checked = check(workbook_factory(sheets, title_rows=titles))
    assert checked.status == "invalid"
    problem = error_at(checked, "资金", excel_row(1, 2), "资金来源")
    assert problem.message.startswith("资金 第5行「资金来源」")


def test_the_header_row_is_searched_only_among_the_first_ten_rows(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    assert check(workbook_factory(sheets, title_rows={"使用原则": 9})).status == "success"

    checked = check(workbook_factory(sheets, title_rows={"使用原则": 10}))
    assert checked.status == "invalid"
    assert error_at(checked, "使用原则", 1, "项目编号").message.startswith("使用原则 缺少必填列「项目编号」")


@pytest.mark.parametrize("initial", ["年初预算数（万元）", "年初预算数 (万元)", " 年初预算数(万元) "],
                         ids=["full-width-parens", "space", "padded"])
def test_headers_match_after_nfkc_and_without_white_space(
    workbook_factory: Callable[..., Path], sheets: Sheets, initial: str,
) -> None:
    typed = ["项目编号", "资金来源", initial, "全年预算数\n(万元)", "全年执行数（万元）"]
    assert check(workbook_factory(sheets, headers={"资金": typed})).status == "success"

    # Messages quote the header as the user typed it (trimmed), not its canonical form.
    sheets["资金"][0]["年初预算数(万元)"] = -1
    checked = check(workbook_factory(sheets, headers={"资金": typed}))
    assert checked.status == "invalid"
    assert error_at(checked, "资金", excel_row(0), initial.strip())


def test_sheet_order_does_not_matter_and_other_sheets_are_ignored(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    reordered: Sheets = {"说明": [{"说明": "本表由财务科填写。", "备注": "不参与计算"}]}
    reordered.update((name, sheets[name]) for name in reversed(list(sheets)))
    reordered["填报说明"] = [{"第一列": "任意内容"}]

    checked = check(workbook_factory(reordered))

    assert checked.status == "success", describe(checked.problems)
    assert checked.problems == ()
    assert [p.project_id for p in checked.projects] == ["P-001", "P-002"]


def test_a_sheet_with_a_header_but_no_rows_is_valid_where_rows_are_optional(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["使用原则"] = []

    checked = check(workbook_factory(sheets, headers={"使用原则": ["项目编号", "序号", "内容"]}))

    assert checked.status == "success", describe(checked.problems)
    assert all(p.principles == () for p in checked.projects)


def test_empty_rows_are_skipped_and_later_rows_keep_their_excel_numbers(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["资金"].insert(1, {})  # Excel row 3 left empty
    sheets["资金"].insert(2, {"项目编号": "   ", "资金来源": ""})  # row 4: only blanks
    valid = workbook_factory(sheets)
    assert list(read(valid).sheets["资金"].frame.index) == [2, 5]
    checked = check(valid)
    assert checked.status == "success", describe(checked.problems)
    assert [len(p.funding) for p in checked.projects] == [1, 1]

    sheets["资金"][3]["资金来源"] = "自筹资金"
    checked = check(workbook_factory(sheets))
    assert checked.status == "invalid"
    assert error_at(checked, "资金", 5, "资金来源").message.startswith("资金 第5行「资金来源」")


# --- how cells become values -----------------------------------------------------------------

def test_numbers_typed_as_text_are_read_as_numbers(workbook_factory: Callable[..., Path], sheets: Sheets) -> None:
    sheets["资金"][0].update({"年初预算数(万元)": "1,234.50", "全年预算数(万元)": " 1,234.50 ",
                             "全年执行数(万元)": "１２３"})
    sheets["项目"][0]["年度"] = "２０２０"

    checked = check(workbook_factory(sheets))

    assert checked.status == "success", describe(checked.problems)
    [funding] = checked.projects[0].funding
    assert funding.initial_budget_wan == Decimal("1234.50")
    assert funding.adjusted_budget_wan == Decimal("1234.50")
    assert funding.spent_wan == Decimal("123")
    assert checked.projects[0].year == 2020


@pytest.mark.parametrize("typed", ["12,34", "1.234,5", "约100"])
def test_ambiguous_numeric_text_is_an_error(workbook_factory: Callable[..., Path], sheets: Sheets,
                                            typed: str) -> None:
    sheets["资金"][0]["年初预算数(万元)"] = typed

    checked = check(workbook_factory(sheets))

    assert checked.status == "invalid"
    assert error_at(checked, "资金", excel_row(0), "年初预算数(万元)").value == typed


@pytest.mark.parametrize(
    ("value", "number_format", "expected"),
    [(1.0, "0%", Decimal(100)), (0.9919, "0.00%", Decimal("99.19")), (99.19, None, Decimal("99.19")),
     ("99.19%", None, Decimal("99.19"))],
    ids=["percent-format-1.0", "percent-format-0.9919", "plain-99.19-unit-%", "text-99.19%"],
)
def test_a_percentage_means_the_same_however_it_is_stored(
    workbook_factory: Callable[..., Path], sheets: Sheets, value: object, number_format: str | None,
    expected: Decimal,
) -> None:
    # 积案化解率 (≥90%, unit %) without 分子/分母, so 实际完成值 is used as typed.
    sheets["绩效指标"][0].update({"分子": None, "分母": None, "实际完成值": value})
    formats = {("绩效指标", 0, "实际完成值"): number_format} if number_format else None

    checked = check(workbook_factory(sheets, number_formats=formats))

    assert checked.status == "success", describe(checked.problems)
    result = steps.evaluate_projects(checked.projects, DEFAULT_PROFILE)[0].indicators[0]
    assert result.actual == expected
    assert result.completion == 1
    assert result.score == Decimal("15.00")


def test_a_literal_percent_sign_in_the_number_format_does_not_scale(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    # Format 0"%" shows 95 as "95%" without the ×100 of a real percentage format.
    sheets["绩效指标"][0].update({"分子": None, "分母": None, "实际完成值": 95})

    checked = check(workbook_factory(sheets, number_formats={("绩效指标", 0, "实际完成值"): '0"%"'}))

    assert checked.status == "success", describe(checked.problems)
    assert steps.evaluate_projects(checked.projects, DEFAULT_PROFILE)[0].indicators[0].actual == Decimal(95)


def test_a_formula_without_a_cached_value_asks_to_save_it_in_excel(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    # openpyxl writes formulas without a cached value, like tools that never calculate.
    sheets["资金"][0]["全年执行数(万元)"] = "=80+5.62"
    sheets["绩效指标"][3]["自评得分"] = "=SUM(1,2)"  # an optional column

    checked = check(workbook_factory(sheets))

    assert checked.status == "invalid"
    for sheet, row, column in [("资金", excel_row(0), "全年执行数(万元)"), ("绩效指标", excel_row(3), "自评得分")]:
        problem = error_at(checked, sheet, row, column)
        assert problem.message.startswith(f"{sheet} 第{row}行「{column}」")
        assert "请用 Excel 打开该文件、保存后再提交" in problem.message


def test_text_is_kept_exactly_as_typed_and_trimmed(workbook_factory: Callable[..., Path], sheets: Sheets) -> None:
    project = sheets["项目"][0]
    project.update({"项目名称": f"  {SPECIAL}  ", "主管部门": SPECIAL, "项目概况": f"第一段{SPECIAL}\n\n第二段",
                    "年度目标": SPECIAL, "完成情况": f"\t{SPECIAL}\n"})
    sheets["使用原则"][0]["内容"] = SPECIAL
    sheets["绩效指标"][0]["偏差原因分析及改进措施"] = SPECIAL
    sheets["绩效指标"][2]["三级指标"] = SPECIAL

    checked = check(workbook_factory(sheets))

    assert checked.status == "success", describe(checked.problems)
    first = checked.projects[0]
    assert first.name == SPECIAL
    assert first.department == first.implementing_unit == SPECIAL
    assert first.overview == f"第一段{SPECIAL}\n\n第二段"
    assert first.annual_goal == first.performance == SPECIAL
    assert first.principles[0] == SPECIAL
    assert first.indicators[0].deviation == SPECIAL
    assert first.indicators[2].name == SPECIAL


def test_numeric_project_ids_match_across_sheets(workbook_factory: Callable[..., Path], sheets: Sheets) -> None:
    for rows in sheets.values():
        for row in rows:
            if row["项目编号"] == "P-002":
                row["项目编号"] = 1002  # a number cell in every sheet

    checked = check(workbook_factory(sheets))

    assert checked.status == "success", describe(checked.problems)
    assert checked.projects[1].project_id == "1002"
    assert len(checked.projects[1].indicators) == 2


def rewritten(source: Path, target: Path, part: str, edit: Callable[[bytes], bytes]) -> Path:
    """A copy of a workbook with one part's XML edited, as another tool might have written it."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == part:
                edited = edit(data)
                assert edited != data, f"nothing edited in {part}"
                data = edited
            dst.writestr(info, data)
    return target


def test_binary_float_noise_is_read_as_the_number_excel_shows(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
) -> None:
    # Excel stores =SUM(...) of decimals with 17 digits (5.0000000000000009) and shows 5.
    sheets["资金"][1]["全年执行数(万元)"] = 4.75
    noisy = rewritten(workbook_factory(sheets), tmp_path / "浮点.xlsx", "xl/worksheets/sheet2.xml",
                      lambda xml: xml.replace(b"<v>4.75</v>", b"<v>5.0000000000000009</v>"))

    checked = check(noisy)

    assert checked.status == "success", describe(checked.problems)
    assert checked.projects[1].funding[0].spent_wan == Decimal(5)


def test_a_wrong_dimension_record_does_not_hide_rows(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
) -> None:
    # Some writers store <dimension ref="A1"/> or a stale range; Excel ignores it, so must we.
    original = workbook_factory(sheets)
    stale = rewritten(original, tmp_path / "范围.xlsx", "xl/worksheets/sheet1.xml",
                      lambda xml: re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:B2"/>', xml))

    checked = check(stale)

    assert checked.status == "success", describe(checked.problems)
    assert checked.projects == check(original).projects


# --- files that are not workbooks ------------------------------------------------------------

def csv_file(path: Path, valid: Path) -> None:
    path.write_text("项目编号,项目名称\nP-001,信访救助专项资金\n", encoding="utf-8")


def random_bytes(path: Path, valid: Path) -> None:
    path.write_bytes(random.Random(20201231).randbytes(4096))


def empty_file(path: Path, valid: Path) -> None:
    path.write_bytes(b"")


def old_xls(path: Path, valid: Path) -> None:
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4088))


def encrypted_xlsx(path: Path, valid: Path) -> None:
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "EncryptedPackage".encode("utf-16-le")
                     + bytes(500))


def truncated_zip(path: Path, valid: Path) -> None:
    data = valid.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def word_document(path: Path, valid: Path) -> None:
    shutil.copyfile(ROOT / "templates" / "report.docx", path)


def zip_of_text(path: Path, valid: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")


REFUSALS = [
    ("csv-renamed", csv_file, "不是 Excel 工作簿"),
    ("random-bytes", random_bytes, "不是 Excel 工作簿"),
    ("empty-file", empty_file, "文件是空的"),
    ("old-xls", old_xls, "(.xls)"),
    ("encrypted", encrypted_xlsx, "密码"),
    ("truncated-zip", truncated_zip, "损坏"),
    ("word-document", word_document, "无法作为 Excel 工作簿打开"),
    ("zip-of-text", zip_of_text, "无法作为 Excel 工作簿打开"),
]


@pytest.mark.parametrize(("make", "fragment"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_files_that_are_not_workbooks_are_refused_with_a_chinese_reason(
    workbook_factory: Callable[..., Path], tmp_path: Path, make: Callable[[Path, Path], None], fragment: str,
) -> None:
    path = tmp_path / "提交的工作簿.xlsx"
    make(path, workbook_factory())
    before = path.read_bytes()

    checked = check(path)

    assert checked.status == "refused"
    assert checked.refused is not None and fragment in checked.refused
    assert re.search(r"[\u4e00-\u9fff]", checked.refused)
    assert checked.projects == () and checked.problems == ()
    assert path.read_bytes() == before
    with pytest.raises(WorkbookRefused):
        read(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "不存在.xlsx"

    checked = check(path)

    assert checked.status == "refused"
    assert checked.refused == "文件不存在。"
    assert not path.exists()


def test_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "文件夹.xlsx"
    folder.mkdir()

    checked = check(folder)

    assert checked.status == "refused"
    assert "文件夹" in (checked.refused or "")


# --- workbooks written by other tools --------------------------------------------------------

def with_shared_strings(source: Path, target: Path) -> Path:
    """A copy of an openpyxl workbook whose text cells use the shared-strings table, as Excel and
    LibreOffice write them (openpyxl writes inline strings)."""
    strings: list[str] = []
    index: dict[str, int] = {}

    def shared(match: re.Match[str]) -> str:
        text = match["text"]
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return f'<c {match["before"]}t="s"{match["after"]}><v>{index[text]}</v></c>'

    cell = re.compile(r'<c (?P<before>[^>]*?)t="inlineStr"(?P<after>[^>]*)><is><t[^>]*>(?P<text>.*?)</t></is></c>',
                      re.DOTALL)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = cell.sub(shared, data.decode("utf-8")).encode("utf-8")
            elif info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
            elif info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"</Relationships>", b'<Relationship Id="rIdSST" Type="http://schemas.openxmlformats'
                                    b'.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                                    b"</Relationships>")
            dst.writestr(info, data)
        items = "".join(f'<si><t xml:space="preserve">{s}</t></si>' for s in strings)
        dst.writestr("xl/sharedStrings.xml",
                     '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.openxmlformats'
                     f'.org/spreadsheetml/2006/main" count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>')
    assert strings, "the source workbook had no inline strings to move"
    return target


def test_a_workbook_with_shared_strings_reads_like_the_original(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
) -> None:
    sheets["项目"][0]["项目概况"] = f"{SPECIAL}\n\n第二段"
    original = workbook_factory(sheets, title_rows={"项目": 2})
    converted = with_shared_strings(original, tmp_path / "共享字符串.xlsx")
    assert "xl/sharedStrings.xml" in zipfile.ZipFile(converted).namelist()

    expected, checked = check(original), check(converted)

    assert checked.status == "success", describe(checked.problems)
    assert checked.projects == expected.projects
    assert checked.projects[0].overview == f"{SPECIAL}\n\n第二段"


def test_a_workbook_saved_by_libreoffice_validates_the_same(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
) -> None:
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    sheets = copy.deepcopy(sheets)
    original = workbook_factory(sheets, name="原始.xlsx")
    out = tmp_path / "libreoffice"
    subprocess.run(
        [soffice, f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}", "--headless",
         "--convert-to", "xlsx", "--outdir", str(out), str(original)],
        check=False, capture_output=True, timeout=180,
    )
    converted = out / original.name
    if not converted.exists():
        pytest.skip("soffice could not convert the workbook (LibreOffice Calc is not installed)")
    assert "xl/sharedStrings.xml" in zipfile.ZipFile(converted).namelist()

    expected, checked = check(original), check(converted)

    assert checked.status == "success", describe(checked.problems)
    assert checked.projects == expected.projects


def test_merged_cells_are_found_without_changing_the_sheet_and_filled_down_on_a_copy() -> None:
    """An area's value goes down its first column, a later area may take one an earlier area
    copied down, and the sheet read from the file is left as it was."""
    frame = pd.DataFrame({"编号": ["P1", None, None, None], "名称": ["甲", "乙", None, None]},
                         index=pd.Index([2, 3, 4, 5], name="excel_row", dtype="int64"), dtype=object)
    sheet = RawSheet("表", 1, frame, {"编号": "编号", "名称": "名称"})
    before = frame.copy()

    merged = merged_cell_problems(sheet, ["编号", "名称", "备注"], [(2, 0, 3, 0), (3, 0, 5, 1), (1, 0, 1, 2)])

    pd.testing.assert_frame_equal(sheet.frame, before)
    assert [(p.excel_row, p.column, p.value) for p in merged.problems] == [(2, "编号", "P1"), (3, "编号", "P1")]
    assert "A3:B5" in merged.problems[1].message
    assert dict(merged.fills) == {(3, "编号"): "P1", (4, "编号"): "P1", (5, "编号"): "P1"}
    filled = filled_down(sheet, merged.fills)
    assert list(filled.frame["编号"]) == ["P1"] * 4
    assert list(filled.frame["名称"]) == ["甲", "乙", None, None]
    assert filled_down(sheet, {}) is sheet


@pytest.mark.parametrize("stored", [b"NaN", b"INF", b"-inf", b"1e999"])
@pytest.mark.parametrize(("row", "column", "value"), [
    (5, "年度指标值", 4321), (5, "实际完成值", 4322), (5, "自评得分", 4323), (2, "分子", 4324)])
def test_a_number_that_is_not_finite_is_a_located_error_not_a_crash(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
    row: int, column: str, value: int, stored: bytes,
) -> None:
    # Excel never saves NaN or infinity, but a damaged or generated file can hold <v>NaN</v>; the
    # reader gives Decimal('NaN'), and no score can be computed from it.
    sheets["绩效指标"][row - 2][column] = value
    odd = rewritten(workbook_factory(sheets), tmp_path / "非数.xlsx", "xl/worksheets/sheet4.xml",
                    lambda xml: xml.replace(f"<v>{value}</v>".encode(), b"<v>" + stored + b"</v>"))

    checked = check(odd)

    assert checked.status == "invalid"
    assert "不是有效的数字" in error_at(checked, "绩效指标", row, column).message

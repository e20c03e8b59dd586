"""`perfreport blank`: the workbook an office fills in, read back as Excel and LibreOffice keep it.

The drop-downs, number rules, prompts and named lists are read back with openpyxl from the file
the command wrote, from the same file after a LibreOffice Calc re-save, and from the shipped
example (which is the blank workbook plus its rows). What each column must offer is written out
here from the contract's own constants, not from the writer's column table, so a wrong writer
fails. The module shares ONE LibreOffice batch (starting soffice costs seconds).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import docx
import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from pipeline import cli
from pipeline.cli import main
from pipeline.contract import schemas
from pipeline.core.forms import FUNDING_SOURCES, LEVEL1_ORDER, LEVEL2_BY_LEVEL1
from pipeline.write import blank
from tests.inprocess import reports_of

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "input" / "2020年度项目支出绩效自评表.xlsx"
# The project templates (the department template is one per workbook, not a project's choice).
TEMPLATES = tuple(sorted(p.name for p in (ROOT / "templates").glob("*.docx") if p.name != "department_report.docx"))
EPOCH = "1700000000"  # the run's date where a project gives none, the same for both runs compared
SHEET_NAMES = [schemas.sheet_name(model) for model in schemas.SHEET_MODELS]
# LibreOffice keeps a validation on the rows up to 1000 below the last filled one (measured with
# 7.4): what an office can count on after saving there.
ROWS_KEPT_BY_LIBREOFFICE = 1000


@dataclass(frozen=True, slots=True)
class Expected:
    """What one column's data cells must check: the validation's type, formula and strictness."""

    kind: str
    formula1: str
    strictness: str | None  # errorStyle, or None when no error is shown (a suggestion only)
    operator: str | None = None
    formula2: str | None = None


def listed(name: str, strictness: str | None) -> Expected:
    return Expected("list", name, strictness)


# (sheet, header) -> its rule; every other column only prompts. From the contract's constants.
EXPECTED = {
    ("项目", "项目编号"): Expected("textLength", "1", "stop", "between", "40"),
    ("项目", "项目名称"): Expected("textLength", "1", "stop", "between", "100"),
    ("项目", "年度"): Expected("whole", "2000", "stop", "between", "2100"),
    ("项目", "模板"): listed("模板", "warning"),
    ("资金", "资金来源"): listed("资金来源", "warning"),
    **{("资金", money): Expected("decimal", "0", "stop", "greaterThanOrEqual")
       for money in ("年初预算数(万元)", "全年预算数(万元)", "全年执行数(万元)")},
    ("使用原则", "序号"): Expected("whole", "1", "stop", "greaterThanOrEqual"),
    ("绩效指标", "一级指标"): listed("一级指标", "stop"),
    ("绩效指标", "二级指标"): listed("INDIRECT($B2)", "warning"),
    ("绩效指标", "指标方向"): listed("指标方向", "warning"),
    ("绩效指标", "实际完成值"): listed("定性等级", None),
    ("绩效指标", "分值"): Expected("decimal", "0", "stop", "greaterThan"),
    ("绩效指标", "分子"): Expected("decimal", "0", "stop", "greaterThanOrEqual"),
    ("绩效指标", "分母"): Expected("decimal", "0", "stop", "greaterThan"),
    ("绩效指标", "自评得分"): Expected("decimal", "0", "stop", "greaterThanOrEqual"),
}
# Each defined list and what it must hold.
EXPECTED_LISTS: dict[str, tuple[str, ...]] = {
    "一级指标": LEVEL1_ORDER,
    **{level1: LEVEL2_BY_LEVEL1[level1] for level1 in LEVEL1_ORDER},
    "资金来源": FUNDING_SOURCES,
    "指标方向": schemas.DIRECTIONS,
    "定性等级": ("达成", "部分达成", "未达成"),
    "模板": TEMPLATES,
}


def contract_headers(sheet: str) -> list[str]:
    """A sheet's headers as the contract declares them, in order."""
    model = next(m for m in schemas.SHEET_MODELS if schemas.sheet_name(m) == sheet)
    return list(model.to_schema().columns)


def header_row(ws: Worksheet) -> int:
    """The row holding the sheet's first header (the example's 项目 has a title row above it)."""
    return next(row for row in range(1, 11) if ws.cell(row=row, column=1).value == "项目编号")


def covering(ws: Worksheet, coordinate: str) -> list[DataValidation]:
    """The validations that apply to one cell."""
    return [dv for dv in ws.data_validations.dataValidation if coordinate in dv.sqref]


def rule_at(ws: Worksheet, coordinate: str) -> Expected | None:
    """The checking validation (not a prompt-only one) on a cell, as an `Expected`."""
    rules = [dv for dv in covering(ws, coordinate) if dv.type not in (None, "none")]
    assert len(rules) <= 1, f"{ws.title}!{coordinate} has {len(rules)} rules"
    if not rules:
        return None
    dv = rules[0]
    # LibreOffice writes operator "between" and formula2 "0" where they mean nothing.
    operator = None if dv.type == "list" else dv.operator or "between"
    formula2 = dv.formula2 if operator == "between" else None
    return Expected(dv.type, dv.formula1, (dv.errorStyle or "stop") if dv.showErrorMessage else None,
                    operator, formula2)


def list_values(wb: Workbook, name: str) -> tuple[str, ...]:
    """The cells a defined name refers to, read from the workbook."""
    [(sheet, cells)] = list(wb.defined_names[name].destinations)
    return tuple(cell.value for row in wb[sheet][cells.replace("$", "")] for cell in row)


def check_validations(wb: Workbook, rows: int) -> None:
    """Every column of the four sheets: its prompt on the header and on `rows` data rows, its
    rule (EXPECTED) on those rows, and every named list holding what the contract reads."""
    for sheet in SHEET_NAMES:
        ws = wb[sheet]
        top = header_row(ws)
        for index, cell in enumerate(ws[top], start=1):
            letter = cell.column_letter
            header = cell.value
            for row in (top, top + 1, top + rows):
                prompts = [dv for dv in covering(ws, f"{letter}{row}") if dv.showInputMessage and dv.prompt]
                assert [dv.promptTitle for dv in prompts] == [header], f"{sheet}!{letter}{row}"
            assert rule_at(ws, f"{letter}{top}") is None, f"{sheet}: the header cell {header} is checked"
            expected = EXPECTED.get((sheet, header))
            if expected is not None and expected.formula1.startswith("INDIRECT"):
                expected = listed(f"INDIRECT($B{top + 1})", expected.strictness)
            for row in (top + 1, top + rows):
                assert rule_at(ws, f"{letter}{row}") == expected, f"{sheet}!{letter}{row} ({header}, column {index})"
    assert {name: list_values(wb, name) for name in wb.defined_names} == EXPECTED_LISTS
    lists = [ws for ws in wb if ws.title == blank.LISTS_SHEET]
    assert [ws.sheet_state for ws in lists] == ["hidden"]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The blank workbook as the command writes it, the shipped example, and both re-saved by
    LibreOffice Calc in one batch."""
    root = tmp_path_factory.mktemp("blank")
    target = root / "空白.xlsx"
    assert main(["blank", str(target)]) == 0
    example = root / "example.xlsx"
    shutil.copyfile(EXAMPLE, example)
    files = {"blank": target, "example": example}
    if shutil.which("soffice") is not None:
        resaved = root / "resaved"
        subprocess.run(["soffice", "--headless", f"-env:UserInstallation={(root / 'lo-profile').as_uri()}",
                        "--convert-to", "xlsx", "--outdir", str(resaved), str(target), str(example)],
                       check=True, capture_output=True, timeout=300)
        files |= {"blank-lo": resaved / target.name, "example-lo": resaved / example.name}
    return files


def test_blank_has_the_four_sheets_with_the_contracts_headers_and_instructions(written) -> None:
    wb = load_workbook(written["blank"])
    assert wb.sheetnames == ["填报说明", *SHEET_NAMES, blank.LISTS_SHEET]
    for sheet in SHEET_NAMES:
        ws = wb[sheet]
        assert [c.value for c in ws[1]] == contract_headers(sheet)
        assert ws.max_row == 1, f"{sheet} has rows below its header"
        assert ws.freeze_panes == "A2"
        assert all(ws.column_dimensions[c.column_letter].width >= 8 for c in ws[1])
    # 填报说明: one row per sheet and column, required exactly where the contract requires it.
    rows = [tuple(c.value for c in row) for row in wb["填报说明"].iter_rows()]
    table = {(r[0], r[1]): r for r in rows if r[0] in SHEET_NAMES}
    assert list(table) == [(sheet, h) for sheet in SHEET_NAMES for h in contract_headers(sheet)]
    for sheet in SHEET_NAMES:
        model = next(m for m in schemas.SHEET_MODELS if schemas.sheet_name(m) == sheet)
        for header, column in model.to_schema().columns.items():
            _, _, required, how, example = table[(sheet, header)]
            assert (required == "是") == (not column.nullable), (sheet, header, required)
            assert how and example, (sheet, header)


def test_blank_offers_every_drop_down_rule_and_prompt(written) -> None:
    check_validations(load_workbook(written["blank"]), blank.LAST_ROW - 2)


def test_libreoffice_keeps_the_drop_downs_named_lists_and_prompts(written) -> None:
    if "blank-lo" not in written:
        pytest.skip("LibreOffice (soffice) is not installed")
    check_validations(load_workbook(written["blank-lo"]), ROWS_KEPT_BY_LIBREOFFICE - 1)


def test_the_shipped_example_has_the_blank_workbooks_drop_downs(written) -> None:
    check_validations(load_workbook(written["example"]), 1000)
    if "example-lo" in written:
        check_validations(load_workbook(written["example-lo"]), ROWS_KEPT_BY_LIBREOFFICE - 1)


def test_every_prompt_and_message_fits_excels_limits(written) -> None:
    wb = load_workbook(written["blank"])
    for ws in wb:
        for dv in ws.data_validations.dataValidation:
            assert len(dv.promptTitle or "") <= 32 and len(dv.errorTitle or "") <= 32, dv.promptTitle
            assert len(dv.prompt or "") <= 255 and len(dv.error or "") <= 255, dv.prompt


def report_texts(reports: Path) -> dict[str, list[str]]:
    """Each report's paragraphs and table cells, by file name."""
    texts = {}
    for path in sorted(reports.glob("*.docx")):
        document = docx.Document(str(path))
        texts[path.name] = [p.text for p in document.paragraphs] + [
            cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return texts


def filled_blank(blank_path: Path, example: Path, target: Path) -> Path:
    """The blank workbook with the example's four sheets' cells (value and number format) copied in."""
    source, wb = load_workbook(example), load_workbook(blank_path)
    for sheet in SHEET_NAMES:
        src, dst = source[sheet], wb[sheet]
        top = header_row(src)
        assert [c.value for c in src[top]] == [c.value for c in dst[1]]
        for offset, row in enumerate(src.iter_rows(min_row=top + 1), start=2):
            for cell in row:
                if cell.value is not None:
                    copy = dst.cell(row=offset, column=cell.column, value=cell.value)
                    copy.number_format = cell.number_format
    target.parent.mkdir(parents=True, exist_ok=True)
    wb.save(target)
    return target


def test_the_blank_filled_with_the_examples_rows_gives_the_examples_reports(written, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    filled = filled_blank(written["blank"], written["example"], tmp_path / "in" / "填好的.xlsx")
    shipped = tmp_path / "in" / EXAMPLE.name
    shutil.copyfile(EXAMPLE, shipped)
    filled_reports, filled_contexts = reports_of(filled, tmp_path / "out")
    shipped_reports, shipped_contexts = reports_of(shipped, tmp_path / "out")
    assert len(shipped_contexts) == 7
    assert filled_contexts == shipped_contexts
    assert report_texts(filled_reports) == report_texts(shipped_reports)


def test_the_shipped_example_is_what_make_example_writes_today() -> None:
    spec = importlib.util.spec_from_file_location("make_example", ROOT / "scripts" / "make_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = blank.workbook_bytes(module.build(blank.template_names(ROOT / "templates")))
    assert built == EXAMPLE.read_bytes(), "run `make example` and commit input/"


def test_make_blank_runs_the_commands_default(tmp_path, monkeypatch, capsys) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^blank: .*\n\t(.*)$", makefile, re.MULTILINE)
    assert recipe is not None and "blank" in makefile.split(".PHONY:")[1].splitlines()[0].split()
    program, *args = shlex.split(recipe.group(1))
    assert program == "$(BIN)/perfreport"
    parsed = cli.parser().parse_args(args)
    assert parsed.handler is cli.command_blank
    monkeypatch.chdir(tmp_path)
    assert main(args) == 0
    assert (tmp_path / blank.DEFAULT_BLANK_NAME).is_file()
    assert blank.DEFAULT_BLANK_NAME in capsys.readouterr().out
    # The help says where it writes by default, and why not into input/.
    assert blank.DEFAULT_BLANK_NAME in blank_help() and "input/" in blank_help()


def blank_help() -> str:
    """`perfreport blank --help`."""
    [commands] = [a for a in cli.parser()._actions if a.dest == "command"]
    return commands.choices["blank"].format_help()  # type: ignore[index]


def test_blank_is_the_same_bytes_on_every_run(tmp_path) -> None:
    assert main(["blank", str(tmp_path / "a.xlsx")]) == 0
    assert main(["blank", str(tmp_path / "b.xlsx")]) == 0
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()


def test_blank_keeps_an_existing_file_unless_forced(tmp_path, capsys) -> None:
    target = tmp_path / "填报表.xlsx"
    target.write_bytes(b"the office's own work")
    assert main(["blank", str(target)]) == 2
    err = capsys.readouterr().err
    assert "文件已存在" in err and "--force" in err
    assert target.read_bytes() == b"the office's own work"
    assert main(["blank", "--force", str(target)]) == 0
    assert load_workbook(target).sheetnames[1:5] == SHEET_NAMES
    assert [p.name for p in tmp_path.iterdir()] == [target.name], "a temporary file was left behind"


@pytest.mark.parametrize(("name", "message"), [
    ("a-file/填报表.xlsx", "无法写入"),  # the folder is a file: nothing can be written under it
    ("填报表.xls", "应以 .xlsx 结尾"),
    ("a-folder.xlsx", "是一个文件夹"),
])
def test_blank_refuses_what_it_cannot_write_in_chinese(tmp_path, capsys, name, message) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    (tmp_path / "a-folder.xlsx").mkdir()
    assert main(["blank", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert message in err and "内部错误" not in err and "Traceback" not in err


def test_blank_without_templates_offers_no_template_list(tmp_path) -> None:
    assert main(["blank", str(tmp_path / "a.xlsx"), "--templates-dir", str(tmp_path / "none")]) == 0
    wb = load_workbook(tmp_path / "a.xlsx")
    assert "模板" not in wb.defined_names
    assert rule_at(wb["项目"], "I2") is None

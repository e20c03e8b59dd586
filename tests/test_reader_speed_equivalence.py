"""The fast reader (calamine + sheet XML) reads exactly what the openpyxl reader reads."""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline.contract.schemas import SHEET_MODELS, sheet_layout
from pipeline.xlsx import reader, sheetxml, table
from pipeline.xlsx.fallback import read_workbook_openpyxl
from pipeline.xlsx.layout import RawWorkbook
from pipeline.xlsx.reader import read_workbook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from make_synthetic import write_synthetic_workbook  # noqa: E402

LAYOUTS = [sheet_layout(m) for m in SHEET_MODELS]


def assert_same(fast: RawWorkbook, slow: RawWorkbook) -> None:
    assert fast.problems == slow.problems
    assert list(fast.sheets) == list(slow.sheets)
    for name, sheet in slow.sheets.items():
        other = fast.sheets[name]
        assert other.header_row == sheet.header_row
        assert dict(other.labels) == dict(sheet.labels)
        pd.testing.assert_frame_equal(other.frame, sheet.frame)
        # Same types too (Decimal vs str vs None), not only equal values.
        for column in sheet.frame.columns:
            assert [type(v) for v in other.frame[column]] == [type(v) for v in sheet.frame[column]], column


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_workbook(tmp_path_factory.mktemp("syn") / "syn30.xlsx", 30, seed=7)


def test_the_synthetic_workbook_reads_the_same_both_ways(synthetic: Path) -> None:
    fast = read_workbook(synthetic, LAYOUTS)
    assert fast.problems == ()
    assert len(fast.sheets["项目"].frame) == 30
    # %-formatted cells arrive as text with the unit, as openpyxl reads them.
    actual = fast.sheets["绩效指标"].frame["实际完成值"]
    assert any(isinstance(v, str) and v.endswith("%") for v in actual)
    assert_same(fast, read_workbook_openpyxl(synthetic, LAYOUTS))


@pytest.mark.parametrize("path", sorted((ROOT / "input").glob("*.xlsx")), ids=lambda p: p.name)
def test_the_shipped_example_reads_the_same_both_ways(path: Path) -> None:
    assert_same(read_workbook(path, LAYOUTS), read_workbook_openpyxl(path, LAYOUTS))


def without_cell_refs(source: Path, target: Path) -> Path:
    """A copy whose worksheet cells carry no r= attribute (allowed by the format)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                stripped = re.sub(rb'(<c\b[^>]*?) r="[A-Z]+\d+"', rb"\1", data)
                assert stripped != data
                data = stripped
            dst.writestr(info, data)
    return target


def test_cells_without_r_attributes_fall_back_to_openpyxl(
    synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    stripped = without_cell_refs(synthetic, tmp_path / "无坐标.xlsx")
    calls: list[object] = []
    original = reader.read_workbook_openpyxl
    monkeypatch.setattr(reader, "read_workbook_openpyxl", lambda *a, **k: calls.append(k) or original(*a, **k))

    fast = read_workbook(stripped, LAYOUTS)

    assert calls, "the fast reader should have handed the sheets to openpyxl"
    assert_same(fast, read_workbook_openpyxl(stripped, LAYOUTS))
    # Without r= a cell's column is the one after the previous cell, so only sheets without empty
    # cells keep their meaning; 资金 and 使用原则 of the synthetic workbook have none.
    original = read_workbook(synthetic, LAYOUTS)
    for name in ("资金", "使用原则"):
        pd.testing.assert_frame_equal(fast.sheets[name].frame, original.sheets[name].frame)


def test_uncached_formulas_and_percent_formats_agree(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    headers = {layout.name: list(layout.known) for layout in LAYOUTS}
    for name, columns in headers.items():
        sheet = book.create_sheet(name)
        sheet.append(["标题行"])
        sheet.append(columns)
        sheet.append([f"=1+{i}" if i % 3 == 0 else 0.5 for i in range(len(columns))])
        sheet.append([])
        sheet.append([0.9919] * len(columns))
        for cell in sheet[5]:
            cell.number_format = "0.00%"
        sheet.append([None, None, "=SUM(1,2)"])  # a row holding only a formula, at the end
    path = tmp_path / "公式.xlsx"
    book.save(path)

    fast = read_workbook(path, LAYOUTS)

    assert any("公式" in p.value for p in fast.problems)
    assert_same(fast, read_workbook_openpyxl(path, LAYOUTS))


def test_tiny_xml_pieces_and_row_batches_read_the_same(synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of sheet XML and batches of rows are cut anywhere; the table must not notice."""
    whole = read_workbook(synthetic, LAYOUTS)
    monkeypatch.setattr(sheetxml, "XML_PIECE_BYTES", 700)
    monkeypatch.setattr(table, "BATCH_ROWS", 7)
    monkeypatch.setattr(sheetxml.xml_pieces, "__defaults__", (700,))

    assert_same(read_workbook(synthetic, LAYOUTS), whole)


def test_pieces_are_cut_before_rows_and_join_back_to_the_whole_part(synthetic: Path) -> None:
    with zipfile.ZipFile(synthetic) as archive:
        parts = sheetxml.sheet_parts(archive)
        xml = archive.read(parts["绩效指标"])
        pieces = list(sheetxml.xml_pieces(archive, parts["绩效指标"], size=1000))

    assert b"".join(pieces) == xml
    assert len(pieces) > 10
    assert all(piece.startswith(b"<row") for piece in pieces[1:])


def test_a_table_that_starts_below_and_right_of_a1_keeps_its_excel_rows(
        tmp_path: Path, sheets: dict[str, list[dict[str, object]]]) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for layout in LAYOUTS:
        sheet = book.create_sheet(layout.name)
        columns = list(layout.known)
        for c, header in enumerate(columns):
            sheet.cell(row=4, column=3 + c, value=header)
        for r, record in enumerate(sheets[layout.name], start=5):
            for c, header in enumerate(columns):
                sheet.cell(row=r, column=3 + c, value=record.get(header))
    path = tmp_path / "偏移.xlsx"
    book.save(path)

    fast = read_workbook(path, LAYOUTS)

    assert fast.sheets["项目"].header_row == 4
    assert fast.sheets["项目"].frame.index[0] == 5
    assert_same(fast, read_workbook_openpyxl(path, LAYOUTS))

"""Shared fixtures: real .xlsx workbooks written with openpyxl, and one Prefect harness per session."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import openpyxl
import pytest

from pipeline.config import apply_prefect_defaults

apply_prefect_defaults()

Rows = list[dict[str, object]]


def valid_sheets() -> dict[str, Rows]:
    """A small workbook that satisfies every rule: two projects, money, principles, indicators."""
    return {
        "项目": [
            {"项目编号": "P-001", "项目名称": "信访救助专项资金", "年度": 2020, "主管部门": "如皋市信访局",
             "实施单位": None, "项目概况": "设立信访救助专项资金。\n\n用于救助特殊困难信访户。",
             "年度目标": "化解信访积案", "完成情况": "化解积案12件。", "模板": None},
            {"项目编号": "P-002", "项目名称": "领导接访费用", "年度": 2020, "主管部门": "如皋市信访局",
             "实施单位": "如皋市信访局接待科", "项目概况": "市领导每月接访一天。",
             "年度目标": None, "完成情况": "接待群众74批74人次。", "模板": None},
        ],
        "资金": [
            {"项目编号": "P-001", "资金来源": "财政拨款", "年初预算数(万元)": 100, "全年预算数(万元)": 100,
             "全年执行数(万元)": 85.62},
            {"项目编号": "P-002", "资金来源": "财政拨款", "年初预算数(万元)": 5, "全年预算数(万元)": 5,
             "全年执行数(万元)": 5},
        ],
        "使用原则": [
            {"项目编号": "P-001", "序号": 1, "内容": "专款专用、限定范围。"},
            {"项目编号": "P-001", "序号": 2, "内容": "案结事了、稳妥有序。"},
            {"项目编号": "P-002", "序号": 1, "内容": "充分发挥资金使用效能。"},
        ],
        "绩效指标": [
            {"项目编号": "P-001", "一级指标": "产出指标", "二级指标": "质量指标", "三级指标": "积案化解率",
             "指标方向": None, "年度指标值": "≥90%", "实际完成值": "85.7%", "计量单位": "%", "分值": 15,
             "分子": 12, "分母": 14, "自评得分": None, "偏差原因分析及改进措施": "两件积案涉及多个部门。"},
            {"项目编号": "P-001", "一级指标": "效益指标", "二级指标": "社会效益指标", "三级指标": "重点人员化解率",
             "指标方向": None, "年度指标值": "≥90%", "实际完成值": "97.6%", "计量单位": "%", "分值": 45,
             "分子": 59, "分母": 61, "自评得分": None, "偏差原因分析及改进措施": None},
            {"项目编号": "P-001", "一级指标": "满意度指标", "二级指标": "服务对象满意度指标",
             "三级指标": "群众满意度", "指标方向": "定性", "年度指标值": "群众满意", "实际完成值": "达成预期指标",
             "计量单位": None, "分值": 30, "分子": None, "分母": None, "自评得分": None,
             "偏差原因分析及改进措施": None},
            {"项目编号": "P-002", "一级指标": "产出指标", "二级指标": "数量指标", "三级指标": "接待群众批次",
             "指标方向": "≥", "年度指标值": 50, "实际完成值": 74, "计量单位": "批", "分值": 60,
             "分子": None, "分母": None, "自评得分": None, "偏差原因分析及改进措施": None},
            {"项目编号": "P-002", "一级指标": "成本指标", "二级指标": "经济成本指标", "三级指标": "项目支出",
             "指标方向": "≤", "年度指标值": 5, "实际完成值": 5, "计量单位": "万元", "分值": 30,
             "分子": None, "分母": None, "自评得分": None, "偏差原因分析及改进措施": None},
        ],
    }


def write_workbook(path: Path, sheets: Mapping[str, Sequence[Mapping[str, object]]], *,
                   title_rows: Mapping[str, int] | None = None,
                   number_formats: Mapping[tuple[str, int, str], str] | None = None,
                   headers: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write a real .xlsx: each sheet's header row (after optional title rows), then its rows.

    `number_formats[(sheet, index, header)]` sets a cell's format; `headers[sheet]` overrides the
    header texts (same order as the rows' keys) to test how users type them.
    """
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        keys = list(rows[0]) if rows else list((headers or {}).get(name, []))
        for _ in range((title_rows or {}).get(name, 0)):
            sheet.append([f"2020年度{name}表"])
        sheet.append(list((headers or {}).get(name, keys)))
        for index, row in enumerate(rows):
            sheet.append([row.get(k) for k in keys])
            for col, key in enumerate(keys, start=1):
                fmt = (number_formats or {}).get((name, index, key))
                if fmt:
                    sheet.cell(row=sheet.max_row, column=col).number_format = fmt
    workbook.save(path)
    return path


def workbook_bytes(title: str) -> bytes:
    """A small, real .xlsx (not a valid perfreport workbook) whose content depends on `title`."""
    book = openpyxl.Workbook()
    book.active["A1"] = title
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def excel_row(sheet_rows_index: int, title_rows: int = 0) -> int:
    """The Excel row of the data row at `sheet_rows_index` (header in row 1 + title rows)."""
    return title_rows + 2 + sheet_rows_index


@pytest.fixture
def sheets() -> dict[str, Rows]:
    """A fresh copy of the valid sheets, to break one rule at a time."""
    return copy.deepcopy(valid_sheets())


@pytest.fixture
def workbook_factory(tmp_path: Path) -> Callable[..., Path]:
    """Write sheets to a real .xlsx in tmp_path and return its path."""
    counter = iter(range(1, 10_000))

    def make(sheets: Mapping[str, Sequence[Mapping[str, object]]] | None = None, name: str | None = None,
             **options: object) -> Path:
        path = tmp_path / (name or f"工作簿{next(counter)}.xlsx")
        return write_workbook(path, sheets if sheets is not None else valid_sheets(), **options)

    return make


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (starting one costs 20-40 s here)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `prefect server start` on loopback for the whole session; its API URL.

    Tests read only their own flow runs, events and artifacts from it (filtered by name or id).
    """
    from tests.prefectapi import prefect_server_at

    home = tmp_path_factory.mktemp("prefect-server-home")
    with prefect_server_at(home, home / "server.log") as url:
        yield url

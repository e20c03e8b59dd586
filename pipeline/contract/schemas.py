"""The workbook contract: one pandera DataFrameModel per sheet, Chinese headers as aliases.

Each field's `metadata["kind"]` tells validation how to turn the raw cell into a typed value
before pandera checks it: "text", "number" (Decimal), "integer", "date" (datetime.date), or
"cell" (mixed, parsed by the indicator rules). Code names a column as `FundingSheet.spent_wan`, which is its header.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.core import headers
from pipeline.core.forms import ACCEPTED_SOURCES, LEVEL2_BY_LEVEL1, accepted_level2
from pipeline.xlsx.layout import SheetLayout

TEXT = {"kind": "text"}
NUMBER = {"kind": "number"}
INTEGER = {"kind": "integer"}
DATE = {"kind": "date"}
CELL = {"kind": "cell"}

DIRECTIONS = ("≥", "≤", "=", "定性")

# Columns validation adds to the indicator table once it has split the cells; build.py reads them.
DIRECTION, TARGET_NUMBER, TARGET_TEXT, UNIT = "_direction", "_target_number", "_target_text", "_unit"
ACTUAL_NUMBER, ACTUAL_GRADE, ACTUAL_TEXT = "_actual_number", "_actual_grade", "_actual_text"
# The target as typed, for the report: the operator or words before the number, the number, and
# a direction word after it (95%以上).
TYPED_OPERATOR, TYPED_NUMBER, TYPED_SUFFIX = "_typed_operator", "_typed_number", "_typed_suffix"
# The fraction a result cell carries ("96.7%（59/61）"); validation fills 分子/分母 from it.
CELL_NUMERATOR, CELL_DENOMINATOR = "_cell_numerator", "_cell_denominator"
PARSED_INDICATOR_COLUMNS = (DIRECTION, TARGET_NUMBER, TARGET_TEXT, UNIT, ACTUAL_NUMBER, ACTUAL_GRADE, ACTUAL_TEXT,
                            TYPED_OPERATOR, TYPED_NUMBER, TYPED_SUFFIX, CELL_NUMERATOR, CELL_DENOMINATOR)


class ProjectSheet(pa.DataFrameModel):
    """Sheet 项目: one row per project."""

    project_id: Series[object] = pa.Field(
        alias="项目编号", unique=True, str_length={"min_value": 1, "max_value": 40}, metadata=TEXT
    )
    project_name: Series[object] = pa.Field(
        alias="项目名称", str_length={"min_value": 1, "max_value": 100}, metadata=TEXT
    )
    year: Series[object] = pa.Field(alias="年度", in_range={"min_value": 2000, "max_value": 2100}, metadata=INTEGER)
    department: Series[object] = pa.Field(alias="主管部门", metadata=TEXT)
    implementing_unit: Series[object] = pa.Field(alias="实施单位", nullable=True, metadata=TEXT)
    overview: Series[object] = pa.Field(alias=headers.OVERVIEW, metadata=TEXT)
    annual_goal: Series[object] = pa.Field(alias="年度目标", nullable=True, metadata=TEXT)
    performance: Series[object] = pa.Field(alias=headers.PERFORMANCE, nullable=True, metadata=TEXT)
    template: Series[object] = pa.Field(alias="模板", nullable=True, metadata=TEXT)
    # The report's ending; optional as columns too, so a workbook made before them stays valid.
    budget_deviation: Series[object] = pa.Field(alias=headers.BUDGET_DEVIATION, nullable=True, metadata=TEXT)
    problems: Series[object] = pa.Field(alias=headers.PROBLEMS, nullable=True, metadata=TEXT)
    improvements: Series[object] = pa.Field(alias=headers.IMPROVEMENTS, nullable=True, metadata=TEXT)
    signature: Series[object] = pa.Field(alias=headers.SIGNATURE, nullable=True, metadata=TEXT)
    report_date: Series[object] = pa.Field(alias=headers.REPORT_DATE, nullable=True, metadata=DATE)

    class Config:
        name = "项目"


def at_most_where_both(value: pd.Series, limit: pd.Series) -> pd.Series:
    """Per row: `value` ≤ `limit`, and True where either is empty (a missing cell is reported by
    its own column's rule, not as a comparison)."""
    comparable = value.notna() & limit.notna()
    return ~comparable | (value.where(comparable, 0) <= limit.where(comparable, 0))


class FundingSheet(pa.DataFrameModel):
    """Sheet 资金: one row per project and source of money, amounts in 万元."""

    project_id: Series[object] = pa.Field(alias="项目编号", metadata=TEXT)
    source: Series[object] = pa.Field(alias="资金来源", isin=ACCEPTED_SOURCES, metadata=TEXT)
    initial_budget_wan: Series[object] = pa.Field(alias="年初预算数(万元)", ge=Decimal(0), metadata=NUMBER)
    adjusted_budget_wan: Series[object] = pa.Field(alias="全年预算数(万元)", ge=Decimal(0), metadata=NUMBER)
    spent_wan: Series[object] = pa.Field(alias="全年执行数(万元)", ge=Decimal(0), metadata=NUMBER)

    @pa.dataframe_check(name="spent_within_budget")
    @classmethod
    def spent_within_budget(cls, df: pd.DataFrame) -> Series[bool]:
        """全年执行数 may not exceed 全年预算数 (rows where either is missing pass here)."""
        return at_most_where_both(df[cls.spent_wan], df[cls.adjusted_budget_wan])

    class Config:
        name = "资金"


class PrincipleSheet(pa.DataFrameModel):
    """Sheet 使用原则: zero or more numbered principles per project."""

    project_id: Series[object] = pa.Field(alias="项目编号", metadata=TEXT)
    seq: Series[object] = pa.Field(alias="序号", ge=1, metadata=INTEGER)
    content: Series[object] = pa.Field(alias="内容", metadata=TEXT)

    class Config:
        name = "使用原则"
        unique = ["项目编号", "序号"]


def at_most_two_decimals(number: Decimal) -> bool:
    """Whether a number has at most two significant decimals (30.50 has one, 30.005 three).

    NaN and Infinity have a letter for exponent ('n', 'N', 'F') and no decimals: they pass here.
    """
    exponent = number.normalize().as_tuple().exponent
    return not isinstance(exponent, int) or exponent >= -2


class IndicatorSheet(pa.DataFrameModel):
    """Sheet 绩效指标: one row per performance indicator."""

    project_id: Series[object] = pa.Field(alias="项目编号", metadata=TEXT)
    level1: Series[object] = pa.Field(alias="一级指标", isin=tuple(LEVEL2_BY_LEVEL1), metadata=TEXT)
    level2: Series[object] = pa.Field(alias="二级指标", metadata=TEXT)
    name: Series[object] = pa.Field(alias="三级指标", metadata=TEXT)
    direction: Series[object] = pa.Field(alias="指标方向", nullable=True, metadata=CELL)
    target: Series[object] = pa.Field(alias="年度指标值", metadata=CELL)
    actual: Series[object] = pa.Field(alias=headers.ACTUAL, nullable=True, metadata=CELL)
    unit: Series[object] = pa.Field(alias="计量单位", nullable=True, metadata=TEXT)
    weight: Series[object] = pa.Field(alias="分值", gt=Decimal(0), metadata=NUMBER)
    numerator: Series[object] = pa.Field(alias="分子", nullable=True, ge=Decimal(0), metadata=NUMBER)
    denominator: Series[object] = pa.Field(alias="分母", nullable=True, gt=Decimal(0), metadata=NUMBER)
    self_score: Series[object] = pa.Field(alias=headers.SELF_SCORE, nullable=True, ge=Decimal(0), metadata=NUMBER)
    deviation: Series[object] = pa.Field(alias=headers.DEVIATION, nullable=True, metadata=TEXT)

    @pa.check("分值", name="at_most_two_decimals")
    @classmethod
    def weight_has_at_most_two_decimals(cls, weight: Series[object]) -> Series[bool]:
        """Scores are rounded to 2 decimals: a 分值 of 30.005 could then be exceeded by its own score."""
        # Judged once per distinct value: a workbook's weights repeat on most of its rows.
        verdicts = {w: not isinstance(w, Decimal) or at_most_two_decimals(w) for w in set(weight)}
        return weight.map(verdicts.__getitem__)

    @pa.dataframe_check(name="level2_matches_level1")
    @classmethod
    def level2_matches_level1(cls, df: pd.DataFrame) -> Series[bool]:
        """二级指标 must be one of those accepted under its 一级指标 (`forms.accepted_level2`)."""
        allowed = df[cls.level1].map(accepted_level2)
        return pd.Series(
            # An unknown 一级指标 is reported by its own column's check, not a second time here.
            [lvl2 is None or lvl1 not in LEVEL2_BY_LEVEL1 or lvl2 in ok
             for lvl1, lvl2, ok in zip(df[cls.level1], df[cls.level2], allowed, strict=True)],
            index=df.index,
        )

    @pa.dataframe_check(name="fraction_complete")
    @classmethod
    def fraction_complete(cls, df: pd.DataFrame) -> Series[bool]:
        """分子 and 分母 are given together or not at all."""
        return df[cls.numerator].isna() == df[cls.denominator].isna()

    @pa.dataframe_check(name="self_score_within_weight")
    @classmethod
    def self_score_within_weight(cls, df: pd.DataFrame) -> Series[bool]:
        """自评得分 may not exceed 分值."""
        return at_most_where_both(df[cls.self_score], df[cls.weight])

    class Config:
        name = headers.INDICATOR_SHEET


SHEET_MODELS: tuple[type[pa.DataFrameModel], ...] = (ProjectSheet, FundingSheet, PrincipleSheet, IndicatorSheet)


def sheet_name(model: type[pa.DataFrameModel]) -> str:
    """The Excel sheet name a model describes."""
    name = model.Config.name  # pandera's default is None; every model here sets its sheet's name
    assert name is not None, f"{model.__name__} names no sheet"
    return name


def columns_of(model: type[pa.DataFrameModel]) -> SimpleNamespace:
    """A model's column names as plain attributes (a pandera model's are slow descriptors)."""
    return SimpleNamespace(**{name: getattr(model, name) for name in model.__annotations__})


def column_kinds(model: type[pa.DataFrameModel]) -> dict[str, str]:
    """Header -> parse kind ("text", "number", "integer", "date", "cell") of a sheet model."""
    return {name: (col.metadata or {}).get("kind", "text") for name, col in model.to_schema().columns.items()}


def sheet_layout(model: type[pa.DataFrameModel]) -> SheetLayout:
    """What the reader must find for a model: required headers (non-nullable) and optional ones."""
    columns = model.to_schema().columns
    required = tuple(name for name, col in columns.items() if not col.nullable)
    optional = tuple(name for name, col in columns.items() if col.nullable)
    return SheetLayout(sheet_name(model), required, optional)


# pandera builds a model's schema on first use (0.8 s for these four) and imports and registers
# its pandas backend on the first validation (0.25 s). Those are costs per process, not per
# workbook (a service reads many), so they are paid here, once, at import.
SHEET_LAYOUTS: tuple[SheetLayout, ...] = tuple(sheet_layout(model) for model in SHEET_MODELS)
pa.DataFrameSchema.register_default_backends(pd.DataFrame)

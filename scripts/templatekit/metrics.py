"""The page geometry of GB/T 9704-2012 and the arithmetic behind the templates' numbers.

Word measures in twips (1/20 pt, 1/1440 inch); everything here ends as whole twips, computed
from the standard's millimetres and character counts so that each number can be checked.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

TWIPS_PER_PT = 20
MM_PER_PT = 25.4 / 72


def mm_twips(mm: float) -> int:
    """Millimetres as whole twips (1 mm = 56.69 twips)."""
    return round(mm * 1440 / 25.4)


def pt_twips(pt: float) -> int:
    """Points as whole twips."""
    return round(pt * TWIPS_PER_PT)


# Chinese type sizes in points: 二号 22, 小二 18, 三号 16, 四号 14, 五号 10.5.
SIZE_ERHAO = 22.0
SIZE_XIAOER = 18.0
SIZE_SANHAO = 16.0
SIZE_SIHAO = 14.0
SIZE_WUHAO = 10.5

# GB/T 9704 5.2.2: 22 lines of 28 characters of 三号 in the 156 x 225 mm type area.
CHARS_PER_LINE = 28
LINES_PER_PAGE = 22
# 225 mm / 22 lines = 28.99 pt; Chinese office templates use 28.95 pt (579 twips) so that the
# 22nd line cannot be pushed off the page by rounding.
LINE_PITCH_TWIPS = 579

# GB/T 9704 7.5: the 一字线 around the page number lie 7 mm below the type area.
PAGE_NUMBER_BELOW_TYPE_AREA_MM = 7.0


@dataclass(frozen=True, slots=True)
class PageGeometry:
    """A sheet and its margins in millimetres; the type area (版心) is what the margins leave."""

    width_mm: float
    height_mm: float
    top_mm: float
    bottom_mm: float
    left_mm: float
    right_mm: float

    @property
    def type_width_twips(self) -> int:
        """Width of the type area in twips, from the whole-twip values Word stores."""
        return mm_twips(self.width_mm) - mm_twips(self.left_mm) - mm_twips(self.right_mm)

    @property
    def landscape(self) -> bool:
        """True when the sheet is wider than tall."""
        return self.width_mm > self.height_mm


# A4 portrait with GB/T 9704 5.2.1's margins: top 37, bottom 35, left (binding side) 28, right 26:
# a 156 x 225 mm type area.
BODY_PAGE = PageGeometry(210, 297, top_mm=37, bottom_mm=35, left_mm=28, right_mm=26)
# The 附件 form needs the page turned. GB/T 9704 10.1 turns the sheet so that the table's head is
# at the binding edge of an odd page: the portrait margins rotate with it (left 28 -> top,
# right 26 -> bottom, bottom 35 -> left, top 37 -> right), leaving the same 225 x 156 mm type
# area on the sheet.
ANNEX_PAGE = PageGeometry(297, 210, top_mm=28, bottom_mm=26, left_mm=35, right_mm=37)


def char_space(geometry: PageGeometry, size_pt: float = SIZE_SANHAO, chars: int = CHARS_PER_LINE) -> int:
    """w:docGrid/@w:charSpace that puts `chars` characters of `size_pt` on a line of the type area.

    Word's character grid spaces East-Asian characters at the body size plus charSpace/4096 pt.
    156 mm is 8845 twips = 442.25 pt, and 28 characters of 三号 need 448 pt: without a grid a
    line holds 27. The pitch must be at most 442.25 / 28 = 15.794 pt, i.e. 16 pt - 0.2054 pt,
    and -0.2054 x 4096 rounds down to -842 (the value Chinese office templates carry).
    """
    pitch_pt = geometry.type_width_twips / TWIPS_PER_PT / chars
    return math.floor((pitch_pt - size_pt) * 4096)


def char_pitch_twips(geometry: PageGeometry, size_pt: float = SIZE_SANHAO) -> float:
    """The grid's character pitch in twips (315.9 for the body: 28 per line)."""
    return (size_pt + char_space(geometry, size_pt) / 4096) * TWIPS_PER_PT


def libreoffice_spacing_pt(twentieths: int) -> float:
    """Character spacing as LibreOffice lays it out: it keeps the value in hundredths of a
    millimetre and lays out in twips, truncating toward zero both times (-5 twentieths = -0.25 pt
    becomes -8/100 mm, then -4 twips: -0.2 pt)."""
    hundredths_mm = math.trunc(twentieths * 2540 / 1440)
    return math.trunc(hundredths_mm * 1440 / 2540) / TWIPS_PER_PT


def char_spacing(geometry: PageGeometry, size_pt: float = SIZE_SANHAO, chars: int = CHARS_PER_LINE) -> int:
    """w:rPr/w:spacing (twentieths of a point) that fits `chars` characters on a line without a grid.

    The same 28 characters as the grid, by narrowing each character: 442.25 pt / 28 = 15.794 pt
    per character, 0.2054 pt less than 三号, which rounds down to -5 (-0.25 pt). LibreOffice
    narrows by only 0.2 pt for -5 (see libreoffice_spacing_pt) and then sets 27 characters a
    line (measured), so the value steps down to -6 (-0.3 pt in Word, 0.25 pt in LibreOffice):
    28 characters fit in both, 29 (455 pt) in neither.
    """
    pitch_pt = geometry.type_width_twips / TWIPS_PER_PT / chars
    value = math.floor((pitch_pt - size_pt) * TWIPS_PER_PT)
    while size_pt + libreoffice_spacing_pt(value) > pitch_pt:
        value -= 1
    return value


# 宋体 (SimSun, the page number's font) has a line exactly one em tall (ascent 0.859 em +
# descent 0.141 em, no line gap) and draws its 一字线 (U+2014) at the middle of that em box.
# So with single spacing the dash is half an em above the bottom of the footer's line.
DASH_ABOVE_LINE_BOTTOM_EM = 0.5


def footer_distance_twips(geometry: PageGeometry, size_pt: float = SIZE_SIHAO) -> int:
    """w:pgMar/@w:footer that puts the page number's 一字线 7 mm below the type area.

    Word places the bottom of the footer's (single) line at the footer distance above the
    sheet's bottom edge, and the dash sits half an em (7 pt = 2.47 mm at 四号) above that. The
    type area ends `bottom_mm` above the edge, so the dash is 7 mm below it when
    footer = bottom - 7 mm - 2.47 mm: 25.53 mm for the portrait body (35 mm bottom margin),
    16.53 mm for the landscape 附件 (26 mm).
    """
    dash_mm = DASH_ABOVE_LINE_BOTTOM_EM * size_pt * MM_PER_PT
    return mm_twips(geometry.bottom_mm - PAGE_NUMBER_BELOW_TYPE_AREA_MM - dash_mm)


# Advance widths in em of what table cells hold. CJK characters, full-width punctuation and the
# "ambiguous" signs (≥ ≤ “ ”, drawn from the East-Asian font because runs carry
# w:hint="eastAsia") are one em; Times New Roman's digits are half an em, its '.' and ','
# a quarter, '/' 0.278 and '%' 0.833.
NARROW_ADVANCES = {".": 0.25, ",": 0.25, "/": 0.278, "%": 0.833, ":": 0.278, "-": 0.333}


def text_width_pt(text: str, size_pt: float) -> float:
    """Width of `text` set in one line at `size_pt`, from the advances above."""
    ems = 0.0
    for ch in text:
        if unicodedata.east_asian_width(ch) in ("W", "F", "A"):
            ems += 1.0
        else:
            ems += NARROW_ADVANCES.get(ch, 0.5)
    return ems * size_pt


# Word and LibreOffice put a little space where Chinese meets digits or Latin letters
# (w:autoSpaceDN, on by default): a quarter em in Word.
AUTOSPACE_EM = 0.25


def prose_width_pt(text: str, size_pt: float) -> float:
    """Width of `text` in running text: its characters plus the space where wide meets narrow."""
    wide = [unicodedata.east_asian_width(ch) in ("W", "F", "A") for ch in text]
    meetings = sum(1 for left, right in zip(wide, wide[1:], strict=False) if left != right)
    return text_width_pt(text, size_pt) + meetings * AUTOSPACE_EM * size_pt


# Cell padding left and right (w:tblCellMar), 1.5 mm each, and one point of slack per column so
# that a token that fits by the numbers also fits in LibreOffice's substitute fonts.
CELL_PADDING_TWIPS = mm_twips(1.5)
COLUMN_SLACK_TWIPS = TWIPS_PER_PT


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: the texts that must fit on one line in it, and its share of what is left.

    A column with `share` 0 is exactly as wide as its widest sample; the others divide the
    rest of the type area in proportion to their shares (long free text: 三级指标, 偏差原因…).
    """

    samples: tuple[str, ...]
    share: int = 0


def fitted_twips(column: Column, size_pt: float) -> int:
    """The narrowest width holding each of the column's samples on one line, padding included."""
    content = max(text_width_pt(sample, size_pt) for sample in column.samples)
    return math.ceil(content * TWIPS_PER_PT) + 2 * CELL_PADDING_TWIPS + COLUMN_SLACK_TWIPS


def column_widths(columns: Sequence[Column], total_twips: int, size_pt: float = SIZE_WUHAO) -> list[int]:
    """Widths in twips summing exactly to `total_twips`: fitted columns first, shares of the rest.

    Raises ValueError when the fitted columns alone do not fit: a sample would have to break.
    """
    widths = [fitted_twips(column, size_pt) for column in columns]
    shares = sum(column.share for column in columns)
    spare = total_twips - sum(widths)
    if spare < 0 or (spare and not shares):
        raise ValueError(f"columns need {sum(widths)} twips, the type area has {total_twips}")
    given = 0
    last = max(i for i, column in enumerate(columns) if column.share) if shares else -1
    for index, column in enumerate(columns):
        if column.share:
            extra = spare - given if index == last else spare * column.share // shares
            widths[index] += extra
            given += extra
    return widths

"""WordprocessingML written directly: runs, paragraphs, and the package parts python-docx cannot set.

Every run carries ``<w:rFonts w:hint="eastAsia"/>``: “ ” ‘ ’ — … ≥ are code points shared by
Chinese and Western text, and without the hint Word draws them from the Latin font (narrow
Western quotes next to 仿宋 text). The hint changes nothing for letters and digits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from xml.sax.saxutils import escape, quoteattr

from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def element(tag: str, attrs: Mapping[str, str] | None = None, children: Iterable[BaseOxmlElement] = ()) -> BaseOxmlElement:
    """A w: element with w: attributes (`{"val": "1"}` -> w:val="1") and children."""
    node = OxmlElement(tag)
    for name, value in (attrs or {}).items():
        node.set(qn(name if ":" in name else f"w:{name}"), value)
    for child in children:
        node.append(child)
    return node


def east_asian_run(text: str) -> BaseOxmlElement:
    """One run holding `text` whole (so docxtpl sees a tag unbroken), with the East-Asian hint;
    a tab character becomes Word's w:tab."""
    children = [element("w:rPr", children=[element("w:rFonts", {"hint": "eastAsia"})])]
    for index, piece in enumerate(text.split("\t")):
        if index:
            children.append(element("w:tab"))
        if piece:
            t = element("w:t", {"xml:space": "preserve"})
            t.text = piece
            children.append(t)
    return element("w:r", children=children)


def paragraph(style_id: str | None, text: str = "", extra_ppr: Iterable[BaseOxmlElement] = ()) -> BaseOxmlElement:
    """A paragraph in a style (None: Normal, which Word writes as no w:pStyle) holding one run."""
    ppr_children = [element("w:pStyle", {"val": style_id})] if style_id else []
    ppr_children.extend(extra_ppr)
    children = [element("w:pPr", children=ppr_children)] if ppr_children else []
    if text:
        children.append(east_asian_run(text))
    return element("w:p", children=children)


def add_hint_to_runs(root: BaseOxmlElement) -> None:
    """Give every run under `root` the East-Asian hint (runs python-docx created)."""
    for run in root.iter(qn("w:r")):
        rpr = run.find(qn("w:rPr"))
        if rpr is None:
            rpr = element("w:rPr")
            run.insert(0, rpr)
        rfonts = rpr.find(qn("w:rFonts"))
        if rfonts is None:
            rfonts = element("w:rFonts")
            rpr.insert(0, rfonts)
        rfonts.set(qn("w:hint"), "eastAsia")


# The fonts the templates name, for word/fontTable.xml. w:altName is what Word uses on a
# machine without the font: the _GB2312 fonts and 方正小标宋简体 are extra installs, while
# 仿宋, 楷体, 宋体 and 黑体 come with every Chinese Windows. charset 86 is GB2312 (134); panose
# and signatures are those Word records for the fonts where they are published, left out where
# they are not (方正小标宋简体: Word then matches by charset and family).
FONTS: tuple[dict[str, str], ...] = (
    {"name": "Times New Roman", "panose": "02020603050405020304", "charset": "00", "family": "roman",
     "pitch": "variable", "sig": "E0002EFF C000785B 00000009 00000000 000001FF 00000000"},
    {"name": "宋体", "alt": "SimSun", "panose": "02010600030101010101", "charset": "86", "family": "auto",
     "pitch": "variable", "sig": "00000003 288F0000 00000016 00000000 00040001 00000000"},
    {"name": "黑体", "alt": "SimHei", "panose": "02010609060101010101", "charset": "86", "family": "modern",
     "pitch": "fixed", "sig": "800002BF 38CF7CFA 00000016 00000000 00040001 00000000"},
    {"name": "仿宋_GB2312", "alt": "仿宋", "panose": "02010609030101010101", "charset": "86", "family": "modern",
     "pitch": "fixed", "sig": "00000001 080E0000 00000010 00000000 00040000 00000000"},
    {"name": "楷体_GB2312", "alt": "楷体", "panose": "02010609030101010101", "charset": "86", "family": "modern",
     "pitch": "fixed", "sig": "00000001 080E0000 00000010 00000000 00040000 00000000"},
    {"name": "方正小标宋简体", "alt": "宋体", "charset": "86", "family": "auto", "pitch": "variable"},
)
_SIG_FIELDS = ("usb0", "usb1", "usb2", "usb3", "csb0", "csb1")


def font_table_xml() -> bytes:
    """word/fontTable.xml naming every font the templates use, with fallbacks."""
    entries = []
    for font in FONTS:
        parts = [f"<w:font w:name={quoteattr(font['name'])}>"]
        if "alt" in font:
            parts.append(f"<w:altName w:val={quoteattr(font['alt'])}/>")
        if "panose" in font:
            parts.append(f'<w:panose1 w:val="{font["panose"]}"/>')
        parts.append(f'<w:charset w:val="{font["charset"]}"/><w:family w:val="{font["family"]}"/>'
                     f'<w:pitch w:val="{font["pitch"]}"/>')
        if "sig" in font:
            values = " ".join(f'w:{field}="{value}"' for field, value in zip(_SIG_FIELDS, font["sig"].split(), strict=True))
            parts.append(f"<w:sig {values}/>")
        parts.append("</w:font>")
        entries.append("".join(parts))
    return (f"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<w:fonts xmlns:w=\"{W_NS}\">"
            + "".join(entries) + "</w:fonts>").encode()


APPLICATION = "perfreport"


def app_xml() -> bytes:
    """docProps/app.xml without another program's name, version or stale page and word counts."""
    ns = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"
    return (f"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<Properties xmlns=\"{ns}\">"
            f"<Application>{escape(APPLICATION)}</Application><DocSecurity>0</DocSecurity>"
            "<ScaleCrop>false</ScaleCrop><LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc>"
            "<HyperlinksChanged>false</HyperlinksChanged></Properties>").encode()


# Word 2013 and later (compatibilityMode 15) open the file without 兼容模式; the others are the
# settings Word 2013 writes with it.
COMPAT_SETTINGS: tuple[tuple[str, str], ...] = (
    ("compatibilityMode", "15"),
    ("overrideTableStyleFontSizeAndJustification", "1"),
    ("enableOpenTypeFeatures", "1"),
    ("doNotFlipMirrorIndents", "1"),
    ("differentiateMultirowTableHeaders", "1"),
)


def set_compatibility(settings: BaseOxmlElement) -> None:
    """Word 2013 compatibility, Chinese theme-font language, no leftovers of earlier edits."""
    # Theme fonts resolve by this language; python-docx ships ja-JP, which means MS Mincho.
    theme_lang = settings.find(qn("w:themeFontLang"))
    if theme_lang is not None:
        theme_lang.set(qn("w:eastAsia"), "zh-CN")
    # Edit-session ids, spell-check state and the request for a thumbnail (there is none).
    for stale in ("w:rsids", "w:proofState", "w:savePreviewPicture"):
        node = settings.find(qn(stale))
        if node is not None:
            settings.remove(node)
    compat = settings.find(qn("w:compat"))
    for old in compat.findall(qn("w:compatSetting")):
        compat.remove(old)
    if compat.find(qn("w:doNotExpandShiftReturn")) is None:
        # A line break inside a workbook cell becomes a manual break; without this, justified
        # text spreads the characters of the line before it across the whole width.
        compat.insert(0, element("w:doNotExpandShiftReturn"))
    for name, value in COMPAT_SETTINGS:
        compat.append(element("w:compatSetting", {"name": name, "uri": "http://schemas.microsoft.com/office/word", "val": value}))


# The schema's order of paragraph and run properties (CT_PPrBase, CT_RPr). Word refuses a file
# whose properties are out of order; properties added one by one are sorted into it at the end.
PPR_ORDER = (
    "pStyle", "keepNext", "keepLines", "pageBreakBefore", "framePr", "widowControl", "numPr",
    "suppressLineNumbers", "pBdr", "shd", "tabs", "suppressAutoHyphens", "kinsoku", "wordWrap",
    "overflowPunct", "topLinePunct", "autoSpaceDE", "autoSpaceDN", "bidi", "adjustRightInd",
    "snapToGrid", "spacing", "ind", "contextualSpacing", "mirrorIndents", "suppressOverlap", "jc",
    "textDirection", "textAlignment", "textboxTightWrap", "outlineLvl", "divId", "cnfStyle", "rPr",
    "sectPr", "pPrChange",
)
RPR_ORDER = (
    "rStyle", "rFonts", "b", "bCs", "i", "iCs", "caps", "smallCaps", "strike", "dstrike", "outline",
    "shadow", "emboss", "imprint", "noProof", "snapToGrid", "vanish", "webHidden", "color", "spacing",
    "w", "kern", "position", "sz", "szCs", "highlight", "u", "effect", "bdr", "shd", "fitText",
    "vertAlign", "rtl", "cs", "em", "lang", "eastAsianLayout", "specVanish", "oMath", "rPrChange",
)


def sort_properties(root: BaseOxmlElement) -> None:
    """Put the children of every w:pPr and w:rPr under `root` in the schema's order (stable)."""
    for tag, order in (("w:pPr", PPR_ORDER), ("w:rPr", RPR_ORDER)):
        rank = {qn(f"w:{name}"): index for index, name in enumerate(order)}
        for props in root.iter(qn(tag)):
            children = list(props)
            children.sort(key=lambda child: rank.get(child.tag, len(rank)))
            for child in children:
                props.append(child)

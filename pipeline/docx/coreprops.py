"""docProps/core.xml of a compiled template: the properties docxtpl renders, and the report's date.

docxtpl renders six string properties of core.xml as Jinja templates (author, comments,
identifier, language, subject, title) and writes them back with python-docx; the product then
sets created and modified to the report's date (`render.report_datetime`). Parsing, copying and
serializing the part per report cost as much as a tenth of a report, so the part is serialized
once here with placeholders where the rendered values and the date go, and a report's part is
those pieces joined with its values escaped as lxml escapes text. A value the placeholders cannot
stand for (over python-docx's 255 characters, a carriage return) takes python-docx's own way.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.coreprops import CoreProperties
from docx.opc.oxml import serialize_part_xml
from lxml import etree

from pipeline.docx.render import dated, report_datetime
from pipeline.write.zipfiles import ZipMember

# The core properties docxtpl renders (DocxTemplate.render_properties), in its order.
PROPERTIES = ("author", "comments", "identifier", "language", "subject", "title")
# How python-docx writes a date, and a date no template holds, to cut around.
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DATE_PLACEHOLDER = dt.datetime(1111, 11, 11, 11, 11, 11, tzinfo=dt.UTC)
_DATE_TOKEN = _DATE_PLACEHOLDER.strftime(_DATE_FORMAT)
_MAX_CHARS = 255  # python-docx refuses longer string properties


def _placeholder(index: int) -> str:
    """A text no template holds (private-use characters) standing for property `index`."""
    return f"\ue000{index}\ue001"


_TOKENS = re.compile("(\ue000\\d+\ue001|" + re.escape(_DATE_TOKEN) + ")")


def _escaped(value: str) -> str:
    """`value` as lxml writes element text."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _constant(initial: str) -> bool:
    """True when Jinja renders `initial` as itself: no tag, no line end it would normalize."""
    return "{" not in initial and "\r" not in initial and not initial.endswith("\n")


@dataclass(frozen=True, slots=True)
class CorePart:
    """docProps/core.xml, ready to be written per report."""

    name: str
    element: etree._Element  # as in the template
    templates: tuple[tuple[str, str, jinja2.Template | None], ...]  # (property, initial, template or None if constant)
    unchanged: ZipMember  # every property at its initial value, the template's dates; compressed
    # The part with a placeholder for each rendered property, cut into text and tokens: with the
    # template's dates, and with both dates as _DATE_TOKEN. () when a placeholder went missing.
    pieces: tuple[str, ...] = ()
    dated_pieces: tuple[str, ...] = ()

    def values(self, context: Mapping[str, Any]) -> list[str]:
        """The six properties rendered for `context`, in docxtpl's order."""
        return [initial if template is None else template.render(context) for _, initial, template in self.templates]

    def member(self, context: Mapping[str, Any], compressed: Callable[[str, bytes], ZipMember]) -> ZipMember:
        """The part as a zip member for one report."""
        values = self.values(context)
        when = report_datetime(context)
        if when is None and all(v == initial for v, (_, initial, _) in zip(values, self.templates, strict=True)):
            return self.unchanged
        return compressed(self.name, self.content(values, when))

    def content(self, values: list[str], when: dt.datetime | None) -> bytes:
        """The part's bytes with these property values and dates."""
        pieces = self.dated_pieces if when is not None else self.pieces
        if pieces and all(len(v) <= _MAX_CHARS and "\r" not in v for v in values):
            stamp = when.strftime(_DATE_FORMAT) if when is not None else ""
            return "".join(self._token(piece, values, stamp) for piece in pieces).encode("utf-8")
        element = copy.deepcopy(self.element)
        properties = CoreProperties(element)
        for (prop, _, _), value in zip(self.templates, values, strict=True):
            setattr(properties, prop, value)  # as docxtpl writes them (and fails where it fails)
        dated(properties, when)  # after the text properties, in the order Renderer sets them
        return serialize_part_xml(element)

    @staticmethod
    def _token(piece: str, values: list[str], stamp: str) -> str:
        if piece == _DATE_TOKEN:
            return stamp
        if piece.startswith("\ue000") and piece.endswith("\ue001"):
            return _escaped(values[int(piece[1:-1])])
        return piece


def _cut(element: etree._Element, expected: int) -> tuple[str, ...]:
    """The serialized element split into text and tokens; () unless `expected` tokens are found."""
    pieces = tuple(_TOKENS.split(serialize_part_xml(element).decode("utf-8")))
    return pieces if sum(1 for piece in pieces if _TOKENS.fullmatch(piece)) == expected else ()


def core_part(document: Any, env: jinja2.Environment, zip_name: Callable[[Any], str],
              compressed: Callable[[str, bytes], ZipMember]) -> CorePart | None:
    """The core properties of a template opened with python-docx, compiled; None without a part."""
    try:
        part = document.part.package.part_related_by(RT.CORE_PROPERTIES)
    except KeyError:
        return None
    element = copy.deepcopy(part.element)
    properties = CoreProperties(element)
    initials = [(prop, getattr(properties, prop)) for prop in PROPERTIES]
    templates = tuple((prop, initial, None if _constant(initial) else env.from_string(initial))
                      for prop, initial in initials)
    for prop, initial in initials:
        setattr(properties, prop, initial)  # docxtpl always writes them back
    name = zip_name(part)
    unchanged = compressed(name, serialize_part_xml(element))

    with_tokens = copy.deepcopy(part.element)
    tokens = CoreProperties(with_tokens)
    for index, (prop, initial, template) in enumerate(templates):
        setattr(tokens, prop, initial if template is None else _placeholder(index))
    dynamic = sum(1 for _, _, template in templates if template is not None)
    pieces = _cut(with_tokens, dynamic)
    dated(tokens, _DATE_PLACEHOLDER)
    dated_pieces = _cut(with_tokens, dynamic + 2)
    return CorePart(name, copy.deepcopy(part.element), templates, unchanged, pieces, dated_pieces)

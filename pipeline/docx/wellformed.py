"""Templates whose body always renders to well-formed XML, told from the template alone.

The compiled path splices a rendered body into its document as it is only when the body is
well-formed XML (docxtpl's recovering parser would repair anything else). Checking every report
with expat cost a sixth of a report's rendering; for most templates it can be known beforehand:

* the patched body (docxtpl's XML with the Jinja tags as text) is plain (`tabletext.plain_body`,
  and no w:ruby, whose runs hold runs) and parses as XML;
* every tag is whole within one text or attribute value (Jinja cannot swallow markup);
* every Jinja block (if/elif/else/endif, for/else/endfor, with, set, autoescape) has all its tags
  where the same elements are open, in the same order (inside the same kind of w:t, say), so
  whichever branch renders, and however often a loop repeats, the elements still nest;
* no macro, call, filter, raw, include or import, whose output is made elsewhere.

What the data prints is the rest: escaped text cannot hold markup; what can (RichText, Subdoc,
``|safe``, text with autoescape off, objects of other kinds) is reported by the environment
(`render.RAW_OUTPUT`) and sends the body to the parser. resolve_listing's rewriting of tabs and
line breaks inside w:t keeps the nesting in plain bodies (no runs inside runs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from pipeline.docx.tabletext import plain_body

_TAG = re.compile(r"\{%-?\s*(\w+)(.*?)-?%\}|\{\{.*?\}\}|\{#.*?#\}", re.DOTALL)
_OPENERS = frozenset({"for", "if", "with", "autoescape"})
_MIDDLES = frozenset({"elif", "else"})
_CLOSERS = frozenset({"endfor", "endif", "endwith", "endautoescape", "endset"})
_ELSEWHERE = frozenset({"macro", "call", "filter", "raw", "include", "import", "from", "extends", "block"})

Signature = tuple[str, ...]


def _texts(element: etree._Element, path: Signature) -> Iterator[tuple[Signature, str | None]]:
    """(where, text) of every text and attribute value under `element`, in document order; where
    is the names of the open elements (and, for an attribute, its element's identity and name)."""
    inside = (*path, element.tag)
    for name, value in element.attrib.items():
        yield (*inside, f"@{id(element)}", name), value
    yield inside, element.text
    for child in element:
        if isinstance(child.tag, str):
            yield from _texts(child, inside)
        yield inside, child.tail


def _blocks_nest(root: etree._Element) -> bool:
    """True when every tag is whole in its text and each block's tags share their open elements."""
    open_blocks: list[Signature] = []
    for where, text in _texts(root, ()):
        if not text or "{" not in text:
            continue
        leftover = _TAG.sub("", text)
        if "{{" in leftover or "{%" in leftover or "{#" in leftover:
            return False  # a tag cut by markup
        for match in _TAG.finditer(text):
            keyword, rest = match.group(1), match.group(2)
            if keyword is None:
                continue  # a print or a comment: escaped text
            if keyword in _ELSEWHERE:
                return False
            if keyword in _OPENERS or (keyword == "set" and "=" not in rest):
                open_blocks.append(where)
            elif keyword in _CLOSERS:
                if not open_blocks or open_blocks.pop() != where:
                    return False
            elif keyword in _MIDDLES and (not open_blocks or open_blocks[-1] != where):
                return False
    return not open_blocks


def always_well_formed(patched_body: str) -> bool:
    """True when the body renders to well-formed XML for any data that prints only escaped text."""
    if not plain_body(patched_body) or "<w:ruby" in patched_body:
        return False
    try:
        root = etree.fromstring(patched_body)
    except etree.XMLSyntaxError:
        return False
    return _blocks_nest(root)

"""docxtpl's `resolve_listing` (tabs, line breaks, new paragraphs and page breaks from \\t \\n \\a \\f
in the rendered text), run only where it changes something.

resolve_listing rewrites each match of ``<w:p(?: [^>]*)?>.*?</w:p>`` (leftmost first: from a
paragraph's start tag to the next ``</w:p>``) and leaves a match without those characters as it
was. Its regex work over a whole report was 40% of the report's rendering time, and a single tab
typed in the template (before a signature, say) made every report pay it. Here the matches are
found with plain string searches and only those holding one of the characters are handed to
docxtpl, so the result is the same text:

* in any part, by walking the matches from the start, as the regex does;
* in a part without nested paragraphs (no text boxes: `tabletext.plain_body`, and no value
  that printed its own XML), matches are paragraphs, so only the paragraph around each
  character is looked at.
"""

from __future__ import annotations

import io
import re

from docxtpl import DocxTemplate

_LISTING_CHARS = re.compile("[\t\a\n\f]")
_CHARACTERS = ("\t", "\a", "\n", "\f")
# resolve_listing does not depend on a loaded document; this instance never opens a file.
_DOCXTPL = DocxTemplate(io.BytesIO(b""))
_END = "</w:p>"


def _start_tag_end(xml: str, start: int) -> int:
    """Just after the paragraph start tag at `start` (``<w:p>`` or ``<w:p ...>``); -1 when the
    tag there is not one (``<w:pPr>``) or never ends."""
    after = start + 4
    if xml.startswith(">", after):
        return after + 1
    if xml.startswith(" ", after):
        end = xml.find(">", after)
        return end + 1 if end >= 0 else -1
    return -1


def _matches_walked(xml: str) -> list[tuple[int, int]]:
    """(start, end) of the regex's matches that hold one of the characters, walked from the start."""
    found: list[tuple[int, int]] = []
    position = 0
    while (start := xml.find("<w:p", position)) >= 0:
        tag_end = _start_tag_end(xml, start)
        if tag_end < 0:
            position = start + 4
            continue
        end = xml.find(_END, tag_end)
        if end < 0:
            break  # no later start tag finds one either
        end += len(_END)
        if _LISTING_CHARS.search(xml, start, end):
            found.append((start, end))
        position = end
    return found


def _next_character(xml: str, position: int) -> int:
    """Where the next \t \a \n or \f is from `position`, -1 when none (plain searches: a
    regex over a whole report costs more than the rest of this)."""
    found = [at for at in (xml.find(c, position) for c in _CHARACTERS) if at >= 0]
    return min(found) if found else -1


def _matches_around(xml: str) -> list[tuple[int, int]]:
    """The same, for a part without nested paragraphs: the paragraph around each character."""
    found: list[tuple[int, int]] = []
    at = _next_character(xml, 0)
    while at >= 0:
        done = found[-1][1] if found else 0
        start = max(xml.rfind("<w:p>", done, at), xml.rfind("<w:p ", done, at))
        end = xml.find(_END, start) if start >= 0 else -1
        if start < 0 or end < 0 or end + len(_END) <= at or _start_tag_end(xml, start) > at:
            at = _next_character(xml, at + 1)  # outside any paragraph: left alone
            continue
        found.append((start, end + len(_END)))
        at = _next_character(xml, end + len(_END))
    return found


def resolve_listing(xml: str, *, flat: bool = False) -> str:
    """docxtpl's resolve_listing(xml); `flat` when the part has no nested paragraphs."""
    if not any(character in xml for character in _CHARACTERS):
        return xml
    matches = _matches_around(xml) if flat else _matches_walked(xml)
    if not matches:
        return xml
    pieces: list[str] = []
    done = 0
    for start, end in matches:
        pieces += [xml[done:start], _DOCXTPL.resolve_listing(xml[start:end])]
        done = end
    return "".join(pieces) + xml[done:]

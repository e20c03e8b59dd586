"""The console the command line writes to: marks every console can show, progress only on a terminal.

Chinese Windows consoles encode as GBK (cp936), where ✔, ✘ and ⚠ do not exist: printing them
raised UnicodeEncodeError and turned a finished run into an internal error. So each mark is chosen
for the stream it goes to, and the streams replace any other character they cannot encode instead
of failing. The web page and scheduled tasks read the output through pipes and log files, where a
redrawn `\\r` bar becomes hundreds of lines: the bar is drawn only on a terminal, elsewhere a
plain line every tenth of the way.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

PROGRESS_LOGGER = "prefect.flow_runs"
BAR_WIDTH = 30
PLAIN_STEPS = 10  # lines of progress at most when not on a terminal


@dataclass(frozen=True, slots=True)
class Marks:
    """The signs in front of a console line: done, failed, take note."""

    success: str
    failure: str
    warning: str

    def all(self) -> str:
        """The three signs together, to test whether an encoding has them."""
        return self.success + self.failure + self.warning


# In order of preference; GBK has √ × ！, and ASCII is there for any console at all.
UNICODE_MARKS = Marks("✔", "✘", "⚠")
GBK_MARKS = Marks("√", "×", "！")
ASCII_MARKS = Marks("+", "x", "!")
CHOICES = (UNICODE_MARKS, GBK_MARKS, ASCII_MARKS)


def can_encode(text: str, encoding: str | None) -> bool:
    """Whether `encoding` (None: unknown, taken as UTF-8) has every character of `text`."""
    try:
        text.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def marks_for(encoding: str | None) -> Marks:
    """The best marks `encoding` can write."""
    return next((m for m in CHOICES if can_encode(m.all(), encoding)), ASCII_MARKS)


def stream_marks(stream: TextIO) -> Marks:
    """The marks for what is written to `stream`."""
    return marks_for(getattr(stream, "encoding", None))


def success_mark() -> str:
    """The sign of a line saying something was done (written to stdout)."""
    return stream_marks(sys.stdout).success


def failure_mark() -> str:
    """The sign of a line saying something failed (written to stderr)."""
    return stream_marks(sys.stderr).failure


def warning_mark() -> str:
    """The sign of a line asking for attention (written to stderr)."""
    return stream_marks(sys.stderr).warning


def with_marks(line: str, stream: TextIO) -> str:
    """`line` with a leading ✔/✘/⚠ (as lower layers word their lines) in `stream`'s marks."""
    marks = stream_marks(stream)
    for unicode, own in zip(UNICODE_MARKS.all(), marks.all(), strict=True):
        if line.startswith(unicode):
            return own + line[len(unicode):]
    return line


def never_failing_streams() -> None:
    """Make stdout and stderr replace what their encoding lacks instead of raising.

    A name from a workbook or a message from a library can hold any character; a report that was
    written must never end as an internal error because the console could not show a word.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")


def bar_line(done: int, total: int) -> str:
    """The progress bar redrawn in place on a terminal (no line end until the last)."""
    filled = int(BAR_WIDTH * done / max(total, 1))
    end = "\n" if done >= total else ""
    return f"\r  生成报告 [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}{end}"


def progress_step(done: int, total: int) -> int:
    """How many tenths of the way `done` of `total` is (0 to PLAIN_STEPS)."""
    return min(PLAIN_STEPS, PLAIN_STEPS * done // max(total, 1))


class ProgressBar(logging.Handler):
    """Draws the flow's progress log records (`extra={"progress": (done, total)}`).

    On a terminal, a bar redrawn in place; elsewhere one plain line each time another tenth is
    done, so a log file holds at most ten progress lines per run and no carriage returns.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.on_terminal = stream.isatty()
        self.shown_step = 0

    def emit(self, record: logging.LogRecord) -> None:
        progress = getattr(record, "progress", None)
        if not progress:
            return
        done, total = progress
        if self.on_terminal:
            self.stream.write(bar_line(done, total))
        else:
            step = progress_step(done, total)
            if step <= self.shown_step:
                return
            self.shown_step = 0 if done >= total else step  # the next workbook starts again
            self.stream.write(f"  生成报告 {done}/{total}\n")
        self.stream.flush()


@contextmanager
def console_progress() -> Iterator[None]:
    """Show render progress on stderr while the flow's own console logging stays off."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = ProgressBar(sys.stderr)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


class QuickExit:
    """Leave the process, once every exit handler has run, without the interpreter's teardown of
    every module it imported: after a run that is pandas, pandera, Prefect and their kin, 0.6 s of
    freeing memory the system reclaims at once anyway (measured on the example against a Prefect
    server: 4.5 s → 3.9 s).

    Exit handlers run last-registered first, so `armed()` must be called before anything else
    registers one: Prefect's, which send the last logs and events to its API, then run before this
    one. The logging module registered its own at import, earlier; `leave` does its work itself.
    """

    def __init__(self) -> None:
        self.code = 0

    def armed(self) -> QuickExit:
        atexit.register(self.leave)
        return self

    def leaving_with(self, code: int) -> int:
        """Remember the exit code `leave` exits with, and return it for `sys.exit`."""
        self.code = code
        return code

    def leave(self) -> None:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing more can reach it
                stream.flush()
        os._exit(self.code)

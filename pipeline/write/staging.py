"""A workbook's outputs are built in a hidden staging folder and published whole.

The staging folder sits next to its destination and is moved into place by `publish`, so
`output/<workbook>/` holds either the previous complete run or the new complete run, never a
mixture. `staged` is the one way a run writes outputs: published when the run ends normally,
discarded on any failure. What killed runs leave behind is cleaned up by `recover_leftovers`,
which the output lock (`pipeline.write.locks.output_lock`) calls on entry.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.write.names import REPORTS_DIR

# The hidden folders a run keeps beside output/<workbook>/. Each kind says what its content is,
# so a run killed at any moment leaves only folders whose fate is clear (see `recover_leftovers`):
PARTIAL = "partial"  # a run's staging folder: complete only once published
SET_ASIDE = "old"  # the previous complete outputs, moved aside while `publish` moves the new in
TRASH = "trash"  # outputs being deleted: possibly half gone, never to be restored


def hidden_sibling(final: Path, kind: str) -> Path:
    """A new, unique hidden path of `kind` beside `final`."""
    return final.parent / f".{final.name}.{kind}-{uuid.uuid4().hex[:12]}"


def hidden_siblings(final: Path, kind: str) -> list[Path]:
    """The hidden folders of `kind` beside `final`, matched exactly so another workbook's never are."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.{kind}-[0-9a-f]{{12}}")
    if not final.parent.is_dir():
        return []
    return sorted(p for p in final.parent.iterdir() if pattern.fullmatch(p.name))


def staging_dir(final: Path) -> Path:
    """A new hidden folder beside `final` where a run builds its outputs."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = hidden_sibling(final, PARTIAL)
    (path / REPORTS_DIR).mkdir(parents=True)
    return path


def parked_beside(staging: Path) -> Path:
    """Where a staging folder's working files wait outside it until it is published: the TRASH
    sibling with the staging folder's own suffix, so a retry finds them, and the next run's
    `recover_leftovers` deletes them should the run die first."""
    return staging.with_name(staging.name.replace(f".{PARTIAL}-", f".{TRASH}-", 1))


def set_aside(final: Path) -> Path | None:
    """Move the previous outputs out of `final`'s way, or None when there are none."""
    if not final.exists():
        return None
    previous = hidden_sibling(final, SET_ASIDE)
    os.replace(final, previous)
    return previous


def delete_folder(folder: Path, final: Path) -> None:
    """Delete a folder beside `final`, renaming it to TRASH first.

    The rename is atomic and rmtree is not: a kill during rmtree leaves a TRASH folder, never a
    half-deleted SET_ASIDE folder that recovery would take for complete outputs.
    """
    trash = hidden_sibling(final, TRASH)
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def publish(staging: Path, final: Path) -> Path:
    """Move a complete staging folder to `final`, replacing an earlier run's folder.

    Two renames: the previous outputs aside, then the new ones in. A failure between them puts
    the previous outputs back at once; a kill between them leaves the previous outputs in a
    SET_ASIDE folder and no `final`, which the next run's `recover_leftovers` restores.
    """
    previous = set_aside(final)
    try:
        os.replace(staging, final)
    except BaseException:
        if previous is not None:
            os.replace(previous, final)
        raise
    if previous is not None:
        # Published: what is left of the old outputs is the next run's to delete
        # (`recover_leftovers` deletes a SET_ASIDE folder beside `final`), not a failure of this one.
        with contextlib.suppress(OSError):
            delete_folder(previous, final)
    return final


def discard(staging: Path) -> None:
    """Remove a staging folder that will not be published."""
    shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def discarded_on_failure(staging: Path) -> Iterator[Path]:
    """`staging`, removed when the block raises anything (the exception then goes on unchanged).

    For the steps that fill a staging folder that a later step publishes: a run prepares its
    render chunks in one task, renders in others, and publishes in the last (`staged`).
    """
    try:
        yield staging
    except BaseException:
        discard(staging)
        raise


@contextmanager
def staged(final: Path, staging: Path | None = None) -> Iterator[Path]:
    """A staging folder for `final`: published to `final` when the block ends normally, discarded
    when the block or the publish raises (the exception then goes on unchanged).

    By default a new folder is made (`staging_dir`); `staging` adopts one an earlier step made,
    for a run that stages its render chunks in one task and publishes in a later one.
    """
    folder = staging_dir(final) if staging is None else staging
    with discarded_on_failure(folder):
        yield folder
        publish(folder, final)


def recover_leftovers(final: Path) -> None:
    """Finish or undo what killed runs left beside `final`.

    Only safe while holding `final`'s lock: every run that creates these folders holds it, so
    whatever is found here belongs to a run that is dead.
    - PARTIAL (a killed run's staging, its chunk files and temporary files) and TRASH: deleted;
    - SET_ASIDE with no `final`: a kill fell between publish's two renames, so these are the
      last complete outputs: restored (the run then replaces them as usual);
    - SET_ASIDE beside `final`: the new outputs were already in place: deleted.
    """
    for folder in [*hidden_siblings(final, PARTIAL), *hidden_siblings(final, TRASH)]:
        shutil.rmtree(folder, ignore_errors=True)
    previous = hidden_siblings(final, SET_ASIDE)
    if previous and not final.exists():
        # Only one can exist (each run recovers before publishing); the latest renamed wins anyway.
        latest = max(previous, key=lambda p: p.stat().st_ctime_ns)
        os.replace(latest, final)
        previous.remove(latest)
    for folder in previous:
        delete_folder(folder, final)

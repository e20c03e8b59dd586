"""The input/ hot folder's decisions, on real files in tmp_path with injected times (no sleeping)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.serve import hotfolder
from pipeline.serve.hotfolder import HotfolderState
from pipeline.write.files import sha256_of
from pipeline.write.locks import OutputBusy, output_lock
from pipeline.write.names import (
    MANIFEST_NAME,
    REPORTS_DIR,
    OutputRefused,
    windows_key,
    workbook_output_dir,
)
from pipeline.write.staging import SET_ASIDE, hidden_sibling
from tests.conftest import workbook_bytes

NOON = datetime(2026, 11, 25, 12, 0, 0)
SETTLE = hotfolder.DEFAULT_SETTLE_SECONDS


@pytest.fixture(scope="module")
def original() -> bytes:
    return workbook_bytes("2020年度 第一版")


@pytest.fixture(scope="module")
def corrected() -> bytes:
    return workbook_bytes("2020年度 改正版")


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "input").mkdir()
    (tmp_path / "output").mkdir()
    return tmp_path / "input", tmp_path / "output"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def polled_until_ready(folder: Path, start: float = 0.0) -> hotfolder.Poll:
    """Two polls SETTLE seconds apart: what the service sees once a file has settled."""
    first = hotfolder.poll(folder, {}, start)
    return hotfolder.poll(folder, first.observations, start + SETTLE)


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def published(output_dir: Path, workbook: Path, text: str) -> Path:
    """Outputs as a finished run leaves them: output/<stem>/ with a manifest and a report."""
    final = workbook_output_dir(output_dir, workbook)
    (final / REPORTS_DIR).mkdir(parents=True)
    (final / MANIFEST_NAME).write_text(text, encoding="utf-8")
    (final / REPORTS_DIR / "P-1_报告.docx").write_bytes(b"docx")
    return final


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under `folder`: content hash and mtime, to prove nothing touched them."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- which files count ----------------------------------------------------------------------


def test_lock_hidden_and_temporary_files_are_ignored(folders: tuple[Path, Path], original: bytes) -> None:
    inbox, _ = folders
    for name in ["预算.xlsx", "UPPER.XLSX", "~$预算.xlsx", ".预算.xlsx", ".~lock.预算.xlsx#",
                 "预算.xlsx.tmp", "预算.xlsx.part", "预算.xlsx.crdownload", "预算.xlsx~", "预算.tmp",
                 "说明.txt", "旧版.xls"]:
        (inbox / name).write_bytes(original)
    (inbox / "文件夹.xlsx").mkdir()
    (inbox / "子目录").mkdir()
    (inbox / "子目录" / "深处.xlsx").write_bytes(original)

    assert sorted(hotfolder.scan(inbox, 0.0)) == ["UPPER.XLSX", "预算.xlsx"]


def test_symlinks_never_count_not_even_to_a_workbook_of_the_folder(
        folders: tuple[Path, Path], tmp_path: Path, original: bytes) -> None:
    inbox, _ = folders
    (tmp_path / "外部.xlsx").write_bytes(original)
    (inbox / "本地.xlsx").write_bytes(original)
    (inbox / "指向外部.xlsx").symlink_to(tmp_path / "外部.xlsx")
    (inbox / "指向本地.xlsx").symlink_to(inbox / "本地.xlsx")
    (inbox / "断开.xlsx").symlink_to(inbox / "不存在.xlsx")
    (inbox / "上级.xlsx").symlink_to(Path("..") / "外部.xlsx")

    # A link to 本地.xlsx would run it twice, under a name the page has no row for.
    assert sorted(hotfolder.scan(inbox, 0.0)) == ["本地.xlsx"]


# --- complete files only --------------------------------------------------------------------


def test_file_is_ready_once_unchanged_across_polls_settle_seconds_apart(
        folders: tuple[Path, Path], original: bytes) -> None:
    inbox, _ = folders
    (inbox / "预算.xlsx").write_bytes(original)

    first = hotfolder.poll(inbox, {}, 100.0)
    soon = hotfolder.poll(inbox, first.observations, 101.0)  # polled faster than it settles
    later = hotfolder.poll(inbox, soon.observations, 100.0 + SETTLE)

    assert first.ready == () and soon.ready == ()
    assert later.ready == (inbox / "预算.xlsx",)
    assert later.observations["预算.xlsx"].sha256 == sha256(original)


def test_a_single_poll_never_makes_a_file_ready(folders: tuple[Path, Path], original: bytes) -> None:
    inbox, _ = folders
    (inbox / "预算.xlsx").write_bytes(original)

    assert hotfolder.poll(inbox, {}, 1000.0, settle_seconds=0.0).ready == ()


def test_growing_file_is_waited_for_then_accepted(folders: tuple[Path, Path], original: bytes) -> None:
    inbox, _ = folders
    target = inbox / "预算.xlsx"
    half = len(original) // 2
    target.write_bytes(original[:half])
    first = hotfolder.poll(inbox, {}, 0.0)

    with target.open("ab") as copy:
        copy.write(original[half:])
    grown = hotfolder.poll(inbox, first.observations, 10.0)
    settled = hotfolder.poll(inbox, grown.observations, 10.0 + SETTLE)

    assert first.ready == () and grown.ready == ()  # still copying, then just changed
    assert settled.ready == (target,)


def test_truncated_zip_is_never_ready_even_when_it_stops_changing(
        folders: tuple[Path, Path], original: bytes) -> None:
    inbox, _ = folders
    (inbox / "预算.xlsx").write_bytes(original[:-30])  # a stalled copy: the end record is missing
    (inbox / "空.xlsx").write_bytes(b"")

    polled = polled_until_ready(inbox)
    later = hotfolder.poll(inbox, polled.observations, 3600.0)

    assert polled.ready == () and later.ready == ()


def test_preallocated_copy_is_waited_for_until_its_content_arrives(
        folders: tuple[Path, Path], original: bytes) -> None:
    inbox, _ = folders
    target = inbox / "预算.xlsx"
    target.write_bytes(bytes(len(original)))  # full size at once, zeros where the zip will be
    zeros = polled_until_ready(inbox)

    target.write_bytes(original)
    os.utime(target, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))  # the copy's stamp
    arrived = hotfolder.poll(inbox, zeros.observations, 10.0)
    settled = hotfolder.poll(inbox, arrived.observations, 10.0 + SETTLE)

    assert zeros.ready == () and arrived.ready == ()
    assert settled.ready == (target,)


def test_settled_file_is_hashed_and_checked_once_while_unchanged(
        folders: tuple[Path, Path], original: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, _ = folders
    (inbox / "预算.xlsx").write_bytes(original)
    reads: list[str] = []
    real_hash, real_zip = hotfolder.content_sha256, hotfolder.is_complete_zip
    monkeypatch.setattr(hotfolder, "content_sha256", lambda p: reads.append("hash") or real_hash(p))
    monkeypatch.setattr(hotfolder, "is_complete_zip", lambda p: reads.append("zip") or real_zip(p))

    polled = polled_until_ready(inbox)
    for second in range(10, 60, 5):
        polled = hotfolder.poll(inbox, polled.observations, float(second))
        assert polled.ready == (inbox / "预算.xlsx",)

    assert reads == ["zip", "hash"]


def test_file_rewritten_while_being_hashed_is_not_ready(
        folders: tuple[Path, Path], original: bytes, corrected: bytes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, _ = folders
    target = inbox / "预算.xlsx"
    target.write_bytes(original)
    first = hotfolder.poll(inbox, {}, 0.0)

    def hash_then_new_copy_starts(path: Path) -> str:
        digest = sha256_of(path)
        path.write_bytes(corrected[:100])
        return digest

    monkeypatch.setattr(hotfolder, "content_sha256", hash_then_new_copy_starts)
    polled = hotfolder.poll(inbox, first.observations, SETTLE)

    assert polled.ready == ()


# --- unchanged files once, corrected files again --------------------------------------------


def test_new_workbook_needs_a_run(folders: tuple[Path, Path], original: bytes) -> None:
    inbox, _ = folders
    (inbox / "预算.xlsx").write_bytes(original)

    assert hotfolder.needs_run(inbox / "预算.xlsx", HotfolderState())


def test_unchanged_file_is_skipped_after_a_run_is_recorded(
        folders: tuple[Path, Path], original: bytes) -> None:
    inbox, output = folders
    (inbox / "预算.xlsx").write_bytes(original)
    polled = polled_until_ready(inbox)
    [path] = polled.ready
    digest = polled.observations[path.name].sha256
    assert digest is not None and hotfolder.needs_run(path, HotfolderState(), digest)

    state_file = hotfolder.state_path(output)
    hotfolder.save_state(state_file, hotfolder.with_run(HotfolderState(), path.name, digest, "success", NOON))
    restarted = hotfolder.load_state(state_file)  # as after a service restart
    again = polled_until_ready(inbox, start=100.0)

    assert again.ready == (path,)
    assert not hotfolder.needs_run(path, restarted, again.observations[path.name].sha256)
    assert not hotfolder.needs_run(path, restarted)


def test_same_content_copied_again_with_a_new_mtime_is_skipped(
        folders: tuple[Path, Path], original: bytes) -> None:
    inbox, _ = folders
    target = inbox / "预算.xlsx"
    target.write_bytes(original)
    state = hotfolder.with_run(HotfolderState(), target.name, sha256(original), "invalid", NOON)

    target.unlink()
    target.write_bytes(original)
    os.utime(target, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    polled = polled_until_ready(inbox)

    assert polled.ready == (target,)
    assert not hotfolder.needs_run(target, state, polled.observations[target.name].sha256)


def test_corrected_file_under_the_same_name_is_processed_again(
        folders: tuple[Path, Path], original: bytes, corrected: bytes) -> None:
    inbox, _ = folders
    target = inbox / "预算.xlsx"
    target.write_bytes(original)
    polled = polled_until_ready(inbox)
    state = hotfolder.with_run(HotfolderState(), target.name,
                               polled.observations[target.name].sha256 or "", "invalid", NOON)

    target.write_bytes(corrected)
    changed = hotfolder.poll(inbox, polled.observations, 10.0)
    settled = hotfolder.poll(inbox, changed.observations, 10.0 + SETTLE)

    assert changed.ready == ()
    assert settled.ready == (target,)
    assert settled.observations[target.name].sha256 == sha256(corrected)
    assert hotfolder.needs_run(target, state, settled.observations[target.name].sha256)
    assert hotfolder.needs_run(target, state)


def test_state_file_is_written_atomically_as_readable_json(folders: tuple[Path, Path]) -> None:
    _, output = folders
    state_file = hotfolder.state_path(output)
    state = hotfolder.with_run(HotfolderState(), "预算.xlsx", "ab" * 32, "success", NOON)
    state = hotfolder.with_run(state, "决算.xlsx", "cd" * 32, "invalid", NOON)

    hotfolder.save_state(state_file, state)
    hotfolder.save_state(state_file, state)  # replacing an existing state

    assert state_file.parent == output and state_file.name.startswith(".")
    assert sorted(p.name for p in output.iterdir()) == [state_file.name]  # no temp file left
    data = json.loads(state_file.read_text(encoding="utf-8"))
    assert data["files"]["预算.xlsx"] == {"sha256": "ab" * 32, "outcome": "success",
                                          "processed_at": "2026-11-25T12:00:00"}
    assert hotfolder.load_state(state_file) == state


def test_missing_state_file_means_nothing_processed(folders: tuple[Path, Path]) -> None:
    _, output = folders

    assert hotfolder.load_state(hotfolder.state_path(output)) == HotfolderState()


@pytest.mark.parametrize("content", ["{not json", '{"version": 99, "files": {}}', '{"files": []}',
                                     '{"version": 1, "files": {"a.xlsx": {"sha256": "x"}}}', "[]"],
                         ids=["broken-json", "other-version", "no-version", "missing-fields", "a-list"])
def test_unreadable_state_file_is_refused_not_taken_as_empty(folders: tuple[Path, Path], content: str) -> None:
    _, output = folders
    state_file = hotfolder.state_path(output)
    state_file.write_text(content, encoding="utf-8")

    with pytest.raises(hotfolder.StateUnreadable):
        hotfolder.load_state(state_file)


# --- archive before replace -----------------------------------------------------------------


def test_previous_outputs_are_moved_into_the_archive(folders: tuple[Path, Path]) -> None:
    inbox, output = folders
    workbook = inbox / "2020年度预算.xlsx"
    final = published(output, workbook, "第一版")
    inode = final.stat().st_ino

    archived = hotfolder.archive_previous_outputs(output, workbook, fixed_clock(NOON))

    assert archived == output / "_archive" / "2020年度预算-20261125-120000"
    assert not final.exists()
    assert archived.stat().st_ino == inode  # renamed, not copied
    assert (archived / MANIFEST_NAME).read_text(encoding="utf-8") == "第一版"
    assert (archived / REPORTS_DIR / "P-1_报告.docx").read_bytes() == b"docx"
    assert sorted(p.name for p in output.iterdir()) == ["_archive"]  # lock released and removed


def test_archive_folders_are_unique_within_the_same_second(folders: tuple[Path, Path]) -> None:
    inbox, output = folders
    workbook = inbox / "预算.xlsx"
    archived = []
    for version in ["第一版", "第二版", "第三版"]:
        published(output, workbook, version)
        archived.append(hotfolder.archive_previous_outputs(output, workbook, fixed_clock(NOON)))

    assert [p.name for p in archived if p] == ["预算-20261125-120000", "预算-20261125-120000-2",
                                               "预算-20261125-120000-3"]
    assert [(p / MANIFEST_NAME).read_text(encoding="utf-8") for p in archived if p] == [
        "第一版", "第二版", "第三版"]


def test_archive_names_differing_only_in_case_do_not_collide(folders: tuple[Path, Path]) -> None:
    inbox, output = folders
    published(output, inbox / "Budget.xlsx", "upper")
    published(output, inbox / "budget.xlsx", "lower")

    first = hotfolder.archive_previous_outputs(output, inbox / "Budget.xlsx", fixed_clock(NOON))
    second = hotfolder.archive_previous_outputs(output, inbox / "budget.xlsx", fixed_clock(NOON))

    assert first is not None and second is not None
    assert windows_key(first.name) != windows_key(second.name)  # apart on a share too


def test_nothing_to_archive_before_a_first_run(folders: tuple[Path, Path]) -> None:
    inbox, output = folders

    assert hotfolder.archive_previous_outputs(output, inbox / "预算.xlsx", fixed_clock(NOON)) is None
    assert list(output.iterdir()) == []


def test_archive_is_refused_while_a_run_writes_the_outputs(folders: tuple[Path, Path]) -> None:
    inbox, output = folders
    workbook = inbox / "预算.xlsx"
    final = published(output, workbook, "第一版")

    with output_lock(final), pytest.raises(OutputBusy):
        hotfolder.archive_previous_outputs(output, workbook, fixed_clock(NOON))

    assert (final / MANIFEST_NAME).read_text(encoding="utf-8") == "第一版"
    assert not (output / "_archive").exists()


def test_outputs_a_killed_publish_set_aside_are_archived_not_lost(folders: tuple[Path, Path]) -> None:
    inbox, output = folders
    workbook = inbox / "预算.xlsx"
    final = published(output, workbook, "第一版")
    os.replace(final, hidden_sibling(final, SET_ASIDE))  # killed between the renames

    archived = hotfolder.archive_previous_outputs(output, workbook, fixed_clock(NOON))

    assert archived is not None and (archived / MANIFEST_NAME).read_text(encoding="utf-8") == "第一版"
    assert sorted(p.name for p in output.iterdir()) == ["_archive"]


def test_workbook_whose_outputs_would_be_the_archive_is_refused(folders: tuple[Path, Path]) -> None:
    inbox, output = folders
    published(output, inbox / "_Archive.xlsx", "第一版")

    with pytest.raises(OutputRefused, match="保留名称"):
        hotfolder.archive_previous_outputs(output, inbox / "_Archive.xlsx", fixed_clock(NOON))


def test_input_files_are_untouched_by_a_whole_cycle(
        folders: tuple[Path, Path], original: bytes, corrected: bytes) -> None:
    inbox, output = folders
    (inbox / "预算.xlsx").write_bytes(original)
    (inbox / "~$预算.xlsx").write_bytes(b"owner")
    (inbox / "半截.xlsx").write_bytes(corrected[:200])
    published(output, inbox / "预算.xlsx", "上一次")
    before = fingerprint(inbox)
    state_file = hotfolder.state_path(output)

    state = hotfolder.load_state(state_file)
    polled = polled_until_ready(inbox)
    for path in polled.ready:
        digest = polled.observations[path.name].sha256 or ""
        if hotfolder.needs_run(path, state, digest):
            hotfolder.archive_previous_outputs(output, path, fixed_clock(NOON))
            published(output, path, "这一次")
            state = hotfolder.with_run(state, path.name, digest, "success", NOON)
            hotfolder.save_state(state_file, state)
    hotfolder.poll(inbox, polled.observations, 60.0)

    assert fingerprint(inbox) == before
    assert sorted(p.name for p in inbox.iterdir()) == ["~$预算.xlsx", "半截.xlsx", "预算.xlsx"]
    assert set(hotfolder.load_state(state_file).processed) == {"预算.xlsx"}
    assert (output / "预算" / MANIFEST_NAME).read_text(encoding="utf-8") == "这一次"

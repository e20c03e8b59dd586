"""The scoring profile an upload chose on the web page, from the selector to the run it starts.

The page offers the shipped profiles (`profiles/*.toml`, by file stem) after a first option that
names none, so the run decides as the command line does without `--profile` (the national
profile, unless an official form's 20-point budget 分值 selects 湖北). A value that is not one of
the offered ones is refused before anything is saved, so nothing an outsider types ever reaches a
command line.

The choice travels with the upload as a small record beside the output folder
(output/.perfreport-profile-<key>.json: the workbook's name, its content's sha256, the stem),
written before the workbook is renamed into place. The watcher, in whichever process holds it
(`web`, or `serve` beside it), reads the record for the content it is about to run: a record of
other content (an older upload, or a file an officer then copied in by hand) does not count.

The page's "同时生成 PDF" checkbox travels in the same record (`pdf`), and the run it starts gets
`--pdf`: the choices an upload makes about its run are kept together, and taken or ignored together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pipeline.config import PROFILES_DIR, ProfileInvalid, load_profile_file, profile_files
from pipeline.core.profile import DEFAULT_PROFILE
from pipeline.write.files import atomic_write
from pipeline.write.names import windows_key

PROFILE_FIELD = "profile"  # the upload form's field
AUTOMATIC = ""  # the first option: no --profile
AUTOMATIC_LABEL = "按自评表自动识别（默认财预〔2020〕10号）"
RECORD_PREFIX, RECORD_SUFFIX = ".perfreport-profile-", ".json"
RECORD_KEY_CHARS = 16
SHOWN_VALUE_CHARS = 40  # of a refused value quoted back: a crafted POST may send a megabyte
PDF_FIELD = "pdf"  # the upload form's checkbox
PDF_CHECKED = "1"  # the value the checkbox sends when ticked
PDF_LABEL = "同时生成 PDF"


@dataclass(frozen=True, slots=True)
class ProfileOption:
    """One shipped profile as the selector offers it: the value sent (the file stem) and the text shown."""

    value: str
    name: str  # the profile's display name, as the manifest and 汇总表 give it
    label: str


class ProfileNotOffered(ValueError):
    """A profile value the page did not offer (a crafted POST), with the Chinese reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def points(value: Decimal) -> str:
    """A number of points as printed in the label: 20, 12.5 (no trailing zeros, no exponent)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def shipped_options(folder: Path = PROFILES_DIR) -> tuple[ProfileOption, ...]:
    """The shipped profiles, by file stem, the national one first. A file that cannot be read is
    not offered: the run would refuse it, and the page must open all the same."""
    options = []
    for stem, path in profile_files(folder).items():
        try:
            profile = load_profile_file(path)
        except ProfileInvalid:
            continue
        label = (f"{profile.name}（预算执行{points(profile.budget_weight)}分＋"
                 f"绩效指标{points(profile.indicator_weight_total)}分）")
        options.append(ProfileOption(stem, profile.name, label))
    return tuple(sorted(options, key=lambda option: option.name != DEFAULT_PROFILE.name))


def offered_choice(value: str | None, options: tuple[ProfileOption, ...]) -> str:
    """The upload form's profile value when the page offered it (AUTOMATIC when the field is
    absent, as from a client that knows no selector); else ProfileNotOffered."""
    if value is None or value == AUTOMATIC:
        return AUTOMATIC
    if any(option.value == value for option in options):
        return value
    shown = value if len(value) <= SHOWN_VALUE_CHARS else value[:SHOWN_VALUE_CHARS] + "…"
    names = "、".join(option.value for option in options) or "（无）"
    raise ProfileNotOffered(f"没有名为「{shown}」的评分规则，未保存上传的文件。请在“评分规则”列表中选择"
                            f"（可选：{names}），或选“{AUTOMATIC_LABEL}”。")


def offered_pdf(value: str | None) -> bool:
    """Whether the upload form's checkbox was ticked (absent: not ticked); a value the page never
    sends is refused (ProfileNotOffered), like a profile it did not offer."""
    if value is None:
        return False
    if value == PDF_CHECKED:
        return True
    raise ProfileNotOffered(f"“{PDF_LABEL}”的取值无效，未保存上传的文件。请勾选或不勾选后重新上传。")


def shown_name(choice: str, options: tuple[ProfileOption, ...]) -> str:
    """What a run page says of a choice: the profile's display name, or the first option's text."""
    return next((option.name for option in options if option.value == choice), AUTOMATIC_LABEL)


def record_path(output_dir: Path, workbook: str) -> Path:
    """The choice record of input workbook `workbook` (named as Windows compares names, since a
    replacement may differ in case only)."""
    key = hashlib.sha256(windows_key(workbook).encode("utf-8")).hexdigest()[:RECORD_KEY_CHARS]
    return output_dir / f"{RECORD_PREFIX}{key}{RECORD_SUFFIX}"


@dataclass(frozen=True, slots=True)
class ChoiceRecord:
    """The profile the last upload of a workbook name chose, and the content it came with."""

    workbook: str
    sha256: str
    profile: str  # a shipped stem, or AUTOMATIC
    pdf: bool = False  # "同时生成 PDF" was ticked: the run gets --pdf


def save_choice(output_dir: Path, record: ChoiceRecord) -> Path:
    """Write the record atomically (the watcher may read it at any moment)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    data = {"workbook": record.workbook, "sha256": record.sha256, "profile": record.profile, "pdf": record.pdf}
    return atomic_write(record_path(output_dir, record.workbook),
                        (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def load_choice(output_dir: Path, workbook: str) -> ChoiceRecord | None:
    """The last upload's record of `workbook`, or None when there is none readable."""
    try:
        data = json.loads(record_path(output_dir, workbook).read_text(encoding="utf-8"))
        record = ChoiceRecord(str(data["workbook"]), str(data["sha256"]), str(data["profile"]),
                              data.get("pdf", False) is True)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    return record if windows_key(record.workbook) == windows_key(workbook) else None


def uploaded_choice(output_dir: Path, workbook: str, sha256: str | None,
                    folder: Path = PROFILES_DIR) -> str | None:
    """The profile an upload chose for this very content of `workbook` (AUTOMATIC or a shipped
    stem), or None when no upload named one for it (a file copied into the folder by hand).

    A recorded stem no longer shipped counts as no record: only the page's own offer ever
    reaches a command line, whoever wrote the file.
    """
    record = load_choice(output_dir, workbook) if sha256 else None
    if record is None or record.sha256 != sha256:
        return None
    if record.profile == AUTOMATIC:
        return AUTOMATIC
    return record.profile if record.profile in profile_files(folder) else None


def uploaded_pdf(output_dir: Path, workbook: str, sha256: str | None) -> bool | None:
    """Whether the upload of this very content of `workbook` asked for PDF copies; None when no
    upload recorded a choice for it (a file copied into the folder by hand)."""
    record = load_choice(output_dir, workbook) if sha256 else None
    return record.pdf if record is not None and record.sha256 == sha256 else None

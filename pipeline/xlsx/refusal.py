"""Refuse a file that cannot be an .xlsx workbook at all, with a reason in Chinese.

Missing files, folders, empty files, old .xls and password-protected workbooks (both OLE
containers), and anything that is not a zip are told apart before any parser sees the file, so
that the clerk learns what to do rather than a parser's error. Hostile zips are refused by
`archive.refuse_unsafe_archive`. A file that passes but breaks a parser later is refused with
`refusal_to_open` or `refusal_while_reading`, naming the parser's error type.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from pipeline.errors import WorkbookRefused
from pipeline.xlsx.archive import refuse_unsafe_archive

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted .xlsx is an OLE container holding a stream with this UTF-16 name.
ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")

HINT_RESAVE = "请用 Excel 打开后另存为“Excel 工作簿(*.xlsx)”再提交。"


def refuse_unreadable(path: Path) -> None:
    """Raise WorkbookRefused with a Chinese reason when the file cannot be an .xlsx workbook."""
    if not path.exists():
        raise WorkbookRefused(path, "文件不存在。")
    if path.is_dir():
        raise WorkbookRefused(path, "这是一个文件夹，不是工作簿。")
    size = path.stat().st_size
    if size == 0:
        raise WorkbookRefused(path, "文件是空的（0 字节）。" + HINT_RESAVE)
    with path.open("rb") as handle:
        head = handle.read(8)
        if head == OLE_MAGIC:
            handle.seek(0)
            body = handle.read(4 * 1024 * 1024)
            if ENCRYPTED_MARK in body:
                raise WorkbookRefused(
                    path, "工作簿设置了打开密码，无法读取。请在 Excel 中取消密码后另存再提交。"
                )
            raise WorkbookRefused(path, "这是旧版 Excel 97-2003 (.xls) 文件。" + HINT_RESAVE)
    if not zipfile.is_zipfile(path):
        raise WorkbookRefused(
            path, "不是 Excel 工作簿（.xlsx），可能是文本、CSV 或已损坏的文件。" + HINT_RESAVE
        )
    refuse_unsafe_archive(path)  # zip bombs and XML entities, before any parser sees the file


def refusal_to_open(path: Path, exc: Exception) -> WorkbookRefused:
    """The refusal of a file a parser could not open (calamine and openpyxl raise many types)."""
    return WorkbookRefused(
        path, f"无法作为 Excel 工作簿打开（{type(exc).__name__}），文件可能已损坏。" + HINT_RESAVE
    )


def refusal_while_reading(path: Path, exc: Exception) -> WorkbookRefused:
    """The refusal of a file whose damaged part surfaced only while a sheet was being read."""
    return WorkbookRefused(path, f"读取时出错（{type(exc).__name__}），文件可能已损坏。{HINT_RESAVE}")

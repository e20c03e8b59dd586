"""Whether a workbook may write to its output folder: reserved names and the folders of other
workbooks, checked by `run`, the hot folder, uploads and the annual flow before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.write.manifest import folder_owner
from pipeline.write.names import output_folder_name, windows_key, workbook_output_dir

# output/_archive/ holds every earlier output and every replaced input (`serve.hotfolder`).
ARCHIVE_DIR = "_archive"


def name_refusal(name: str) -> str | None:
    """Why a workbook file name cannot be used, in Chinese; None when it can.

    A workbook's outputs go to output/<its name>/, and output/_archive/ holds every earlier output
    and every replaced input: "_archive.xlsx" would have its run replace the archive.
    """
    folder = output_folder_name(Path(name).stem)
    if windows_key(folder) == windows_key(ARCHIVE_DIR):
        return (f"文件名“{name}”是保留名称：输出文件夹 {ARCHIVE_DIR} 用于存放历次输出和被替换的工作簿。"
                "请把工作簿改名后重新放入")
    return None


def output_folder_refusal(output_dir: Path, workbook: Path) -> str | None:
    """Why `workbook` may not write to its output folder, in Chinese; None when it may.

    A reserved name (`name_refusal`), or a folder that already holds the outputs of another
    workbook of the same folder: two names Windows takes for one ("A.xlsx" and "a.xlsx" when
    output/ is a share) must not replace each other's reports.
    """
    refused = name_refusal(workbook.name)
    if refused is not None:
        return refused
    final = workbook_output_dir(output_dir, workbook)
    owner = folder_owner(final)
    if owner is not None and owner != workbook.name and (workbook.parent / owner).is_file():
        return (f"输出文件夹 {final} 中是同一文件夹里另一个工作簿“{owner}”的报告（两个文件名在 Windows 上被视为同名）。"
                "请把其中一个工作簿改名后重新放入")
    return None


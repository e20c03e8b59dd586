"""PDF copies of finished .docx files, made by LibreOffice in headless mode (`--pdf`).

Offices print the reports and upload them to their OA system as PDF. LibreOffice is the only
converter that runs on Linux and Windows alike and lays out the reports' CJK text as Word does;
it is not a Python dependency, so `soffice_command` finds it (PATH, PERFREPORT_SOFFICE, the
installer's usual folders) and the command line refuses `--pdf` at once when it is missing
(LIBREOFFICE_MISSING says what to install).

Starting soffice costs about a second, converting a report a fraction of one, so each soffice
process converts a batch of files per call. Several processes run at once (one per worker), each
with its own profile directory (-env:UserInstallation): two soffice processes sharing a profile
make the second wait or exit without converting anything. LibreOffice writes into a scratch folder;
each PDF is then stamped and put in place with `atomic_write`, so no half-written PDF ever has its
final name, and a file LibreOffice could not convert raises PdfFailed naming it.

Reproducible bytes: LibreOffice 7.4 ignores SOURCE_DATE_EPOCH and writes the clock into the PDF's
/CreationDate, with a file /ID and a /DocChecksum derived from it; nothing else in its output
changes between runs (measured). `stamped_pdf` puts the run's own time in the date and derives
/ID and /DocChecksum from the content, each in place with the same length, so the cross-reference
offsets stay valid and reruns give identical PDFs.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import PerfreportError
from pipeline.write.files import atomic_write

PDF_DIR = "pdf"
SOFFICE_ENV = "PERFREPORT_SOFFICE"  # the full path of soffice, when it is not on PATH
SOFFICE_NAMES = ("soffice", "libreoffice")
# Where the installers put it: Windows' does not add it to PATH, nor does the macOS app.
PROGRAM_FOLDERS = (("PROGRAMFILES", r"C:\Program Files"), ("PROGRAMFILES(X86)", r"C:\Program Files (x86)"))
MACOS_SOFFICE = Path("/Applications/LibreOffice.app/Contents/MacOS/soffice")


def installed_locations(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """Where LibreOffice's installers put soffice (os.environ's keys are upper case on Windows)."""
    return (*(Path(environ.get(key, default)) / "LibreOffice" / "program" / "soffice.exe"
              for key, default in PROGRAM_FOLDERS), MACOS_SOFFICE)


LIBREOFFICE_MISSING = (
    "未找到 LibreOffice，无法生成 PDF（--pdf）。请先安装 LibreOffice，再重新运行：\n"
    "  Debian/Ubuntu：sudo apt install libreoffice-writer-nogui fonts-noto-cjk\n"
    "  Windows：从 https://www.libreoffice.org 下载并安装 LibreOffice，把其安装文件夹中的 program 文件夹"
    "（含 soffice.exe）加入 PATH，或设置环境变量 "
    f"{SOFFICE_ENV} 为 soffice.exe 的完整路径。\n"
    "不加 --pdf 时照常生成报告，无需 LibreOffice。"
)

# At most this many files per soffice call. Starting soffice costs about 1 s here, converting a
# report about 0.1 s, so a call must convert many; a command line of 100 paths stays well below
# Windows' 32,767 characters, and LibreOffice's memory is returned at each call's end.
BATCH_FILES = 100
# A call's time limit: start-up plus a generous time per file (a report takes well under a second
# here; a shared office machine may be ten times slower).
CALL_SECONDS, FILE_SECONDS = 120.0, 20.0


class PdfFailed(PerfreportError):
    """LibreOffice did not turn a report into a PDF (the message names the file and why)."""


def soffice_command(environ: Mapping[str, str] | None = None) -> str | None:
    """The LibreOffice program to run: PERFREPORT_SOFFICE when set (a path, or a name on PATH),
    else soffice or libreoffice on PATH, else an installer's usual location; None when none is.

    A PERFREPORT_SOFFICE that names nothing runnable gives None rather than a fallback: the
    administrator chose that program, and the refusal tells them it is not there.
    """
    env = os.environ if environ is None else environ
    path = env.get("PATH", "")
    chosen = env.get(SOFFICE_ENV, "").strip()
    if chosen:
        return shutil.which(chosen, path=path) or (chosen if os.access(chosen, os.X_OK) and Path(chosen).is_file()
                                                   else None)
    found = next((hit for name in SOFFICE_NAMES if (hit := shutil.which(name, path=path))), None)
    return found or next((str(p) for p in installed_locations(env) if p.is_file()), None)


def batches(paths: Sequence[Path], workers: int, most: int = BATCH_FILES) -> list[list[Path]]:
    """`paths` cut into consecutive batches of near-equal size, at least one per worker (so every
    worker has work) and at most `most` files each."""
    if not paths:
        return []
    count = max(min(workers, len(paths)), -(-len(paths) // most))
    size, extra = divmod(len(paths), count)
    cuts = [i * size + min(i, extra) for i in range(count + 1)]
    return [list(paths[cuts[i]:cuts[i + 1]]) for i in range(count)]


# The values LibreOffice derives from the clock, each rewritten in place (same length).
CREATION_DATE = re.compile(rb"/CreationDate\(D:(\d{14})([^)]*)\)")
FILE_ID = re.compile(rb"/ID \[ ?<([0-9A-Fa-f]{32})>\s*<([0-9A-Fa-f]{32})> ?\]")
DOC_CHECKSUM = re.compile(rb"/DocChecksum /([0-9A-Fa-f]{32})")
# A date's zone suffix by its length, as LibreOffice versions write it ("Z'" in 7.4, "+08'00'" in others).
UTC_SUFFIXES = {0: b"", 1: b"Z", 2: b"Z'", 6: b"+00'00", 7: b"+00'00'"}


def stamped_pdf(data: bytes, created: datetime) -> bytes:
    """LibreOffice's PDF with `created` (made UTC) as its /CreationDate and its /ID and
    /DocChecksum derived from the content instead of the clock. Every value keeps its length,
    so the byte offsets of the cross-reference table stay right. A date in a form not known here
    is left as LibreOffice wrote it (the PDF is then not reproducible, but still correct)."""
    stamp = created.astimezone(UTC).strftime("%Y%m%d%H%M%S").encode("ascii")

    def dated(match: re.Match[bytes]) -> bytes:
        suffix = UTC_SUFFIXES.get(len(match.group(2)))
        return match.group(0) if suffix is None else b"/CreationDate(D:" + stamp + suffix + b")"

    dated_data = CREATION_DATE.sub(dated, data, count=1)
    zeros = b"0" * 32
    # The content without the clock's traces: what the new /ID and /DocChecksum are derived from.
    blank = DOC_CHECKSUM.sub(b"/DocChecksum /" + zeros, FILE_ID.sub(b"/ID [<" + zeros + b"><" + zeros + b">]",
                                                                    dated_data))
    digest = hashlib.md5(blank, usedforsecurity=False).hexdigest().upper().encode("ascii")

    def identified(match: re.Match[bytes]) -> bytes:
        return match.group(0).replace(match.group(1), digest).replace(match.group(2), digest)

    identified_data = FILE_ID.sub(identified, dated_data, count=1)
    return DOC_CHECKSUM.sub(lambda m: m.group(0).replace(m.group(1), digest), identified_data, count=1)


def call_seconds(files: int) -> float:
    """The time limit of one soffice call on `files` files."""
    return CALL_SECONDS + FILE_SECONDS * files


def conversion_command(soffice: str, profile: Path, outdir: Path, documents: Sequence[Path]) -> list[str]:
    """The soffice command line converting `documents` into `outdir` with its own `profile`."""
    return [soffice, "--headless", "--norestore", "--nolockcheck",
            f"-env:UserInstallation={profile.resolve().as_uri()}",
            "--convert-to", "pdf:writer_pdf_Export", "--outdir", str(outdir), *(str(d) for d in documents)]


def run_soffice(command: list[str], timeout: float) -> tuple[int | None, str]:
    """Run one soffice call: (its exit code, or None when it ran out of time, and its output).

    On POSIX soffice is a script whose real program is a grandchild, so it runs in a session of
    its own and a timeout ends the whole group, not only the script.
    """
    posix = os.name == "posix"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=posix)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if posix:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.communicate()
        return None, ""
    return process.returncode, output.decode("utf-8", errors="replace")


def failure(documents: Sequence[Path], code: int | None, output: str, timeout: float) -> PdfFailed:
    """The error of a call that left `documents` without a PDF, naming the first of them."""
    first = documents[0].name
    others = f"（另有 {len(documents) - 1} 个文件）" if len(documents) > 1 else ""
    if code is None:
        why = f"LibreOffice 超过 {timeout:.0f} 秒未完成"
    else:
        # Its own words about the failure ("Error: source file could not be loaded"), not the
        # progress lines of the files that did convert.
        said = " ".join(line.strip() for line in output.splitlines() if "error" in line.lower())[:200]
        why = f"LibreOffice 未生成 PDF（退出码 {code}{'：' + said if said else ''}）"
    return PdfFailed(f"无法把 {first}{others} 转换为 PDF：{why}。请用 Word 或 LibreOffice 打开该文件检查。")


@contextmanager
def scratch_folder(parent: Path | None, prefix: str) -> Iterator[Path]:
    """A new folder in `parent` (None: the system's temporary folder), removed afterwards
    whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def convert_batch(soffice: str, profile: Path, documents: Sequence[Path], out_dir: Path,
                  created: datetime | None) -> list[Path]:
    """Convert one batch with one soffice call; the PDFs, stamped and in place, in order."""
    with scratch_folder(out_dir, ".soffice-") as scratch:
        timeout = call_seconds(len(documents))
        code, output = run_soffice(conversion_command(soffice, profile, scratch, documents), timeout)
        written = [scratch / f"{document.stem}.pdf" for document in documents]
        missing = [d for d, pdf in zip(documents, written, strict=True) if not pdf.is_file()]
        if missing or code is None:
            raise failure(missing or list(documents), code, output, timeout)
        placed = []
        for pdf in written:
            data = pdf.read_bytes()
            placed.append(atomic_write(out_dir / pdf.name, stamped_pdf(data, created) if created else data))
            pdf.unlink()
        return placed


def pdf_copies(docx_paths: Sequence[Path], out_dir: Path, workers: int, created: datetime | None = None,
               soffice: str | None = None) -> list[Path]:
    """Write `<stem>.pdf` into `out_dir` for each of `docx_paths`; the PDFs, in the order given.

    `workers` soffice processes run at once, each on batches of files with a profile of its own.
    `created`: the time the PDFs carry as their creation date (the run's, from SOURCE_DATE_EPOCH
    or its date), which makes reruns byte-identical; None keeps LibreOffice's clock. `soffice`:
    the program (default `soffice_command()`). Raises PdfFailed naming a file that did not convert,
    or when LibreOffice is missing; the PDFs already placed stay (the caller's staging folder is
    discarded as a whole).
    """
    stems = [path.stem for path in docx_paths]
    if len(set(stems)) != len(stems):
        raise ValueError(f"two documents would write the same PDF: {sorted(s for s in stems if stems.count(s) > 1)}")
    program = soffice or soffice_command()
    if program is None:
        raise PdfFailed(LIBREOFFICE_MISSING)
    out_dir.mkdir(parents=True, exist_ok=True)
    work: queue.SimpleQueue[list[Path]] = queue.SimpleQueue()
    for batch in batches(docx_paths, max(1, workers)):
        work.put(batch)
    lanes = min(max(1, workers), max(1, len(docx_paths)))
    stop = threading.Event()  # after a failure, lanes take no new batch

    def lane() -> list[Path]:
        done: list[Path] = []
        # A profile of its own per process, out of the output folder: it never belongs in the zip.
        with scratch_folder(None, "perfreport-soffice-") as profile:
            while not stop.is_set():
                try:
                    batch = work.get_nowait()
                except queue.Empty:
                    break
                try:
                    done.extend(convert_batch(program, profile, batch, out_dir, created))
                except BaseException:
                    stop.set()
                    raise
        return done

    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="perfreport-pdf") as pool:
        futures = [pool.submit(lane) for _ in range(lanes)]
        for future in futures:
            future.result()
    by_stem = {path.stem: path for path in (out_dir / f"{stem}.pdf" for stem in stems)}
    return [by_stem[stem] for stem in stems]

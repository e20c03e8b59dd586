"""The console on Chinese Windows (GBK) and in logs: no encoding error, no redrawn progress lines."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import console
from tests.conftest import valid_sheets, write_workbook

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "input" / "2020年度项目支出绩效自评表.xlsx"
CLI_SECONDS = 300


def perfreport_on_gbk(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """`perfreport` in a child process whose console is GBK (as on Chinese Windows), its output
    piped as the web page and scheduled tasks read it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PERFREPORT_", "PYTHONUTF8"))}
    env["PYTHONIOENCODING"] = "gbk"
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True,
                          timeout=CLI_SECONDS, env=env, cwd=REPO, check=False)


def progress_lines(text: str) -> list[str]:
    """The progress lines among a run's console lines."""
    return [line for line in text.splitlines() if "生成报告" in line and "/" in line]


def test_a_run_on_a_gbk_console_with_piped_output_succeeds_with_plain_lines(tmp_path: Path) -> None:
    done = perfreport_on_gbk("run", EXAMPLE, "--output-dir", tmp_path / "output")

    out, err = done.stdout.decode("gbk"), done.stderr.decode("gbk")  # strict: every byte is GBK
    assert done.returncode == 0, err
    assert f"{console.GBK_MARKS.success} {EXAMPLE.name}：7 个项目，生成 7 份报告" in out
    assert b"\r" not in done.stdout + done.stderr
    assert 1 <= len(progress_lines(err)) <= console.PLAIN_STEPS and "生成报告 7/7" in err
    assert "内部错误" not in err


def test_an_invalid_workbook_named_beyond_gbk_exits_1_with_its_errors_on_a_gbk_console(
        tmp_path: Path) -> None:
    sheets = valid_sheets()
    sheets["项目"][0]["年度"] = 1999
    workbook = write_workbook(tmp_path / "预算✔.xlsx", sheets)  # ✔ has no GBK code

    done = perfreport_on_gbk("run", workbook, "--output-dir", tmp_path / "output")

    err = done.stderr.decode("gbk")
    assert done.returncode == 1, err
    assert f"{console.GBK_MARKS.failure} 预算?.xlsx：发现 1 个错误" in err  # the name shown, not a crash
    assert "项目 第2行「年度」为 1999" in err
    assert "内部错误" not in err and b"\r" not in done.stdout + done.stderr


def test_a_refusal_on_a_gbk_console_exits_2_with_the_gbk_mark(tmp_path: Path) -> None:
    done = perfreport_on_gbk("run", tmp_path / "没有这个✔.xlsx")

    err = done.stderr.decode("gbk")
    assert done.returncode == 2, err
    assert err.startswith(console.GBK_MARKS.failure) and "找不到文件或文件夹" in err
    assert "内部错误" not in err


def test_check_template_lines_use_the_marks_a_gbk_console_has() -> None:
    done = perfreport_on_gbk("check-template", REPO / "templates" / "report.docx")

    assert done.returncode == 0, done.stderr.decode("gbk")
    assert done.stdout.decode("gbk").startswith(f"{console.GBK_MARKS.success} 模板 report.docx")


@pytest.mark.parametrize(("encoding", "marks"), [
    ("utf-8", console.UNICODE_MARKS), ("UTF-8", console.UNICODE_MARKS), ("gbk", console.GBK_MARKS),
    ("cp936", console.GBK_MARKS), ("gb18030", console.UNICODE_MARKS), ("ascii", console.ASCII_MARKS),
    ("no-such-codec", console.ASCII_MARKS), (None, console.UNICODE_MARKS)])
def test_the_marks_are_the_best_the_encoding_can_write(encoding: str | None, marks: console.Marks) -> None:
    assert console.marks_for(encoding) == marks
    if encoding not in (None, "no-such-codec"):
        assert marks.all().encode(encoding)


def test_a_line_worded_with_unicode_marks_gets_the_streams_marks() -> None:
    gbk = io.TextIOWrapper(io.BytesIO(), encoding="gbk")

    assert console.with_marks("✘ 模板 a.docx 发现 2 处问题：", gbk) == "× 模板 a.docx 发现 2 处问题："
    assert console.with_marks("  - 第3段", gbk) == "  - 第3段"


def emit_progress(stream: io.TextIOBase, steps: list[tuple[int, int]]) -> None:
    """Feed progress records to a ProgressBar writing to `stream`, as the flow logs them."""
    handler = console.ProgressBar(stream)  # type: ignore[arg-type]
    logger = logging.getLogger("tests.console.progress")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for done, total in steps:
            logger.info("已生成 %d/%d 份报告", done, total, extra={"progress": (done, total)})
    finally:
        logger.removeHandler(handler)


def test_progress_off_a_terminal_is_at_most_ten_plain_lines_per_workbook() -> None:
    piped = io.StringIO()

    emit_progress(piped, [(done, 1000) for done in range(1, 1001)] + [(done, 3) for done in range(1, 4)])

    lines = piped.getvalue().splitlines()
    assert "\r" not in piped.getvalue()
    assert lines[:10] == [f"  生成报告 {n}/1000" for n in range(100, 1001, 100)]
    assert lines[10:] == ["  生成报告 1/3", "  生成报告 2/3", "  生成报告 3/3"]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_on_a_terminal_is_one_bar_redrawn_in_place() -> None:
    leader, follower = os.openpty()
    with open(follower, "w", encoding="utf-8", closefd=True) as terminal:
        emit_progress(terminal, [(1, 2), (2, 2)])
    shown = os.read(leader, 4096).decode("utf-8")
    os.close(leader)

    # The terminal itself turns the last line end into \r\n; the bar starts each drawing with \r.
    assert shown.count("\r  生成报告 [") == 2 and shown.startswith("\r  生成报告 [###############...............] 1/2")
    assert shown.rstrip().endswith("2/2")


def test_the_streams_replace_what_their_encoding_lacks(tmp_path: Path) -> None:
    script = ("from pipeline.console import never_failing_streams\n"
              "never_failing_streams()\nprint('预算✔😀')\n")
    env = {**os.environ, "PYTHONIOENCODING": "gbk"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, cwd=REPO,
                          check=False, timeout=60)

    assert done.returncode == 0 and done.stdout.decode("gbk").strip() == "预算??"


@pytest.mark.parametrize(("args", "code"), [(["run", "--no-such-option"], 2), ([], 2), (["--help"], 0)])
def test_the_console_script_leaves_with_argparses_status(args: list[str], code: int) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == code
    assert b"Traceback" not in done.stderr

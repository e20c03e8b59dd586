"""The command line: Chinese messages, exit codes, and no traceback whatever the input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.usefixtures("prefect_harness")
def test_run_on_a_good_workbook_exits_0_and_says_where_the_reports_are(workbook_factory, tmp_path, capsys) -> None:
    workbook = workbook_factory(name="good.xlsx")
    code = main(["run", str(workbook), "--output-dir", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 个项目，生成 2 份报告，1 条警告" in out
    assert str(tmp_path / "out" / "good" / "reports") in out


@pytest.mark.usefixtures("prefect_harness")
def test_run_on_a_workbook_with_errors_exits_1_and_lists_them(workbook_factory, sheets, tmp_path, capsys) -> None:
    sheets["资金"][1]["全年执行数(万元)"] = "5万元"
    sheets["项目"][0]["年度"] = 1999
    code = main(["run", str(workbook_factory(sheets, name="bad.xlsx")), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "发现 2 个错误" in err
    assert "资金 第3行「全年执行数(万元)」带有单位「万元」，请只填数字" in err
    assert "项目 第2行「年度」为 1999，应在 2000 到 2100 之间" in err
    assert "校验报告.xlsx" in err


@pytest.mark.usefixtures("prefect_harness")
def test_run_on_a_file_that_is_not_a_workbook_exits_2(tmp_path, capsys) -> None:
    fake = tmp_path / "data.xlsx"
    fake.write_text("项目编号,项目名称\nP-1,测试\n", encoding="utf-8")
    code = main(["run", str(fake), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "data.xlsx" in err and "不是 Excel 工作簿" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.docx"))


def test_run_on_a_missing_path_exits_2(tmp_path, capsys) -> None:
    assert main(["run", str(tmp_path / "nowhere.xlsx")]) == 2
    assert "找不到文件或文件夹" in capsys.readouterr().err


def test_folder_without_workbooks_exits_2_and_ignores_office_lock_files(tmp_path, capsys) -> None:
    (tmp_path / "~$锁.xlsx").write_bytes(b"lock")
    assert main(["run", str(tmp_path)]) == 2
    assert "没有 .xlsx 工作簿" in capsys.readouterr().err


def test_wrong_call_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--no-such-flag"])
    assert exc.value.code == 2


def test_console_script_run_prints_no_traceback(workbook_factory, sheets, tmp_path) -> None:
    """The real console entry point in its own process, with its own ephemeral Prefect server."""
    sheets["资金"][0]["全年执行数(万元)"] = 120
    good = workbook_factory(name="好.xlsx")
    bad = workbook_factory(sheets, name="坏.xlsx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(good), str(bad), "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, cwd=REPO, env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "✔ 好.xlsx：2 个项目" in result.stdout
    assert "资金 第2行「全年执行数(万元)」为 120，超过全年预算数 100" in result.stderr
    assert len(list((tmp_path / "out" / "好" / "reports").glob("*.docx"))) == 2

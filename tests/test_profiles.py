"""Scoring profiles as files: the shipped ones, `--profile NAME|FILE`, and a broken file refused."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import (
    PROFILES_DIR,
    ProfileInvalid,
    chosen_profile,
    load_profile_file,
    profile_files,
)
from pipeline.core.profile import DEFAULT_PROFILE, AtMostRule
from tests.summarytable import summary_records
from tests.test_flow import document_text

NATIONAL_FILE = PROFILES_DIR / "财预2020-10号.toml"


def hubei_sheets(sheets: dict[str, list[dict[str, object]]]) -> dict[str, list[dict[str, object]]]:
    """The valid workbook with its indicators reweighted to 80 per project (湖北: 20 + 80)."""
    weights = [15, 35, 30, 50, 30]
    for row, weight in zip(sheets["绩效指标"], weights, strict=True):
        row["分值"] = weight
    return sheets


def summary_rows(folder: Path) -> list[dict[str, object]]:
    """汇总表.xlsx as dicts keyed by its header row."""
    return summary_records(folder / "汇总表.xlsx")


def test_the_shipped_national_file_is_the_built_in_default_exactly() -> None:
    profile = load_profile_file(NATIONAL_FILE)
    assert profile == DEFAULT_PROFILE
    # Equality ignores order; matching a 定性 result by prefix does not.
    assert list(profile.qualitative_bands) == list(DEFAULT_PROFILE.qualitative_bands)
    assert profile.grade_bands == DEFAULT_PROFILE.grade_bands


def test_shipped_profiles_are_found_by_file_name_or_display_name() -> None:
    assert {"财预2020-10号", "湖北", "四川"} <= set(profile_files())
    hubei = chosen_profile("湖北")
    assert (hubei.name, hubei.budget_weight, hubei.indicator_weight_total) == ("湖北", 20, 80)
    assert hubei.block_totals == {"产出指标": Decimal(40), "效益指标": Decimal(40)}
    sichuan = chosen_profile("四川")
    assert (sichuan.budget_weight, sichuan.indicator_weight_total, sichuan.block_totals) == (10, 90, {})
    assert chosen_profile("财预〔2020〕10号") == DEFAULT_PROFILE
    assert chosen_profile(None) is DEFAULT_PROFILE


def test_an_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileInvalid, match="找不到评分规则「江苏」.*湖北"):
        chosen_profile("江苏")


@pytest.mark.usefixtures("prefect_harness")
def test_run_with_the_hubei_profile_scores_a_20_plus_80_workbook(workbook_factory, sheets, tmp_path, capsys) -> None:
    workbook = workbook_factory(hubei_sheets(sheets), name="湖北.xlsx")
    code = main(["run", str(workbook), "--profile", "湖北", "--output-dir", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "out" / "湖北"
    first = summary_rows(folder)[0]
    # 20 × 85.62% = 17.12 for the budget, 14.29 + 35 + 30 for the indicators.
    assert (first["总得分"], first["评价等级"], first["评分规则"]) == (96.41, "优", "湖北")
    text = document_text(folder / "reports" / "P-001_信访救助专项资金.docx")
    assert "17.12" in text
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["profile"] == "湖北"


@pytest.mark.usefixtures("prefect_harness")
def test_the_same_workbook_without_the_option_is_refused_naming_the_national_profile(
        workbook_factory, sheets, tmp_path, capsys) -> None:
    workbook = workbook_factory(hubei_sheets(sheets), name="湖北.xlsx")
    code = main(["run", str(workbook), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "项目 P-001 的指标分值合计为 80，按「财预〔2020〕10号」评分规则应为 90（另 10 分为预算执行率）" in err
    manifest = json.loads((tmp_path / "out" / "湖北" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["profile"] == "财预〔2020〕10号"


@pytest.mark.usefixtures("prefect_harness")
def test_a_user_written_profile_file_scores_by_its_own_weights_and_grades(
        workbook_factory, sheets, tmp_path, capsys) -> None:
    own = tmp_path / "本市.toml"
    text = NATIONAL_FILE.read_text(encoding="utf-8")
    text = (text.replace('name = "财预〔2020〕10号"', 'name = "本市办法"')
            .replace("budget_weight = 10 ", "budget_weight = 30 ").replace("indicator_total = 90 ", "indicator_total = 70 ")
            .replace('"优" = 90', '"优" = 99'))
    own.write_text(text, encoding="utf-8")
    for row, weight in zip(sheets["绩效指标"], [15, 25, 30, 40, 30], strict=True):
        row["分值"] = weight
    workbook = workbook_factory(sheets, name="本市.xlsx")
    code = main(["run", str(workbook), "--profile", str(own), "--output-dir", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    first = summary_rows(tmp_path / "out" / "本市")[0]
    # 30 × 85.62% = 25.69 for the budget; 14.29 + 25 + 30; 94.98 is 良 under this file's 优 ≥ 99.
    assert (first["总得分"], first["评价等级"], first["评分规则"]) == (94.98, "良", "本市办法")


def test_a_profile_copied_into_the_profiles_folder_is_chosen_by_its_file_name(tmp_path) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    shutil.copy(NATIONAL_FILE, folder / "线性.toml")
    path = folder / "线性.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('at_most = "ratio"', 'at_most = "linear"')
                    .replace('name = "财预〔2020〕10号"', 'name = "线性办法"'), encoding="utf-8")
    profile = chosen_profile("线性", folder)
    assert (profile.name, profile.at_most_rule) == ("线性办法", AtMostRule.LINEAR)


@pytest.mark.parametrize(("change", "message"), [
    (("budget_weight = 10 ", "budget_weight = 10 = "), "第 6 行"),
    (("budget_weight = 10 ", "budget_weight = 20 "), "budget_weight 20 与 indicator_total 90 之和应为 100"),
    (("at_most = \"ratio\"", "at_most = \"half\""), "at_most 应为 ratio 或 linear"),
    (("indicator_total = 90 ", "indicator_totl = 90 "), "不认识的项 indicator_totl"),
    (('"差" = 0', '"差" = 10'), "必须有一个等级从 0 分起"),
    (("low = 0.6", "low = 0.9"), "[qualitative.部分达成] 应满足 0 ≤ low < high ≤ 1"),
    (("[blocks]", '[blocks]\n"产出" = 40'), "产出 不是一级指标"),
])
def test_a_broken_profile_file_exits_2_with_a_chinese_message(tmp_path, capsys, change, message) -> None:
    broken = tmp_path / "坏.toml"
    broken.write_text(NATIONAL_FILE.read_text(encoding="utf-8").replace(*change), encoding="utf-8")
    assert broken.read_text(encoding="utf-8") != NATIONAL_FILE.read_text(encoding="utf-8")
    code = main(["run", str(tmp_path / "any.xlsx"), "--profile", str(broken)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"评分规则文件 {broken} 有误" in err and message in err
    assert "Traceback" not in err


def test_a_missing_profile_file_exits_2(tmp_path, capsys) -> None:
    assert main(["run", str(tmp_path / "any.xlsx"), "--profile", str(tmp_path / "没有.toml")]) == 2
    assert "无法读取" in capsys.readouterr().err


def test_serve_refuses_a_bad_profile_before_serving(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never reached
    code = main(["serve", "--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--profile", "江苏"])
    assert code == 2
    assert "找不到评分规则「江苏」" in capsys.readouterr().err

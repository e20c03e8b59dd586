"""The report names the scoring rules that scored it (评分说明), with that profile's own numbers.

Reports are made in this process by the steps the flow wires (tests/inprocess.py) from a real
workbook in which one project asks for full_report.docx and the other uses report.docx, scored
by the national profile and by 湖北 (20 + 80); each .docx is read back with python-docx.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docx
import pytest

from pipeline.config import chosen_profile, profile_from_toml
from pipeline.core.context import report_context, scoring_note
from pipeline.core.indicators import evaluate
from pipeline.core.profile import DEFAULT_PROFILE
from tests.inprocess import reports_of
from tests.test_context import RUN_DATE
from tests.test_indicators import indicator, project
from tests.test_profiles import NATIONAL_FILE, hubei_sheets

Sheets = dict[str, list[dict[str, object]]]

BANDS = "90分（含）以上为优、80分（含）至90分为良、60分（含）至80分为中、60分以下为差"
NATIONAL_NOTE = ("本次评价按「财预〔2020〕10号」评分规则计分：预算执行率10分，绩效指标90分，满分100分；"
                 f"按总分确定评价等级，{BANDS}。")
HUBEI_NOTE = f"本次评价按「湖北」评分规则计分：预算执行率20分，绩效指标80分，满分100分；按总分确定评价等级，{BANDS}。"
# The full report's paragraph （二）绩效评价原则、评价指标体系、评价方法和标准: the 办法 stays the
# legal basis, the scoring rules are the profile's.
METHOD = ("评价依据《项目支出绩效评价管理办法》（财预〔2020〕10号），采取单位自评方式，"
          "遵循科学公正、统筹兼顾、激励约束、公开透明的原则。"
          "评价指标由预算执行率和3项绩效指标组成，各项指标按实际完成值与年度指标值的对比计分。")
# P-002 scores full marks under both profiles: 5 of 5万元 spent, 74 of ≥50 批, 5 of ≤5万元.
CONCLUSION = "经自评，该项目得分100.00分，评价等级为优。"


def national(sheets: Sheets) -> Sheets:
    """The valid workbook as it is (10 + 90)."""
    return sheets


def body_paragraphs(path: Path) -> list[str]:
    """The text of every body paragraph of a .docx (outside tables), as Word shows it."""
    return [p.text for p in docx.Document(str(path)).paragraphs]


def report_texts(workbook: Path, output_dir: Path, profile_name: str) -> dict[str, list[str]]:
    """Each report's body paragraphs by project id, from a run scored by `profile_name`."""
    reports, contexts = reports_of(workbook, output_dir, chosen_profile(profile_name))
    return {str(context["project_id"]): body_paragraphs(reports / name) for name, context in contexts.items()}


@pytest.mark.parametrize(("profile_name", "reweighted", "note"), [
    ("财预〔2020〕10号", national, NATIONAL_NOTE),
    ("湖北", hubei_sheets, HUBEI_NOTE),
], ids=["national", "hubei"])
def test_both_templates_name_the_scoring_rules_with_their_weights_and_grades(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
    profile_name: str, reweighted: Callable[[Sheets], Sheets], note: str,
) -> None:
    sheets["项目"][0]["模板"] = "full_report.docx"  # P-001: full report; P-002: the short one

    texts = report_texts(workbook_factory(reweighted(sheets)), tmp_path / "out", profile_name)

    full, short = texts["P-001"], texts["P-002"]
    method = full.index("（二）绩效评价原则、评价指标体系、评价方法和标准") + 1
    assert full[method] == METHOD + note
    assert short[short.index("四、评价结论") + 1] == CONCLUSION + note
    # Said once in each report, and the other profile's weights nowhere.
    other = HUBEI_NOTE if note == NATIONAL_NOTE else NATIONAL_NOTE
    for paragraphs in (full, short):
        assert sum(note in p for p in paragraphs) == 1
        assert not any(other in p for p in paragraphs)


def test_the_result_carries_the_profile_that_scored_it() -> None:
    hubei = chosen_profile("湖北")
    subject = project((indicator(weight=hubei.indicator_weight_total),))

    result = evaluate(subject, hubei)
    context = report_context(result, RUN_DATE)

    assert result.profile is hubei and result.profile_name == "湖北"
    assert (context["scoring_rule"], context["scoring_note"]) == ("湖北", HUBEI_NOTE)
    assert report_context(evaluate(project((indicator(),)), DEFAULT_PROFILE), RUN_DATE)["scoring_rule"] == "财预〔2020〕10号"


def test_a_user_written_profile_is_described_by_its_own_grades() -> None:
    text = NATIONAL_FILE.read_text(encoding="utf-8").replace('name = "财预〔2020〕10号"', 'name = "本市2021版"')
    text = text.replace('"优" = 90\n"良" = 80\n"中" = 60\n"差" = 0', '"优秀" = 85\n"合格" = 60\n"不合格" = 0')
    profile = profile_from_toml(text, "本市2021版.toml")

    note = scoring_note(evaluate(project((indicator(),)), profile))

    assert note == ("本次评价按「本市2021版」评分规则计分：预算执行率10分，绩效指标90分，满分100分；"
                    "按总分确定评价等级，85分（含）以上为优秀、60分（含）至85分为合格、60分以下为不合格。")

"""Write a large, realistic, valid input workbook for timing the reader and the validation.

Usage: python scripts/make_synthetic.py OUT.xlsx --projects 10000 [--seed 0]

Every project follows docs' workbook contract: 1–2 资金 rows (财政拨款, sometimes 上年结转;
execution ≤ budget), 3 使用原则 rows, 8 绩效指标 rows whose 分值 add up to 90, in the forms
users type them (`≥90%` in one cell, separate 指标方向 + number + 计量单位, `≤` cost indicators,
定性 with 达成/部分达成, 分子/分母, %-formatted actual cells). Texts are drawn from a fixed
vocabulary with random.Random(seed), so the same arguments give the same cells. The workbook
is written in openpyxl's write-only mode (streaming), to a temporary name, then moved in place.
"""

from __future__ import annotations

import argparse
import random
import sys
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from pipeline.write.files import atomic_write_with

YEAR = 2020
DEPARTMENTS = ("如皋市信访局", "如皋市财政局", "如皋市教育局", "如皋市民政局", "如皋市卫生健康委员会",
               "如皋市农业农村局", "如皋市交通运输局", "如皋市住房和城乡建设局", "如皋市文化广电和旅游局")
SUBJECTS = ("信访救助", "领导接访", "法治宣传", "农村公路养护", "义务教育保障", "基层医疗服务", "社区养老服务",
            "农田水利建设", "文化惠民演出", "城市绿化管护", "食品安全抽检", "困难群众救助", "就业技能培训")
SUFFIXES = ("专项资金", "经费", "补助资金", "运行费用", "项目")
WORDS = ("根据上级文件精神", "按照年度工作要点", "围绕中心工作", "坚持以人民为中心", "落实主体责任",
         "加强资金监管", "提高资金使用效益", "完善长效机制", "推进信息化建设", "强化督查督办",
         "妥善化解矛盾纠纷", "保障群众合法权益", "规范项目管理流程", "严格执行财务制度", "开展绩效跟踪",
         "做好宣传引导", "优化服务流程", "提升群众满意度", "统筹城乡协调发展", "加大基层投入力度",
         "健全考核评价体系", "推动问题有效解决", "确保项目按期完成", "注重实效", "厉行节约")
PRINCIPLES = ("专款专用、限定范围。", "统筹安排、突出重点。", "厉行节约、注重绩效。", "公开透明、接受监督。",
              "案结事了、稳妥有序。", "分级负责、归口管理。")
PROJECT_HEADERS = ("项目编号", "项目名称", "年度", "主管部门", "实施单位", "项目概况", "年度目标", "完成情况", "模板")
FUNDING_HEADERS = ("项目编号", "资金来源", "年初预算数(万元)", "全年预算数(万元)", "全年执行数(万元)")
PRINCIPLE_HEADERS = ("项目编号", "序号", "内容")
INDICATOR_HEADERS = ("项目编号", "一级指标", "二级指标", "三级指标", "指标方向", "年度指标值", "实际完成值",
                     "计量单位", "分值", "分子", "分母", "自评得分", "偏差原因分析及改进措施")
WEIGHTS = (15, 15, 10, 10, 10, 10, 10, 10)


def paragraph(rng: random.Random, length: int) -> str:
    """Chinese text of about `length` characters: clauses from the vocabulary, then a full stop."""
    parts: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(WORDS)
        parts.append(word)
        size += len(word) + 1
    return "，".join(parts) + "。"


def money(rng: random.Random, low: int, high: int) -> float:
    """An amount in 万元 with two decimals."""
    return rng.randint(low * 100, high * 100) / 100


class Percent(float):
    """A value to write as an Excel percentage cell (0.9919 shown as 99.19%)."""


def indicator_rows(rng: random.Random, pid: str, subject: str) -> list[tuple[object, ...]]:
    """Eight indicators of one project, weights 15,15,10,…,10 (sum 90), in a mix of forms."""
    rows: list[tuple[object, ...]] = []

    def add(level1: str, level2: str, name: str, direction: object, target: object, actual: object,
            unit: object, weight: int, num: object = None, den: object = None, score: object = None,
            remark: object = None) -> None:
        rows.append((pid, level1, level2, name, direction, target, actual, unit, weight, num, den, score, remark))

    w = iter(WEIGHTS)
    count = rng.randint(50, 5000)
    add("产出指标", "数量指标", f"{subject}服务人次", "≥", count, count + rng.randint(0, 300), "人次", next(w))
    target_pct = rng.choice((80, 85, 90, 95))
    add("产出指标", "质量指标", f"{subject}验收合格率", None, f"≥{target_pct}%",
        rng.choice((100, 99.5, 98.2, 97)), "%", next(w))
    den = rng.randint(10, 80)
    num = den - rng.randint(0, min(3, den))
    shown = (Decimal(num) / Decimal(den) * 100).quantize(Decimal("0.1"))
    if rng.random() < 0.5:
        add("产出指标", "时效指标", "按期办结率", "≥", 90, f"{shown}%", "%", next(w), num, den,
            remark=None if num * 10 >= den * 9 else "个别事项办理周期较长，下一步加强督办。")
    else:
        add("产出指标", "时效指标", "按期办结率", None, "≥90百分比", None, None, next(w), num, den,
            remark=None if num * 10 >= den * 9 else "个别事项办理周期较长，下一步加强督办。")
    budget = rng.randint(10, 500)
    spent = round(budget * rng.uniform(0.8, 1.0), 2)
    add("成本指标", "经济成本指标", "项目支出", None, f"≤{budget}万元", spent, "万元", next(w))
    add("效益指标", "社会效益指标", "群众诉求化解率", "≥", 95, Percent(rng.choice((0.9919, 1, 0.985, 0.9655))), "%",
        next(w), remark="部分诉求涉及历史遗留问题，正在推进化解。")
    if rng.random() < 0.8:
        add("效益指标", "可持续影响指标", "长效机制建设", "定性", "建立健全长效管理机制", "达成预期指标", None, next(w))
    else:
        add("效益指标", "可持续影响指标", "长效机制建设", "定性", "建立健全长效管理机制",
            "部分达成年度指标并具有一定效果", None, next(w), score=7, remark="制度建设尚在完善，下一年度继续推进。")
    add("满意度指标", "服务对象满意度指标", "服务对象满意度", None, "≥90%", Percent(rng.randint(9000, 10000) / 10000),
        "%", next(w))
    add("产出指标", "数量指标", "开展培训或宣传活动", "≥", rng.randint(1, 12), None, "次", next(w))
    last = rows[-1]
    rows[-1] = last[:6] + (int(last[5]) + rng.randint(0, 3),) + last[7:]
    return rows


def cell(sheet, value: object) -> object:  # noqa: ANN001 - openpyxl write-only sheet
    """A write-only cell: percentage values carry the '0.00%' number format."""
    if isinstance(value, Percent):
        formatted = WriteOnlyCell(sheet, value=float(value))
        formatted.number_format = "0.00%"
        return formatted
    return value


def write_synthetic_workbook(path: Path, projects: int, seed: int = 0) -> Path:
    """Write a valid workbook with `projects` projects to `path` (deterministic for a seed)."""
    path = Path(path)
    rng = random.Random(seed)
    workbook = Workbook(write_only=True)
    project_sheet = workbook.create_sheet("项目")
    funding_sheet = workbook.create_sheet("资金")
    principle_sheet = workbook.create_sheet("使用原则")
    indicator_sheet = workbook.create_sheet("绩效指标")
    project_sheet.append([f"{YEAR}年度项目支出绩效自评汇总表"])
    project_sheet.append(list(PROJECT_HEADERS))
    funding_sheet.append(list(FUNDING_HEADERS))
    principle_sheet.append(list(PRINCIPLE_HEADERS))
    indicator_sheet.append(list(INDICATOR_HEADERS))
    for number in range(1, projects + 1):
        pid = f"SYN{YEAR}-{number:06d}"
        subject = rng.choice(SUBJECTS)
        department = rng.choice(DEPARTMENTS)
        unit = None if rng.random() < 0.5 else f"{department}{rng.choice(('办公室', '业务科', '服务中心'))}"
        project_sheet.append([pid, f"{subject}{rng.choice(SUFFIXES)}", YEAR, department, unit,
                              paragraph(rng, 150) + "\n\n" + paragraph(rng, 150),
                              paragraph(rng, 60), paragraph(rng, 200), None])
        budget = money(rng, 5, 300)
        funding_sheet.append([pid, "财政拨款", budget, budget, round(budget * rng.uniform(0.7, 1.0), 2)])
        if rng.random() < 0.3:
            carried = money(rng, 1, 50)
            funding_sheet.append([pid, "上年结转", 0, carried, round(carried * rng.uniform(0.5, 1.0), 2)])
        for seq, text in enumerate(rng.sample(PRINCIPLES, 3), start=1):
            principle_sheet.append([pid, seq, text])
        for row in indicator_rows(rng, pid, subject):
            indicator_sheet.append([cell(indicator_sheet, v) for v in row])
    return atomic_write_with(path, workbook.save)  # openpyxl saves into the open temporary file


def main(argv: list[str] | None = None) -> int:
    """Command line: write OUT.xlsx with --projects projects."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--projects", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_synthetic_workbook(args.out, args.projects, args.seed)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

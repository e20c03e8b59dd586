"""Write the example input workbook (2020年度项目支出绩效自评表.xlsx).

Usage: python scripts/make_example.py input/2020年度项目支出绩效自评表.xlsx

The content is the seven 2020 project reports of 如皋市信访局 (the project's seed),
laid out in the four sheets of docs' workbook contract (项目, 资金, 使用原则, 绩效指标).
It is the blank workbook of `perfreport blank` (pipeline/write/blank.py: headers, 填报说明,
drop-downs, prompts) with these rows filled in. The output is deterministic: fixed
document properties and fixed zip timestamps give the same bytes on every run.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.config import Settings
from pipeline.write import blank
from pipeline.write.blank import TOP, WRAP_TOP
from pipeline.write.files import atomic_write

FIXED_TIME = datetime(2021, 3, 1, 9, 0, 0)

DEPT = "如皋市信访局"
YEAR = 2020

# ---------------------------------------------------------------------------
# 项目: (编号, 名称, 实施单位 or None, 项目概况, 年度目标, 完成情况)
# 项目概况 omits the seed's closing money sentence ("2020年度…万元使用完毕。"):
# the software writes it from the 资金 sheet.
# ---------------------------------------------------------------------------
PROJECTS = [
    (
        "RG2020-001",
        "领导接访费用",
        DEPT,
        "根据《关于印发〈南通市信访工作要点〉的通知》，按照领导接访下访（市委市政府主要领导、"
        "市四套班子领导接访）长效机制，市委市政府主要领导（市委书记、市长）每月安排一天时间在"
        "信访局接访，确保每个工作日均有党政领导在信访接待场所接待。为做好领导接访工作，我局需按"
        "领导批示交办来访事项、会办疑难信访事项、督查督办办理落实情况以及相关信访事项的协调处理。",
        "保障市党政领导按要求完成接访下访工作，确保每个工作日均有党政领导在信访接待场所接待，"
        "推动信访积案、难案化解。",
        "2020年度市信访局推动市党政领导接待信访群众74批74人次。认真落实“首接负责制、首办责任制”，"
        "热情接待好群众的每一次来访，精心组织好每一次下访，尽心尽职解决好群众反映的每一件诉求，"
        "真正把接待群众来访、深入基层下访的过程变成有效缓解信访群众情绪、防止矛盾激化的过程；"
        "变成沟通联系群众、和谐干群关系的过程；变成团结群众、凝聚民心、提高工作水平、增进群众感情"
        "的过程，不断提高人民群众的满意度。",
    ),
    (
        "RG2020-002",
        "处理越访、突发事件及办信",
        DEPT,
        "为处理好各级突发、越访、越级集体上访事件，需财政安排处置越访、突发信访事件费用；"
        "我局承担着处理群众来信、省委书记信箱、省长信箱、南通市长信箱、如皋市委书记、"
        "如皋市人民政府市长信件和阳光信访（网上信访）办理的职能，仅靠日常公用经费解决办理费用"
        "已远远不够，需安排来信办理及根据江苏省信访局（苏信〔2016〕15号）、南通市信访局"
        "（通信发〔2016〕17号）文件关于做好县（市、区）信访局网上信访受理平台运行及深入推进"
        "“阳光信访”信息系统深度应用的文件精神，落实阳光信访（网上信访）办理及网上信访受理平台"
        "运行费用。",
        "妥善处置各类越访、突发信访事件，及时受理办理群众来信和网上信访，推进“阳光信访”信息系统"
        "深度应用。",
        "2020年，全市累计受理办理群众来信事项4170件，“阳光信访”信息系统应用“四率”分别为："
        "信访部门及时受理率为100%；信访事项责任单位及时受理率为100%；按期办结率为100%；"
        "化解率99.19%；群众信访事项信访部门满意率为99.23%；群众信访事项参评率为99.92%；"
        "网上信访占比为87.06%；重复信访占比为14.68%，列南通市前列。",
    ),
    (
        "RG2020-003",
        "法治宣传教育经费",
        None,  # 实施单位 left empty: defaults to 主管部门
        "根据中央、省和南通市关于依法处理进京上访违法行为的一系列文件精神和要求，我局在接回"
        "进京非接待场所上访人员后，需对上访人员开展法制教育宣传工作。主要工作是配合公安机关对"
        "违法上访人员开展《信访条例》以及各类有关依法逐级走访的政策宣传教育，印制各类宣传材料。"
        "近年来，省、市要求各县市加强信访宣传。",
        "组织开展信访法治宣传月活动，开展依法逐级走访政策宣传教育，减少越级走访总量。",
        "开展“信访法治宣传月活动”，利用微信公众号等平台开展依法逐级走访政策宣传教育，"
        "印制各类宣传用品。",
    ),
    (
        "RG2020-004",
        "信访救助专项资金",
        DEPT,
        "根据江苏省信访工作领导小组办公室关于印发《全省信访工作“基层基础建设年”活动实施方案》"
        "（苏信组办〔2013〕2号）通知明确县级信访救助专项资金每年不少于50万元，南通市信访工作"
        "联席办关于印发《2017年度县（市、区）信访工作绩效考核评分细则》（通信联办〔2017〕49号）"
        "通知精神，“基层基础”考核方面“县级信访救助专项资金不少于75万元”的要求，设立信访救助"
        "专项资金，用于救助无主管部门及“三跨”“三分离”信访特殊困难户和协调处理疑难信访问题，"
        "结合我市实际，安排信访救助专项资金100万元。",
        "救助信访特殊困难群众，协调处理疑难信访问题，推动上级交办信访积案化解。",
        "结合信访积案化解、重复信访治理等工作，建立班子成员挂钩联系镇区分片包干责任机制，"
        "将全市14个镇区分为4个片，每个片区落实一名班子成员、一名科室负责人，常态化开展每周一次的"
        "基层走访督导，牵头组织协调推进信访问题的化解、困难信访群众的救助及信访业务工作的指导，"
        "有效提升了基层信访工作基础水平。"
        "\n\n"
        "在全市集中开展“一战两整治”专项行动，统筹协调推进信访矛盾积案化解工作。2020年，"
        "国家和省政府信访局交办的4件信访积案攻坚战事项化解率100%；南通市交办的14件信访积案化解"
        "12件，化解率85.7%；南通市信访局交办的61名进京访重点人员事项化解59人，化解率96.7%；"
        "南通市信访局交办我市城乡建设重点领域事项93件化解89件，化解率95.7%。",
    ),
    (
        "RG2020-005",
        "驻京驻宁导访费用",
        DEPT,
        "根据上级有关工作要求，继续落实好驻京驻宁导访工作机制。",
        "落实驻京驻宁导访工作机制，压降越级走访登记量，全年不发生群众进京非接待场所上访、"
        "进京集体上访和信访有影响事件。",
        "全年未发生群众进京非接待场所上访、进京集体上访和信访有影响事件。",
    ),
    (
        "RG2020-006",
        "复查、督办专项经费",
        None,
        "根据国务院《信访条例》规定，我局代表市政府受理并作出复查意见，配合南通市政府做好部分"
        "信访件的复核工作，工作资料、出车费用较多，需信访复查、复核费用；为做好上级交办信访件及"
        "领导批示件的办理工作，督促镇（区、街道）和部门履行职责，推动信访问题化解，需督查督办经费。",
        "做好信访事项复查、复核工作，督查督办上级交办信访件及领导批示件，促进基层履行信访工作责任。",
        "2020年，在全市建立由市委督查室和市纪委总牵头，市信访联席办总扎口，抽调市纪委、"
        "市作风效能办、市委组织部、市委政法委、市公安局、市信访局及相关职能部门人员组成2个"
        "联合督查组，14次组织对信访责任制落实及重点地区不稳定情况的跟踪督导，处理解决重点信访"
        "苗头性问题48起。",
    ),
    (
        "RG2020-007",
        "办公设备购置",
        DEPT,
        "根据现有办公电脑、打印机等办公设备使用年限情况，适当购买更换部分设备，提升办公效率。",
        "更换老旧和损坏的办公设备，满足单位日常办公需求，提升办公效率。",
        "2020年，根据人员变动情况，结合各科室工作实际需要，购置了办公电脑、打印机、硬盘录像机等"
        "办公设备，对老旧和损坏的设备进行了部分更换，满足单位日常办公需求。",
    ),
]

# 资金: (编号, 资金来源, 年初预算数, 全年预算数, 全年执行数) in 万元.
FUNDS = [
    ("RG2020-001", "财政拨款", 5, 5, 5),
    ("RG2020-002", "财政拨款", 2.97, 2.97, 2.97),
    ("RG2020-003", "财政拨款", 4.46, 4.46, 4.46),
    # Two sources, 80 + 20 = 100 budgeted and 70.62 + 15 = 85.62 spent: not fully spent.
    ("RG2020-004", "财政拨款", 80, 80, 70.62),
    ("RG2020-004", "上年结转", 20, 20, 15),
    # Two sources for one project: 60 + 5 = 65 (the seed's total).
    ("RG2020-005", "财政拨款", 60, 60, 60),
    ("RG2020-005", "上年结转", 5, 5, 5),
    ("RG2020-006", "财政拨款", 2, 2, 2),
    ("RG2020-007", "财政拨款", 1.08, 1.08, 1.08),
]

# The report's ending (项目 columns 预算执行偏差原因, 存在问题, 改进措施, 署名, 报告日期), filled for
# two projects; the others leave them empty, so their reports carry the run's date and 实施单位.
# 报告日期 once as an Excel date cell and once as typed text, the two ways offices fill it.
# The 模板 column: one project shows the full evaluation report (财预〔2020〕10号 附件3's outline);
# the others use the default report.
TEMPLATES: dict[str, str] = {"RG2020-006": "full_report.docx"}

ENDINGS: dict[str, dict[str, object]] = {
    "RG2020-001": {
        "存在问题": "个别接访事项涉及多个部门，会办协调用时较长，少数事项未能在当月办结。",
        "改进措施": "进一步落实领导包案机制，对跨部门疑难事项实行定期会办、限时办结，提高接访事项办结效率。",
        "署名": DEPT,
        "报告日期": "2021年3月15日",
    },
    "RG2020-004": {
        "预算执行偏差原因": "部分救助对象的救助申请仍在审核中，相应救助资金未能在年内拨付",
        "存在问题": "一是部分信访积案涉及多个部门、历史遗留问题复杂，南通市交办的14件信访积案中仍有2件未化解。"
        "\n\n"
        "二是救助资金拨付进度偏慢，部分救助申请审核用时较长，全年结余14.38万元。",
        "改进措施": "一是落实班子成员包案责任，会同属地镇（区、街道）和相关部门逐案研究化解方案，"
        "力争2021年上半年全部化解。"
        "\n\n"
        "二是简化救助申请审核流程，按季度跟踪救助资金拨付进度，提高预算执行率。",
        "报告日期": datetime(2021, 3, 15),
    },
}
DATE_FORMAT = 'yyyy"年"m"月"d"日"'

COMMON_FIRST = "充分发挥资金使用效能。"

# 使用原则: 编号 -> list of 内容 (序号 is the position, from 1).
PRINCIPLES = {
    "RG2020-001": [
        COMMON_FIRST,
        "发挥领导接访包案机制作用，推动信访积案、难案、需跨部门协调的案件得到推动化解。",
        "保障市党政领导按要求完成接访工作要求。",
    ],
    "RG2020-002": [
        COMMON_FIRST,
        "妥善处置好各类突发事件，发挥资金保障作用。",
        "维护办信、网信日常业务办理工作，推进阳光信访深度运用。",
    ],
    "RG2020-003": [
        COMMON_FIRST,
        "发挥法治宣传教育对越访人员的疏导教育功能，减少越级走访总量。",
        "办公室常态化组织好每年的信访法治宣传月活动。",
    ],
    "RG2020-004": [
        "专款专用、限定范围。信访救助专项资金专门用于解决长期积累、久拖未决、难以划分责任主体的"
        "特殊疑难信访问题，不得挤占和挪用。",
        "案结事了、稳妥有序。主要用于一次性个案处理，要与政策推动、领导包案、疏导教育、依法处理等"
        "多种措施相结合，既要确保事要解决，又不致引起攀比，引发新的矛盾。",
        "属地管理、适当补助。按照属地管理、分级负责的原则，各镇（区、街道）相关部门解决特殊疑难"
        "信访问题的专项资金主要由案件归属地筹集，市信访专项资金进行适当补助。补助原则不高于40%。"
        "特殊事项特殊处理，由市机关、事业单位工作原因造成的信访事项需要给予上访人员经济救助的，"
        "市信访联席办分清职责后，由市机关、事业单位和信访救助专项资金按比例分担。",
    ],
    "RG2020-005": [
        "主要用于驻京驻宁导访经费，包括应急人员驻外导访、突发性事件处置等费用。严格管理，"
        "厉行节约，通过资金的有序使用保障驻外机制有效运行，压降我市越级走访登记量，"
        "维护全市安全稳定大局。",
    ],
    "RG2020-006": [
        COMMON_FIRST,
        "代表市政府做好信访事项的复查工作，作出复查意见。",
        "通过卓有成效的督查工作促进基层履行信访工作责任。",
    ],
    "RG2020-007": [
        COMMON_FIRST,
        "厉行节约，适当购置。",
        "爱护使用，严格管理存量固定资产。",
    ],
}


class Pct(float):
    """A 实际完成值 written as an Excel percentage cell (0.9923 shown as 99.23%)."""


def ind(
    code,
    level1,
    level2,
    name,
    direction,
    target,
    actual,
    unit,
    weight,
    num=None,
    den=None,
    score=None,
    remark=None,
):
    return {
        "项目编号": code,
        "一级指标": level1,
        "二级指标": level2,
        "三级指标": name,
        "指标方向": direction,
        "年度指标值": target,
        "实际完成值": actual,
        "计量单位": unit,
        "分值": weight,
        "分子": num,
        "分母": den,
        "自评得分": score,
        "偏差原因分析及改进措施": remark,
    }


P, X, M, C = "产出指标", "效益指标", "满意度指标", "成本指标"
SAT = "服务对象满意度指标"
REACHED = "达成预期指标"

INDICATORS = [
    # RG2020-001 领导接访费用: 30 + 20 + 20 + 20 = 90
    ind("RG2020-001", P, "数量指标", "市党政领导接待信访群众批次", None, "≥74批", "74批", None, 30),
    ind("RG2020-001", P, "时效指标", "工作日党政领导在接待场所接访覆盖率", "≥", 100, 100, "%", 20),
    ind(
        "RG2020-001",
        X,
        "社会效益指标",
        "领导包案推动信访积案、难案化解",
        "定性",
        "推动信访积案、难案及需跨部门协调的案件化解",
        REACHED,
        None,
        20,
        score=18,
    ),
    ind("RG2020-001", M, SAT, "信访群众满意度", None, "≥90%", 99.23, "%", 20),
    # RG2020-002 处理越访、突发事件及办信: 6 × 15 = 90
    ind("RG2020-002", P, "数量指标", "受理办理群众来信事项", "≥", 4000, 4170, "件", 15),
    ind("RG2020-002", P, "时效指标", "信访部门及时受理率", None, "≥95%", 100, "%", 15),
    ind("RG2020-002", P, "时效指标", "信访事项按期办结率", "≥", 95, Pct(1), "%", 15),
    ind("RG2020-002", X, "社会效益指标", "信访事项化解率", "≥", 95, "99.19%", "%", 15),
    ind("RG2020-002", X, "社会效益指标", "重复信访占比", "≤", 20, 14.68, "%", 15),
    ind("RG2020-002", M, SAT, "群众信访事项信访部门满意率", None, "≥90%", Pct(0.9923), "%", 15),
    # RG2020-003 法治宣传教育经费: 25 + 25 + 20 + 20 = 90
    ind("RG2020-003", P, "数量指标", "组织信访法治宣传月活动", "≥", 1, 1, "次", 25),
    ind(
        "RG2020-003",
        P,
        "质量指标",
        "依法逐级走访政策宣传教育",
        "定性",
        "利用微信公众号等平台开展宣传，印制各类宣传用品",
        REACHED,
        None,
        25,
    ),
    ind("RG2020-003", X, "社会效益指标", "越级走访总量", "定性", "较上年减少", REACHED, None, 20),
    ind("RG2020-003", C, "经济成本指标", "项目支出", None, "≤4.46万元", 4.46, "万元", 20),
    # RG2020-004 信访救助专项资金: 20 + 20 + 20 + 15 + 15 = 90
    ind(
        "RG2020-004",
        P,
        "质量指标",
        "国家和省交办信访积案化解率",
        "≥",
        100,
        "100%",
        "%",
        20,
        num=4,
        den=4,
    ),
    ind(
        "RG2020-004",
        P,
        "质量指标",
        "南通市交办信访积案化解率",
        None,
        "≥90%",
        "85.7%",
        "%",
        20,
        num=12,
        den=14,
        remark="南通市交办的14件信访积案中仍有2件未化解，均为历史遗留、涉及多个部门的疑难积案。"
        "下一步将落实班子成员包案责任，会同属地镇（区、街道）和相关部门逐案研究化解方案，"
        "对符合条件的困难群众依规给予救助，力争2021年上半年全部化解。",
    ),
    # The seed prints 97.6% for 59/61 (= 96.7%): kept as typed, the software warns.
    ind(
        "RG2020-004",
        X,
        "社会效益指标",
        "南通市交办进京访重点人员事项化解率",
        None,
        "≥90%",
        "97.6%",
        "%",
        20,
        num=59,
        den=61,
    ),
    ind(
        "RG2020-004",
        X,
        "社会效益指标",
        "城乡建设重点领域信访事项化解率",
        "≥",
        90,
        None,
        "%",
        15,
        num=89,
        den=93,
    ),
    ind("RG2020-004", P, "数量指标", "班子成员挂钩联系镇区数", "≥", 14, 14, "个", 15),
    # RG2020-005 驻京驻宁导访费用: 25 + 25 + 20 + 20 = 90
    ind(
        "RG2020-005",
        X,
        "社会效益指标",
        "群众进京非接待场所上访事件",
        "定性",
        "全年不发生",
        REACHED,
        None,
        25,
    ),
    ind("RG2020-005", X, "社会效益指标", "进京集体上访事件", None, "≤0起", 0, "起", 25),
    ind("RG2020-005", X, "社会效益指标", "信访有影响事件", "<=", 0, "0起", "起", 20),
    ind("RG2020-005", C, "经济成本指标", "导访经费支出", "≤", 65, 65, "万元", 20),
    # RG2020-006 复查、督办专项经费: 25 + 25 + 20 + 20 = 90
    ind("RG2020-006", P, "数量指标", "联合督查组跟踪督导次数", "≥", 12, 14, "次", 25),
    ind("RG2020-006", P, "数量指标", "处理解决重点信访苗头性问题", None, "≥40起", "48起", None, 25),
    ind(
        "RG2020-006",
        P,
        "质量指标",
        "信访事项复查意见依法作出",
        "定性",
        "代表市政府依法受理并作出复查意见，配合做好复核工作",
        REACHED,
        None,
        20,
    ),
    ind(
        "RG2020-006",
        X,
        "社会效益指标",
        "基层信访工作责任落实",
        "定性",
        "督促镇（区、街道）和部门履行信访工作职责",
        REACHED,
        None,
        20,
    ),
    # RG2020-007 办公设备购置: 30 + 30 + 30 = 90
    ind(
        "RG2020-007",
        P,
        "数量指标",
        "更换老旧和损坏办公设备",
        "定性",
        "按使用年限更换办公电脑、打印机等设备",
        "达成预期指标，购置了办公电脑、打印机、硬盘录像机等设备",
        None,
        30,
    ),
    ind("RG2020-007", C, "经济成本指标", "设备购置支出", "≤", 1.08, 1.08, "万元", 30),
    ind(
        "RG2020-007",
        X,
        "可持续影响指标",
        "满足单位日常办公需求",
        "定性",
        "满足各科室日常办公需求",
        REACHED,
        None,
        30,
        score=27,
    ),
]

# The headers are the blank workbook's (pipeline/write/blank.py), which are the contract's.
PROJECT_HEADERS = blank.PROJECTS.headers
ENDING_HEADERS = PROJECT_HEADERS[-5:]
INDICATOR_HEADERS = blank.INDICATORS.headers
assert list(INDICATORS[0].keys()) == INDICATOR_HEADERS, "the rows above follow the indicator sheet's columns"


def wrapped_columns(spec: blank.SheetSpec) -> set[int]:
    """The 1-based columns of long text, wrapped and top-aligned."""
    return {index for index, column in enumerate(spec.columns, start=1) if column.wrap}


def write_rows(ws: Worksheet, rows: list[list], start_row: int, wrap_cols: set[int]) -> None:
    for r, values in enumerate(rows, start=start_row):
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=c)
            if isinstance(value, Pct):
                cell.value = float(value)
                cell.number_format = "0.00%"
            elif isinstance(value, datetime):
                cell.value = value
                cell.number_format = DATE_FORMAT
            else:
                cell.value = value
            cell.alignment = WRAP_TOP if c in wrap_cols else TOP


def write_sheet(wb: Workbook, spec: blank.SheetSpec, rows: list[list]) -> Worksheet:
    """The example's rows under a sheet's header."""
    ws = wb[spec.name]
    write_rows(ws, rows, blank.header_row_of(wb, spec.name) + 1, wrapped_columns(spec))
    return ws


def build(templates: tuple[str, ...]) -> Workbook:
    """The blank workbook (its drop-downs offering `templates`) with the example's rows."""
    wb = blank.blank_workbook(templates, titles={blank.PROJECTS.name: f"{YEAR}年度项目支出绩效自评汇总表"},
                              created=FIXED_TIME)
    write_sheet(wb, blank.PROJECTS, [
        [code, name, YEAR, DEPT, unit, overview, goal, result, TEMPLATES.get(code)]
        + [ENDINGS.get(code, {}).get(header) for header in ENDING_HEADERS]
        for code, name, unit, overview, goal, result in PROJECTS
    ])
    ws = write_sheet(wb, blank.FUNDS, [list(f) for f in FUNDS])
    for row in ws.iter_rows(min_row=2, min_col=3, max_col=5):
        for cell in row:
            cell.number_format = "0.00"
    write_sheet(wb, blank.PRINCIPLES, [
        [code, i, text]
        for code, _name, *_rest in PROJECTS
        for i, text in enumerate(PRINCIPLES[code], start=1)
    ])
    write_sheet(wb, blank.INDICATORS, [[d[h] for h in INDICATOR_HEADERS] for d in INDICATORS])

    wb.properties.creator = DEPT
    wb.properties.lastModifiedBy = DEPT
    wb.properties.title = f"{YEAR}年度项目支出绩效自评表"
    return wb


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT.xlsx", file=sys.stderr)
        return 2
    target = Path(argv[1])

    templates = blank.template_names(Settings().templates_dir)
    atomic_write(target, blank.workbook_bytes(build(templates)))  # readable by all, never half written
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

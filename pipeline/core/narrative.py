"""Where the officer's own text contradicts the report's figures, or repeats what the report writes.

The narrative columns of sheet 项目 (项目概况, 完成情况) are printed exactly as typed; nothing here
rewrites them. Officers paste last year's text, so a report can say "化解率97.6%" above a table
that shows 96.7%, or "85.62万元使用完毕" right above "预算执行率85.62%". Each such place becomes a
警告 at the project's row and column that quotes the words, gives the figures and says what to
change. This module also writes the report's money sentence, so that "the overview already says
it" is decided against exactly the sentence that would be printed.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from pipeline.core import headers
from pipeline.core.formatting import (
    computed_value,
    money_text,
    percent,
    plain_number,
    round_half_up,
)
from pipeline.core.indicators import (
    IndicatorResult,
    ProjectResult,
    shown_precision,
    typed_actual_disagrees,
)
from pipeline.core.records import Project
from pipeline.errors import Problem, Severity

# A clause ends at these; a quote never reaches past one (typed text: full-width and ASCII forms).
CLAUSE_END = frozenset("，,。；;：:！!？?\n")
SENTENCE_END = frozenset("。；;！!？?\n")
QUOTE_BEFORE = 12  # characters kept before a quoted figure ("化解率97.6%")
QUOTE_MAX = 40  # characters kept of a quoted "…使用完毕" sentence
SPENT_UP = re.compile(r"使\s*用\s*完\s*毕")
AMOUNT_WAN = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*万\s*元")
# "尚未使用完毕", "没有使用完毕": a negated claim says what the figures say.
NEGATION_BEFORE = re.compile(r"(?:未|没有?|并非|不是)\s*(?:全部|完全|都)?\s*$")
YEAR = re.compile(r"(?<!\d)(\d{4})\s*年")
# "其中上年结转3万元已使用完毕": an amount after 其中 is a part of the money, not its total.
PART_OF = "其中"
# What an officer may already have written before the reason: "主要原因是……" is not repeated.
REASON_LEAD = re.compile(r"^(?:主要原因(?:是|为|：|:)?|原因(?:是|为|：|:))\s*")
TRAILING_PUNCTUATION = "。.；;，,、 \t"
# Full-width ASCII (０-９, ％, ．, ，…) and the ideographic space as their ordinary forms, one
# character for one, so that a match's place in the folded text is its place in the typed text.
FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def paragraphs(text: str) -> list[str]:
    """Paragraphs of a text cell: a blank line separates them; single line breaks are kept apart too."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    return [line for line in lines if line]


def sentence_body(text: str) -> str:
    """A typed text as one clause: its paragraphs joined by "；", without closing punctuation."""
    return "；".join(part.rstrip(TRAILING_PUNCTUATION) for part in paragraphs(text)).rstrip(TRAILING_PUNCTUATION)


def fully_spent(result: ProjectResult) -> bool:
    """Whether the whole 全年预算数 was spent (validation keeps 执行数 ≤ 预算数), judged on the
    amounts as the report prints them (two decimals), so that the text never says "结余0万元"."""
    return round_half_up(result.spent_wan) >= round_half_up(result.adjusted_budget_wan)


def balance(result: ProjectResult) -> Decimal:
    """结余: 全年预算数 − 全年执行数, in 万元, from the printed amounts, so that the three figures of
    the money sentence add up as printed (100 − 85.63 = 14.37, never 14.38)."""
    return round_half_up(result.adjusted_budget_wan) - round_half_up(result.spent_wan)


def generated_money_sentence(result: ProjectResult) -> str:
    """The sentence the report writes about the money, before the check for a repetition.

    Fully spent, as the seed says it: "2020年度领导接访费用5万元使用完毕。". Partly spent, with
    budget, spend, rate and 结余, and the office's reason when it gave one: "2020年度，信访救助
    专项资金全年预算100万元，实际支出85.62万元，预算执行率85.62%，结余14.38万元，主要原因是……。"
    """
    project = result.project
    if fully_spent(result):
        return f"{project.year}年度{project.name}{money_text(result.spent_wan)}万元使用完毕。"
    sentence = (f"{project.year}年度，{project.name}全年预算{money_text(result.adjusted_budget_wan)}万元，"
                f"实际支出{money_text(result.spent_wan)}万元，预算执行率{percent(result.execution_rate)}，"
                f"结余{money_text(balance(result))}万元")
    reason = REASON_LEAD.sub("", sentence_body(project.budget_deviation or ""))
    return f"{sentence}，主要原因是{reason}。" if reason else f"{sentence}。"


@dataclass(frozen=True, slots=True)
class Passage:
    """One paragraph of a narrative column, and where it is."""

    column: str
    number: int  # 1-based
    of: int  # the column's paragraph count
    text: str

    def where(self, project: Project) -> str:
        """The place as a message starts with it: 项目 第5行「完成情况」第2段."""
        paragraph = f"第{self.number}段" if self.of > 1 else ""
        return f"{headers.PROJECT_SHEET} 第{project.excel_row}行「{self.column}」{paragraph}"


def passages(project: Project) -> list[Passage]:
    """The paragraphs of 项目概况 and 完成情况, in the report's order."""
    found: list[Passage] = []
    for column, text in ((headers.OVERVIEW, project.overview), (headers.PERFORMANCE, project.performance)):
        parts = paragraphs(text)
        found.extend(Passage(column, number, len(parts), part) for number, part in enumerate(parts, start=1))
    return found


def folded_in_place(text: str) -> str:
    """`text` with full-width digits, signs and letters as ordinary ones, every character where it was."""
    return text.translate(FULL_WIDTH)


def quote(text: str, start: int, end: int, before: int, stops: frozenset[str]) -> str:
    """The typed words of [start, end), with up to `before` characters ahead of them that are not
    past a character of `stops`."""
    begin = start
    while begin > 0 and start - begin < before and text[begin - 1] not in stops:
        begin -= 1
    return text[begin:end].strip()


def figure_pattern(value: Decimal, unit: str) -> re.Pattern[str]:
    """A typed figure in running text: "97.6%" also as "97.60 %", never inside "197.6%"."""
    number = re.escape(plain_number(value))
    digits = rf"{number}0*" if "." in number else rf"{number}(?:\.0+)?"
    return re.compile(rf"(?<![\d.]){digits}(?!\d)\s*{re.escape(unit)}")


def typed_rate_warnings(result: ProjectResult) -> list[Problem]:
    """A 警告 for each paragraph that still holds a 实际完成值 the 自评表 replaced by 分子/分母's value."""
    found: list[Problem] = []
    places: list[Passage] | None = None  # only read when an indicator needs it, which is rare
    for item in result.indicators:
        indicator = item.indicator
        if not (item.from_fraction and item.actual is not None and indicator.actual is not None
                and indicator.unit and typed_actual_disagrees(indicator, item.actual)):
            continue
        if shown_by_another(result, item):
            continue
        places = passages(result.project) if places is None else places
        typed = f"{plain_number(indicator.actual)}{indicator.unit}"
        pattern = figure_pattern(indicator.actual, indicator.unit)
        for place in places:
            for match in pattern.finditer(folded_in_place(place.text)):
                words = quote(place.text, match.start(), match.end(), QUOTE_BEFORE, CLAUSE_END)
                found.append(typed_rate_problem(result.project, place, words, item, typed))
    return found


def shown_by_another(result: ProjectResult, item: IndicatorResult) -> bool:
    """Whether another indicator of the project rightly shows the figure `item` had typed (a 满意度
    of 97.6% beside a typed 97.6% for 59/61): then the text may well mean that one, and a warning
    to change it would be wrong advice."""
    typed = item.indicator.actual
    assert typed is not None
    places = shown_precision(item.indicator.unit, typed)
    return any(other is not item and other.actual is not None and other.indicator.unit == item.indicator.unit
               and round_half_up(other.actual, places) == round_half_up(typed, places)
               for other in result.indicators)


def typed_rate_problem(project: Project, place: Passage, words: str, item: IndicatorResult, typed: str) -> Problem:
    """The 警告 for one paragraph that quotes a replaced 实际完成值."""
    indicator = item.indicator
    assert item.actual is not None and indicator.numerator is not None and indicator.denominator is not None
    shown = computed_value(item.actual, indicator.unit)
    fraction = f"{plain_number(indicator.numerator)}/{plain_number(indicator.denominator)}"
    return Problem(
        headers.PROJECT_SHEET, project.excel_row, place.column, words, Severity.WARNING,
        f"{place.where(project)}写有“{words}”，而{headers.INDICATOR_SHEET} 第{indicator.excel_row}行"
        f"「{indicator.name}」按分子/分母 {fraction} 计算为 {shown}，自评表采用 {shown}：正文中的 {typed} "
        f"未改（报告照录原文），请改为 {shown}，或核对分子、分母")


@dataclass(frozen=True, slots=True)
class SpentUpClaim:
    """A "……使用完毕" in the narrative: where, the words as typed, the 万元 amount it names (None
    for none, or for a part of the money after 其中) and the years its sentence names."""

    place: Passage
    words: str
    amount: Decimal | None
    years: tuple[int, ...] = ()

    def other_year(self, year: int) -> int | None:
        """The first year the sentence names that is not `year` (last year's text pasted), or None."""
        return next((named for named in self.years if named != year), None)


def part_of_the_money(before: str) -> bool:
    """Whether the clause an amount ends (`before` is its sentence up to the amount) opens with 其中."""
    clause_start = max((before.rfind(mark) for mark in CLAUSE_END), default=-1) + 1
    return PART_OF in before[clause_start:]


def spent_up_claims(project: Project) -> list[SpentUpClaim]:
    """Every "使用完毕" of 项目概况 and 完成情况, with the last 万元 amount of its sentence."""
    claims: list[SpentUpClaim] = []
    if "毕" not in project.overview and "毕" not in project.performance:  # most projects: nothing to look at
        return claims
    for place in passages(project):
        if "毕" not in place.text:
            continue
        text = folded_in_place(place.text)
        for match in SPENT_UP.finditer(text):
            start = match.start()
            while start > 0 and text[start - 1] not in SENTENCE_END:
                start -= 1
            if NEGATION_BEFORE.search(text, start, match.start()):
                continue
            amounts = list(AMOUNT_WAN.finditer(text, start, match.start()))
            amount = None
            if amounts and not part_of_the_money(text[start:amounts[-1].start()]):
                whole, decimals = amounts[-1].groups()
                amount = Decimal(whole.replace(",", "") + (decimals or ""))
            years = tuple(int(found) for found in YEAR.findall(text, start, match.start()))
            words = quote(place.text, match.start(), match.end(), QUOTE_MAX, SENTENCE_END)
            claims.append(SpentUpClaim(place, words, amount, years))
    return claims


def restates_money(claim: SpentUpClaim, result: ProjectResult) -> bool:
    """Whether a claim in 项目概况 says what the money sentence would: the same amount used up."""
    return (claim.place.column == headers.OVERVIEW and fully_spent(result)
            and claim.amount is not None and claim.amount == round_half_up(result.spent_wan)
            and claim.other_year(result.project.year) is None)


def compact(text: str) -> str:
    """Text as compared for a repeated sentence: NFKC, no white space, no closing 。."""
    return "".join(unicodedata.normalize("NFKC", text).split()).rstrip("。")


def money_already_stated(result: ProjectResult) -> str | None:
    """The words of 项目概况 that already state the report's money sentence, or None.

    Either the same amount "使用完毕" for a fully spent project, or the generated sentence itself
    (also without its reason). The report then leaves its own sentence out, so it is said once.
    """
    for claim in spent_up_claims(result.project):
        if restates_money(claim, result):
            return claim.words
    overview = compact(result.project.overview)
    if money_text(result.spent_wan) not in overview:  # every form of the sentence names the amount spent
        return None
    sentence = generated_money_sentence(result)
    if compact(sentence) in overview:
        return sentence.rstrip("。")
    return None


def money_stated_without_reason(result: ProjectResult) -> str | None:
    """The generated sentence without its reason, when 项目概况 holds it so and the report's own
    sentence (which has the reason) will therefore say the money twice; None otherwise."""
    sentence = generated_money_sentence(result)
    base = sentence.split("，主要原因是", 1)[0]
    if base == sentence or money_already_stated(result) is not None:
        return None
    return base if compact(base) in compact(result.project.overview) else None


def money_sentence(result: ProjectResult) -> str:
    """The money sentence the report prints: "" when 项目概况 already says it."""
    return "" if money_already_stated(result) is not None else generated_money_sentence(result)


def spent_up_warnings(result: ProjectResult) -> list[Problem]:
    """A 警告 for each "使用完毕" the figures contradict, and one when the money sentence is left out."""
    project = result.project
    found: list[Problem] = []
    stated = money_already_stated(result)
    figures = (f"全年预算{money_text(result.adjusted_budget_wan)}万元，全年执行{money_text(result.spent_wan)}万元"
               f"（预算执行率{percent(result.execution_rate)}）")
    for claim in spent_up_claims(project):
        where = f"{claim.place.where(project)}写有“{claim.words}”"
        stale = claim.other_year(project.year)
        if stale is not None:
            message = (f"{where}，说的是{stale}年度，而本报告是{project.year}年度（资金表中{figures}）："
                       "报告照录原文，并另写一句本年度的资金使用情况；请删去或改写这句")
        elif not fully_spent(result):
            message = (f"{where}，而资金表中该项目{figures}，结余{money_text(balance(result))}万元，资金并未使用完毕："
                       "报告照录原文，并另写一句预算、支出和结余；请删去或改写这句")
        elif claim.amount is not None and claim.amount != round_half_up(result.spent_wan):
            message = (f"{where}，而资金表中该项目全年执行数合计为 {money_text(result.spent_wan)}万元："
                       f"请将 {plain_number(claim.amount)}万元 改为 {money_text(result.spent_wan)}万元，或核对资金表")
        else:
            continue
        found.append(Problem(headers.PROJECT_SHEET, project.excel_row, claim.place.column, claim.words,
                             Severity.WARNING, message))
    if stated is not None:
        found.append(Problem(
            headers.PROJECT_SHEET, project.excel_row, headers.OVERVIEW, stated, Severity.WARNING,
            f"{headers.PROJECT_SHEET} 第{project.excel_row}行「{headers.OVERVIEW}」已写有“{stated}”，"
            "已说明本年度资金使用情况，与资金表相符：报告不再另写资金使用一句；如希望由报告按资金表生成，"
            "请从项目概况中删去这句"))
    repeated = money_stated_without_reason(result)
    if repeated is not None:
        found.append(Problem(
            headers.PROJECT_SHEET, project.excel_row, headers.OVERVIEW, repeated, Severity.WARNING,
            f"{headers.PROJECT_SHEET} 第{project.excel_row}行「{headers.OVERVIEW}」已写有“{repeated}”，"
            f"报告按资金表和「{headers.BUDGET_DEVIATION}」另写的一句还含有原因，两句都会印出："
            "请从项目概况中删去这句"))
    return found


def deviation_reason_warnings(result: ProjectResult) -> list[Problem]:
    """A 警告 when money was left unspent and the 预算执行偏差原因 column is there but empty.

    A workbook without that column (one made before it existed) is not asked for it.
    """
    project = result.project
    if fully_spent(result) or project.budget_deviation is None or project.budget_deviation.strip():
        return []
    return [Problem(
        headers.PROJECT_SHEET, project.excel_row, headers.BUDGET_DEVIATION, "", Severity.WARNING,
        f"{headers.PROJECT_SHEET} 第{project.excel_row}行「{headers.BUDGET_DEVIATION}」为空：该项目"
        f"全年预算{money_text(result.adjusted_budget_wan)}万元，全年执行{money_text(result.spent_wan)}万元"
        f"（预算执行率{percent(result.execution_rate)}），结余{money_text(balance(result))}万元，"
        "请说明未执行完的主要原因（报告写入资金使用一句：“……主要原因是……”）")]


def narrative_warnings(result: ProjectResult) -> list[Problem]:
    """Every contradiction between a project's narrative and its figures, as 警告."""
    return [*typed_rate_warnings(result), *spent_up_warnings(result), *deviation_reason_warnings(result)]


def with_narrative_warnings(result: ProjectResult) -> ProjectResult:
    """`result` with the narrative's 警告 after the indicators' ones (counted and reported alike)."""
    found = narrative_warnings(result)
    return dataclasses.replace(result, warnings=(*result.warnings, *found)) if found else result

"""`perfreport check-template`: every problem of a template, placed where a clerk finds it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import docx
import pytest

from pipeline import cli
from pipeline.docx.findings import Finding, FindingKind
from pipeline.docx.templatecheck import check_template_file
from pipeline.errors import TemplateInvalid
from pipeline.run.steps import checked_template
from tests.test_render import DEFAULT_TEMPLATE


def build_template(path: Path, paragraphs: Sequence[str | Sequence[str]] = (), *,
                   table: Sequence[Sequence[str]] = (), header: str | None = None,
                   footer: str | None = None, title_property: str | None = None) -> Path:
    """A template written with python-docx; a paragraph given as a list is written as several runs."""
    document = docx.Document()
    for text in paragraphs:
        paragraph = document.add_paragraph()
        for run in [text] if isinstance(text, str) else text:
            paragraph.add_run(run)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    if header is not None:
        document.sections[0].header.paragraphs[0].add_run(header)
    if footer is not None:
        document.sections[0].footer.paragraphs[0].add_run(footer)
    if title_property is not None:
        document.core_properties.title = title_property
    document.save(str(path))
    return path


def findings_of(path: Path) -> list[Finding]:
    return list(check_template_file(path).findings)


def test_shipped_template_has_no_findings() -> None:
    check = check_template_file(DEFAULT_TEMPLATE)
    assert check.ok and check.findings == ()


def test_loop_variables_set_names_and_sandbox_globals_are_not_unknown(tmp_path: Path) -> None:
    path = build_template(tmp_path / "ok.docx", [
        "{%p for para in overview %}", "{{ loop.index }}. {{ para }}", "{%p endfor %}",
        "{% set n = indicators|length %}{{ n }}",
        "{% set ns = namespace(total=0) %}{% for i in range(3) %}{% set ns.total = ns.total + i %}{% endfor %}"
        "{{ ns.total }}",
        "{% for ind in indicators %}{{ ind.name }}{% endfor %}",
    ], table=[["{%tr for f in funding %}"], ["{{ f.source }}"], ["{%tr endfor %}"]])
    assert findings_of(path) == []
    checked_template(path)  # and the pipeline accepts it


def test_unknown_variable_is_placed_at_its_paragraph_with_a_snippet(tmp_path: Path) -> None:
    path = build_template(tmp_path / "typo.docx", ["{{ title }}", "正文", "项目：{{ projcet_name }}"])
    assert findings_of(path) == [Finding(FindingKind.UNKNOWN, "projcet_name", "使用了未提供的变量 projcet_name",
                                         "正文第3段「项目：{{ projcet_name }}」")]


def test_loop_variable_read_after_its_loop_is_unknown_there(tmp_path: Path) -> None:
    path = build_template(tmp_path / "loop.docx",
                          ["{%p for para in overview %}", "{{ para }}", "{%p endfor %}", "末尾 {{ para }}"])
    [finding] = findings_of(path)
    assert (finding.kind, finding.name, finding.where) == (FindingKind.UNKNOWN, "para", "正文第4段「末尾 {{ para }}」")


def test_tag_split_across_runs_is_still_placed(tmp_path: Path) -> None:
    path = build_template(tmp_path / "runs.docx", ["{{ title }}", ["{{ pro", "jcet_", "name }}"]])
    [finding] = findings_of(path)
    assert finding.where == "正文第2段「{{ projcet_name }}」"


def test_finding_in_a_table_names_table_row_and_column(tmp_path: Path) -> None:
    path = build_template(tmp_path / "table.docx", ["{{ title }}"],
                          table=[["一级指标", "得分", "备注"], ["{{ grade }}", "{{ total_score }}", "{{ remark }}"]])
    [finding] = findings_of(path)
    assert finding.where == "表格1第2行第3列「{{ remark }}」"
    assert finding.name == "remark"


@pytest.mark.parametrize(("where", "options"), [
    ("页眉第1段「{{ titel }}」", {"header": "{{ titel }}"}),
    ("页脚第1段「{{ titel }}」", {"footer": "{{ titel }}"}),
], ids=["header", "footer"])
def test_finding_in_a_header_or_footer_says_so(tmp_path: Path, where: str, options: dict[str, str]) -> None:
    path = build_template(tmp_path / "hf.docx", ["{{ title }}"], **options)
    assert [f.where for f in findings_of(path)] == [where]


def test_unsafe_document_property_is_found(tmp_path: Path) -> None:
    path = build_template(tmp_path / "prop.docx", ["{{ title }}"], title_property="{{ title.__class__ }}")
    [finding] = findings_of(path)
    assert (finding.kind, finding.name) == (FindingKind.UNSAFE, "__class__")
    assert finding.where.startswith("文档属性“标题”")


@pytest.mark.parametrize(("paragraphs", "where", "words"), [
    (["{{ title }}", "{%p if annual_goal %}", "{{ annual_goal }}"], "正文第2段「{%p if annual_goal %}」",
     "{% if %} 没有对应的 {% endif %}"),
    (["{{ title }}", "{{ title }"], "正文第2段「{{ title }」", "标签语法错误"),
    (["{%p for x in indicators %}", "{% fi %}", "{%p endfor %}"], "正文第2段「{% fi %}」", "不认识的标签 fi"),
], ids=["unclosed-if", "half-closed-print", "unknown-tag"])
def test_syntax_error_is_placed_at_the_paragraph_that_causes_it(
        tmp_path: Path, paragraphs: list[str], where: str, words: str) -> None:
    [finding] = findings_of(build_template(tmp_path / "syntax.docx", paragraphs))
    assert finding.kind is FindingKind.SYNTAX
    assert finding.where == where
    assert words in finding.message


@pytest.mark.parametrize("paragraphs", [
    ["{{ title }}"],
    ["{{ projcet_name }}"],
    ["{{ budget.adjustd }}"],
    ["{{ title.__class__ }}"],
    ["{%p if title %}"],
    ["{{ title|money }}"],
    ["{% if title %}{{ title|money }}{% endif %}"],
], ids=["fine", "unknown", "unknown-field", "unsafe", "syntax", "custom-filter", "custom-filter-in-if"])
def test_pipeline_refuses_exactly_the_templates_check_template_faults(tmp_path: Path, paragraphs: list[str]) -> None:
    path = build_template(tmp_path / "t.docx", paragraphs)
    check = check_template_file(path)
    if check.ok:
        checked_template(path)
    else:
        with pytest.raises(TemplateInvalid, match=r"模板 t\.docx 有误：") as refused:
            checked_template(path)
        assert check.findings[0].text in str(refused.value)


# `*` and `**` whose result may be huge: the count or exponent is not a fixed small number.
# (The expressions that would take gigabytes or hours are in test_templates_safety.py, run in a
# child process; these are cheap even where nothing bounds them.)
HUGE_MAYBE = {
    "count-from-a-variable": ("{{ '甲' * indicators|length }}",
                              "用 * 重复文字或列表，次数 indicators|length 不是固定的数字"),
    "count-first": ("{{ n * '甲' }}", "次数 n 不是固定的数字"),
    "count-over-the-bound": ("{{ [0] * 100001 }}", "重复成 100,001 个字符或项，超过上限 100,000"),
    "long-text-times-a-small-count": ("{{ '—' * 20000 * 10 }}", "重复成 200,000 个字符或项"),
    "text-from-a-filter": ("{{ title|upper * n }}", "次数 n 不是固定的数字"),
    "exponent-from-a-variable": ("{{ 2 ** n }}", "乘方 ** 的指数 n 不是固定的数字"),
    "exponent-too-large": ("{{ budget.rate ** 1000 }}", "乘方 ** 的指数 1,000 过大"),
    "fixed-power-too-large": ("{{ 7 ** 5000 }}", "用 ** 算出约 4,226 位的数字，超过上限 1,000 位"),
    "fixed-product-too-large": ("{{ 10 ** 600 * 10 ** 600 }}", "用 * 算出约 1,201 位的数字，超过上限 1,000 位"),
}


@pytest.mark.parametrize(("expression", "words"), HUGE_MAYBE.values(), ids=HUGE_MAYBE.keys())
def test_repetition_or_power_that_may_be_huge_is_refused_at_its_paragraph(
        tmp_path: Path, expression: str, words: str) -> None:
    path = build_template(tmp_path / "huge.docx", ["{{ title }}", f"合计：{expression}"])
    found = [f for f in findings_of(path) if f.kind is FindingKind.UNSAFE]
    assert len(found) == 1, found
    assert found[0].where == f"正文第2段「合计：{expression}」"
    assert found[0].message.startswith("使用了不允许的写法（") and words in found[0].message
    with pytest.raises(TemplateInvalid, match=r"模板 huge\.docx 有误：正文第2段.*不允许的写法"):
        checked_template(path)


def test_variable_repetition_finding_names_the_expression_and_the_bound(tmp_path: Path) -> None:
    path = build_template(tmp_path / "rep.docx", ["{{ title }}"], table=[["{{ '★' * indicators|length }}"]])
    assert findings_of(path) == [Finding(
        FindingKind.UNSAFE, "'★' * indicators|length",
        "使用了不允许的写法（用 * 重复文字或列表，次数 indicators|length 不是固定的数字，结果可能极长；"
        "次数须固定，结果最多 100,000 个字符或项）",
        "表格1第1行第1列「{{ '★' * indicators|length }}」")]


def test_small_fixed_repetition_and_ordinary_arithmetic_pass(tmp_path: Path) -> None:
    path = build_template(tmp_path / "ok.docx", [
        "{{ '—' * 20 }}", "{{ 3 * '-=' }}{{ '=' * 3 ~ title }}", "{{ [0] * 100000 }}",
        "{{ 2 ** 10 }}", "{{ (indicators|length) ** 2 }}{{ budget.rate ** 0.5 }}",
        "{{ indicators|length * 3 }}{{ weight_total * total_score }}",
        "{{ 10 ** 10 ** 10 }}",  # (10 ** 10) ** 10: Jinja's ** groups to the left
    ])
    assert findings_of(path) == []
    checked_template(path)


@pytest.mark.parametrize(("paragraphs", "table", "name", "where"), [
    (["{{ budget.adjustd }}"], [], "budget.adjustd", "正文第1段「{{ budget.adjustd }}」"),
    (["{{ budget['rat'] }}"], [], "budget.rat", "正文第1段「{{ budget['rat'] }}」"),
    (["{% for f in funding %}{{ f.sorce }}{% endfor %}"], [], "f.sorce", "正文第1段「{% for f in funding %}{{ f.sorce }}{% en…」"),
    (["表"], [["{%tr for ind in indicators %}"], ["{{ ind.scor }}"], ["{%tr endfor %}"]], "ind.scor",
     "表格1第2行第1列「{{ ind.scor }}」"),
], ids=["budget", "budget-item", "funding-loop", "indicator-row-loop"])
def test_misspelt_field_of_a_context_variable_is_found(
        tmp_path: Path, paragraphs: list[str], table: list[list[str]], name: str, where: str) -> None:
    [finding] = findings_of(build_template(tmp_path / "field.docx", paragraphs, table=table))
    assert (finding.kind, finding.name, finding.where) == (FindingKind.UNKNOWN, name, where)
    assert "没有字段" in finding.message


def test_fields_of_names_the_template_binds_itself_are_not_judged(tmp_path: Path) -> None:
    path = build_template(tmp_path / "rebound.docx", [
        "{% for budget in funding %}{{ budget.source }}{% endfor %}",
        "{% set indicators = funding %}{% for i in indicators %}{{ i.source }}{% endfor %}",
        "{% for key, value in budget.items() %}{{ key }}{{ value }}{% endfor %}{{ budget.get('rate') }}",
    ])
    assert findings_of(path) == []


def test_cli_check_template_exits_0_for_a_good_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-template", str(DEFAULT_TEMPLATE)]) == 0
    assert "✔ 模板 report.docx 没有发现问题。" in capsys.readouterr().out


def test_cli_check_template_lists_every_finding_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_template(tmp_path / "坏模板.docx", ["{{ titel }}", "{{ ''.__class__ }}"], header="{{ grde }}")
    assert cli.main(["check-template", str(path)]) == 2
    err = capsys.readouterr().err
    assert "✘ 模板 坏模板.docx 发现 3 处问题：" in err
    assert "  - 正文第1段「{{ titel }}」：使用了未提供的变量 titel" in err
    assert "  - 正文第2段「{{ ''.__class__ }}」：使用了不允许的写法（访问内部属性 __class__）" in err
    assert "  - 页眉第1段「{{ grde }}」：使用了未提供的变量 grde" in err


def test_cli_check_template_names_a_custom_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_template(tmp_path / "过滤器.docx", ["{{ title }}", "金额：{{ budget.spent|money }} 万元"])
    assert cli.main(["check-template", str(path)]) == 2
    assert ("  - 正文第2段「金额：{{ budget.spent|money }} 万元」：使用了程序不提供的过滤器 money"
            "（自定义过滤器不受支持，请改用 Jinja 自带的写法或程序提供的变量）") in capsys.readouterr().err


@pytest.mark.parametrize(("name", "content", "words"), [
    ("文本.docx", "这不是 Word 文档".encode(), "不是可读取的 Word 文档"),
    ("空.docx", b"", "不是可读取的 Word 文档"),
    ("坏压缩包.docx", b"PK\x03\x04garbage", "不是可读取的 Word 文档"),
    ("旧版.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "须以 .docx 结尾"),
], ids=["text", "empty", "broken-zip", "old-doc"])
def test_cli_check_template_refuses_files_that_are_not_docx_without_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert cli.main(["check-template", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err and "内部错误" not in err


@pytest.mark.parametrize("target", ["missing.docx", "."], ids=["missing", "folder"])
def test_cli_check_template_refuses_a_missing_file_or_a_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str) -> None:
    assert cli.main(["check-template", str(tmp_path / target)]) == 2
    err = capsys.readouterr().err
    assert "✘ 模板" in err and "内部错误" not in err


def test_cli_check_template_needs_a_file_argument() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["check-template"])
    assert exc.value.code == 2

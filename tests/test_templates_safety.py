"""Templates cannot reach Python's internals: refused before rendering where the syntax tree shows
it, turned into TemplateInvalid (exit 2, nothing published) where only rendering does; workbook
text is never run as a template."""

from __future__ import annotations

import pickle
from pathlib import Path

import docx
import pytest

from pipeline import cli, outputs, steps
from pipeline.config import Settings
from pipeline.errors import TemplateInvalid
from pipeline.fastrender import CompiledTemplate
from pipeline.render import Renderer
from pipeline.steps import PreparedReports, RunSummary, Status, checked_template, render_chunk_file
from pipeline.templatecheck import FindingKind, template_check
from tests.test_render import DEFAULT_TEMPLATE, SAMPLE_CONTEXT, make_template

# Each reaches for Python's internals in a way the syntax tree shows.
STATICALLY_UNSAFE = {
    "mro": "{{ ''.__class__.__mro__ }}",
    "globals-popen": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "class-of-variable": "{{ title.__class__ }}",
    "subclasses-loop": "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
    "item-access": "{{ title['__class__'] }}",
    "attr-filter": "{{ title|attr('__class__') }}",
    "map-attribute": "{{ indicators|map(attribute='__class__')|list }}",
    "format-field": "{{ '{0.__class__}'.format(title) }}",
    "lipsum-globals": "{{ lipsum.__globals__ }}",
    "self-context": "{{ self._TemplateReference__context }}",
    "type-mro": "{{ title.mro() }}",
    "mutating-method": "{{ principles.append('x') }}",
    "include": "{% include 'report.docx' %}",
    "folded-constant": "{{ title|attr('__cla' ~ 'ss__') }}",
}

# Unsafe only at render time: the attribute name is computed, so only the sandbox can refuse it.
DYNAMICALLY_UNSAFE = {
    "computed-item": "{% set k = '__cla' ~ 'ss__' %}{{ title[k] }}",
    "computed-attr": "{% set parts = ['__cla', 'ss__'] %}{{ title|attr(parts|join) }}",
}

# Expressions that fail while rendering for other reasons a clerk can cause.
RENDER_ERRORS = {
    "division-by-zero": "{{ 1 / 0 }}",
    "text-plus-number": "{{ title + 1 }}",
    "format-without-argument": "{{ '{0}'.format() }}",
}


@pytest.mark.parametrize("expression", STATICALLY_UNSAFE.values(), ids=STATICALLY_UNSAFE.keys())
def test_unsafe_template_is_refused_before_rendering_naming_file_and_paragraph(
        tmp_path: Path, expression: str) -> None:
    path = make_template(tmp_path / "evil.docx", "{{ title }}", expression)
    with pytest.raises(TemplateInvalid, match=r"模板 evil\.docx 有误：正文第2段.*不允许的写法"):
        checked_template(path)


@pytest.mark.parametrize("expression", STATICALLY_UNSAFE.values(), ids=STATICALLY_UNSAFE.keys())
def test_every_static_unsafe_expression_is_a_finding_of_kind_unsafe(tmp_path: Path, expression: str) -> None:
    path = make_template(tmp_path / "evil.docx", expression)
    check = template_check(path.name, path.read_bytes())
    assert not check.ok
    assert {f.kind for f in check.findings} == {FindingKind.UNSAFE}


def test_shell_command_in_a_template_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    command = f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"
    path = make_template(tmp_path / "popen.docx", command)
    with pytest.raises(TemplateInvalid):
        checked_template(path)
    # Also rendered directly, past the static check: the sandbox refuses it.
    with pytest.raises(TemplateInvalid, match="不允许"):
        CompiledTemplate.from_path(path).render(SAMPLE_CONTEXT)
    with pytest.raises(TemplateInvalid, match="不允许"):
        Renderer.from_path(path).render(SAMPLE_CONTEXT)
    assert not marker.exists()


def test_unsafe_expression_in_a_header_is_placed_in_the_header(tmp_path: Path) -> None:
    path = make_template(tmp_path / "head.docx", "{{ title }}", header="{{ title.__class__ }}")
    with pytest.raises(TemplateInvalid, match="页眉第1段「{{ title.__class__ }}」"):
        checked_template(path)


@pytest.mark.parametrize("expression", DYNAMICALLY_UNSAFE.values(), ids=DYNAMICALLY_UNSAFE.keys())
def test_computed_attribute_names_pass_the_static_check_but_not_the_sandbox(
        tmp_path: Path, expression: str) -> None:
    path = make_template(tmp_path / "sly.docx", expression)
    compiled = checked_template(path)
    with pytest.raises(TemplateInvalid, match="sly.docx.*不允许"):
        compiled.render(SAMPLE_CONTEXT)


def chunk_file(folder: Path, template: str, count: int = 2) -> Path:
    """A chunk file as prepare_reports writes it: (file name, template, context) per report."""
    items = [(f"P-{n}_报告.docx", template, SAMPLE_CONTEXT) for n in range(1, count + 1)]
    path = folder / "chunk-000001.pickle"
    path.write_bytes(pickle.dumps(items))
    return path


@pytest.mark.parametrize("expression", {**DYNAMICALLY_UNSAFE, **RENDER_ERRORS}.values(),
                         ids={**DYNAMICALLY_UNSAFE, **RENDER_ERRORS}.keys())
def test_template_error_while_rendering_a_chunk_is_template_invalid_naming_template_and_report(
        tmp_path: Path, expression: str) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    make_template(templates / "bad.docx", "{{ title }}", expression)
    reports = tmp_path / "reports"
    reports.mkdir()
    with pytest.raises(TemplateInvalid, match=r"模板 bad\.docx 有误.*（生成 P-1_报告\.docx 时）"):
        render_chunk_file(chunk_file(tmp_path, "bad.docx"), reports, templates)
    assert not list(reports.iterdir())


def test_missing_template_while_rendering_a_chunk_is_template_invalid(tmp_path: Path) -> None:
    with pytest.raises(TemplateInvalid, match="gone.docx"):
        render_chunk_file(chunk_file(tmp_path, "gone.docx"), tmp_path, tmp_path)


def test_unsafe_template_stops_the_workbook_before_any_chunk_is_written(
        workbook_factory, sheets, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.docx").write_bytes(DEFAULT_TEMPLATE.read_bytes())
    make_template(templates / "evil.docx", "{{ title }}", "{{ ''.__class__.__mro__ }}")
    sheets["项目"][1]["模板"] = "evil.docx"
    settings = Settings(output_dir=tmp_path / "out", templates_dir=templates)
    summary = steps.prepare_run(workbook_factory(sheets, name="w.xlsx"), settings)
    assert isinstance(summary, RunSummary)
    assert summary.status == Status.REFUSED
    assert "evil.docx" in summary.message and "正文第2段" in summary.message
    assert not list((tmp_path / "out").rglob("*.docx"))
    assert not list((tmp_path / "out").rglob("*.pickle"))


def test_workbook_text_is_data_never_template_code(workbook_factory, sheets, tmp_path: Path) -> None:
    typed = "{{ 7*7 }}{% for x in y %}{# c #}"
    sheets["项目"][0]["项目名称"] = typed
    sheets["使用原则"][0]["内容"] = "{{ cycler.__init__.__globals__ }}"
    settings = Settings(output_dir=tmp_path / "out")
    prepared = steps.prepare_run(workbook_factory(sheets, name="数据.xlsx"), settings)
    assert isinstance(prepared, PreparedReports)
    rendered = [render_chunk_file(f, prepared.staging / outputs.REPORTS_DIR, settings.templates_dir)
                for f in prepared.chunk_files]
    summary = steps.finish_success(prepared, rendered, settings)
    [report] = (summary.output_dir / "reports").glob("P-001*.docx")
    document = docx.Document(str(report))
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == f"{typed}绩效评价报告"
    assert "1. {{ cycler.__init__.__globals__ }}" in texts
    assert "49" not in texts[0]


@pytest.mark.usefixtures("prefect_harness")
def test_template_error_in_a_worker_exits_2_and_publishes_nothing(
        workbook_factory, sheets, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.flow import run_workbook

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.docx").write_bytes(DEFAULT_TEMPLATE.read_bytes())
    make_template(templates / "sly.docx", DYNAMICALLY_UNSAFE["computed-item"])
    out = tmp_path / "out"
    earlier = out / "w" / "reports" / "earlier.docx"  # a previous run's output must survive
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"earlier run")
    sheets["项目"][1]["模板"] = "sly.docx"
    workbook = workbook_factory(sheets, name="w.xlsx")

    summary = run_workbook(workbook, Settings(output_dir=out, templates_dir=templates, workers=1))

    assert summary.status == Status.REFUSED
    assert cli.print_summary(summary) == cli.EXIT_REFUSED
    err = capsys.readouterr().err
    assert "✘ w.xlsx：模板 sly.docx 有误" in err and "不允许" in err
    assert "内部错误" not in err
    assert [p.name for p in out.iterdir()] == ["w"]  # no staging folder left beside it
    assert [p.name for p in (out / "w" / "reports").iterdir()] == ["earlier.docx"]


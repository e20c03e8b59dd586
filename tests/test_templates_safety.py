"""Templates cannot reach Python's internals: refused before rendering where the syntax tree shows
it, turned into TemplateInvalid (exit 2, nothing published) where only rendering does; workbook
text is never run as a template."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import docx
import orjson
import pytest

from pipeline import cli
from pipeline.config import Settings
from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.findings import FindingKind
from pipeline.docx.render import Renderer, jinja_environment
from pipeline.docx.templatecheck import template_check
from pipeline.errors import TemplateInvalid
from pipeline.run import steps
from pipeline.run.steps import (
    PreparedReports,
    RunSummary,
    Status,
    checked_template,
    render_chunk_file,
)
from pipeline.write.names import REPORTS_DIR
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

# Expressions whose result would take gigabytes or hours to compute (`{{ 'x' * 300000000 }}` peaked
# at 2.3 GB before the sandbox bounded `*` and `**`). `n` is a huge count in the context.
HUGE_RESULTS = {
    "text-repeated": "{{ 'x' * 300000000 }}",
    "list-repeated": "{{ [1] * 10**9 }}",
    "long-text-in-a-list-repeated": "{{ ['x' * 100000] * 100000 }}",  # 100,000 items, 10 GB printed
    "huge-power": "{{ 10 ** (10 ** 10) }}",
    "count-from-context": "{{ '甲' * n }}",
}
HUGE_COUNT = 300_000_000
ROOT = Path(__file__).resolve().parents[1]

# Expressions that fail while rendering for other reasons a clerk can cause.
RENDER_ERRORS = {
    "division-by-zero": "{{ 1 / 0 }}",
    "text-plus-number": "{{ title + 1 }}",
    "format-without-argument": "{{ '{0}'.format() }}",
    # The check cannot know title is text; the sandbox sees 12 characters * 100,000 > 100,000.
    "variable-text-repeated-too-long": "{{ title * 100000 }}",
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


# Runs in a child process limited to 1 GiB of address space, so that code without the bound
# fails (MemoryError, or killed after the timeout) instead of taking the test machine's memory.
_HUGE_PROBE = textwrap.dedent("""
    import json, resource, sys, time, tracemalloc
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from pipeline.docx.fastrender import CompiledTemplate
    from pipeline.docx.render import Renderer
    from pipeline.docx.templatecheck import template_check
    from tests.test_render import SAMPLE_CONTEXT
    path, count = Path(sys.argv[1]), int(sys.argv[2])
    context = {**SAMPLE_CONTEXT, "n": count}
    imported_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def measured(step):
        tracemalloc.start()
        start = time.perf_counter()
        try:
            outcome = step()
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return {"outcome": outcome, "seconds": seconds, "peak_mb": peak / 2**20}

    result = {
        "check": measured(lambda: [f.text for f in template_check(path.name, path.read_bytes()).findings]),
        "docxtpl": measured(lambda: len(Renderer.from_path(path).render(context))),
        "compiled": measured(lambda: len(CompiledTemplate.from_path(path).render(context))),
    }
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["imported_mb"] = imported_mb
    print(json.dumps(result, ensure_ascii=False))
""")


@pytest.mark.parametrize("expression", HUGE_RESULTS.values(), ids=HUGE_RESULTS.keys())
def test_huge_repetition_or_power_is_refused_by_the_check_and_by_the_sandbox_in_both_render_paths(
        tmp_path: Path, expression: str) -> None:
    path = make_template(tmp_path / "huge.docx", "{{ title }}", expression)
    try:
        probe = subprocess.run([sys.executable, "-c", _HUGE_PROBE, str(path), str(HUGE_COUNT)], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{expression} still computing after 60 s")
    result = json.loads(probe.stdout)
    # check-template refuses it, at its paragraph.
    assert any(text.startswith("正文第2段") and "不允许的写法" in text and ("*" in text)
               for text in result["check"]["outcome"]), result["check"]
    # Past the check, both render paths refuse it in the sandbox, at once and without allocating it.
    for path_name in ("docxtpl", "compiled"):
        rendered = result[path_name]
        assert rendered["outcome"].startswith("TemplateInvalid: 模板 huge.docx 有误：使用了不允许的写法（用 *"), rendered
        assert "已拒绝渲染" in rendered["outcome"], rendered
        assert rendered["seconds"] < 0.5, rendered
        assert rendered["peak_mb"] < 20, rendered
    # The whole process, C allocations included, grows by far less than the 300 MB the expression
    # asks for (tracemalloc's own bookkeeping is most of the growth).
    assert result["maxrss_mb"] - result["imported_mb"] < 200, result


def test_the_sandbox_compiles_repetition_and_power_into_its_checked_call() -> None:
    # Jinja routes an operator through call_binop only if the environment intercepts it when
    # the template is compiled; otherwise it would also fold `'x' * 300000000` while compiling.
    code = jinja_environment().compile("{{ a * b }}{{ a ** b }}{{ 'x' * 3 }}", raw=True)
    assert "environment.call_binop(context, '*', " in code
    assert "environment.call_binop(context, '**', " in code
    assert "'xxx'" not in code


ORDINARY_ARITHMETIC = {
    "{{ '—' * 10 }}": "——————————",
    "{{ 3 * '-=' }}": "-=-=-=",
    "{{ 2 ** 10 }}": "1024",
    "{{ a * b }}": "7.5",
    "{{ b ** 2 }}": "6.25",
    "{{ 2 ** -1 }}": "0.5",
    "{{ 10 ** 10 ** 10 }}": "1" + "0" * 100,  # Jinja's ** groups to the left: (10 ** 10) ** 10
    "{{ [0] * 3 }}": "[0, 0, 0]",
}


@pytest.mark.parametrize("render_path", ["docxtpl", "compiled"])
def test_ordinary_repetition_and_arithmetic_render_as_before(tmp_path: Path, render_path: str) -> None:
    path = make_template(tmp_path / "sums.docx", *ORDINARY_ARITHMETIC)
    context = {**SAMPLE_CONTEXT, "a": 3, "b": 2.5}
    if render_path == "docxtpl":
        report = Renderer.from_path(path).render(context)
    else:
        report = CompiledTemplate.from_path(path).render(context)
    document = docx.Document(io.BytesIO(report))
    assert [p.text for p in document.paragraphs] == list(ORDINARY_ARITHMETIC.values())


def chunk_file(folder: Path, template: str, count: int = 2) -> Path:
    """A chunk file as prepare_reports writes it: (file name, template, context) per report."""
    items = [(f"P-{n}_报告.docx", template, SAMPLE_CONTEXT) for n in range(1, count + 1)]
    path = folder / "chunk-000001.json"
    path.write_bytes(orjson.dumps(items))
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
    assert not list((tmp_path / "out").rglob("chunk-*"))


def test_workbook_text_is_data_never_template_code(workbook_factory, sheets, tmp_path: Path) -> None:
    typed = "{{ 7*7 }}{% for x in y %}{# c #}"
    sheets["项目"][0]["项目名称"] = typed
    sheets["使用原则"][0]["内容"] = "{{ cycler.__init__.__globals__ }}"
    settings = Settings(output_dir=tmp_path / "out")
    prepared = steps.prepare_run(workbook_factory(sheets, name="数据.xlsx"), settings)
    assert isinstance(prepared, PreparedReports)
    rendered = [render_chunk_file(f, prepared.staging / REPORTS_DIR, settings.templates_dir, prepared.options)
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
    from pipeline.run.flow import run_workbook

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



# --- the run's data files in the staging folder ------------------------------------------------


class Planted:
    """An object whose unpickling would run code: what someone with write access to a shared
    output folder could leave as a chunk file."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled!",))


@pytest.mark.parametrize(("content", "why"), [
    ("pickle", "不是 JSON"),
    ({"not": "a list"}, "不是列表"),
    ([["../../outside.docx", "report.docx", {}]], "报告文件名"),
    ([["P-1.docx", "../evil.docx", {}]], "报告文件名"),
    ([["P-1.docx", "report.docx", "not a context"]], "报告文件名"),
], ids=["pickle", "not-a-list", "report-name-with-folders", "template-name-with-folders", "context-not-a-dict"])
def test_chunk_file_that_this_run_did_not_write_is_refused_never_unpickled(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: object, why: str) -> None:
    import pickle

    path = tmp_path / "chunk-000001.json"
    path.write_bytes(pickle.dumps(Planted()) if content == "pickle" else orjson.dumps(content))
    reports = tmp_path / "reports"
    reports.mkdir()

    with pytest.raises(steps.ChunkFileInvalid, match=why):
        render_chunk_file(path, reports, DEFAULT_TEMPLATE.parent)

    assert "unpickled!" not in capsys.readouterr().out
    assert not list(reports.iterdir()) and not (tmp_path.parent / "outside.docx").exists()


def test_run_data_files_round_trip_rows_warnings_and_written_files(tmp_path: Path) -> None:
    from pipeline.errors import Problem, Severity

    rows = [{"项目编号": "P-1", "全年预算数(万元)": 100.0, "预算执行率": "85.62%", "警告数": 1}]
    warnings = [Problem("绩效指标", 18, "实际完成值", "97.6%", Severity.WARNING, "已采用计算值"),
                Problem("项目", None, "", "", Severity.WARNING, "整张表")]
    (tmp_path / "summary.json").write_bytes(steps.summary_json(rows, warnings))
    assert steps.summary_data(tmp_path / "summary.json") == (rows, warnings)
    (tmp_path / "summary.json").write_bytes(orjson.dumps({"rows": rows}))
    with pytest.raises(steps.ChunkFileInvalid):
        steps.summary_data(tmp_path / "summary.json")


def test_no_module_of_the_pipeline_unpickles_anything() -> None:
    sources = {path.name: path.read_text(encoding="utf-8") for path in (ROOT / "pipeline").glob("*.py")}
    assert not [name for name, text in sources.items() if "pickle.load" in text or "import pickle" in text]

"""Run settings: one frozen object built by the CLI and passed down; nothing happens at import."""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from pipeline.core.forms import LEVEL2_BY_LEVEL1
from pipeline.core.profile import DEFAULT_PROFILE, AtMostRule, QualitativeBand, ScoringProfile
from pipeline.errors import PerfreportError

# Prefect settings this product needs on every run, applied before prefect is imported. The
# ephemeral API server starts in 21-43 s on a 2-core machine (beyond prefect's default timeout),
# and there is no network for its telemetry. They are defaults only: whatever an administrator set
# in any of Prefect's own places (an environment variable, .env, prefect.toml, pyproject.toml or the
# active profile, `prefect config set`) wins, see `prefect_defaults_to_apply`.
PREFECT_DEFAULTS: Mapping[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_CLI_PROMPT": "false",
    # Flow and task logs go to the Prefect API (and UI); the console is the CLI's, in Chinese.
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    # The embedded server's own noise ("database is locked", tracebacks on exit) stays off it too.
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_INTERNAL_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_TASKS_REFRESH_CACHE": "false",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def prefect_defaults_to_apply(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The product's Prefect defaults that no Prefect settings source sets.

    Prefect ranks its sources: environment, .env, prefect.toml, pyproject.toml, the active profile,
    then its own defaults. Setting ours as environment variables unconditionally would outrank an
    administrator's profile and prefect.toml, so a key is left alone when any source has it.
    """
    given = prefect_settings_given(PREFECT_DEFAULTS, environ)
    return {key: value for key, value in PREFECT_DEFAULTS.items() if key not in given}


def prefect_settings_given(keys: Iterable[str], environ: Mapping[str, str] | None = None) -> set[str]:
    """Those of `keys` (e.g. "PREFECT_API_URL") that a Prefect settings source sets: for a Prefect
    setting, Prefect's own settings model, built once from every source, reports the field as
    given; a logging key (read by Prefect's logging setup from the environment only) when the
    environment has it."""
    import prefect.settings

    source = os.environ if environ is None else environ
    current = prefect.settings.Settings()
    given: set[str] = set()
    for key in keys:
        accessor = getattr(getattr(prefect.settings, key, None), "accessor", None)
        if key in source:
            given.add(key)
        elif accessor is not None:  # else not a settings field: the environment is its only source
            *parents, name = str(accessor).split(".")
            model = current
            for parent in parents:
                model = getattr(model, parent)
            if name in model.model_fields_set:
                given.add(key)
    return given


def apply_prefect_defaults(environ: dict[str, str] | None = None) -> None:
    """Set the product's Prefect defaults in the environment where no Prefect source sets them."""
    target = os.environ if environ is None else environ
    missing = prefect_defaults_to_apply(target)
    target.update(missing)
    if environ is None and missing:
        refresh_prefect_settings()  # reading the sources above imported Prefect, which read them then


def refresh_prefect_settings() -> None:
    """Have Prefect read its settings again after this process changed the environment: it
    reads them once, when it is imported."""
    context = sys.modules.get("prefect.context")
    if context is not None:
        context.refresh_global_settings_context()


# Projects per render task when not set: enough tasks to keep every worker busy and show
# progress, few enough that Prefect's bookkeeping (each task run costs its API server 15-30 ms
# and more under load) stays small, and a chunk file small enough for a worker's memory.
MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, TASKS_PER_WORKER = 50, 2000, 4


def chunk_size_for(projects: int, workers: int, chosen: int | None = None) -> int:
    """Projects per render task: `chosen` if given, else about TASKS_PER_WORKER tasks per worker."""
    if chosen:
        return chosen
    per_task = -(-projects // max(1, workers * TASKS_PER_WORKER))
    return max(MIN_CHUNK_SIZE, min(MAX_CHUNK_SIZE, per_task))


# Up to this many projects the reports render in the flow's own process: below it, starting the
# render worker processes (about 3 s, and a task run's API calls from each) costs more than the
# second core saves. `perfreport run` against a running Prefect server, 2 cores, two rounds, the
# render stage in seconds, worker pool vs in-process: 7 projects 3.6/3.1 vs 0.4/0.4; 50: 2.7/3.5 vs
# 0.3/0.4; 200: 7.5/10.2 vs 1.0/0.7; 500: 10.0/8.1 vs 2.2/1.3; 1,000: 11.7/4.8 vs 2.5/2.6 (whole run
# 24.8/13.8 s vs 10.3/11.5 s). In-process rendering costs about 2.5 ms a report, so the pool only
# wins once that exceeds its start-up by the cores it adds: beyond about 2,400 projects on 2 cores,
# 1,300 on 8; 1,000 keeps the in-process path a win on larger machines too.
IN_PROCESS_PROJECTS = 1000


# The default of `Settings.forms_limit`.
FORMS_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Settings:
    """Where things are, how a run is cut into tasks, and how its projects are scored."""

    output_dir: Path = Path("output")
    templates_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "templates")
    default_template: str = "report.docx"
    chunk_size: int | None = None  # None: chosen from the number of projects and workers
    # Render processes on this machine (None: one per core), or a Dask scheduler to use instead.
    workers: int | None = None
    dask_address: str | None = None
    header_search_rows: int = 10
    # The evaluation scheme every step scores and validates by (weights, bands, grades).
    profile: ScoringProfile = DEFAULT_PROFILE
    # True when the user named the profile (--profile, the web page's selector): an official form
    # whose budget 分值 is 20 then keeps it instead of selecting the 20-point profile.
    profile_chosen: bool = False
    # PDF copies of the reports and of the department report (`--pdf`), made with LibreOffice.
    pdf: bool = False
    # 自评表.xlsx (one filled form per project) is written for workbooks of at most this many
    # projects: 3-4 ms a sheet would double a 10,000-project run, and a 10,000-sheet workbook is
    # no document anyone opens. `--forms-limit` raises it; 0 writes none.
    forms_limit: int = FORMS_LIMIT


# Workbooks `web` and `serve` run at once by default: two on a 2-core machine keep an office's small
# workbooks from queueing behind each other; a province's 100,000-project run peaks at 1.7 GB, so a
# machine that takes such runs side by side is sized for it (`--max-runs`).
DEFAULT_MAX_RUNS = 2
# How long a file in the hot folder must stay unchanged before it is read (`--settle-seconds`): a
# copy onto a share can stall for a moment and look finished.
DEFAULT_SETTLE_SECONDS = 2.0

# A Dask scheduler's address (tcp://host:8786): reports are rendered on its cluster. Read by
# `perfreport run` (beside --dask-address) and by the warm workers of `web` and `serve`.
DASK_ADDRESS_ENV = "PERFREPORT_DASK_ADDRESS"

# The address of `perfreport web` as officers reach it (e.g. http://10.0.0.5:8000), so the Prefect
# UI can link each run's outputs to its page there. Unset: the UI shows the file paths only.
WEB_URL_ENV = "PERFREPORT_WEB_URL"


def web_url() -> str | None:
    """The configured address of `perfreport web`, or None."""
    return os.environ.get(WEB_URL_ENV) or None


# Scoring profiles are read here, on the settings floor: they are chosen per run like the folders
# above, reading a file is no business of the pure core, and every floor that builds Settings
# (cli, the served flow) already stands above this one.
PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
PROFILE_SUFFIX = ".toml"
PROFILE_KEYS = ("name", "budget_weight", "indicator_total", "at_most", "met_grade", "blocks",
                "qualitative", "grades")
BAND_KEYS = ("low", "high", "default", "high_inclusive")
FULL_MARKS = Decimal(100)


class ProfileInvalid(PerfreportError):
    """A profile that cannot be found or read, or whose numbers do not make a scheme (exit 2)."""


def profile_problem(source: str, reason: str) -> ProfileInvalid:
    """The error of a profile file, naming the file, in Chinese."""
    return ProfileInvalid(f"评分规则文件 {source} 有误：{reason}")


def number_of(value: object, key: str, source: str) -> Decimal:
    """`value` as an exact Decimal (TOML floats are parsed as Decimal), or the file's error."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or not Decimal(value).is_finite():
        raise profile_problem(source, f"{key} 应为数字，现为 {value!r}")
    return Decimal(value)


def table_of(data: Mapping[str, object], key: str, source: str) -> Mapping[str, object]:
    """The sub-table `key` of a profile (empty when absent), or the file's error."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise profile_problem(source, f"[{key}] 应为一个表（如 [{key}]），现为 {value!r}")
    return value


def check_keys(table: Mapping[str, object], keys: tuple[str, ...], required: int, where: str, source: str) -> None:
    """A table of a profile has only `keys`, and the first `required` of them; else the file's error
    (`where` names the table, "[qualitative.达成]", or is "" for the top level)."""
    unknown = sorted(set(table) - set(keys))
    if unknown:
        inside = f"{where} 中" if where else ""
        raise profile_problem(source, f"{inside}有不认识的项 {'、'.join(unknown)}（可用：{'、'.join(keys)}）")
    missing = [k for k in keys[:required] if k not in table]
    if missing:
        raise profile_problem(source, f"{where + ' ' if where else ''}缺少 {'、'.join(missing)}")


def band_of(grade: str, value: object, source: str) -> QualitativeBand:
    """One 定性 band of [qualitative."grade"]: a share range and the default share."""
    where = f"qualitative.{grade}"
    if not isinstance(value, dict):
        raise profile_problem(source, f"[{where}] 应写 low、high、default 三项")
    check_keys(value, BAND_KEYS, 3, f"[{where}]", source)
    low, high, default = (number_of(value[k], f"{where}.{k}", source) for k in BAND_KEYS[:3])
    inclusive = value.get("high_inclusive", False)
    if not isinstance(inclusive, bool):
        raise profile_problem(source, f"{where}.high_inclusive 应为 true 或 false")
    if not Decimal(0) <= low < high <= Decimal(1) or not low <= default <= high:
        raise profile_problem(source, f"[{where}] 应满足 0 ≤ low < high ≤ 1 且 low ≤ default ≤ high"
                                      f"（现为 low={low}、high={high}、default={default}）")
    return QualitativeBand(low, high, default, high_inclusive=inclusive)


def qualitative_bands_of(data: Mapping[str, object], source: str) -> dict[str, QualitativeBand]:
    """The 定性 bands, longest grade first: a result is matched by the grade it starts with, so
    部分达成 and 未达成 must be tried before 达成, whatever order the file lists them in."""
    table = table_of(data, "qualitative", source)
    if not table:
        return dict(DEFAULT_PROFILE.qualitative_bands)
    bands = {grade: band_of(grade, value, source) for grade, value in table.items()}
    return {grade: bands[grade] for grade in sorted(bands, key=len, reverse=True)}


def grade_bands_of(data: Mapping[str, object], source: str) -> tuple[tuple[Decimal, str], ...]:
    """(lowest total, grade) best first; one band must start at 0 so every total has a grade."""
    table = table_of(data, "grades", source)
    if not table:
        return DEFAULT_PROFILE.grade_bands
    bands = [(number_of(low, f"grades.{name}", source), name) for name, low in table.items()]
    if any(not Decimal(0) <= low <= FULL_MARKS for low, _ in bands) or min(low for low, _ in bands) != 0:
        raise profile_problem(source, "[grades] 各等级的最低分应在 0 到 100 之间，且必须有一个等级从 0 分起")
    return tuple(sorted(bands, key=lambda band: band[0], reverse=True))


def block_totals_of(data: Mapping[str, object], indicator_total: Decimal, source: str) -> dict[str, Decimal]:
    """Points of each 一级 block; when given they must be known 一级 and add up to the total."""
    table = table_of(data, "blocks", source)
    unknown = [name for name in table if name not in LEVEL2_BY_LEVEL1]
    if unknown:
        raise profile_problem(source, f"[blocks] 中的 {'、'.join(unknown)} 不是一级指标"
                                      f"（应为：{'、'.join(LEVEL2_BY_LEVEL1)}）")
    blocks = {name: number_of(points, f"blocks.{name}", source) for name, points in table.items()}
    if blocks and sum(blocks.values(), Decimal(0)) > indicator_total:
        raise profile_problem(source, f"[blocks] 各一级指标分值合计 {sum(blocks.values(), Decimal(0))} "
                                      f"超过 indicator_total {indicator_total}")
    return blocks


def profile_from_toml(text: str, source: str) -> ScoringProfile:
    """A scoring profile from the text of its file; every mistake is a ProfileInvalid in Chinese."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"line (\d+), column (\d+)", str(exc))
        place = f"第 {where[1]} 行第 {where[2]} 列" if where else ""
        raise profile_problem(source, f"{place}不是正确的 TOML 写法（{exc}）") from None
    check_keys(data, PROFILE_KEYS, 3, "", source)
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise profile_problem(source, "name 应为一段文字，如 name = \"湖北\"")
    budget = number_of(data["budget_weight"], "budget_weight", source)
    indicators = number_of(data["indicator_total"], "indicator_total", source)
    if budget < 0 or indicators <= 0 or budget + indicators != FULL_MARKS:
        raise profile_problem(source, f"budget_weight {budget} 与 indicator_total {indicators} 之和应为 100")
    rules = [rule.value for rule in AtMostRule]
    at_most = data.get("at_most", DEFAULT_PROFILE.at_most_rule.value)
    if at_most not in rules:
        raise profile_problem(source, f"at_most 应为 {' 或 '.join(rules)}，现为 {at_most!r}")
    bands = qualitative_bands_of(data, source)
    met = data.get("met_grade", DEFAULT_PROFILE.met_grade)
    if met not in bands:
        raise profile_problem(source, f"met_grade 应为定性档次之一（{'、'.join(bands)}），现为 {met!r}")
    return ScoringProfile(
        name=name.strip(), budget_weight=budget, indicator_weight_total=indicators,
        at_most_rule=AtMostRule(at_most), qualitative_bands=bands, met_grade=met,
        grade_bands=grade_bands_of(data, source), block_totals=block_totals_of(data, indicators, source),
    )


def profile_files(folder: Path = PROFILES_DIR) -> dict[str, Path]:
    """The profile files of `folder` by file stem (湖北 -> profiles/湖北.toml), sorted."""
    return {p.stem: p for p in sorted(folder.glob(f"*{PROFILE_SUFFIX}")) if not p.name.startswith(".")}


def load_profile_file(path: Path) -> ScoringProfile:
    """The profile in the file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise profile_problem(str(path), "不是 UTF-8 编码的文本文件") from None
    except OSError as exc:
        raise ProfileInvalid(f"评分规则文件 {path} 无法读取：{exc.strerror or exc}") from None
    return profile_from_toml(text, str(path))


def chosen_profile(choice: str | None, folder: Path = PROFILES_DIR) -> ScoringProfile:
    """The profile `--profile` names: empty means the national default; a path to a file, or the
    file stem or display name of a profile in `folder` (湖北, 财预2020-10号, 财预〔2020〕10号)."""
    if not choice:
        return DEFAULT_PROFILE
    path = Path(choice)
    if path.suffix == PROFILE_SUFFIX or path.is_file():
        return load_profile_file(path)
    shipped = profile_files(folder)
    if choice in shipped:
        return load_profile_file(shipped[choice])
    for file in shipped.values():
        profile = load_profile_file(file)
        if profile.name == choice:
            return profile
    names = "、".join(shipped) or "（无）"
    raise ProfileInvalid(f"找不到评分规则「{choice}」：{folder} 中现有 {names}；也可写评分规则文件的路径（.toml）")


def profile_for_budget_weight(weight: Decimal, folder: Path = PROFILES_DIR) -> ScoringProfile | None:
    """The shipped profile whose budget execution is worth `weight` points (20: 湖北), the
    national one first when it fits; None when no shipped profile does. An official form's budget
    分值 selects its profile this way when the user named none."""
    if DEFAULT_PROFILE.budget_weight == weight:
        return DEFAULT_PROFILE
    for path in profile_files(folder).values():
        profile = load_profile_file(path)
        if profile.budget_weight == weight:
            return profile
    return None

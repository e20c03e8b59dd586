"""`perfreport`: the command line. The only module that prints and chooses exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.config import (
    DASK_ADDRESS_ENV,
    DEFAULT_MAX_RUNS,
    DEFAULT_SETTLE_SECONDS,
    FORMS_LIMIT,
    PROFILE_SUFFIX,
    PROFILES_DIR,
    Settings,
    apply_prefect_defaults,
    chosen_profile,
)
from pipeline.console import (
    QuickExit,
    console_progress,
    failure_mark,
    never_failing_streams,
    success_mark,
    warning_mark,
    with_marks,
)
from pipeline.errors import EXIT_CODES, PerfreportError, Severity, Status, os_error_reason
from pipeline.inputs import workbooks_named

# Kept here (not imported from serve/) so `--help` does not import prefect.
WEB_TOKEN_ENV = "PERFREPORT_WEB_TOKEN"
WEB_HOSTS_ENV = "PERFREPORT_WEB_HOSTS"
WEB_PUBLIC_URL_ENV = "PERFREPORT_WEB_PUBLIC_URL"
MIN_TOKEN_CHARS = 16

EXIT_OK, EXIT_INVALID, EXIT_REFUSED = EXIT_CODES[Status.SUCCESS], EXIT_CODES[Status.INVALID], EXIT_CODES[Status.REFUSED]
EXIT_INTERNAL = 3
SHOWN_PROBLEMS = 20
SHOWN_WARNINGS = 10  # of a successful run's warnings, as 校验报告.xlsx lists them

RUN_EXAMPLE = """Example:
  perfreport run input/2020年度项目支出绩效自评表.xlsx --output-dir output

退出码：0 成功（可有警告）；1 工作簿有错误（只生成 校验报告.xlsx）；2 文件无法读取、模板有误、参数有误，或另一个运行正在使用同一输出文件夹。"""

CHECK_TEMPLATE_EXAMPLE = """Example:
  perfreport check-template templates/report.docx

逐条列出模板中的问题及其位置（正文第几段、表格第几行第几列、页眉页脚）：标签语法错误、
程序不提供的变量、不允许的写法（如 __class__）。
退出码：0 模板没有问题；2 模板有误或无法读取。"""


def print_summary(summary) -> int:  # noqa: ANN001 - steps.RunSummary, imported lazily with prefect
    """Tell the user, in Chinese, what one workbook's run produced; return its exit code."""
    # Imported here: xlsxwriter is loaded after a run, not for --help.
    from pipeline.run.extras import DEPARTMENT_NAME, FORMS_NAME
    from pipeline.write.problembook import ordered

    name = summary.workbook.name
    if summary.status == Status.SUCCESS:
        print(f"{success_mark()} {name}：{summary.counts.projects} 个项目，生成 {summary.counts.reports} 份报告，{summary.counts.warnings} 条警告")
        print(f"  报告文件夹：{summary.output_dir / 'reports'}")
        if (summary.output_dir / "pdf").is_dir():  # --pdf
            print(f"  PDF 文件夹：{summary.output_dir / 'pdf'}")
        print(f"  汇总表：{summary.output_dir / '汇总表.xlsx'}")
        print(f"  部门汇总报告：{summary.output_dir / DEPARTMENT_NAME}")
        forms = summary.output_dir / FORMS_NAME
        if forms.exists():
            print(f"  自评表：{forms}（每个项目一张，可直接上报）")
        else:
            print("  自评表：未生成（项目数超过 --forms-limit；需要时加大该值）")
        for zip_path in sorted(summary.output_dir.glob("*.zip")):
            print(f"  打包下载：{zip_path}")
        if summary.counts.warnings:
            print(f"  警告清单：{summary.output_dir / '校验报告.xlsx'}（请核对，报告已按计算值生成）")
            for problem in ordered(summary.problems)[:SHOWN_WARNINGS]:
                print(f"  - {problem.message}")
            if summary.counts.warnings > SHOWN_WARNINGS:
                print(f"  …… 另有 {summary.counts.warnings - SHOWN_WARNINGS} 条警告，见校验报告.xlsx")
        return EXIT_OK
    if summary.output_dir is None:
        print(f"{failure_mark()} {name}：{summary.message}", file=sys.stderr)
        return EXIT_REFUSED
    if summary.message:
        print(f"{failure_mark()} {name}：{summary.message}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"{failure_mark()} {name}：发现 {summary.counts.errors} 个错误、{summary.counts.warnings} 条警告，未生成报告。", file=sys.stderr)
    errors = [p for p in ordered(summary.problems) if p.severity is Severity.ERROR]  # root causes first
    for problem in errors[:SHOWN_PROBLEMS]:
        print(f"  - {problem.message}", file=sys.stderr)
    if len(errors) > SHOWN_PROBLEMS:
        print(f"  …… 另有 {len(errors) - SHOWN_PROBLEMS} 个错误", file=sys.stderr)
    print(f"  完整清单：{summary.output_dir / '校验报告.xlsx'}", file=sys.stderr)
    return EXIT_INVALID


def command_run(args: argparse.Namespace) -> int:
    """`perfreport run`: report on each workbook; the worst outcome sets the exit code."""
    if pdf_refused(args.pdf):  # before any workbook is read or any folder made
        return EXIT_REFUSED
    profile = chosen_profile(args.profile)  # a bad profile is refused before any workbook is read
    workbooks, missing = workbooks_named(args.paths or [Path("input")])
    for reason in missing:
        print(f"{failure_mark()} {reason}", file=sys.stderr)
    if not workbooks:
        return EXIT_REFUSED
    settings = Settings(output_dir=args.output_dir, chunk_size=args.chunk_size, workers=args.workers,
                        dask_address=args.dask_address or os.environ.get(DASK_ADDRESS_ENV) or None,
                        profile=profile, profile_chosen=bool(args.profile), pdf=args.pdf,
                        forms_limit=args.forms_limit)
    apply_prefect_defaults()
    from pipeline.run.runtime import EmbeddedApi

    embedded = EmbeddedApi().start()  # boots beside the imports below
    from pipeline.run.flow import run_workbook  # prefect reads its settings at import

    if embedded.starting:  # a second or two to spare until it answers: do the runs' first-use work
        from pipeline.run.runtime import warm_caches

        warm_caches(settings.templates_dir)
    from pipeline.write.locks import OutputBusy

    codes = [EXIT_REFUSED] if missing else []
    with console_progress():
        for workbook in workbooks:
            print(f"正在处理 {workbook} ……", flush=True)
            try:
                embedded.ready()
                summary = run_workbook(workbook, settings)
            except OutputBusy as busy:  # refused at once: see locks.output_lock for why
                print(f"{failure_mark()} {workbook.name}：另一个 perfreport 正在处理 {busy.folder}，请等它结束后再运行。",
                      file=sys.stderr)
                codes.append(EXIT_REFUSED)
                continue
            except OSError as exc:  # the output folder is a file, read-only, full, or gone
                print(f"{failure_mark()} {workbook.name}：{os_error_message(exc, args.output_dir)}", file=sys.stderr)
                codes.append(EXIT_REFUSED)
                continue
            codes.append(print_summary(summary))
            if args.timings:
                write_timings(args.timings, summary)
    return max(codes)


def profile_reference(choice: str | None) -> str | None:
    """`--profile` as another process can resolve it: a file path made absolute, a name as typed."""
    if not choice:
        return None
    path = Path(choice)
    return str(path.resolve()) if path.suffix == PROFILE_SUFFIX or path.is_file() else choice


def pdf_refused(wanted: bool) -> bool:
    """Whether `--pdf` was asked for where LibreOffice cannot be found; then say what to install."""
    if not wanted:
        return False
    from pipeline.docx.pdf import LIBREOFFICE_MISSING, soffice_command

    if soffice_command() is not None:
        return False
    print(f"{failure_mark()} {LIBREOFFICE_MISSING}", file=sys.stderr)
    return True


def add_pdf_option(command: argparse.ArgumentParser) -> None:
    """`--pdf`, shared by `run` and `serve`."""
    command.add_argument("--pdf", action="store_true",
                         help="同时为每份报告和部门汇总报告生成 PDF（放在 pdf/ 中并打包），需要安装 LibreOffice")


def add_max_runs_option(command: argparse.ArgumentParser) -> None:
    """`--max-runs N`, shared by `serve` and `web`."""
    command.add_argument("--max-runs", type=int, default=DEFAULT_MAX_RUNS, metavar="N",
                         help=f"同时处理的工作簿数上限（默认 {DEFAULT_MAX_RUNS}；每个处理进程常驻内存，处理大工作簿时按内存调整）")


def add_profile_option(command: argparse.ArgumentParser) -> None:
    """`--profile NAME|FILE`, shared by `run` and `serve`."""
    command.add_argument("--profile", default=None, metavar="NAME|FILE",
                         help=f"评分规则：{PROFILES_DIR.name}/ 文件夹中的规则名（如 湖北、四川），或一个 .toml 规则文件的路径"
                              "（默认 财预〔2020〕10号：预算执行 10 分 + 指标 90 分）")


def os_error_message(exc: OSError, output_dir: Path) -> str:
    """A run's file-system failure in Chinese, naming the output folder when it is the culprit.

    Writes are the usual cause (a share gone read-only, a full disk, a file where the folder
    should be); their OSError names a path inside the output folder, or none at all (ENOSPC on a
    write). Nothing was published: a run writes only into its hidden staging folder until done.
    """
    reason = os_error_reason(exc)
    target = Path(os.fsdecode(exc.filename)) if exc.filename else None
    inside = target is None or target.resolve().is_relative_to(output_dir.resolve())
    if inside:
        return f"无法写入输出文件夹 {output_dir}（{reason}）。请检查该文件夹是否存在、可写、磁盘是否已满；已有的输出未被改动。"
    return f"无法读写 {target}（{reason}）。"


def command_check_template(args: argparse.Namespace) -> int:
    """`perfreport check-template`: list what is wrong with each template; 0 when all are fine."""
    from pipeline.docx.checkreport import report_lines
    from pipeline.docx.templatecheck import check_template_file

    codes: list[int] = []
    for path in args.templates:
        check = check_template_file(path)
        for line in report_lines(check):
            stream = sys.stdout if check.ok else sys.stderr
            print(with_marks(line, stream), file=stream)
        codes.append(EXIT_OK if check.ok else EXIT_REFUSED)
    return max(codes)


def command_blank(args: argparse.Namespace) -> int:
    """`perfreport blank`: write the blank workbook; an existing file is kept unless --force."""
    from pipeline.write import blank
    from pipeline.write.files import atomic_write

    target: Path = args.file or Path(blank.DEFAULT_BLANK_NAME)
    if target.suffix.lower() != ".xlsx":
        print(f"{failure_mark()} 文件名应以 .xlsx 结尾：{target}", file=sys.stderr)
        return EXIT_REFUSED
    if target.is_dir():
        print(f"{failure_mark()} {target} 是一个文件夹，请写出文件名，如 {target / blank.DEFAULT_BLANK_NAME}", file=sys.stderr)
        return EXIT_REFUSED
    if target.exists() and not args.force:
        print(f"{failure_mark()} 文件已存在：{target}。要覆盖它请加 --force，或换一个文件名。", file=sys.stderr)
        return EXIT_REFUSED
    templates = blank.template_names(args.templates_dir or Settings().templates_dir)
    try:  # a temporary file renamed into place: an existing file is replaced whole or not at all
        atomic_write(target, blank.workbook_bytes(blank.blank_workbook(templates)))
    except OSError as exc:
        print(f"{failure_mark()} 无法写入 {target}（{os_error_reason(exc)}）。请检查文件夹是否存在、可写、磁盘是否已满。",
              file=sys.stderr)
        return EXIT_REFUSED
    print(f"{success_mark()} 已生成空白填报工作簿：{target}")
    print(f"  先看“填报说明”表；填好后运行 perfreport run {target}")
    return EXIT_OK


def write_timings(path: Path, summary) -> None:  # noqa: ANN001 - steps.RunSummary
    """Append one workbook's stage timings as a JSON line (used by the benchmark)."""
    record = {"workbook": summary.workbook.name, "projects": summary.counts.projects, **summary.timings}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    top = argparse.ArgumentParser(
        prog="perfreport",
        description="把项目支出绩效自评工作簿(.xlsx)生成每个项目的绩效评价报告(.docx)。",
        epilog="Example:\n  perfreport run input/\n  perfreport check-template templates/report.docx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="校验工作簿并生成报告", description="校验工作簿并为每个项目生成绩效评价报告。",
        epilog=RUN_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                     help="工作簿文件或文件夹（默认 input/）")
    run.add_argument("--output-dir", type=Path, default=Path("output"), help="输出文件夹（默认 output/）")
    run.add_argument("--chunk-size", type=int, default=None,
                     help="每个渲染任务处理的项目数（默认按项目数和进程数自动选择，50–2000）")
    run.add_argument("--workers", type=int, default=None,
                     help="本机渲染进程数（默认每个 CPU 核一个）")
    run.add_argument("--dask-address", default=None, metavar="ADDRESS",
                     help=f"Dask 调度器地址，如 tcp://10.0.0.5:8786（也可设环境变量 {DASK_ADDRESS_ENV}）")
    run.add_argument("--timings", type=Path, default=None, metavar="FILE",
                     help="把各阶段耗时（秒）以 JSON 行追加到 FILE（供性能测试使用）")
    add_profile_option(run)
    add_pdf_option(run)
    run.add_argument("--forms-limit", type=int, default=FORMS_LIMIT, metavar="N",
                     help=f"项目不超过 N 个时生成自评表.xlsx（每个项目一张；默认 {FORMS_LIMIT}，0 表示不生成）")
    run.set_defaults(handler=command_run)
    check = sub.add_parser(
        "check-template", help="检查报告模板(.docx)是否有误",
        description="检查报告模板：标签语法、变量名和不允许的写法，并指出问题所在的段落、表格或页眉页脚。",
        epilog=CHECK_TEMPLATE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("templates", nargs="+", type=Path, metavar="FILE", help="模板文件（.docx），可写多个")
    check.set_defaults(handler=command_check_template)
    serve = sub.add_parser(
        "serve", help="长期运行：按年度计划处理 input/，并随时处理新放入的工作簿",
        description="作为 Prefect 部署长期运行：每年按计划（默认 1 月 15 日 8:00，北京时间）处理输入文件夹中的全部工作簿；"
                    "新放入或更正后的工作簿在复制完成后随即处理，旧的输出移入 output/_archive/。需要 PREFECT_API_URL 指向的 Prefect 服务器。",
        epilog="Example:\n  PREFECT_API_URL=http://127.0.0.1:4200/api perfreport serve --input-dir input --output-dir output",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--input-dir", type=Path, default=Path("input"), help="监视的输入文件夹（默认 input/）")
    serve.add_argument("--output-dir", type=Path, default=Path("output"), help="输出文件夹（默认 output/）")
    serve.add_argument("--cron", default=None, metavar="CRON", help="年度计划的 cron 表达式（默认 \"0 8 15 1 *\"）")
    serve.add_argument("--timezone", default=None, help="计划所用时区（默认 Asia/Shanghai）")
    serve.add_argument("--poll-seconds", type=float, default=None, help="检查输入文件夹的间隔秒数（默认 5）")
    serve.add_argument("--settle-seconds", type=float, default=DEFAULT_SETTLE_SECONDS,
                       help=f"新文件须保持不变的秒数，防止处理尚未复制完的文件（默认 {DEFAULT_SETTLE_SECONDS:g}；网络共享文件夹不要调小）")
    add_max_runs_option(serve)
    add_profile_option(serve)
    add_pdf_option(serve)
    serve.set_defaults(handler=command_serve)
    web = sub.add_parser(
        "web", help="网页：上传工作簿、查看处理结果、下载报告",
        description="在浏览器中上传工作簿，查看每次处理的状态、问题清单和结果，下载报告、压缩包和汇总表。"
                    f"默认只在本机 127.0.0.1 上提供；在其他地址上提供时必须设置访问令牌（环境变量 {WEB_TOKEN_ENV}）。",
        epilog="Example:\n  perfreport web --input-dir input --output-dir output\n"
               f"  {WEB_TOKEN_ENV}=$(openssl rand -hex 16) perfreport web --host 0.0.0.0 --port 8000\n"
               "  （经 HTTPS 反向代理时再加 --public-url https://reports.example.gov.cn）",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    web.add_argument("--input-dir", type=Path, default=Path("input"), help="上传的工作簿放入的输入文件夹（默认 input/）")
    web.add_argument("--output-dir", type=Path, default=Path("output"), help="输出文件夹（默认 output/）")
    web.add_argument("--host", default="127.0.0.1", help="监听地址（默认 127.0.0.1，只有本机可以访问）")
    web.add_argument("--port", type=int, default=8000, help="端口（默认 8000）")
    web.add_argument("--max-upload-mb", type=int, default=200, help="上传文件大小上限，MB（默认 200）")
    add_max_runs_option(web)
    web.add_argument("--no-watch", action="store_true",
                     help="不在本进程中处理上传的工作簿（由同一文件夹上的 perfreport serve 处理）")
    web.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                     help="浏览器可以用来访问本页面的主机名（NAME 或 NAME:PORT），可写多次；"
                          f"本机名称总是可以（也可设环境变量 {WEB_HOSTS_ENV}，逗号分隔）")
    web.add_argument("--public-url", default=None, metavar="URL",
                     help="经反向代理（如 HTTPS）对外提供时的网址，如 https://reports.example.gov.cn"
                          f"（也可设环境变量 {WEB_PUBLIC_URL_ENV}）")
    web.add_argument("--secure-cookie", action="store_true",
                     help="访问令牌的 Cookie 只通过 HTTPS 发送（--public-url 以 https 开头时自动启用）")
    web.add_argument("--max-connections", type=int, default=200, help="同时连接数上限（默认 200）")
    # For tests: the time limits on a request head and on a stalled body, in seconds.
    web.add_argument("--head-timeout", type=float, default=None, help=argparse.SUPPRESS)
    web.add_argument("--body-timeout", type=float, default=None, help=argparse.SUPPRESS)
    web.set_defaults(handler=command_web)
    blank = sub.add_parser(
        "blank", help="生成一个空白的填报工作簿（带下拉选项、填写提示和填报说明）",
        description="生成一个空白的填报工作簿：项目、资金、使用原则、绩效指标四张表的表头，填报说明，"
                    "资金来源、一级指标、二级指标（随一级指标变化）、指标方向、定性等级和模板的下拉选项，"
                    "以及每列的填写提示。",
        epilog="Example:\n  perfreport blank 2021年度绩效自评.xlsx\n\n"
               "不要把空白工作簿写进 input/ 文件夹：那里的工作簿会被自动处理。填好后运行 perfreport run 文件名.xlsx。\n"
               "退出码：0 已生成；2 文件已存在（加 --force 覆盖）、文件名不是 .xlsx 或无法写入。",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    blank.add_argument("file", nargs="?", type=Path, default=None, metavar="FILE",
                       help="要生成的文件（默认当前文件夹中的 绩效自评填报表.xlsx）")
    blank.add_argument("--force", action="store_true", help="文件已存在时覆盖它")
    blank.add_argument("--templates-dir", type=Path, default=None, metavar="DIR",
                       help="“模板”下拉选项列出此文件夹中的 .docx 模板（默认 templates/）")
    blank.set_defaults(handler=command_blank)
    notify = sub.add_parser("notify", help="工作簿有错误或被拒收时发通知（企业微信、钉钉群机器人或其他 Webhook）",
                            description="在已配置的 Prefect 服务器上创建（或替换）通知块和自动化，详见 docs/notify.md。",
                            epilog="Example:\n  perfreport notify --webhook 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…'",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    notify.add_argument("--webhook", required=True, metavar="URL", help="群机器人或其他服务的 Webhook 地址")
    notify.add_argument("--kind", choices=("wecom", "dingtalk", "generic"), default="wecom",
                        help="消息格式：wecom 企业微信、dingtalk 钉钉（默认 wecom）、generic 通用 JSON")
    notify.set_defaults(handler=command_notify)
    return top


def command_notify(args: argparse.Namespace) -> int:
    """`perfreport notify`: the webhook notification, configured on the Prefect server (notify.py)."""
    from pipeline.serve import notify

    api = notify.configured_api()
    if api is None:
        print("✘ 需要一个 Prefect 服务器：设置 PREFECT_API_URL（或 prefect config set PREFECT_API_URL=…）", file=sys.stderr)
        return EXIT_REFUSED
    try:
        notify.configure(args.webhook, args.kind)
    except notify.NotifyRefused as exc:
        print(f"✘ {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"✔ 已在 {api} 上创建通知「{notify.AUTOMATION_NAME}」：工作簿有错误、被拒收或运行中断时发送到 {args.webhook}")
    return EXIT_OK


def command_serve(args: argparse.Namespace) -> int:
    """`perfreport serve`: the served deployment and the hot folder, until interrupted."""
    apply_prefect_defaults()
    from pipeline.serve.warm import configured_api_url

    if configured_api_url() is None:  # Prefect's settings: env, .env, prefect.toml, profile
        print(f"{failure_mark()} perfreport serve 需要一个 Prefect 服务器：先运行 prefect server start，再运行 "
              "prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api（或设置同名环境变量）", file=sys.stderr)
        return EXIT_REFUSED
    if pdf_refused(args.pdf):
        return EXIT_REFUSED
    if not args.input_dir.is_dir():
        # Not refused: at boot a share may be mounted after the service starts, and a service
        # that exits would be restarted until systemd gives up. The watcher waits for it.
        print(f"{warning_mark()} 输入文件夹目前不存在或无法访问：{args.input_dir}；它出现后自动开始处理", file=sys.stderr)
    profile = chosen_profile(args.profile)  # refused here, not in every run the deployment starts
    from pipeline.serve import deploy, watcher

    print(f"正在监视 {args.input_dir}，输出到 {args.output_dir}，按「{profile.name}」评分规则"
          f"{'，同时生成 PDF' if args.pdf else ''}（按 Ctrl+C 停止）", flush=True)
    deploy.serve(args.input_dir, args.output_dir, args.cron or deploy.ANNUAL_CRON,
                  args.timezone or deploy.TIMEZONE, args.poll_seconds or watcher.POLL_SECONDS,
                  profile=profile_reference(args.profile), pdf=args.pdf, max_runs=args.max_runs,
                  settle_seconds=args.settle_seconds)
    return EXIT_OK


def command_web(args: argparse.Namespace) -> int:
    """`perfreport web`: the upload and download page, until interrupted."""
    token = os.environ.get(WEB_TOKEN_ENV) or None
    from pipeline.serve.web import WebSettings, serve_web
    from pipeline.serve.webguard import host_and_port, is_loopback, public_origin

    if not is_loopback(args.host) and token is None:
        print(f"{failure_mark()} 在 {args.host} 上提供网页时，其他电脑也能访问：请先设置访问令牌，例如\n"
              f"  {WEB_TOKEN_ENV}=$(openssl rand -hex 16) perfreport web --host {args.host}", file=sys.stderr)
        return EXIT_REFUSED
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        print(f"{failure_mark()} 访问令牌太短：至少 {MIN_TOKEN_CHARS} 个字符。", file=sys.stderr)
        return EXIT_REFUSED
    if args.max_upload_mb < 1:
        print(f"{failure_mark()} --max-upload-mb 至少为 1。", file=sys.stderr)
        return EXIT_REFUSED
    if args.max_connections < 1 or args.max_runs < 1:
        print(f"{failure_mark()} --max-connections 和 --max-runs 至少为 1。", file=sys.stderr)
        return EXIT_REFUSED
    hosts = [*args.allowed_host, *(os.environ.get(WEB_HOSTS_ENV) or "").split(",")]
    hosts = [host.strip() for host in hosts if host.strip()]
    wrong = [host for host in hosts if host_and_port(host) is None]
    if wrong:
        print(f"{failure_mark()} 主机名无效：{'、'.join(wrong)}（应为 NAME 或 NAME:PORT，如 reports.example.gov.cn）。", file=sys.stderr)
        return EXIT_REFUSED
    public_url = args.public_url or os.environ.get(WEB_PUBLIC_URL_ENV) or None
    if public_url is not None and (public_origin(public_url) is None
                                   or urlsplit(public_url).path not in ("", "/")):
        print(f"{failure_mark()} 对外网址无效：{public_url}（应为 http:// 或 https:// 加主机名，不带路径，"
              "如 https://reports.example.gov.cn）。", file=sys.stderr)
        return EXIT_REFUSED
    apply_prefect_defaults()
    timeouts = {name: value for name, value in (("head_timeout", args.head_timeout),
                                                ("body_timeout", args.body_timeout)) if value is not None}
    settings = WebSettings(input_dir=args.input_dir, output_dir=args.output_dir, token=token,
                           max_upload_bytes=args.max_upload_mb * 1024 * 1024, watch=not args.no_watch,
                           port=args.port, allowed_hosts=tuple(hosts), public_url=public_url,
                           secure_cookie=args.secure_cookie, max_runs=args.max_runs,
                           max_connections=args.max_connections, **timeouts)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    address = public_url.rstrip("/") + "/" if public_url else f"http://{shown}:{args.port}/"
    print(f"网页地址：{address}{'?token=…' if token else ''}（按 Ctrl+C 停止）", flush=True)
    try:
        serve_web(settings, args.host, args.port)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(f"{failure_mark()} 无法在 {args.host}:{args.port} 上提供网页：{exc.strerror or exc}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `perfreport` console script."""
    never_failing_streams()
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("已中断，未完成的输出已丢弃。", file=sys.stderr)
        return 130
    except PerfreportError as exc:  # e.g. TemplateInvalid: a named error the user can fix
        print(f"{failure_mark()} {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # the last line of defence: never a traceback for the user
        print(f"{failure_mark()} 内部错误：{type(exc).__name__}: {exc}", file=sys.stderr)
        print("  请把这条信息和所用的工作簿交给维护人员。", file=sys.stderr)
        return EXIT_INTERNAL


def console_main() -> None:
    """The `perfreport` console script and `python -m pipeline`: `main`, then a quick exit once
    every exit handler has run (`console.QuickExit`)."""
    quick = QuickExit().armed()  # first: its handler must be the last to run
    try:
        code = main()
    except SystemExit as leaving:  # argparse's usage errors (2) and --help (0)
        code = exit_status(leaving.code)
    sys.exit(quick.leaving_with(code))


def exit_status(code: object) -> int:
    """The process status `sys.exit(code)` would give: None is 0, a number itself, a message 1
    (printed by argparse already)."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    console_main()

"""Build the shipped report templates (GB/T 9704-2012 layout) with python-docx.

    python scripts/make_template.py templates/report.docx
    python scripts/make_template.py --outline full templates/full_report.docx
    python scripts/make_template.py --outline department templates/department_report.docx

`report` is the county's short report (一、项目情况 … 四、评价结论), `full` follows the outline of
财预〔2020〕10号 附件3 (一、基本情况 … 七、其他需要说明的问题); both end with 署名 and 成文日期 and
carry the 附件 项目支出绩效自评表 on landscape pages. `department` is 部门汇总报告, one per
workbook (overview, table of projects, shortfalls, chart; pipeline/core/department.py). The pieces live in scripts/templatekit/; the
variables they use are the contract of ``pipeline/core/context.py`` (templates/README.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# Run as a script, this file's folder (scripts/) is on sys.path, so templatekit imports as a
# package; the repository root is added for `pipeline` when the project is not installed.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from templatekit.build import OUTLINE_NAMES, write_template  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: write one template to the given path."""
    parser = argparse.ArgumentParser(
        description="生成绩效评价报告模板（report.docx、full_report.docx 或部门汇总报告 department_report.docx）。")
    parser.add_argument("output", type=Path, nargs="?", default=Path("templates/report.docx"))
    parser.add_argument("--outline", choices=sorted(OUTLINE_NAMES), default="report",
                        help="report：简版报告（默认）；full：财预〔2020〕10号 附件3 提纲的完整报告；"
                             "department：部门汇总报告")
    args = parser.parse_args(argv)
    write_template(args.output, args.outline)
    print(f"已生成模板：{args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

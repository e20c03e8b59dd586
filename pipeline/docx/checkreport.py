"""The words of a template check for people: `perfreport check-template`'s lines, the refusal message."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pipeline.docx.findings import Finding, TemplateCheck

SHOWN_IN_MESSAGE = 5  # findings quoted in a TemplateInvalid message; check-template lists all


def invalid_message(name: str, findings: Sequence[Finding]) -> str:
    """The TemplateInvalid message of a refused template: its name and the first findings."""
    shown = "；".join(f.text for f in findings[:SHOWN_IN_MESSAGE])
    more = f"；另有 {len(findings) - SHOWN_IN_MESSAGE} 处问题" if len(findings) > SHOWN_IN_MESSAGE else ""
    return f"模板 {name} 有误：{shown}{more}（可用 perfreport check-template 查看全部）"


def report_lines(check: TemplateCheck) -> Iterator[str]:
    """The lines check-template prints for one template."""
    if check.ok:
        yield f"✔ 模板 {check.name} 没有发现问题。"
        return
    yield f"✘ 模板 {check.name} 发现 {len(check.findings)} 处问题："
    for finding in check.findings:
        yield f"  - {finding.text}"

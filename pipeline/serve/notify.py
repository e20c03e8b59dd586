"""`perfreport notify`: tell someone when a workbook gets no reports, configured in Prefect, no code.

Two objects on the configured Prefect server, both replaced when the command runs again (found by
their names), both visible and editable in the Prefect UI afterwards:
- a Custom Webhook notification block that POSTs JSON to the webhook (企业微信 and 钉钉 group robots
  both accept {"msgtype": "text", "text": {"content": …}}; `generic` sends subject and body);
- an automation that fires on the events `perfreport.workbook.invalid` and `.refused` (and on a
  `perfreport` flow run that crashed) and sends the notification with the workbook's name, counts
  and message, taken from the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit
from uuid import UUID

BLOCK_NAME = "perfreport-webhook"
AUTOMATION_NAME = "perfreport 工作簿未生成报告"
KINDS = ("wecom", "dingtalk", "generic")
# The events `flow.report_workbook` emits for a workbook without reports, and the state event
# Prefect emits for a flow run that ended without an outcome of its own.
NOTIFIED_EVENTS = ("perfreport.workbook.invalid", "perfreport.workbook.refused", "perfreport.workbook.failed",
                   "prefect.flow-run.Crashed")
FLOW_NAME = "perfreport"
WEBHOOK_SECRET = "webhook_url"
WEBHOOK_PLACEHOLDER = "{{" + WEBHOOK_SECRET + "}}"

SUBJECT = "perfreport：{{ event.resource['prefect.resource.name'] }} 未生成报告"
# Jinja, rendered by the Prefect server's automation with the triggering event in `event`; the
# event's message already carries the counts (有错误：1 个错误、0 条警告…).
BODY = ("{% if event.event == 'prefect.flow-run.Crashed' %}"
        "工作簿 {{ event.resource['prefect.resource.name'] }} 的运行意外中断（Crashed），请重新上传或重新运行。"
        "{% else %}"
        "工作簿 {{ event.payload.workbook }}：{{ event.payload.message }}"
        "{% if event.payload.output_dir %}\n输出文件夹：{{ event.payload.output_dir }}{% endif %}"
        "{% endif %}")


@dataclass(frozen=True, slots=True)
class NotifySetup:
    """What `configure` left on the server: the block's and the automation's ids."""

    block_id: UUID
    automation_id: UUID


class NotifyRefused(ValueError):
    """The webhook or kind cannot be used (the message says why, in Chinese)."""


def webhook_json(kind: str) -> dict[str, Any]:
    """The JSON body the block sends; `{{subject}}` and `{{body}}` are filled in by the block."""
    if kind in ("wecom", "dingtalk"):
        return {"msgtype": "text", "text": {"content": "{{subject}}\n{{body}}"}}
    if kind == "generic":
        return {"subject": "{{subject}}", "body": "{{body}}"}
    raise NotifyRefused(f"未知的类型：{kind}（可选 {'、'.join(KINDS)}）")


def webhook_refusal(url: str) -> str | None:
    """Why `url` cannot be a webhook, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"Webhook 地址无效：{url}（应以 http:// 或 https:// 开头）"
    return None


def trigger_spec() -> dict[str, Any]:
    """The automation's trigger as Prefect's EventTrigger fields: any of the events, once each,
    about a workbook or a flow run of the flow `perfreport`."""
    return {
        "expect": set(NOTIFIED_EVENTS),
        "match": {"prefect.resource.id": ["perfreport.workbook.*", "prefect.flow-run.*"]},
        "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAME},
        "posture": "Reactive",
        "threshold": 1,
        "within": 0,
    }


def configure(webhook: str, kind: str, headers: Mapping[str, str] | None = None) -> NotifySetup:
    """Create or replace the notification block and the automation on the configured Prefect API."""
    refused = webhook_refusal(webhook)
    if refused is not None:
        raise NotifyRefused(refused)
    body = webhook_json(kind)
    from prefect import get_client
    from prefect.automations import Automation, EventTrigger, Posture, SendNotification
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.types import SecretDict

    # The address is kept as the block's secret, filled into its URL when it sends: a robot's
    # address carries its key, which the Prefect UI then shows masked to whoever can open it.
    block = CustomWebhookNotificationBlock(name=BLOCK_NAME, url=WEBHOOK_PLACEHOLDER, json_data=body,
                                           headers=dict(headers) if headers else None, cookies=None,
                                           secrets=SecretDict({WEBHOOK_SECRET: webhook}))
    # Sync context: prefect's dual sync/async methods return their values, not coroutines.
    block_id = cast(UUID, block.save(BLOCK_NAME, overwrite=True))
    spec = trigger_spec()
    automation = Automation(
        name=AUTOMATION_NAME,
        description="perfreport：工作簿有错误、被拒收或运行中断时发送通知（由 perfreport notify 创建）",
        trigger=EventTrigger(expect=spec["expect"], match=spec["match"], match_related=spec["match_related"],
                             posture=Posture.Reactive, threshold=spec["threshold"], within=spec["within"]),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    )
    with get_client(sync_client=True) as client:
        for existing in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(existing.id)
    created = cast(Automation, automation.create())
    return NotifySetup(block_id, cast(UUID, created.id))


def configured_api() -> str | None:
    """The Prefect API the settings name (environment, profile or prefect.toml), or None."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None

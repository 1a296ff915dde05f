"""Contacts as alert channels of the router: `oncall:<contact>:email|sms|webhook`.

Paging a contact is sending to each of their channels through the router, with its retries and
a delivery record per channel, like every other notification.
"""

from __future__ import annotations

from collections.abc import Mapping

from pitstop.alerts.base import Notifier
from pitstop.alerts.notifiers.email import EmailNotifier
from pitstop.alerts.notifiers.sms import SmsNotifier
from pitstop.alerts.notifiers.webhook import WebhookNotifier
from pitstop.config.health import Channel, EmailChannel, WebhookChannel
from pitstop.config.oncall import OncallSettings

MEDIA = ("email", "sms", "webhook")


def channel_name(contact: str, medium: str) -> str:
    return f"oncall:{contact}:{medium}"


def contact_notifiers(oncall: OncallSettings, channels: Mapping[str, Channel]) -> dict[str, Notifier]:
    out: dict[str, Notifier] = {}
    mail = channels.get(oncall.email_channel or "")
    for name, contact in oncall.contacts.items():
        if contact.email is not None and isinstance(mail, EmailChannel):
            cfg = mail.model_copy(update={"to": [contact.email]})
            out[channel_name(name, "email")] = EmailNotifier(channel_name(name, "email"), cfg)
        if contact.phone is not None and oncall.sms is not None:
            out[channel_name(name, "sms")] = SmsNotifier(channel_name(name, "sms"), oncall.sms, contact.phone)
        if contact.webhook is not None:
            hook = WebhookChannel(url=contact.webhook, format=contact.webhook_format, routing_key=contact.routing_key)
            out[channel_name(name, "webhook")] = WebhookNotifier(channel_name(name, "webhook"), hook)
    return out


def channels_of(contact: str, notifiers: Mapping[str, Notifier]) -> list[str]:
    """The router channels that reach a contact."""
    return [channel_name(contact, m) for m in MEDIA if channel_name(contact, m) in notifiers]

"""Email notifier over SMTP, with optional STARTTLS and login (credentials from settings)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from pitstop.alerts.base import Alert, Delivery
from pitstop.config.health import EmailChannel


class EmailNotifier:
    def __init__(self, name: str, cfg: EmailChannel) -> None:
        self.name = name
        self.cfg = cfg

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(self.cfg.to)
        msg["Subject"] = alert.title[:200]
        msg.set_content(alert.text + "\n\n-- pitstop\n")
        return msg

    def send(self, alert: Alert) -> Delivery:
        return self.deliver(self.message(alert))

    def deliver(self, msg: EmailMessage) -> Delivery:
        """Any message through the channel's server (the monthly report's mail comes this way too)."""
        cfg = self.cfg
        try:
            with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s) as smtp:
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username is not None:
                    smtp.login(cfg.username.get_secret_value(), cfg.password.get_secret_value() if cfg.password else "")
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError:
            return Delivery(self.name, False, f"SMTP {cfg.host}:{cfg.port} refused the login")
        except (smtplib.SMTPException, OSError) as exc:
            return Delivery(self.name, False, f"SMTP {cfg.host}:{cfg.port}: {type(exc).__name__}")
        return Delivery(self.name, True)

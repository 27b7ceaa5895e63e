"""E-mail notifications to the merchant (and an optional receipt to the buyer), over SMTP.

Nothing here runs inside a payment's transaction: the signal receivers and the session hook only
take a snapshot of plain values and queue it; one background thread per app looks up the
merchant's notification settings, writes the mail and talks to the SMTP server (with a timeout).
A failing or hanging mail server is logged and never blocks, delays or undoes a payment.

Configuration: ``MAIL_SERVER`` (no server: no mail), ``MAIL_PORT``, ``MAIL_USERNAME``,
``MAIL_PASSWORD``, ``MAIL_USE_TLS`` (STARTTLS), ``MAIL_USE_SSL``, ``MAIL_DEFAULT_SENDER``,
``PSP_MAIL_TIMEOUT`` (seconds).
"""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import Any, Callable

log = logging.getLogger("flask_psp.mail")

PAYMENT_FIELDS = ("id", "token", "order_ref", "provider", "mode", "amount", "currency", "status", "email", "locale",
                  "captured_amount", "refunded_amount", "psp_reference", "flag")


@dataclass
class MailConfig:
    server: str | None
    port: int = 25
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    use_ssl: bool = False
    sender: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config) -> "MailConfig":
        sender = config.get("MAIL_DEFAULT_SENDER")
        if isinstance(sender, (tuple, list)):
            sender = formataddr((sender[0], sender[1]))
        return cls(
            server=config.get("MAIL_SERVER") or None,
            port=int(config.get("MAIL_PORT") or 25),
            username=config.get("MAIL_USERNAME") or None,
            password=config.get("MAIL_PASSWORD") or None,
            use_tls=bool(config.get("MAIL_USE_TLS")),
            use_ssl=bool(config.get("MAIL_USE_SSL")),
            sender=sender or None,
            timeout=float(config.get("PSP_MAIL_TIMEOUT") or 10),
        )


def send_smtp(config: MailConfig, message: EmailMessage) -> None:
    """One message over SMTP; raises smtplib/OSError errors (the worker logs them)."""
    smtp_class = smtplib.SMTP_SSL if config.use_ssl else smtplib.SMTP
    with smtp_class(config.server, config.port, timeout=config.timeout) as smtp:
        if config.use_tls and not config.use_ssl:
            smtp.starttls()
        if config.username:
            smtp.login(config.username, config.password or "")
        smtp.send_message(message)


class Mailer:
    """A queue and one daemon thread. ``submit(job)`` never blocks; ``job()`` runs on the thread and
    returns the messages to send (or sends nothing). ``wait_idle`` is for tests and shutdown."""

    def __init__(self, config: MailConfig, transport: Callable[[MailConfig, EmailMessage], None] = send_smtp):
        self.config = config
        self.transport = transport
        self._queue: queue.Queue = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self.config.server)

    def submit(self, job: Callable[[], list[EmailMessage]]) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="flask-psp-mail", daemon=True)
                self._thread.start()
            self._pending += 1
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            log.error("mail queue full: a notification was dropped")
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                for message in job() or []:
                    if not message.get("From"):
                        message["From"] = self.config.sender or "flask-psp@localhost"
                    try:
                        self.transport(self.config, message)
                        self.sent += 1
                    except Exception as exc:  # noqa: BLE001 - mail must never break anything
                        self.failed += 1
                        log.warning("could not send %r to %s: %s: %s", message["Subject"], message["To"],
                                    type(exc).__name__, exc)
            except Exception:  # noqa: BLE001
                self.failed += 1
                log.exception("could not prepare a notification mail")
            finally:
                self._done()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


# ---------------------------------------------------------------------------- what to say
def snapshot(payment) -> dict[str, Any]:
    return {f: getattr(payment, f, None) for f in PAYMENT_FIELDS}


def compose(app, event: str, data: dict[str, Any]) -> list[EmailMessage]:
    """Runs on the mail thread inside an app context: read the settings, write the mails."""
    from flask_babel import force_locale

    from .admin_core import notification_settings, page_row
    from .i18n import gettext as _
    from .money import format_amount

    state = app.extensions["psp"]
    session = state.db.session
    try:
        row = page_row(session)
        settings = notification_settings(row)
        brand = row.brand_name or ""
        if data.get("payment_id") and not data.get("order_ref"):
            from .models import Payment

            payment = session.get(Payment, data["payment_id"])
            if payment is not None:
                data = {**data, "order_ref": payment.order_ref}
    finally:
        session.rollback()
    messages: list[EmailMessage] = []
    merchant_locale = app.config.get("PSP_DEFAULT_LOCALE", "en")
    prefix = f"[{brand}] " if brand else ""

    def money(amount, locale):
        if amount is None or not data.get("currency"):
            return ""
        return format_amount(int(amount), data["currency"], locale)

    if event in settings["events"] and settings["addresses"]:
        with force_locale(merchant_locale):
            ref = data.get("order_ref") or "?"
            subjects = {
                "paid": _("Payment received for order %(ref)s", ref=ref),
                "failed": _("Payment failed for order %(ref)s", ref=ref),
                "refunded": _("Refund for order %(ref)s", ref=ref),
                "chargeback": _("Chargeback on order %(ref)s", ref=ref),
                "notification_problem": _("A notification needs your attention"),
                "amount_mismatch": _("Amount mismatch on order %(ref)s", ref=ref),
            }
            lines = [
                _("Order: %(ref)s", ref=ref),
                _("Provider: %(provider)s (%(mode)s)", provider=data.get("provider") or "?", mode=data.get("mode") or "?"),
                _("Amount: %(amount)s", amount=money(data.get("amount"), merchant_locale)),
                _("Status: %(status)s", status=data.get("status") or "?"),
            ]
            if data.get("refunded_amount"):
                lines.append(_("Refunded in all: %(amount)s", amount=money(data["refunded_amount"], merchant_locale)))
            if data.get("detail"):
                lines.append(_("Details: %(detail)s", detail=data["detail"]))
            if data.get("event_id"):
                lines.append(_("Inbox entry: #%(id)s", id=data["event_id"]))
            message = EmailMessage()
            message["Subject"] = prefix + subjects[event]
            message["To"] = ", ".join(settings["addresses"])
            message.set_content("\n".join(lines) + "\n")
            messages.append(message)

    if event == "paid" and settings["buyer_receipt"] and data.get("email"):
        _name, address = parseaddr(data["email"])
        if address and "@" in address and "\n" not in address:
            locale = data.get("locale") or merchant_locale
            locale = locale if locale in state.locales else merchant_locale
            with force_locale(locale):
                message = EmailMessage()
                message["Subject"] = prefix + _("Your payment for order %(ref)s", ref=data.get("order_ref"))
                message["To"] = address
                message.set_content(
                    _("We have received your payment of %(amount)s for order %(ref)s. Thank you!",
                      amount=money(data.get("amount"), locale), ref=data.get("order_ref")) + "\n"
                )
                messages.append(message)
    return messages


def queue_event(app, event: str, data: dict[str, Any]) -> None:
    """Hand an event to the app's mailer (never raises)."""
    try:
        state = app.extensions["psp"]
        mailer: Mailer | None = getattr(state, "mailer", None)
        if mailer is None or not mailer.enabled:
            return

        def job():
            with app.app_context():
                return compose(app, event, data)

        mailer.submit(job)
    except Exception:  # noqa: BLE001
        log.exception("could not queue a %s notification", event)


# ---------------------------------------------------------------------------- wiring (once per process)
_connected = False
#: signal -> the mail event it is
_SIGNAL_EVENTS = {"order_paid": "paid", "payment_failed": "failed", "payment_refunded": "refunded",
                  "chargeback": "chargeback", "notification_problem": "notification_problem",
                  "amount_mismatch": "amount_mismatch",
                  "test_payment_on_live": "amount_mismatch"}  # the mode does not match the shop's: same notice


def connect() -> None:
    """Connect the signal receivers. Receivers look up the current app when they run, so one
    connection serves every app of the process."""
    global _connected
    if _connected:
        return
    _connected = True
    from . import signals

    def receiver(event_name):
        def receive(sender, payment=None, entry=None, **extra):
            app = _current_app()
            mailer = getattr(app.extensions.get("psp"), "mailer", None) if app is not None else None
            if mailer is None or not mailer.enabled:
                return
            if entry is not None:  # an inbox entry: plain values already
                data = dict(entry)
            else:
                payment = payment or sender
                data = snapshot(payment)
                if event_name == "chargeback":
                    data["detail"] = payment.flag
            queue_event(app, event_name, data)

        return receive

    every = {**signals.BY_NAME, **signals.NOTICES}
    for signal_name, event_name in _SIGNAL_EVENTS.items():
        every[signal_name].connect(receiver(event_name), weak=False)


def _current_app():
    from flask import current_app, has_app_context

    if not has_app_context():
        return None
    app = current_app._get_current_object()
    return app if "psp" in app.extensions else None

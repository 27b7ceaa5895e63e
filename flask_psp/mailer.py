"""E-mail notifications to the merchant (and an optional receipt to the buyer), through an outbox.

Every mail is a row of ``psp_mail`` (:class:`~flask_psp.models.MailMessage`) written by the
transaction that decides it — the ledger hands this module what it is about to signal just before
it commits (:meth:`Mailer.write_notices`) — so a mail exists exactly when its payment moved, and
nothing can push it out. Senders take the rows that are due, a few at a time, the way the scheduled
jobs claim their work (:meth:`flask_psp.jobs.Jobs.send_mail`), and talk to the SMTP server (with a
timeout) outside any transaction:

* inline (default): one thread per process, started by the first mail and ending when nothing is
  left to send; it wakes when a row is written and when a retry or digest falls due;
* with ``PSP_TASK_QUEUE = "celery"``: a ``flask_psp.run_job("mail")`` task (and the beat schedule);
* ``flask psp run-jobs --job mail`` (cron).

A mail the server refuses or cannot take is tried again after ``PSP_RETRY_FIRST_DELAY``, then twice
as long each time; after ``PSP_RETRY_MAX_ATTEMPTS`` it is ``failed`` and the admin panel shows it
(an owner or manager can send it again). Refused and unmatched notifications do not make a mail
each: one row per provider (a *digest*) counts them and is sent at most once every
``PSP_NOTICE_DIGEST_MINUTES``, saying how many and linking to the inbox. Payment mails are rows of
their own, due at once: a flood of forged notifications neither delays nor drops them.

Configuration: ``MAIL_SERVER`` (no server: no mail, no rows), ``MAIL_PORT``, ``MAIL_USERNAME``,
``MAIL_PASSWORD``, ``MAIL_USE_TLS`` (STARTTLS), ``MAIL_USE_SSL``, ``MAIL_DEFAULT_SENDER``,
``PSP_MAIL_TIMEOUT`` (seconds), ``PSP_NOTICE_DIGEST_MINUTES``.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import Any, Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .models import MailMessage, Payment, PageSettings, lock_row, utcnow
from .ledger import RetryPolicy

log = logging.getLogger("flask_psp.mail")

PAYMENT_FIELDS = ("id", "token", "order_ref", "provider", "mode", "amount", "currency", "status", "email", "locale",
                  "captured_amount", "refunded_amount", "psp_reference", "flag")
#: the kind of the rows that count refused and unmatched notifications
DIGEST = "notice_digest"
#: what a server says about one message only: the next ones may still go through
MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)
#: session.info key: this transaction wrote a mail row, a sender should look once it commits
_WRITTEN = "flask_psp.mail_written"


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
    digest_every: timedelta = timedelta(minutes=15)

    @classmethod
    def from_config(cls, config) -> "MailConfig":
        sender = config.get("MAIL_DEFAULT_SENDER")
        if isinstance(sender, (tuple, list)):
            sender = formataddr((sender[0], sender[1]))
        minutes = config.get("PSP_NOTICE_DIGEST_MINUTES", 15)
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes < 0:
            from .config import ConfigurationError

            raise ConfigurationError(f"PSP_NOTICE_DIGEST_MINUTES must be a number of minutes, not {minutes!r}")
        return cls(
            server=config.get("MAIL_SERVER") or None,
            port=int(config.get("MAIL_PORT") or 25),
            username=config.get("MAIL_USERNAME") or None,
            password=config.get("MAIL_PASSWORD") or None,
            use_tls=bool(config.get("MAIL_USE_TLS")),
            use_ssl=bool(config.get("MAIL_USE_SSL")),
            sender=sender or None,
            timeout=float(config.get("PSP_MAIL_TIMEOUT") or 10),
            digest_every=timedelta(minutes=minutes),
        )


def send_smtp(config: MailConfig, message: EmailMessage) -> None:
    """One message over SMTP; raises smtplib/OSError errors (the sender records them)."""
    smtp_class = smtplib.SMTP_SSL if config.use_ssl else smtplib.SMTP
    with smtp_class(config.server, config.port, timeout=config.timeout) as smtp:
        if config.use_tls and not config.use_ssl:
            smtp.starttls()
        if config.username:
            smtp.login(config.username, config.password or "")
        smtp.send_message(message)


def _open_key(provider: str) -> str:
    return f"notice:{provider}:open"


class Mailer:
    """The outbox of one app: writes rows (:meth:`write_notices`, in the deciding transaction),
    sends one (:meth:`deliver`, for the ``mail`` job) and runs the inline sender thread.

    ::

        mailer = app.extensions["psp"].mailer
        mailer.wait_idle(10)        # tests: the inline sender has nothing due left to do
        mailer.sent, mailer.failed  # attempts made by this process
    """

    def __init__(self, config: MailConfig, app=None,
                 transport: Callable[[MailConfig, EmailMessage], None] = send_smtp):
        self.config = config
        self.app = app
        self.transport = transport
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wanted = False
        self._busy = False
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self.config.server)

    # ------------------------------------------------------------------ writing (in the ledger's transaction)
    def write_notices(self, session: Session, notices: list[tuple[str, Any]]) -> None:
        """The ledger's hook: outbox rows for what is about to be signalled, in the same
        transaction. Runs in an app context (the merchant's language)."""
        if not self.enabled:
            return
        settings, brand = _read_settings(session)
        wanted = [(name, subject) for name, subject in notices
                  if _chosen(_SIGNAL_EVENTS.get(name), settings) or name == "order_paid"]
        for name, subject in wanted:
            event = _SIGNAL_EVENTS[name]
            if event == "notification_problem":
                if settings["addresses"]:
                    self._count_notice(session, subject, settings)
                continue
            about_inbox = isinstance(subject, dict)
            data = dict(subject) if about_inbox else snapshot(subject)
            payment_id = data.get("payment_id") if about_inbox else data.get("id")
            if event == "chargeback" and not about_inbox:
                data["detail"] = subject.flag
            if about_inbox and payment_id and not data.get("order_ref"):
                payment = session.get(Payment, payment_id)
                if payment is not None:
                    data["order_ref"] = payment.order_ref
            now = utcnow()
            common = dict(provider=data.get("provider"), payment_id=payment_id, data={}, created_at=now)
            try:
                mails = compose(self._locale(), event, data, settings, brand, self._locales())
            except Exception as exc:  # noqa: BLE001 - a bug here must not undo a payment: the panel shows it
                log.exception("could not write the %s mail", event)
                session.add(MailMessage(kind=event, recipients=", ".join(settings["addresses"]),
                                        subject=f"{event} ({data.get('order_ref')})"[:255], body="", status="failed",
                                        last_error=f"could not compose: {type(exc).__name__}: {exc}"[:255], **common))
                continue
            for kind, recipients, subject_line, body in mails:
                session.add(MailMessage(kind=kind, recipients=recipients, subject=subject_line[:255], body=body,
                                        status="unsent", next_attempt_at=now, composed_at=now, **common))
                session.info[_WRITTEN] = True

    def _count_notice(self, session: Session, entry: dict, settings: dict) -> None:
        """One more refused or unmatched notification for its provider's open digest; the first
        one opens a digest, due at once unless the last one was sent less than a window ago."""
        provider = entry.get("provider") or "?"
        key = _open_key(provider)
        table = MailMessage.__table__
        count_one = update(table).where(table.c.dedupe_key == key).values(notice_count=table.c.notice_count + 1)
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        # a sender may close the open digest, and another transaction open the next one, between
        # any two of these statements: go round until one of them counted this notice
        for _round in range(10):
            if session.execute(count_one).rowcount:
                return
            now = utcnow()
            first = {k: entry.get(k) for k in ("event_id", "status", "payment_id")}
            first["detail"] = (entry.get("detail") or "")[:300]
            values = dict(kind=DIGEST, provider=provider, recipients=", ".join(settings["addresses"]), subject="",
                          body="", data={"first": first}, notice_count=1, status="unsent", attempts=0,
                          next_attempt_at=now, dedupe_key=key, created_at=now)
            opening = insert(table).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
            opened = session.execute(opening.returning(table.c.id)).scalar()
            if opened is not None:
                # read once the row is in: a digest closed while this one was being opened is seen
                last = session.scalar(
                    select(MailMessage.composed_at)
                    .where(MailMessage.kind == DIGEST, MailMessage.provider == provider,
                           MailMessage.composed_at.is_not(None), MailMessage.id != opened)
                    .order_by(MailMessage.id.desc()).limit(1)
                )
                if last is not None and last + self.config.digest_every > now:
                    session.execute(update(table).where(table.c.id == opened)
                                    .values(next_attempt_at=last + self.config.digest_every))
                session.info[_WRITTEN] = True
                return
        log.error("a refused %s notification could not be counted in a digest", provider)

    def _locale(self) -> str:
        return (self.app.config.get("PSP_DEFAULT_LOCALE") if self.app is not None else None) or "en"

    def _locales(self) -> tuple[str, ...]:
        return tuple(self.app.config.get("PSP_LOCALES") or ("en",)) if self.app is not None else ("en",)

    # ------------------------------------------------------------------ sending (the ``mail`` job)
    def deliver(self, session: Session, mail_id: int, now: datetime, retry: RetryPolicy) -> str:
        """Send one claimed row: ``sent``; ``retry`` (the message was refused, or the server could
        not be reached: ``down``) with its next attempt set by ``retry``, or ``failed`` after its
        ``max_attempts``;
        ``skipped`` when another sender dealt with it meanwhile. A digest still collecting is
        closed (new notices open the next one) and composed with its count. Commits."""
        row = _lock_mail(session, mail_id)
        if row is None or row.status != "unsent":
            session.rollback()
            return "skipped"
        if row.kind == DIGEST and row.composed_at is None:
            row.dedupe_key = f"notice:{row.provider}:{row.id}"
            row.composed_at = now
            row.subject, row.body = compose_digest(self._locale(), row, _read_settings(session)[1])
        message = EmailMessage()
        message["From"] = self.config.sender or "flask-psp@localhost"
        message["To"] = row.recipients
        message["Subject"] = row.subject
        message.set_content(row.body)
        if row.html_body:
            message.add_alternative(row.html_body, subtype="html")
        subject = row.subject
        session.commit()  # no lock is held while the server takes its time
        try:
            self.transport(self.config, message)
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried
            self.failed += 1
            error = f"{type(exc).__name__}: {exc}"[:255]
            log.warning("could not send %r to %s: %s", subject, message["To"], error)
            row = session.get(MailMessage, mail_id)
            row.attempts = (row.attempts or 0) + 1
            row.last_error = error
            if row.attempts >= retry.max_attempts:
                row.status, row.next_attempt_at = "failed", None
                log.error("gave up sending mail %s after %s attempts: %s", mail_id, row.attempts, error)
                result = "failed"
            else:
                row.next_attempt_at = now + retry.delay(row.attempts)
                result = "retry" if isinstance(exc, MESSAGE_ERRORS) else "down"
            session.commit()
            return result
        self.sent += 1
        row = session.get(MailMessage, mail_id)
        row.attempts = (row.attempts or 0) + 1
        row.status, row.sent_at, row.next_attempt_at, row.last_error = "sent", now, None, None
        session.commit()
        return "sent"

    # ------------------------------------------------------------------ the senders
    def written(self, session) -> None:
        """After a commit: wake a sender if that transaction wrote a mail row."""
        if not session.info.pop(_WRITTEN, False):
            return
        app = self.app
        if app is not None and app.config.get("PSP_TASK_QUEUE") == "celery":
            queue = app.extensions["psp"].task_queue
            if queue is not None:
                try:
                    queue.send_mail()
                    return
                except Exception:  # noqa: BLE001 - no broker now: this process sends it
                    log.exception("could not hand the mail to a Celery worker: sending it from here")
        self.nudge()

    def nudge(self) -> None:
        """Wake the inline sender (start it when it is not running)."""
        if not self.enabled or self.app is None:
            return
        with self._cond:
            self._wanted = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="flask-psp-mail", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        next_due: datetime | None = None
        while True:
            with self._cond:
                if not self._wanted:
                    if next_due is None:  # nothing left: the next mail starts another thread
                        self._thread = None
                        self._cond.notify_all()
                        return
                    self._cond.wait(max((next_due - utcnow()).total_seconds(), 1.0))
                self._wanted = False
                self._busy = True
            try:
                next_due = self._send_due()
            except Exception:  # noqa: BLE001 - a database outage: the rows wait for the next mail or the job
                log.exception("the mail sender stopped")
                next_due = None
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send_due(self) -> datetime | None:
        """Send what is due (the ``mail`` job), then say when the next unsent row falls due."""
        with self.app.app_context():
            session = self.app.extensions["psp"].db.session
            try:
                self.app.extensions["psp"].run_jobs(["mail"])
                return session.scalar(select(func.min(MailMessage.next_attempt_at)).where(MailMessage.status == "unsent"))
            finally:
                session.remove()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once the inline sender has gone through everything due (tests, shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and not self._wanted, timeout)


def queue_mail(session: Session, kind: str, recipients: str, subject: str, body: str, *, html_body: str | None = None,
               dedupe_key: str | None = None, payment_id: int | None = None, data: dict | None = None) -> MailMessage:
    """An outbox row due now, in the caller's transaction (the caller commits, then calls
    :meth:`Mailer.written` to wake a sender)."""
    now = utcnow()
    row = MailMessage(kind=kind, recipients=recipients, subject=subject[:255], body=body, html_body=html_body,
                      status="unsent", next_attempt_at=now, composed_at=now, created_at=now,
                      dedupe_key=dedupe_key, payment_id=payment_id, data=data or {})
    session.add(row)
    session.info[_WRITTEN] = True
    return row


def _lock_mail(session: Session, mail_id: int) -> MailMessage | None:
    return lock_row(session, MailMessage, mail_id)


def _read_settings(session: Session) -> tuple[dict, str]:
    """The merchant's notification settings and brand, read (never written) in the caller's transaction."""
    from .admin.notifications import notification_settings

    row = session.scalar(select(PageSettings).order_by(PageSettings.id).limit(1))
    return notification_settings(row), (row.brand_name if row is not None else None) or ""


# ---------------------------------------------------------------------------- what to say
def snapshot(payment) -> dict[str, Any]:
    return {f: getattr(payment, f, None) for f in PAYMENT_FIELDS}


def compose(merchant_locale: str, event: str, data: dict[str, Any], settings: dict, brand: str,
            locales: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    """The mails an event makes: ``(kind, recipients, subject, body)`` each. Needs an app context."""
    from flask_babel import force_locale

    from .i18n import gettext as _
    from .money import format_amount

    mails: list[tuple[str, str, str, str]] = []
    prefix = f"[{brand}] " if brand else ""

    def money(amount, locale):
        if amount is None or not data.get("currency"):
            return ""
        return format_amount(int(amount), data["currency"], locale)

    if _chosen(event, settings) and settings["addresses"]:
        with force_locale(merchant_locale):
            ref = data.get("order_ref") or "?"
            subjects = {
                "paid": _("Payment received for order %(ref)s", ref=ref),
                "failed": _("Payment failed for order %(ref)s", ref=ref),
                "refunded": _("Refund for order %(ref)s", ref=ref),
                "chargeback": _("Chargeback on order %(ref)s", ref=ref),
                "amount_mismatch": _("Amount mismatch on order %(ref)s", ref=ref),
                "test_payment_on_live": _("Test payment on a live shop: order %(ref)s was not marked paid", ref=ref),
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
            mails.append((event, ", ".join(settings["addresses"]), prefix + subjects[event], "\n".join(lines) + "\n"))

    if event == "paid" and settings["buyer_receipt"] and data.get("email"):
        _name, address = parseaddr(data["email"])
        if address and "@" in address and "\n" not in address:
            locale = data.get("locale") or merchant_locale
            locale = locale if locale in locales else merchant_locale
            with force_locale(locale):
                subject = prefix + _("Your payment for order %(ref)s", ref=data.get("order_ref"))
                body = _("We have received your payment of %(amount)s for order %(ref)s. Thank you!",
                         amount=money(data.get("amount"), locale), ref=data.get("order_ref")) + "\n"
            mails.append(("receipt", address, subject, body))
    return mails


def compose_digest(merchant_locale: str, row: MailMessage, brand: str) -> tuple[str, str]:
    """Subject and body of a digest of refused or unmatched notifications: how many, the first
    one, and where to look (an absolute link when ``PSP_PUBLIC_URL`` is set)."""
    from flask import current_app
    from flask_babel import force_locale

    from .i18n import ngettext, gettext as _

    prefix = f"[{brand}] " if brand else ""
    base = (current_app.config.get("PSP_PUBLIC_URL") or "").rstrip("/")
    link = f"{base}{current_app.config['PSP_URL_PREFIX']}/admin/inbox?provider={row.provider}"
    first = (row.data or {}).get("first") or {}
    count = row.notice_count
    with force_locale(merchant_locale):
        subject = prefix + ngettext("%(num)d %(provider)s notification needs your attention",
                                    "%(num)d %(provider)s notifications need your attention", count,
                                    provider=row.provider)
        lines = [
            ngettext("%(num)d notification from %(provider)s was refused or matched no payment.",
                     "%(num)d notifications from %(provider)s were refused or matched no payment.", count,
                     provider=row.provider),
        ]
        if first.get("event_id"):
            lines.append(_("First: inbox entry #%(id)s, %(status)s: %(detail)s", id=first["event_id"],
                           status=first.get("status") or "?", detail=first.get("detail") or ""))
        lines.append(_("See them in the inbox: %(link)s", link=link))
    return subject[:255], "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- wiring (once per process)
_connected = False
#: signal -> the mail event it is
_SIGNAL_EVENTS = {"order_paid": "paid", "payment_failed": "failed", "payment_refunded": "refunded",
                  "chargeback": "chargeback", "notification_problem": "notification_problem",
                  "amount_mismatch": "amount_mismatch", "test_payment_on_live": "test_payment_on_live"}
#: mail events the merchant chooses under another one's name: news that would have paid through a
#: test-mode payment while the provider is live comes with the mismatches (the mode does not match)
_CHOSEN_AS = {"test_payment_on_live": "amount_mismatch"}


def _chosen(event: str | None, settings: dict) -> bool:
    return _CHOSEN_AS.get(event, event) in settings["events"]


def connect() -> None:
    """Connect the signal receivers that wake a sender once the transaction that wrote mail rows
    has committed. Receivers look up the current app when they run, so one connection serves every
    app of the process."""
    global _connected
    if _connected:
        return
    _connected = True
    from . import signals

    def wake(sender, **extra):
        app = _current_app()
        state = app.extensions.get("psp") if app is not None else None
        mailer = getattr(state, "mailer", None)
        if mailer is None or not mailer.enabled:
            return
        try:
            mailer.written(state.db.session)
        except Exception:  # noqa: BLE001 - the rows are there: the job sends them
            log.exception("could not wake the mail sender")

    every = {**signals.BY_NAME, **signals.NOTICES}
    for signal_name in _SIGNAL_EVENTS:
        every[signal_name].connect(wake, weak=False)


def _current_app():
    from flask import current_app, has_app_context

    if not has_app_context():
        return None
    app = current_app._get_current_object()
    return app if "psp" in app.extensions else None


# ---------------------------------------------------------------------------- the admin panel's view
def outbox_rows(session: Session, limit: int = 200) -> dict[str, Any]:
    """What the panel shows: unsent and failed mails, newest first, and how many of each there are."""
    counts = dict(session.execute(select(MailMessage.status, func.count()).group_by(MailMessage.status)).all())
    rows = list(session.scalars(
        select(MailMessage).where(MailMessage.status.in_(("unsent", "failed")))
        .order_by(MailMessage.id.desc()).limit(limit)
    ))
    return {"rows": rows, "unsent": counts.get("unsent", 0), "failed": counts.get("failed", 0),
            "sent": counts.get("sent", 0)}


def send_again(session: Session, mail_id: int, now: datetime | None = None) -> MailMessage | None:
    """A failed mail is unsent again, due now, its attempts counted afresh (an owner or manager
    fixed the address or the server). None when there is no such failed mail. Does not commit."""
    row = _lock_mail(session, mail_id)
    if row is None or row.status != "failed":
        return None
    row.status, row.attempts, row.next_attempt_at = "unsent", 0, now or utcnow()
    session.info[_WRITTEN] = True
    return row

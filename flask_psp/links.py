"""Payment links: a URL a merchant sends a buyer (by mail, on an invoice) to pay one order later,
through any enabled provider.

A link holds no amount: the buyer's page reads the order from the shop's adapter
(``orders.get(ref)``) when it is opened, so an order whose total changed is charged its new total,
and an order paid meanwhile shows "already paid". A link is *paid* in the transaction that pays its
order (:func:`mark_links_paid`, the ledger's notice hook), *expired* once ``expires_at`` has passed
(worked out when read: no job needed), *cancelled* by the merchant.

The payment-request mail and its reminder are rows of the mail outbox (:mod:`flask_psp.mailer`),
written in the transaction that records the sending; the reminder (``PSP_LINK_REMINDER_DAYS``
before expiry) is the ``links`` job's, sent once per link.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from .admin.audit import audit
from .i18n import gettext as _
from .models import PageSettings, PaymentLink, execute_plain, lock_row, utcnow

if TYPE_CHECKING:
    from .mailer import Mailer
    from .payments import PaymentService

log = logging.getLogger("flask_psp.links")

STATUSES = ("active", "paid", "expired", "cancelled")
#: the longest note a link carries (shown on the buyer's page and in the mail)
MAX_NOTE = 1000
#: the longest a link may stay open
MAX_VALIDITY = timedelta(days=366)


class LinkError(ValueError):
    """What cannot be done with a link, said for the merchant (the message is translated)."""


def link_url(token: str) -> str:
    """``{PSP_PUBLIC_URL or the request's host}{PSP_URL_PREFIX}/pay/<token>``."""
    from flask import current_app, has_request_context, request

    base = current_app.config.get("PSP_PUBLIC_URL") or (request.host_url if has_request_context() else None)
    if not base:
        raise LinkError(_("Set PSP_PUBLIC_URL: a payment link made outside a web request needs the shop's address."))
    return f"{base.rstrip('/')}{current_app.config['PSP_URL_PREFIX']}/pay/{token}"


PaymentLink.url_for_token = link_url


def status_condition(status: str, now: datetime):
    """The SQL condition of the links that have ``status`` at ``now`` (the admin page's filter)."""
    L = PaymentLink
    open_ = and_(L.paid_at.is_(None), L.cancelled_at.is_(None))
    return {
        "paid": L.paid_at.is_not(None),
        "cancelled": and_(L.paid_at.is_(None), L.cancelled_at.is_not(None)),
        "expired": and_(open_, L.expires_at <= now),
        "active": and_(open_, L.expires_at > now),
    }[status]


def valid_email(value: str | None) -> str | None:
    """The address, trimmed, or None when there is none; raises LinkError when it is not one."""
    value = (value or "").strip()
    if not value:
        return None
    _name, address = parseaddr(value)
    if not address or address != value or "@" not in address or any(c in address for c in "\r\n,;<> "):
        raise LinkError(_("%(address)s is not an e-mail address.", address=value[:100]))
    if len(address) > 255:
        raise LinkError(_("That e-mail address is too long."))
    return address


#: where :func:`mark_links_paid` leaves the ids of the links it paid, in ``session.info``
_LINKS_PAID = "psp_links_paid"


_LINKS = PaymentLink.__table__
#: the links an order's payment pays: the order's open links, and the one it was started from
#: (``started_from``: its token, NULL when none — then that arm matches nothing). Built once: it
#: runs in the transaction of every notification that pays an order.
_PAY_LINKS = (
    update(_LINKS)
    .where(or_(and_(_LINKS.c.order_ref == bindparam("of_order"), _LINKS.c.cancelled_at.is_(None)),
               _LINKS.c.token == bindparam("started_from")),
           _LINKS.c.paid_at.is_(None))
    .values(paid_at=bindparam("now"), payment_id=bindparam("paid_by"))
    .returning(_LINKS.c.id)
)


def mark_links_paid(session: Session, notices: list[tuple[str, Any]]) -> None:
    """The ledger's notice hook, in the transaction that pays an order: its open links (and the one
    the payment was started from, whatever became of it) are paid, by that payment."""
    now = utcnow()
    for name, payment in notices:
        if name != "order_paid":
            continue
        started_from = ((payment.extra or {}).get("payment_link")) or None
        paid = execute_plain(session, _PAY_LINKS, {"of_order": payment.order_ref, "started_from": started_from,
                                                   "now": now, "paid_by": payment.id}).scalars().all()
        if paid:  # for payment_link_paid, sent after the commit: no query at all when no link was paid
            session.info.setdefault(_LINKS_PAID, []).extend(paid)


@dataclass
class LinkMail:
    recipient: str
    subject: str
    text: str
    html: str


class PaymentLinks:
    """Payment links of one app, on a :class:`~flask_psp.payments.PaymentService` (its session and
    orders adapter). Needs an app context (messages, URLs, the mail's templates).

    ::

        links = current_state().links()
        link = links.create("ORD-1", email="buyer@example.com", actor="flask psp payment-link")
        links.send(link, actor="…")
    """

    def __init__(self, service: "PaymentService", mailer: "Mailer | None" = None, *, locales=("en",),
                 default_locale: str = "en", reminder_days: float | None = None, batch_size: int = 100):
        self.service = service
        self.session = service.session
        self.orders = service.orders
        self.mailer = mailer
        self.locales = tuple(locales)
        self.default_locale = default_locale
        self.reminder_days = reminder_days
        self.batch_size = batch_size

    # ------------------------------------------------------------------ reading
    def by_token(self, token: str) -> PaymentLink | None:
        return self.session.scalar(select(PaymentLink).where(PaymentLink.token == token))

    def for_order(self, order_ref: str) -> list[PaymentLink]:
        """Every link of an order, oldest first."""
        return list(self.session.scalars(
            select(PaymentLink).where(PaymentLink.order_ref == order_ref).order_by(PaymentLink.id)))

    def of_payment(self, payment) -> PaymentLink | None:
        """The link a payment was started from, or that it paid."""
        token = (payment.extra or {}).get("payment_link")
        if token:
            found = self.by_token(token)
            if found is not None:
                return found
        return self.session.scalar(select(PaymentLink).where(PaymentLink.payment_id == payment.id).limit(1))

    # ------------------------------------------------------------------ merchant's actions
    def create(self, order_ref: str, *, email: str | None = None, expires_in: timedelta = timedelta(days=30),
               locale: str | None = None, note: str | None = None, actor: str = "shop code") -> PaymentLink:
        """A new active link for an unpaid order the shop knows. Commits (with an audit entry)."""
        order_ref = (order_ref or "").strip()
        order = self.orders.get(order_ref) if 0 < len(order_ref) <= 128 and order_ref.isprintable() else None
        if order is None:
            raise LinkError(_("The shop knows no order %(ref)s.", ref=order_ref[:128]))
        if self.service.settled_payment(order_ref) is not None:
            raise LinkError(_("Order %(ref)s is already paid.", ref=order_ref))
        if not isinstance(expires_in, timedelta) or expires_in <= timedelta(0) or expires_in > MAX_VALIDITY:
            raise LinkError(_("A link stays valid for 1 to 366 days."))
        if locale is not None and locale not in self.locales:
            raise LinkError(_("Unknown language %(locale)s.", locale=str(locale)[:16]))
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise LinkError(_("The note is longer than %(num)d characters.", num=MAX_NOTE))
        now = utcnow()
        link = PaymentLink(order_ref=order_ref, email=valid_email(email), locale=locale, note=note,
                           created_at=now, created_by=actor[:255], expires_at=now + expires_in, send_count=0)
        self.session.add(link)
        self.session.flush()
        audit(self.session, actor, "payment_link.create", order_ref,
              {"link_id": link.id, "expires_at": link.expires_at.isoformat(timespec="seconds")}, commit=False)
        self.session.commit()
        from .signals import payment_link_created

        payment_link_created.send(link, link=link)
        return link

    def cancel(self, link: PaymentLink, *, actor: str = "shop code") -> PaymentLink:
        """Cancel an unpaid link (cancelling it twice changes nothing). Commits."""
        locked = lock_row(self.session, PaymentLink, link.id)
        if locked is None:
            raise LinkError(_("There is no such payment link."))
        if locked.paid_at is not None:
            self.session.rollback()
            raise LinkError(_("This link has been paid: it cannot be cancelled."))
        if locked.cancelled_at is None:
            locked.cancelled_at, locked.cancelled_by = utcnow(), actor[:255]
            audit(self.session, actor, "payment_link.cancel", locked.order_ref, {"link_id": locked.id}, commit=False)
        self.session.commit()
        return locked

    def send(self, link: PaymentLink, *, actor: str = "shop code", reminder: bool = False) -> PaymentLink:
        """Mail an active link to its address (else the order's), through the outbox. Commits, then
        wakes a mail sender."""
        if self.mailer is None or not self.mailer.enabled:
            raise LinkError(_("No mail server is configured (MAIL_SERVER): the link cannot be mailed."))
        locked = lock_row(self.session, PaymentLink, link.id)
        if locked is None:
            raise LinkError(_("There is no such payment link."))
        try:
            mail = self._compose(locked, reminder=reminder)
        except LinkError:
            self.session.rollback()
            raise
        from .mailer import queue_mail

        queue_mail(self.session, "payment_link_reminder" if reminder else "payment_link", mail.recipient,
                   mail.subject, mail.text, html_body=mail.html,
                   dedupe_key=f"payment-link-reminder:{locked.id}" if reminder else None,
                   data={"link_id": locked.id, "order_ref": locked.order_ref})
        now = utcnow()
        if reminder:
            locked.reminder_sent_at = now
        else:
            locked.sent_at = now
            locked.send_count = (locked.send_count or 0) + 1
        locked.email = mail.recipient  # the order's address when the link had none: where it went
        audit(self.session, actor, "payment_link.remind" if reminder else "payment_link.send", locked.order_ref,
              {"link_id": locked.id, "to": mail.recipient}, commit=False)
        self.session.commit()
        self.mailer.written(self.session)
        return locked

    def opened(self, link: PaymentLink) -> None:
        """Record the first time a buyer opened the link. Commits."""
        if link.opened_at is not None:
            return
        self.session.execute(
            update(PaymentLink).where(PaymentLink.id == link.id, PaymentLink.opened_at.is_(None))
            .values(opened_at=utcnow()).execution_options(synchronize_session=False))
        self.session.commit()

    # ------------------------------------------------------------------ the reminder job
    def send_reminders(self, now: datetime | None = None):
        """The ``links`` job: mailed links still unpaid whose expiry is less than
        ``PSP_LINK_REMINDER_DAYS`` away get one reminder each (a row lock and a dedupe key on the
        mail keep two runs at once from sending two). A link that cannot be reminded (order gone or
        paid, no address) is set aside, not tried again."""
        from .jobs import JobReport

        now = now or utcnow()
        report = JobReport("links")
        if not self.reminder_days or self.mailer is None or not self.mailer.enabled:
            return report
        due = select(PaymentLink.id).where(
            PaymentLink.reminder_sent_at.is_(None), PaymentLink.sent_at.is_not(None),
            PaymentLink.paid_at.is_(None), PaymentLink.cancelled_at.is_(None),
            PaymentLink.expires_at > now, PaymentLink.expires_at <= now + timedelta(days=self.reminder_days),
        ).order_by(PaymentLink.id)
        seen: set[int] = set()
        while True:
            query = due.where(PaymentLink.id.not_in(seen)) if seen else due
            ids = list(self.session.scalars(query.limit(self.batch_size)))
            self.session.commit()
            if not ids:
                return report
            seen.update(ids)
            report.claimed += len(ids)
            for link_id in ids:
                if self._remind(link_id, now):
                    report.done += 1
                else:
                    report.left += 1

    def _remind(self, link_id: int, now: datetime) -> bool:
        link = lock_row(self.session, PaymentLink, link_id)
        if link is None or link.reminder_sent_at is not None or link.status_at(now) != "active":
            self.session.rollback()
            return False  # another run reminded it, or it changed meanwhile
        try:
            self.send(link, actor="flask psp run-jobs (links)", reminder=True)
            return True
        except LinkError as exc:
            self.session.rollback()
            log.info("no reminder for payment link %s: %s", link_id, exc)
            link = lock_row(self.session, PaymentLink, link_id)
            if link is not None and link.reminder_sent_at is None:
                link.reminder_sent_at = now  # set aside: the next run does not ask again
            self.session.commit()
            return False

    # ------------------------------------------------------------------ the mail
    def _compose(self, link: PaymentLink, *, reminder: bool) -> LinkMail:
        from flask import current_app, render_template
        from flask_babel import force_locale

        from .i18n import best_locale
        from .money import format_amount

        now = utcnow()
        if link.status_at(now) != "active":
            raise LinkError(_("This link is %(status)s: it cannot be sent.", status=status_word(link.status_at(now))))
        order = self.orders.get(link.order_ref)
        if order is None:
            raise LinkError(_("The shop knows no order %(ref)s.", ref=link.order_ref))
        if self.service.settled_payment(link.order_ref) is not None:
            raise LinkError(_("Order %(ref)s is already paid.", ref=link.order_ref))
        recipient = valid_email(link.email or order.email)
        if recipient is None:
            raise LinkError(_("Neither the link nor the order has an e-mail address."))
        locale = best_locale([link.locale, order.locale], self.locales, self.default_locale)
        settings = self.session.scalar(select(PageSettings).order_by(PageSettings.id).limit(1)) or PageSettings()
        base = (current_app.config.get("PSP_PUBLIC_URL") or "").rstrip("/")
        logo = settings.logo_url
        if logo and logo.startswith("/"):
            logo = f"{base}{logo}" if base else None
        from babel.dates import format_date

        with force_locale(locale):
            context = dict(
                link=link, order=order, url=link.url, brand=settings.brand_name or "", logo_url=logo,
                amount=format_amount(order.amount, order.currency, locale),
                expires=format_date(link.expires_at.date(), format="long", locale=locale),
                reminder=reminder, locale=locale, _=_, gettext=_,
            )
            prefix = f"[{settings.brand_name}] " if settings.brand_name else ""
            if reminder:
                subject = _("Reminder: your payment link for order %(ref)s expires on %(date)s",
                            ref=order.reference, date=context["expires"])
            else:
                subject = _("Payment request for order %(ref)s: %(amount)s", ref=order.reference,
                            amount=context["amount"])
            text = render_template("psp/mail/payment_link.txt", **context)
            html = render_template("psp/mail/payment_link.html", **context)
        return LinkMail(recipient, prefix + subject, text, html)


def status_word(status: str) -> str:
    """A link's status in the current language."""
    return {"active": _("active"), "paid": _("paid"), "expired": _("expired"), "cancelled": _("cancelled")}[status]


def qr_svg(url: str, scale: int = 4, standalone: bool = False) -> str:
    """The QR code of ``url`` as SVG (for an invoice printed on paper): an ``<svg>`` element to put
    in a page, or with ``standalone`` a whole SVG document (a file to download)."""
    import io

    import segno

    code = segno.make(url, error="m")
    if not standalone:
        return code.svg_inline(scale=scale, title=url)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=scale, title=url)
    return out.getvalue().decode()


_connected = False


def connect() -> None:
    """Send ``payment_link_paid`` for the links an order's payment paid, once ``order_paid`` is
    sent (after the commit). Once per process; the receiver finds the current app when it runs."""
    global _connected
    if _connected:
        return
    _connected = True
    from . import signals

    def paid(sender, payment, **extra):
        from flask import current_app, has_app_context

        if not has_app_context() or "psp" not in current_app.extensions:
            return
        session = current_app.extensions["psp"].db.session
        link_ids = session.info.pop(_LINKS_PAID, None)
        if not link_ids:
            return
        for link in session.scalars(select(PaymentLink).where(PaymentLink.id.in_(link_ids))):
            if link.payment_id == payment.id:
                signals.payment_link_paid.send(link, link=link, payment=payment)

    signals.order_paid.connect(paid, weak=False)

"""The payments list (filters, keyset pages), a payment's timeline, and capture/refund/cancel."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterator, Mapping

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.orm import Session, defer

from ..i18n import gettext as _
from ..models import Payment, PaymentEvent
from ..money import format_amount, from_decimal_string, to_decimal_string
from ..providers import provider_names
from ..providers.base import ProviderError
from ..states import PaymentStatus as S
from .audit import audit
from .inputs import PAGE_SIZE, bounded_amount
from .providers import MODES, provider_display_name


@dataclass
class PaymentFilters:
    status: str = ""
    provider: str = ""
    mode: str = ""
    date_from: str = ""
    date_to: str = ""
    order_ref: str = ""
    amount: str = ""
    currency: str = ""
    q: str = ""
    flagged: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "PaymentFilters":
        return cls(**{k: (args.get(k) or "").strip() for k in
                      ("status", "provider", "mode", "date_from", "date_to", "order_ref", "amount", "currency", "q")},
                   flagged=args.get("flagged") in ("1", "on"))

    def as_args(self) -> dict[str, str]:
        args = {k: v for k, v in self.__dict__.items() if v and k != "flagged"}
        if self.flagged:
            args["flagged"] = "1"
        return args


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def payments_page(session: Session, filters: PaymentFilters, before_id: int | None = None,
                  limit: int = PAGE_SIZE) -> tuple[list[Payment], int | None, list[str]]:
    """Newest first, keyset-paginated on the primary key (``before_id``): each page is an index walk,
    as fast on page 20 000 as on page 1. Returns (rows, next before_id or None, problems)."""
    problems: list[str] = []
    query = select(Payment)
    dated = False  # a date filter: page along (created_at, id), which its index walks in order
    if filters.status:
        if filters.status in {s.value for s in S}:
            query = query.where(Payment.status == filters.status)
        else:
            problems.append(_("Unknown status."))
    if filters.provider:
        query = query.where(Payment.provider == filters.provider)
    if filters.mode in MODES:
        query = query.where(Payment.mode == filters.mode)
    if filters.currency:
        query = query.where(Payment.currency == filters.currency.upper())
    if filters.date_from:
        day = _parse_day(filters.date_from)
        if day is None:
            problems.append(_("Dates are written YYYY-MM-DD."))
        else:
            query = query.where(Payment.created_at >= datetime.combine(day, datetime.min.time()))
            dated = True
    if filters.date_to:
        day = _parse_day(filters.date_to)
        if day is None:
            problems.append(_("Dates are written YYYY-MM-DD."))
        elif day < date.max:  # up to 9999-12-31: every payment
            query = query.where(Payment.created_at < datetime.combine(day + timedelta(days=1), datetime.min.time()))
            dated = True
    if filters.order_ref:
        query = query.where(Payment.order_ref == filters.order_ref)
    if filters.amount:
        try:
            amount = bounded_amount(filters.amount.replace(",", "."), filters.currency or "EUR")
        except ValueError:
            problems.append(_("The amount must be written like 12.50."))
        else:
            query = query.where(Payment.amount == amount)
    if filters.q:
        term = filters.q
        # each branch is an index probe; psp_reference is indexed behind provider, hence the IN
        query = query.where(or_(Payment.order_ref == term,
                                and_(Payment.provider.in_(provider_names()), Payment.psp_reference == term),
                                Payment.token == term, Payment.email.in_({term, term.lower()})))
    if filters.flagged:
        query = query.where(Payment.flag.is_not(None))
    order = (Payment.created_at.desc(), Payment.id.desc()) if dated else (Payment.id.desc(),)
    if before_id:
        anchor = session.scalar(select(Payment.created_at).where(Payment.id == before_id)) if dated else None
        if anchor is not None:
            query = query.where(tuple_(Payment.created_at, Payment.id) < tuple_(anchor, before_id))
        else:
            query = query.where(Payment.id < before_id)
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    next_before = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_before, problems


def payment_timeline(session: Session, payment: Payment) -> list[PaymentEvent]:
    return list(session.scalars(
        select(PaymentEvent).options(defer(PaymentEvent.body))
        .where(PaymentEvent.payment_id == payment.id).order_by(PaymentEvent.id)
    ))


def other_payments_count(session: Session, payment: Payment) -> int:
    """How many other payments the same buyer e-mail made (the e-mail's index answers)."""
    if not payment.email:
        return 0
    return session.scalar(select(func.count()).select_from(Payment).where(
        Payment.email == payment.email, Payment.id != payment.id)) or 0


def parse_amount(value: str, currency: str) -> int | None:
    """A merchant-typed amount in minor units, with either decimal separator ("12.50", "12,50",
    "1 234,50", "1,234.50"); blank → None (the whole amount). Raises ValueError with a message
    for the merchant."""
    value = "".join((value or "").split())  # spaces, and the no-break spaces French groups digits with
    if not value:
        return None
    if "," in value and "." in value:  # the last one is the decimal separator, the other groups digits
        group = "," if value.rindex(".") > value.rindex(",") else "."
        value = value.replace(group, "")
    value = value.replace(",", ".")
    try:
        amount = bounded_amount(value, currency)
    except ValueError:
        raise ValueError(_("%(value)s is not an amount in %(currency)s.", value=value[:40], currency=currency)) from None
    if amount <= 0:
        raise ValueError(_("The amount must be positive."))
    return amount


def operate(service, session: Session, payment: Payment, verb: str, amount: int | None, actor: str) -> str:
    """Capture, refund or cancel through the provider. Returns a message for the merchant — what
    was done, or, for providers that only acknowledge such requests (Adyen, HiPay), that it was
    requested and awaits their notification. ``amount``: minor units (None: the whole; see
    :func:`asked_amount`). Raises ValueError (bad amount, wrong state) or
    ProviderError (the PSP refused), both with a message."""
    details = {"amount": amount, "currency": payment.currency, "status_before": payment.status}
    if verb not in ("capture", "refund", "cancel"):
        raise ValueError(_("Unknown action."))
    try:
        done = service.operate(payment, verb, amount)
    except ProviderError as exc:
        session.rollback()
        audit(session, actor, f"payment.{verb}.refused", payment.token, {**details, "error": exc.message})
        raise
    session.refresh(payment)
    audit(session, actor, f"payment.{verb}", payment.token,
          {**details, "status_after": payment.status, "awaiting_provider": done.awaiting_provider})
    if done.awaiting_provider:
        provider = provider_display_name(payment.provider)
        return {
            "capture": _("Capture requested; %(provider)s confirms it by notification.", provider=provider),
            "refund": _("Refund requested; %(provider)s confirms it by notification.", provider=provider),
            "cancel": _("Cancellation requested; %(provider)s confirms it by notification.", provider=provider),
        }[verb]
    return {"capture": _("Payment captured."), "refund": _("Refund done."), "cancel": _("Payment cancelled.")}[verb]


def amount_field(amount: int, currency: str, locale: str) -> str:
    """An amount as a form field shows it, with the locale's decimal separator ("12,50" in French)."""
    from babel.numbers import get_decimal_symbol

    return to_decimal_string(amount, currency).replace(".", get_decimal_symbol(locale))


def limit_of(payment: Payment, verb: str) -> int:
    """What ``verb`` may still take of ``payment``: requests awaiting the PSP count as made."""
    return payment.capturable_amount if verb == "capture" else payment.refundable_amount


def asked_amount(payment: Payment, verb: str, amount_text: str, locale: str) -> int | None:
    """The amount the merchant typed for a capture or refund, checked against what is left before any
    confirmation: blank is the whole of what is left; more than that is refused with the limit in
    money ("at most €12.50"). Cancellations take no amount (None). Raises ValueError with a message."""
    if verb == "cancel":
        return None
    amount = parse_amount(amount_text, payment.currency)
    limit = limit_of(payment, verb)
    if limit <= 0:
        provider = provider_display_name(payment.provider)
        if verb == "capture" and any(op.get("operation") == "cancel" for op in payment.pending_operations):
            raise ValueError(_("A cancellation awaits %(provider)s's confirmation: nothing can be captured.",
                               provider=provider))
        waiting = payment.pending_amount(verb)
        if waiting:
            money = format_amount(waiting, payment.currency, locale)
            raise ValueError(_("Nothing is left to capture: %(amount)s asked earlier awaits %(provider)s's confirmation.",
                               amount=money, provider=provider) if verb == "capture" else
                             _("Nothing is left to refund: %(amount)s asked earlier awaits %(provider)s's confirmation.",
                               amount=money, provider=provider))
        raise ValueError(_("Nothing is left to capture.") if verb == "capture" else _("Nothing is left to refund."))
    if amount is None:
        return limit
    if amount > limit:
        money = format_amount(limit, payment.currency, locale)
        raise ValueError(_("You can capture at most %(amount)s.", amount=money) if verb == "capture"
                         else _("You can refund at most %(amount)s.", amount=money))
    return amount


_DETAIL_STATUS = re.compile(r"^status (?P<status>[a-z_]+)(?P<unchanged> \(no change\))?(?P<rest>.*)$", re.S)
_SAME_AS = re.compile(r"^same as event #(?P<id>\d+)$")
_AWAITING = re.compile(r"; awaiting the PSP: (?P<ops>.*)$", re.S)
_OPERATION = re.compile(r"^(?P<op>capture|refund) of (?P<amount>\d+(?:\.\d+)?) (?P<currency>[A-Z]{3})$")


def timeline_detail(detail: str | None, label, locale: str) -> str:
    """The ledger's note on an inbox row, in the merchant's language: "status paid; awaiting the
    PSP: refund of 5.00 EUR" → "statut payé ; en attente du PSP : remboursement de 5,00 €". Notes
    of other shapes (a PSP's own words, a mismatch) are shown as written."""
    if not detail:
        return ""
    same = _SAME_AS.match(detail)
    if same is not None:
        return _("same as event #%(id)s", id=same["id"])
    match = _DETAIL_STATUS.match(detail)
    if match is None:
        return detail
    words = [_("status %(status)s", status=label("status", match["status"]))]
    if match["unchanged"]:
        words[0] += " " + _("(no change)")
    rest = match["rest"]
    awaiting = _AWAITING.search(rest)
    if awaiting:
        rest = rest[:awaiting.start()]
    if rest.startswith("; test payment on a live shop: the order was not marked paid"):
        words.append(_("test payment on a live shop: the order was not marked paid"))
        rest = rest[len("; test payment on a live shop: the order was not marked paid"):]
    if awaiting:
        operations = []
        for part in awaiting["ops"].split(", "):
            op = _OPERATION.match(part)
            if op is not None:
                try:
                    money = format_amount(from_decimal_string(op["amount"], op["currency"]), op["currency"], locale)
                except ValueError:
                    money = f"{op['amount']} {op['currency']}"
                operations.append(_("capture of %(amount)s", amount=money) if op["op"] == "capture"
                                  else _("refund of %(amount)s", amount=money))
            elif part == "cancellation":
                operations.append(_("cancellation"))
            elif part.startswith("capture of the whole amount"):
                operations.append(_("capture of the whole amount"))
            elif part.startswith("refund of the whole amount"):
                operations.append(_("refund of the whole amount"))
            else:
                operations.append(part)
        words.append(_("awaiting the PSP: %(operations)s", operations=", ".join(operations)))
    return "; ".join(words) + rest


#: the columns of the payments export, in order
CSV_COLUMNS = ("created_at", "order_ref", "provider", "mode", "status", "amount", "captured", "refunded",
               "currency", "email", "psp_reference", "paid_at", "flag")


def payments_csv(session: Session, filters: PaymentFilters, batch: int = 1000) -> Iterator[str]:
    """The filtered list as CSV (decimal amounts with a point, UTC times), newest first, line by
    line: a page of ``batch`` payments at a time walks the same keyset as the list, so an export of a
    million payments holds a thousand in memory. Filters are checked by the caller (payments_page)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    before = None
    while True:
        rows, before, _problems = payments_page(session, filters, before, limit=batch)
        for p in rows:
            yield line((
                p.created_at.strftime("%Y-%m-%d %H:%M:%S"), _csv_safe(p.order_ref), p.provider, p.mode, p.status,
                to_decimal_string(p.amount, p.currency), to_decimal_string(p.captured_amount or 0, p.currency),
                to_decimal_string(p.refunded_amount or 0, p.currency), p.currency, _csv_safe(p.email or ""),
                _csv_safe(p.psp_reference or ""), p.paid_at.strftime("%Y-%m-%d %H:%M:%S") if p.paid_at else "",
                _csv_safe(p.flag or ""),
            ))
        session.expunge_all()  # what was written is not kept in the session
        if before is None:
            return


def _csv_safe(text: str) -> str:
    """Text a buyer or a PSP wrote never starts a spreadsheet formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

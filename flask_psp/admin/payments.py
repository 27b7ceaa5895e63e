"""The payments list (filters, keyset pages), a payment's timeline, and capture/refund/cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Mapping

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.orm import Session, defer

from ..i18n import gettext as _
from ..models import Payment, PaymentEvent
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


def parse_amount(value: str, currency: str) -> int | None:
    """A merchant-typed amount ("12.50", "12,50") in minor units; blank → None (the whole amount).
    Raises ValueError with a message for the merchant."""
    value = (value or "").strip().replace(",", ".").replace(" ", "")
    if not value:
        return None
    try:
        amount = bounded_amount(value, currency)
    except ValueError:
        raise ValueError(_("%(value)s is not an amount in %(currency)s.", value=value[:40], currency=currency)) from None
    if amount <= 0:
        raise ValueError(_("The amount must be positive."))
    return amount


def operate(service, session: Session, payment: Payment, verb: str, amount_text: str, actor: str) -> str:
    """Capture, refund or cancel through the provider. Returns a message for the merchant — what
    was done, or, for providers that only acknowledge such requests (Adyen, HiPay), that it was
    requested and awaits their notification. Raises ValueError (bad amount, wrong state) or
    ProviderError (the PSP refused), both with a message."""
    amount = None
    if verb in ("capture", "refund"):
        amount = parse_amount(amount_text, payment.currency)
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

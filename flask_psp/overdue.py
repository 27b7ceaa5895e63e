"""What waits on a PSP for too long, for the reconcile job to flag and the overview's health box to
count. No Flask here.

* Requests awaiting the PSP: a capture, refund or cancellation the PSP took but has not confirmed
  (``Payment.pending_operations``: Adyen's modifications, HiPay's maintenance) for longer than
  ``PSP_AWAITING_PSP_AFTER``: its notification may have been lost.
* Payments pending with a PSP the plugin cannot ask (Adyen: no status lookup for Hosted Checkout
  sessions) for longer than ``PSP_RECONCILE_AFTER``: only the merchant can look.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Payment, requested_at, utcnow


def _deadline(older_than: timedelta, now: datetime | None) -> datetime:
    """Requests made before this are overdue."""
    return (now or utcnow()) - older_than


def _made_before(payment: Payment, limit: datetime) -> list[dict]:
    return [op for op in payment.pending_operations if (requested_at(op) or limit) < limit]


def overdue_operations(payment: Payment, older_than: timedelta, now: datetime | None = None) -> list[dict]:
    """The payment's requests awaiting the PSP made before ``now - older_than``, oldest first."""
    return _made_before(payment, _deadline(older_than, now))


def overdue_requests(session: Session, older_than: timedelta, now: datetime | None = None) -> list[Payment]:
    """Payments with a request awaiting the PSP for longer than ``older_than``, oldest request first
    (found by ``awaiting_psp_since``'s index)."""
    limit = _deadline(older_than, now)
    candidates = session.scalars(
        select(Payment).where(Payment.awaiting_psp_since < limit).order_by(Payment.awaiting_psp_since, Payment.id))
    return [p for p in candidates if _made_before(p, limit)]


def count_overdue_requests(session: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """For the overview's health box: one count on an index."""
    limit = _deadline(older_than, now)
    return session.scalar(select(func.count()).select_from(Payment).where(Payment.awaiting_psp_since < limit)) or 0

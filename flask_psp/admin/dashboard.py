"""The overview's counts: payments by status, flagged payments, inbox entries that need a look."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Payment, PaymentEvent


def dashboard(session: Session) -> dict[str, Any]:
    by_status = dict(session.execute(select(Payment.status, func.count()).group_by(Payment.status)).all())
    flagged = session.scalar(select(func.count()).select_from(Payment).where(Payment.flag.is_not(None))) or 0
    problems = session.scalar(
        select(func.count()).select_from(PaymentEvent).where(
            PaymentEvent.outcome.in_(("rejected", "unmatched", "mismatch", "error", "invalid")))
    ) or 0
    return {"by_status": by_status, "flagged": flagged, "inbox_problems": problems}

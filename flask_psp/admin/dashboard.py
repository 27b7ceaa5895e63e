"""The overview's counts: payments by status, flagged payments, inbox entries that need a look."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import DEFAULTS
from ..models import Payment, PaymentEvent
from ..overdue import count_overdue_requests


def dashboard(session: Session, awaiting_after_seconds: float = DEFAULTS["PSP_AWAITING_PSP_AFTER"]) -> dict[str, Any]:
    by_status = dict(session.execute(select(Payment.status, func.count()).group_by(Payment.status)).all())
    flagged = session.scalar(select(func.count()).select_from(Payment).where(Payment.flag.is_not(None))) or 0
    problems = session.scalar(
        select(func.count()).select_from(PaymentEvent).where(
            PaymentEvent.outcome.in_(("rejected", "unmatched", "mismatch", "error", "invalid")))
    ) or 0
    # health: captures, refunds and cancellations the PSP has not confirmed after PSP_AWAITING_PSP_AFTER
    overdue = count_overdue_requests(session, timedelta(seconds=awaiting_after_seconds))
    return {"by_status": by_status, "flagged": flagged, "inbox_problems": problems, "awaiting_psp_overdue": overdue}

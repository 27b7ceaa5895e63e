"""The Settlements page: report lines reconciliation could not match or found different, paid
payments no report has settled, and the CSV of what the filters show."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from sqlalchemy.orm import Session

from ..money import to_decimal_string
from ..settlements import PROVIDERS
from ..settlements.reconcile import PROBLEMS, STATUSES, settlement_lines, unsettled_payments
from .inputs import parse_before

#: the status filter's choices beyond one status: what needs the accountant (the default) and everything
SHOWN = ("problems", "all") + STATUSES
CSV_COLUMNS = ("line", "provider", "mode", "kind", "status", "booked_on", "psp_reference", "merchant_reference",
               "payout_id", "currency", "gross", "net_currency", "fee", "net", "payment_id", "detail")


@dataclass
class Filters:
    provider: str = ""
    status: str = "problems"
    mode: str = ""

    @classmethod
    def read(cls, args: Mapping[str, str]) -> "Filters":
        """Unknown values are ignored (a filter never fails the page)."""
        provider = args.get("provider", "")
        status = args.get("status", "problems")
        mode = args.get("mode", "")
        return cls(provider if provider in PROVIDERS else "", status if status in SHOWN else "problems",
                   mode if mode in ("test", "live") else "")

    def statuses(self):
        return None if self.status == "all" else PROBLEMS if self.status == "problems" else (self.status,)

    def as_args(self) -> dict[str, str]:
        return {k: v for k, v in (("provider", self.provider), ("status", self.status), ("mode", self.mode)) if v}


def page_data(session: Session, filters: Filters, before: str | None, days: int, now: datetime, limit: int = 100):
    """(lines, id for the next page or None, payments paid but not settled after ``days``)."""
    before_id = parse_before(before)
    rows = list(settlement_lines(session, provider=filters.provider or None, status=filters.statuses(),
                                 mode=filters.mode or None, before_id=before_id, limit=limit + 1))
    unsettled = unsettled_payments(session, now, timedelta(days=days), provider=filters.provider or None)
    if filters.mode:
        unsettled = [p for p in unsettled if p.mode == filters.mode]
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None), unsettled


def to_csv(session: Session, filters: Filters, days: int, now: datetime) -> str:
    """Every line the filters show, then the unsettled payments (kind ``not_settled``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    for line in settlement_lines(session, provider=filters.provider or None, status=filters.statuses(),
                                 mode=filters.mode or None, limit=None):
        writer.writerow({k: _cell(v) for k, v in {
            "line": line.id, "provider": line.provider, "mode": line.mode, "kind": line.kind, "status": line.status,
            "booked_on": line.booked_on.isoformat(), "psp_reference": line.psp_reference or "",
            "merchant_reference": line.merchant_reference or "", "payout_id": line.payout_id or "",
            "currency": line.currency, "gross": to_decimal_string(line.gross, line.currency),
            "net_currency": line.net_currency, "fee": to_decimal_string(line.fee, line.net_currency),
            "net": to_decimal_string(line.net, line.net_currency), "payment_id": line.payment_id or "",
            "detail": line.detail or "",
        }.items()})
    for payment in unsettled_payments(session, now, timedelta(days=days), provider=filters.provider or None,
                                      limit=100_000):
        if filters.mode and payment.mode != filters.mode:
            continue
        writer.writerow({k: _cell(v) for k, v in {
            "provider": payment.provider, "mode": payment.mode, "kind": "not_settled", "status": "not_settled",
            "booked_on": payment.paid_at.date().isoformat(), "psp_reference": payment.psp_reference or "",
            "merchant_reference": payment.order_ref, "currency": payment.currency,
            "gross": to_decimal_string(payment.captured_amount, payment.currency), "payment_id": payment.id,
            "detail": f"paid {payment.paid_at:%Y-%m-%d}, in no settlement report after {days} days",
        }.items()})
    return out.getvalue()


def _cell(value) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: report text comes from outside."""
    text = str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not text[1:2].isdigit()):
        return "'" + text
    return text

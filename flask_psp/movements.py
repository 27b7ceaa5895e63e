"""The accounting journal's vocabulary and its one way in. No Flask.

A movement is money that moved, once: a capture, a refund, a chargeback, a PSP fee, a payout to
the bank… Each is one ``psp_movements`` row (:class:`~flask_psp.models.Movement`), added by the
transaction that proved it — the ledger's, for a payment's move; a settlement import's, for a fee
or a payout — and never updated nor deleted: a correction is a new row (an ``adjustment``)."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum

from sqlalchemy import insert

from .models import Movement, execute_plain, utcnow


class MovementKind(str, Enum):
    """What moved, which also says which way: ``amount`` is always positive."""

    CAPTURE = "capture"  # the buyer's money taken
    REFUND = "refund"  # given back to the buyer
    CHARGEBACK = "chargeback"  # taken back by the buyer's bank
    CHARGEBACK_REVERSAL = "chargeback_reversal"  # a chargeback the merchant won
    FEE = "fee"  # what the PSP kept for its service
    PAYOUT = "payout"  # what the PSP paid into the merchant's bank account
    ADJUSTMENT = "adjustment"  # a correction the PSP made (its note says which)

    def __str__(self) -> str:
        return self.value


MODES = ("test", "live")
_INSERT_MOVEMENT = insert(Movement.__table__)


def record_movement(session, *, kind, amount: int, currency: str, provider: str, mode: str,
                    occurred_at: datetime, payment_id: int | None = None, psp_reference: str | None = None,
                    event_id: int | None = None, settlement_line_id: int | None = None,
                    note: str | None = None) -> Movement:
    """Add one movement to ``session`` (the caller's transaction commits it with the rest).
    ``amount`` is a positive int in minor units; ``occurred_at`` a UTC datetime (an aware one is
    turned into naive UTC, as every datetime of the plugin is stored)."""
    movement = Movement(**movement_values(
        kind=kind, amount=amount, currency=currency, provider=provider, mode=mode, occurred_at=occurred_at,
        payment_id=payment_id, psp_reference=psp_reference, event_id=event_id,
        settlement_line_id=settlement_line_id, note=note))
    session.add(movement)
    return movement


def insert_movements(session, movements: list[dict]) -> None:
    """Write movements (``record_movement``'s arguments, each) in one INSERT in the caller's
    transaction, without the session's unit of work: the ledger's way, on every notification that
    moves money."""
    if movements:  # the table, not the mapped class: a plain INSERT, no ORM bulk-insert machinery
        execute_plain(session, _INSERT_MOVEMENT, [movement_values(**movement) for movement in movements])


def movement_values(*, kind, amount: int, currency: str, provider: str, mode: str, occurred_at: datetime,
                    payment_id: int | None = None, psp_reference: str | None = None, event_id: int | None = None,
                    settlement_line_id: int | None = None, note: str | None = None) -> dict:
    """A movement's columns, checked: raises ValueError for what is not a movement."""
    kind = MovementKind(kind)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"a movement's amount is a positive int in minor units, not {amount!r}")
    if mode not in MODES:
        raise ValueError(f"a movement's mode is 'test' or 'live', not {mode!r}")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"a movement's currency is an ISO 4217 code, not {currency!r}")
    if not isinstance(occurred_at, datetime):
        raise ValueError(f"a movement's occurred_at is a datetime, not {occurred_at!r}")
    if occurred_at.tzinfo is not None:
        occurred_at = occurred_at.astimezone(timezone.utc).replace(tzinfo=None)
    return {"kind": kind.value, "amount": amount, "currency": currency.upper(), "provider": provider, "mode": mode,
            "occurred_at": occurred_at, "recorded_at": utcnow(), "payment_id": payment_id,
            "psp_reference": psp_reference, "event_id": event_id, "settlement_line_id": settlement_line_id,
            "note": note}

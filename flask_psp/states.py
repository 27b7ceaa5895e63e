"""Payment statuses and the moves allowed between them. Pure Python: no Flask, no database.

::

    created → pending → authorized → paid → partially_refunded → refunded
                 ↘ failed / cancelled / expired

A verified report that money was taken wins over an earlier failure: failed, cancelled and
expired may still move to authorized or paid (the move is flagged for the merchant). Nothing
moves backwards from paid except through refunds.
"""

from __future__ import annotations

import enum


class PaymentStatus(str, enum.Enum):
    CREATED = "created"
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    def __str__(self) -> str:
        return self.value


S = PaymentStatus

#: statuses in which the buyer's money was taken or reserved: the order counts as paid
SETTLED = frozenset({S.AUTHORIZED, S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED})
#: statuses from which no further PSP outcome is expected unless something unusual happens
UNSUCCESSFUL = frozenset({S.FAILED, S.CANCELLED, S.EXPIRED})
OPEN = frozenset({S.CREATED, S.PENDING})

_ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.CREATED: frozenset({S.PENDING, S.AUTHORIZED, S.PAID, S.FAILED, S.CANCELLED, S.EXPIRED}),
    S.PENDING: frozenset({S.AUTHORIZED, S.PAID, S.FAILED, S.CANCELLED, S.EXPIRED}),
    S.AUTHORIZED: frozenset({S.PAID, S.CANCELLED, S.EXPIRED}),
    S.PAID: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.REFUNDED: frozenset(),
    # late success: the PSP says money was taken after all
    S.FAILED: frozenset({S.AUTHORIZED, S.PAID, S.CANCELLED, S.EXPIRED}),
    S.CANCELLED: frozenset({S.AUTHORIZED, S.PAID}),
    S.EXPIRED: frozenset({S.AUTHORIZED, S.PAID}),
}


class Move(enum.Enum):
    APPLY = "apply"  # a real transition
    SAME = "same"  # already there: applying it again changes nothing
    STALE = "stale"  # an older piece of news (e.g. "pending" after "paid"): ignored
    LATE_SUCCESS = "late_success"  # allowed, but flagged for the merchant


def can_move(current: PaymentStatus | str, target: PaymentStatus | str) -> bool:
    return PaymentStatus(target) in _ALLOWED[PaymentStatus(current)]


def classify(current: PaymentStatus | str, target: PaymentStatus | str) -> Move:
    """How a verified report of ``target`` applies to a payment in ``current``."""
    current, target = PaymentStatus(current), PaymentStatus(target)
    if current == target and target != S.PARTIALLY_REFUNDED:
        return Move.SAME
    if target in _ALLOWED[current]:
        if current in UNSUCCESSFUL and target in SETTLED:
            return Move.LATE_SUCCESS
        return Move.APPLY
    return Move.STALE


def allowed_targets(current: PaymentStatus | str) -> frozenset[PaymentStatus]:
    return _ALLOWED[PaymentStatus(current)]

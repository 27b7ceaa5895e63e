"""The core's vocabulary for news from a PSP: what a provider proves, and what became of it.

Pure Python: no Flask, no database, no provider. A provider module turns PSP traffic into
:class:`VerifiedMessage` objects — facts whose authenticity it has proven (signature, seal, verify
API, or re-fetch from the PSP) — each carrying neutral :class:`Event` objects; the ledger
(:mod:`flask_psp.ledger`) applies them and closes the inbox row with an :class:`InboxOutcome`::

    VerifiedMessage(provider="payplug", dedupe_key="payplug:pay_1:paid::0", mode="test",
                    event_type="notification:paid", payment_token=token,
                    events=[Event(EventKind.CAPTURED, amount=1500, currency="EUR", captured_total=1500)])
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


class EventKind(str, enum.Enum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"  # money taken; ``captured_total`` says how much in all
    #: the PSP approved the payment and took or reserved the money as the payment asked when it
    #: was started (Adyen's AUTHORISATION): the ledger reads the payment's own capture policy —
    #: captured under "auto", authorized under "manual" and "delayed" — never today's settings
    APPROVED = "approved"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"  # ``refunded_total`` (absolute) or ``refund_delta`` (one refund)
    CAPTURE_FAILED = "capture_failed"
    REFUND_FAILED = "refund_failed"
    CANCEL_FAILED = "cancel_failed"
    CHARGEBACK = "chargeback"  # ``operation_amount``: how much the buyer's bank took back, when the PSP says
    CHARGEBACK_REVERSED = "chargeback_reversed"  # a chargeback the merchant won: the money is back
    #: the PSP took a capture, refund or cancellation (``operation``, ``operation_amount``) but
    #: only acknowledged it: the outcome comes later by notification. Moves no money; the payment
    #: shows it as awaiting the PSP until the matching outcome (or failure) arrives
    REQUESTED = "requested"


#: operations a REQUESTED event may name
OPERATIONS = ("capture", "refund", "cancel")


@dataclass
class Event:
    kind: EventKind
    #: the amount of the whole payment as the PSP reports it, checked against ours when given
    amount: int | None = None
    currency: str | None = None
    authorized_total: int | None = None
    captured_total: int | None = None
    refunded_total: int | None = None
    refund_delta: int | None = None
    reason: str | None = None
    #: REQUESTED: "capture" | "refund" | "cancel", and the amount asked (None: all there is).
    #: CAPTURED: set by the plugin itself (never by a provider's parsing) on the PSP's answer to a
    #: capture the merchant asked for, whose amount it was: the one capture that may be partial
    operation: str | None = None
    operation_amount: int | None = None
    #: the PSP's own reference of one capture, refund or cancellation (Adyen's modification
    #: pspReference): ties a request to its outcome, and a refund to its later failure
    operation_reference: str | None = None
    #: when it happened by the PSP's own clock (naive UTC, :func:`psp_time`), where its news says:
    #: the date of the accounting movement it makes (None: the moment it is proven)
    occurred_at: datetime | None = None


def psp_time(value: Any) -> datetime | None:
    """A PSP's timestamp as naive UTC, the plugin's way of keeping datetimes: ISO 8601 with an
    offset or ``Z`` (Adyen's eventDate, PayPal's create_time, Sips' transactionDateTime, HiPay's
    ``+0000``) or Unix seconds (PayPlug). None for what is not one — the news is not refused for it."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
        if not isinstance(value, str) or not value.strip():
            return None
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and text[-6] != ":":
            text = text[:-2] + ":" + text[-2:]  # +0000 -> +00:00
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo is None else parsed.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        return None


@dataclass
class VerifiedMessage:
    """One authentic piece of news about one payment. ``dedupe_key`` identifies the news itself:
    receiving it twice must change nothing the second time."""

    provider: str
    dedupe_key: str
    events: list[Event]
    mode: str  # "test" | "live", as the PSP reports it
    event_type: str  # the PSP's own name for what happened, for the inbox
    psp_reference: str | None = None
    #: how to find our payment: our public token when the PSP echoes it, else the PSP reference
    payment_token: str | None = None
    merchant_reference: str | None = None
    raw: Any = None  # the PSP's data this message was read from, for the inbox of batch items
    #: what the PSP says of the card, for support (see :func:`card_facts`); kept on the payment
    card: dict[str, Any] | None = None


#: how the buyer was authenticated, as the panel words it
THREE_DS_OUTCOMES = ("authenticated", "frictionless", "attempted", "not_authenticated", "failed")


def card_facts(brand: Any = None, last4: Any = None, three_ds: str | None = None,
               liability_shift: bool | None = None) -> dict[str, Any] | None:
    """The card facts a PSP reported, checked (strangers' data): ``brand`` a short word, ``last4``
    four digits, ``three_ds`` one of :data:`THREE_DS_OUTCOMES`; what the PSP did not say is left
    out, and nothing said at all is None. Never more of the card number than its last four digits."""
    facts: dict[str, Any] = {}
    if isinstance(brand, str) and brand.strip():
        facts["brand"] = brand.strip()[:32]
    if isinstance(last4, str) and len(last4) >= 4 and last4[-4:].isdigit() and last4[-4:].isascii():
        facts["last4"] = last4[-4:]
    if three_ds in THREE_DS_OUTCOMES:
        facts["three_ds"] = three_ds
    if isinstance(liability_shift, bool):
        facts["liability_shift"] = liability_shift
    return facts or None


@dataclass
class RejectedItem:
    """One item of a batch whose authenticity could not be proven while the others' was (a forged
    item slipped into a genuine Adyen batch). It moves nothing; the inbox keeps it as refused."""

    provider: str
    reason: str
    raw: Any = None
    event_type: str | None = None
    psp_reference: str | None = None


class InboxOutcome(str, enum.Enum):
    """What became of one inbox row (``PaymentEvent.outcome``): a str, so it compares equal to
    the text stored (``InboxOutcome.APPLIED == "applied"``)."""

    RECEIVED = "received"  # stored as it came, nothing decided yet
    QUEUED = "queued"  # proven, kept for a background worker to apply
    APPLIED = "applied"  # proven and applied to its payment (maybe changing nothing)
    DUPLICATE = "duplicate"  # the same news was applied before
    REJECTED = "rejected"  # its authenticity could not be proven: changed nothing
    UNMATCHED = "unmatched"  # proven, but no payment has its reference
    MISMATCH = "mismatch"  # proven, but its mode, amount, currency or reference differ: flagged
    INVALID = "invalid"  # malformed or too large: changed nothing
    #: proof unavailable now (the PSP retries), or applying it failed (the ``retry`` job tries again)
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

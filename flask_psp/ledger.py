"""Apply proven PSP news to payments: the only code that moves a payment's money state.

No Flask here. A :class:`Ledger` is given a SQLAlchemy session, the shop's ``orders`` adapter and a
callable that sends signals. Each message is applied in one transaction that:

1. locks every payment of the order (``SELECT … FOR UPDATE`` in id order on PostgreSQL; on SQLite a
   write that takes the database's write lock), so concurrent deliveries serialise;
2. skips news already applied (the inbox row's unique ``dedupe_key``);
3. refuses news whose mode, amount, currency or PSP reference differ from the payment's (flagged);
4. moves the payment as :mod:`flask_psp.states` allows, and calls ``orders.mark_paid`` once per
   order, in the same transaction;
5. commits, then sends the signals.

Every inbox row keeps the proven news it carried (``verified_message``), so that it can be applied
later — by a background worker (:meth:`Ledger.queue_all`, then :meth:`Ledger.apply_stored`), or
again after the shop's ``mark_paid`` failed (outcome ``error``, retried with backoff until
:class:`RetryPolicy` gives up and flags the payment for the merchant).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import Payment, PaymentEvent, utcnow
from .providers.base import Event, EventKind, VerifiedMessage
from .states import Move, PaymentStatus, classify

log = logging.getLogger("flask_psp.ledger")
S = PaymentStatus

SignalSender = Callable[[str, Payment], None]

_TARGET = {
    EventKind.PENDING: S.PENDING,
    EventKind.AUTHORIZED: S.AUTHORIZED,
    EventKind.CAPTURED: S.PAID,
    EventKind.FAILED: S.FAILED,
    EventKind.CANCELLED: S.CANCELLED,
    EventKind.EXPIRED: S.EXPIRED,
}
_SIGNAL_FOR_STATUS = {
    S.AUTHORIZED: "payment_authorized",
    S.PAID: "payment_paid",
    S.FAILED: "payment_failed",
    S.CANCELLED: "payment_failed",
    S.EXPIRED: "payment_failed",
    S.PARTIALLY_REFUNDED: "payment_refunded",
    S.REFUNDED: "payment_refunded",
}


@dataclass(frozen=True)
class RetryPolicy:
    """When news whose post-processing failed (``mark_paid`` raised…) is tried again: after the
    n-th failed attempt, ``first_delay * 2**(n-1)`` later; after ``max_attempts`` failures the
    ledger gives up and flags the payment for the merchant."""

    first_delay: timedelta = timedelta(minutes=1)
    max_attempts: int = 10

    def delay(self, attempts: int) -> timedelta:
        return self.first_delay * (2 ** max(attempts - 1, 0))


def encode_message(message: VerifiedMessage) -> dict[str, Any]:
    """A verified message as JSON for its inbox row (the PSP's raw data stays in the row's body)."""
    data = dataclasses.asdict(dataclasses.replace(message, raw=None, events=[]))
    data.pop("raw")
    data["events"] = [
        {k: (v.value if isinstance(v, EventKind) else v) for k, v in dataclasses.asdict(e).items() if v is not None}
        for e in message.events
    ]
    return data


def decode_message(data: dict[str, Any]) -> VerifiedMessage:
    fields = {f.name for f in dataclasses.fields(VerifiedMessage)}
    values = {k: v for k, v in data.items() if k in fields and k != "events"}
    events = [Event(**{**e, "kind": EventKind(e["kind"])}) for e in data.get("events") or []]
    return VerifiedMessage(events=events, **values)


class PostProcessingError(Exception):
    """The shop's ``mark_paid`` (or another step inside the transaction) failed: nothing was
    changed, the inbox row says why, and the PSP should retry."""


@dataclass
class Outcome:
    outcome: str  # applied | duplicate | unmatched | mismatch | error
    payment: Payment | None = None
    detail: str | None = None
    changed: bool = False
    signals: list[tuple[str, Payment]] = field(default_factory=list)


class Ledger:
    def __init__(
        self,
        session: Session,
        orders: Any,
        send_signal: SignalSender | None = None,
        retry: RetryPolicy | None = None,
    ):
        self.session = session
        self.orders = orders
        self.send_signal = send_signal or (lambda name, payment: None)
        self.retry = retry or RetryPolicy()

    # ------------------------------------------------------------------ inbox
    def record(
        self,
        provider: str,
        body: bytes | str,
        *,
        source: str = "notify",
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        remote_addr: str | None = None,
        payment: Payment | None = None,
    ) -> PaymentEvent:
        """Store news as received, before anything else looks at it, and commit."""
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        row = PaymentEvent(
            provider=provider,
            source=source,
            body=body,
            headers=dict(headers or {}),
            content_type=content_type,
            remote_addr=remote_addr,
            payment_id=payment.id if payment is not None else None,
        )
        self.session.add(row)
        self.session.commit()
        return row

    def reject(self, row: PaymentEvent, outcome: str, detail: str) -> None:
        """Close an inbox row that will not be applied (not authentic, malformed)."""
        row.verified = False if outcome == "rejected" else row.verified
        row.outcome = outcome
        row.verification_error = detail[:255]
        row.outcome_detail = detail
        row.processed_at = utcnow()
        self.session.commit()

    def apply_all(self, row: PaymentEvent, messages: list[VerifiedMessage]) -> list[Outcome]:
        """Apply the messages read from one inbox row: a single message is applied on the row
        itself; a batch (several items in one body) gets a child row per item."""
        if len(messages) == 1:
            return [self.apply(row, messages[0])]
        outcomes = []
        row.verified = True
        row.outcome = "applied" if messages else "invalid"
        row.outcome_detail = f"batch of {len(messages)} items"
        row.processed_at = utcnow()
        self.session.commit()
        for message in messages:
            child = self.record(
                row.provider,
                json.dumps(message.raw, default=str) if message.raw is not None else "",
                source=row.source,
                content_type="application/json",
            )
            child.parent_id = row.id
            outcomes.append(self.apply(child, message))
        return outcomes

    def queue_all(self, row: PaymentEvent, messages: list[VerifiedMessage], requeue_at: datetime) -> list[int]:
        """Keep the messages read from one inbox row for a worker to apply, in one commit: the row
        (or, for a batch, a child row per item) gets outcome ``queued`` and its message. Returns
        the ids to hand to :meth:`apply_stored`; rows still queued at ``requeue_at`` are swept."""
        if len(messages) == 1:
            self._describe(row, messages[0])
            row.outcome, row.outcome_detail = "queued", None
            row.next_attempt_at = requeue_at
            self.session.commit()
            return [row.id]
        row.verified = True
        row.outcome = "applied" if messages else "invalid"
        row.outcome_detail = f"batch of {len(messages)} items"
        row.processed_at = utcnow()
        children = []
        for message in messages:
            child = PaymentEvent(
                provider=row.provider,
                source=row.source,
                body=json.dumps(message.raw, default=str) if message.raw is not None else "",
                headers={},
                content_type="application/json",
                parent_id=row.id,
                outcome="queued",
                next_attempt_at=requeue_at,
            )
            self._describe(child, message)
            children.append(child)
        self.session.add_all(children)
        self.session.commit()
        return [child.id for child in children]

    def lock_event(self, row_id: int) -> PaymentEvent | None:
        """Lock one inbox row (PostgreSQL: ``FOR UPDATE``; SQLite: the database's write lock) and
        read it afresh: two workers given the same row apply it one after the other."""
        session = self.session
        stmt = select(PaymentEvent).where(PaymentEvent.id == row_id)
        if session.get_bind().dialect.name == "sqlite":
            session.execute(update(PaymentEvent).where(PaymentEvent.id == row_id).values(id=PaymentEvent.id))
        else:
            stmt = stmt.with_for_update()
        return session.scalars(stmt.execution_options(populate_existing=True)).first()

    def apply_stored(self, row_id: int, expected: tuple[str, ...] = ("queued",)) -> Outcome | None:
        """Apply the news kept on an inbox row whose outcome is one of ``expected``; None when the
        row is gone, holds no news or was dealt with meanwhile. Raises PostProcessingError like
        :meth:`apply`."""
        row = self.lock_event(row_id)
        if row is None or row.outcome not in expected or not row.verified_message:
            self.session.rollback()
            return None
        return self.apply(row, decode_message(row.verified_message))

    def record_and_apply(
        self, provider: str, messages: Iterable[VerifiedMessage], *, source: str
    ) -> list[Outcome]:
        """For news proven by the PSP's answer to our own call (capture, refund, re-fetch), or
        established by the plugin itself (``source="job"``: an abandoned payment expired)."""
        outcomes = []
        for message in messages:
            body = json.dumps(message.raw, default=str) if message.raw is not None else ""
            row = self.record(provider, body, source=source, content_type="application/json")
            outcomes.append(self.apply(row, message))
        return outcomes

    # ------------------------------------------------------------------ apply
    def apply(self, row: PaymentEvent, message: VerifiedMessage) -> Outcome:
        session = self.session
        row_id = row.id
        try:
            outcome = self._apply(row, message)
            session.commit()
        except IntegrityError:
            # the same news committed by a concurrent delivery between our check and our commit
            session.rollback()
            outcome = Outcome("duplicate", detail="already applied by a concurrent delivery")
            self._close(row_id, message, outcome)
        except Exception as exc:
            session.rollback()
            detail = f"{type(exc).__name__}: {exc}"
            log.exception("applying %s news %s failed", message.provider, message.dedupe_key)
            self._close(row_id, message, Outcome("error", detail=detail))
            raise PostProcessingError(detail) from exc
        for name, payment in outcome.signals:
            try:
                self.send_signal(name, payment)
            except Exception:  # a receiver's bug must not turn a committed payment into a 5xx
                log.exception("receiver of %s raised for payment %s", name, payment.id)
        return outcome

    def _close(self, row_id: int, message: VerifiedMessage, outcome: Outcome) -> None:
        row = self.session.get(PaymentEvent, row_id)
        self._describe(row, message)
        row.outcome = outcome.outcome
        row.outcome_detail = outcome.detail
        row.attempts = (row.attempts or 0) + 1
        row.processed_at = utcnow()
        row.next_attempt_at = None
        if outcome.outcome == "error":
            if row.attempts < self.retry.max_attempts:
                row.next_attempt_at = utcnow() + self.retry.delay(row.attempts)
            else:
                row.outcome_detail = f"gave up after {row.attempts} attempts: {outcome.detail}"
                payment = self._find_payment(message)
                if payment is not None:
                    payment.flag = f"processing failed {row.attempts} times: {outcome.detail}"[:255]
                log.error("gave up applying %s news %s: %s", message.provider, message.dedupe_key, outcome.detail)
        self.session.commit()

    @staticmethod
    def _describe(row: PaymentEvent, message: VerifiedMessage) -> None:
        row.verified = True
        row.verification_error = None
        row.verified_message = encode_message(message)
        row.event_type = message.event_type[:64]
        row.psp_reference = message.psp_reference
        row.mode = message.mode
        for event in message.events:
            if event.amount is not None:
                row.amount, row.currency = event.amount, event.currency
                break

    def _find_payment(self, message: VerifiedMessage) -> Payment | None:
        query = select(Payment).where(Payment.provider == message.provider)
        if message.payment_token:
            payment = self.session.scalars(query.where(Payment.token == message.payment_token)).first()
            if payment is not None:
                return payment
        if message.psp_reference:
            return self.session.scalars(
                query.where(Payment.psp_reference == message.psp_reference).order_by(Payment.id.desc())
            ).first()
        return None

    def lock_order(self, order_ref: str) -> list[Payment]:
        """Lock every payment of an order, in id order so two transactions never deadlock."""
        session = self.session
        if session.get_bind().dialect.name == "sqlite":
            # SQLite has no row locks: a write makes this transaction the database's only writer
            session.execute(  # updated_at kept: taking the lock is not a change
                update(Payment)
                .where(Payment.order_ref == order_ref)
                .values(id=Payment.id, updated_at=Payment.updated_at)
            )
            stmt = select(Payment)
        else:
            stmt = select(Payment).with_for_update()
        stmt = stmt.where(Payment.order_ref == order_ref).order_by(Payment.id)
        return list(session.scalars(stmt.execution_options(populate_existing=True)))

    def _apply(self, row: PaymentEvent, message: VerifiedMessage) -> Outcome:
        session = self.session
        self._describe(row, message)
        row.attempts = (row.attempts or 0) + 1
        row.processed_at = utcnow()
        row.next_attempt_at = None
        found = self._find_payment(message)
        if found is None:
            row.dedupe_key = message.dedupe_key
            row.outcome, row.outcome_detail = "unmatched", "no payment has this reference"
            return Outcome("unmatched", detail=row.outcome_detail)

        payments = self.lock_order(found.order_ref)
        payment = next(p for p in payments if p.id == found.id)
        row.payment_id = payment.id
        earlier = session.scalar(
            select(PaymentEvent.id).where(
                PaymentEvent.dedupe_key == message.dedupe_key, PaymentEvent.id != row.id
            )
        )
        if earlier is not None:
            row.outcome, row.outcome_detail = "duplicate", f"same as event #{earlier}"
            return Outcome("duplicate", payment, row.outcome_detail)
        row.dedupe_key = message.dedupe_key

        problem = self._mismatch(payment, message)
        if problem:
            payment.flag = problem[:255]
            row.outcome, row.outcome_detail = "mismatch", problem
            log.warning("payment %s: %s", payment.id, problem)
            return Outcome("mismatch", payment, problem)

        outcome = Outcome("applied", payment)
        for event in message.events:
            self._apply_event(payment, payments, event, outcome)
        if message.psp_reference and not payment.psp_reference:
            payment.psp_reference = message.psp_reference
        row.outcome = "applied"
        row.outcome_detail = f"status {payment.status}" + ("" if outcome.changed else " (no change)")
        outcome.detail = row.outcome_detail
        return outcome

    @staticmethod
    def _mismatch(payment: Payment, message: VerifiedMessage) -> str | None:
        if message.mode != payment.mode:
            return f"{message.mode}-mode news for a {payment.mode}-mode payment"
        if message.psp_reference and payment.psp_reference and message.psp_reference != payment.psp_reference:
            return f"PSP reference {message.psp_reference} is not this payment's ({payment.psp_reference})"
        for event in message.events:
            if event.currency is not None and event.currency.upper() != payment.currency:
                return f"currency {event.currency} differs from the payment's {payment.currency}"
            if event.amount is not None and event.amount != payment.amount:
                return f"amount {event.amount} differs from the payment's {payment.amount}"
            for total in (event.authorized_total, event.captured_total):
                if total is not None and total > payment.amount:
                    return f"{event.kind.value} amount {total} exceeds the payment's {payment.amount}"
        return None

    def _apply_event(self, payment: Payment, siblings: list[Payment], event: Event, outcome: Outcome) -> None:
        kind = event.kind
        if kind in (EventKind.CAPTURE_FAILED, EventKind.REFUND_FAILED, EventKind.CHARGEBACK):
            payment.flag = f"{kind.value}: {event.reason or 'reported by the PSP'}"[:255]
            outcome.changed = True
            return
        if kind is EventKind.REFUNDED:
            self._apply_refund(payment, event, outcome)
            return

        target = _TARGET[kind]
        if kind is EventKind.AUTHORIZED:
            total = event.authorized_total or event.amount or payment.amount
            if total > payment.authorized_amount:
                payment.authorized_amount, outcome.changed = total, True
        elif kind is EventKind.CAPTURED:
            total = event.captured_total if event.captured_total is not None else (event.amount or payment.amount)
            if total > payment.captured_amount:
                payment.captured_amount, outcome.changed = total, True
            payment.authorized_amount = max(payment.authorized_amount, payment.captured_amount)
        elif event.reason and payment.status_enum not in (S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED):
            payment.failure_reason = event.reason[:255]

        move = classify(payment.status, target)
        if move in (Move.SAME, Move.STALE):
            return
        if move is Move.LATE_SUCCESS:
            payment.flag = f"{target.value} after it was {payment.status}"
        self._move(payment, siblings, target, outcome)

    def _apply_refund(self, payment: Payment, event: Event, outcome: Outcome) -> None:
        if event.refunded_total is not None:
            total = event.refunded_total
        else:
            total = payment.refunded_amount + (event.refund_delta or 0)
        if total <= payment.refunded_amount:
            return
        if payment.status_enum not in (S.PAID, S.PARTIALLY_REFUNDED):
            payment.flag = f"refund of {total} reported while the payment is {payment.status}"
            outcome.changed = True
            return
        if total > payment.captured_amount:
            payment.flag = f"refunds ({total}) exceed the captured amount ({payment.captured_amount})"
            total = payment.captured_amount
        payment.refunded_amount = total
        outcome.changed = True
        # partially_refunded → partially_refunded is a real move: the shop hears of every refund
        self._move(payment, [], S.REFUNDED if total >= payment.captured_amount else S.PARTIALLY_REFUNDED, outcome)

    def _move(self, payment: Payment, siblings: list[Payment], target: PaymentStatus, outcome: Outcome) -> None:
        payment.status = target.value
        outcome.changed = True
        if target is S.PAID and payment.paid_at is None:
            payment.paid_at = utcnow()
        if target is S.PAID or target is S.AUTHORIZED:
            payment.failure_reason = None
        if target is not S.AUTHORIZED:
            payment.capture_due_at = None
        elif payment.capture == "delayed" and payment.capture_due_at is None:
            payment.capture_due_at = utcnow() + timedelta(days=payment.capture_delay_days or 0)
        signal = _SIGNAL_FOR_STATUS.get(target)
        if signal:
            outcome.signals.append((signal, payment))
        # manual and delayed capture: the money is reserved, the order counts as paid
        if target is S.PAID or (target is S.AUTHORIZED and payment.capture in ("manual", "delayed")):
            self._mark_order_paid(payment, siblings, outcome)

    def _mark_order_paid(self, payment: Payment, siblings: list[Payment], outcome: Outcome) -> None:
        if payment.order_marked_at is not None:
            return
        other = next((p for p in siblings if p.id != payment.id and p.order_marked_at is not None), None)
        if other is not None:
            payment.flag = f"order already paid by payment {other.token}: refund this one"
            return
        payment.order_marked_at = utcnow()
        self.session.flush()
        self.orders.mark_paid(payment.order_ref, payment)
        outcome.signals.append(("order_paid", payment))

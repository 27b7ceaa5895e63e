"""Apply proven PSP news to payments: the only code that moves a payment's money state.

No Flask here. A :class:`Ledger` is given a SQLAlchemy session, the shop's ``orders`` adapter and a
callable that sends signals. Each message is applied in one transaction that:

1. locks every payment of the order (``SELECT … FOR UPDATE`` in id order on PostgreSQL; on SQLite a
   write that takes the database's write lock), so concurrent deliveries serialise;
2. skips news already applied (the inbox row's unique ``dedupe_key``);
3. refuses news whose mode, amount, currency or PSP reference differ from the payment's (flagged),
   and news that would move money without saying how much, or less than the payment's amount
   (an authorization, a capture the merchant did not ask for: see :meth:`Ledger._short`);
4. moves the payment as :mod:`flask_psp.states` allows, and calls ``orders.mark_paid`` once per
   order, in the same transaction — except for a test-mode payment of a provider that is live
   now: its news is applied to the payment, which is flagged, but never pays the order;
5. commits, then sends the signals.

Every inbox row keeps the proven news it carried (``verified_message``), so that it can be applied
later — by a background worker (:meth:`Ledger.queue_all`, then :meth:`Ledger.apply_stored`), or
again after the shop's ``mark_paid`` failed (outcome ``error``, retried with backoff until
:class:`RetryPolicy` gives up and flags the payment for the merchant).

Requests awaiting the PSP: a capture, refund or cancellation the PSP only acknowledged (Adyen's
modifications, HiPay's maintenance) is kept on the payment (``extra["pending_operations"]``) until
its outcome or failure arrives; meanwhile the payment's capturable and refundable amounts count it
as made, so it cannot be asked twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.attributes import set_committed_value

from .events import OPERATIONS, Event, EventKind, InboxOutcome, RejectedItem, VerifiedMessage
from .models import (UPDATE_PAYMENT, Payment, PaymentEvent, execute_plain, given_columns, lock_row, oldest_request,
                     utcnow)
from .money import UnknownCurrency, to_decimal_string
from .movements import MovementKind, insert_movements
from .states import Move, PaymentStatus, classify

log = logging.getLogger("flask_psp.ledger")
S = PaymentStatus

#: sends a signal of :mod:`flask_psp.signals` by name, about a payment or an inbox entry (a dict)
SignalSender = Callable[[str, Any], None]
#: given the session and the (signal name, payment or inbox entry) pairs an outcome will signal,
#: inside the transaction that decided them, just before it commits (the mail outbox writes there)
NoticeWriter = Callable[[Session, list[tuple[str, Any]]], None]

_TARGET = {
    EventKind.PENDING: S.PENDING,
    EventKind.AUTHORIZED: S.AUTHORIZED,
    EventKind.CAPTURED: S.PAID,
    EventKind.FAILED: S.FAILED,
    EventKind.CANCELLED: S.CANCELLED,
    EventKind.EXPIRED: S.EXPIRED,
}
_FAILED_OPERATION = {
    EventKind.CAPTURE_FAILED: "capture",
    EventKind.REFUND_FAILED: "refund",
    EventKind.CANCEL_FAILED: "cancel",
}
#: pending operations that can no longer be carried out once the payment is in these statuses
_MOOT = {
    "capture": frozenset(S) - {S.AUTHORIZED},
    "refund": frozenset({S.REFUNDED, S.FAILED, S.CANCELLED, S.EXPIRED}),
    "cancel": frozenset({S.CANCELLED, S.EXPIRED, S.FAILED, S.REFUNDED}),
}
#: statuses a capture has led to: captured amounts are counted
_CAPTURED_BEFORE = frozenset({S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED})
#: how many references of refunds counted (or failed) a payment remembers
_REMEMBERED = 50
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


#: the fields an inbox row keeps of a message (``raw`` is the row's body already), and of its events
_MESSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(VerifiedMessage) if f.name != "raw")
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(Event))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, EventKind) else value.isoformat() if isinstance(value, datetime) else value


def encode_message(message: VerifiedMessage) -> dict[str, Any]:
    """A verified message as JSON for its inbox row (the PSP's raw data stays in the row's body);
    an event's fields that are None are left out. Written field by field: it runs on every notification."""
    data = {name: getattr(message, name) for name in _MESSAGE_FIELDS}
    if data["card"] is not None:
        data["card"] = dict(data["card"])
    data["events"] = [{name: _plain(value) for name in _EVENT_FIELDS if (value := getattr(event, name)) is not None}
                      for event in message.events]
    return data


def decode_message(data: dict[str, Any]) -> VerifiedMessage:
    fields = {f.name for f in dataclasses.fields(VerifiedMessage)}
    values = {k: v for k, v in data.items() if k in fields and k != "events"}
    events = [Event(**{**e, "kind": EventKind(e["kind"]), **(
        {"occurred_at": datetime.fromisoformat(e["occurred_at"])} if e.get("occurred_at") else {})})
        for e in data.get("events") or []]
    return VerifiedMessage(events=events, **values)


class PostProcessingError(Exception):
    """The shop's ``mark_paid`` (or another step inside the transaction) failed: nothing was
    changed, the inbox row says why, and the PSP should retry."""


class _SameNewsStored(Exception):
    """Writing the inbox row found its dedupe key taken: a concurrent delivery of the same news
    committed first (between the dedupe lookup and the write)."""


def _money(amount: int | None, currency: str) -> str:
    if amount is None:
        return "the whole amount"
    try:
        return f"{to_decimal_string(amount, currency)} {currency}"
    except UnknownCurrency:
        return f"{amount} (minor units) {currency}"


@dataclass
class Outcome:
    outcome: InboxOutcome  # applied | duplicate | unmatched | mismatch | rejected | invalid | error
    payment: Payment | None = None
    detail: str | None = None
    changed: bool = False
    #: (signal name, payment or inbox row) to send once committed
    signals: list[tuple[str, Any]] = field(default_factory=list)
    #: payments whose order is handed to ``orders.mark_paid`` once every other change is made
    orders_to_mark: list[Payment] = field(default_factory=list)
    #: a test-mode payment of a provider now live would have paid its order: it did not
    held_back: bool = False
    #: the money the news moved: arguments of :func:`~flask_psp.movements.record_movement`, written
    #: with the inbox row, in the same transaction as the payment's move
    movements: list[dict[str, Any]] = field(default_factory=list)


def _commit_keeping_state(session) -> None:
    """Commit without expiring what the session holds: a just-inserted inbox row is fully known
    (its defaults are computed in Python), so reloading it after the commit would only cost a SELECT."""
    real = session() if isinstance(session, scoped_session) else session
    keep, real.expire_on_commit = real.expire_on_commit, False
    try:
        real.commit()
    finally:
        real.expire_on_commit = keep


_EVENTS = PaymentEvent.__table__
#: the columns not given take their defaults
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)


def _changed_columns(obj) -> dict[str, Any]:
    """The columns whose attributes were changed on a loaded object, with their new values: only the
    attributes the session saw set are looked at (``committed_state``), not every column."""
    state = sa_inspect(obj)
    changes = {}
    for key in state.committed_state:
        added = state.attrs[key].history.added
        if added:
            changes[state.mapper.get_property(key).columns[0].key] = added[0]
    return changes


def _as_written(session: Session, obj) -> None:
    """Tell the session that ``obj``'s changes are in the database (written by a plain UPDATE): its
    values are kept as loaded values, and it is no longer dirty, so no later flush (an autoflush
    before the shop's ``mark_paid``, the commit) looks at it again. This is what a flush does to the
    objects it wrote (``InstanceState._commit_all``, SQLAlchemy's own, not public)."""
    real = session() if isinstance(session, scoped_session) else session
    state = sa_inspect(obj)
    state._commit_all(state.dict, real.identity_map)


def _inbox_entry(row: PaymentEvent) -> dict[str, Any]:
    """An inbox row as the signals about it carry it: plain values (the outcome as its text)."""
    return {"event_id": row.id, "provider": row.provider, "mode": row.mode, "amount": row.amount,
            "currency": row.currency, "status": str(row.outcome), "detail": row.outcome_detail,
            "payment_id": row.payment_id}


_RECEIVED_FIELDS = ("provider", "source", "received_at", "remote_addr", "headers", "body", "content_type", "parent_id")


def _as_received(row: PaymentEvent) -> dict[str, Any]:
    """What an inbox row held when it came in, before anything was decided about it."""
    return {name: getattr(row, name) for name in _RECEIVED_FIELDS}


class _LockStatements:
    """The statements that lock the payments of the orders ``orders_clause`` selects, built once:
    the notification path runs them on every delivery, and a statement built once is compiled and
    cache-keyed once. ``also``: a column each row carries besides its payment (the notification
    path asks, in the same statement, whether the news was stored already)."""

    def __init__(self, orders_clause, also=None):
        columns = (Payment,) if also is None else (Payment, also)
        in_order = select(*columns).where(orders_clause).order_by(Payment.id)
        self.select_for_update = in_order.with_for_update(of=Payment).execution_options(populate_existing=True)
        self.select = in_order.execution_options(populate_existing=True)
        # updated_at kept: taking the lock is not a change
        self.take_write_lock = update(Payment).where(orders_clause).values(id=Payment.id, updated_at=Payment.updated_at)


#: an inbox row (not ``row_id``, the one being applied) that holds this news already
_SAME_NEWS = (select(PaymentEvent.id)
              .where(PaymentEvent.dedupe_key == bindparam("dedupe_key"), PaymentEvent.id != bindparam("row_id"))
              .limit(1).scalar_subquery())
_BY_ORDER = _LockStatements(Payment.order_ref == bindparam("of_order"))
#: the orders of the payments a piece of news names (by our token, or by the PSP's reference), and
#: the inbox row that holds that news already, if any: one statement per delivery. On PostgreSQL the
#: lookup reads the statement's snapshot: a copy committed while this one waited for the lock is not
#: seen, and its dedupe key's unique index refuses this row instead (``_SameNewsStored``).
_BY_NEWS = _LockStatements(Payment.order_ref.in_(
    select(Payment.order_ref).where(
        Payment.provider == bindparam("news_provider"),
        or_(Payment.token == bindparam("news_token"), Payment.psp_reference == bindparam("news_psp_reference")),
    )
), also=_SAME_NEWS.label("same_news_id"))


#: what a test-mode payment that would have paid its order on a live shop is flagged with
TEST_ON_LIVE = "test payment on a live shop"

#: the mode a provider is in now ("test" | "live"; None: not configured), as the shop's settings say
ModeInForce = Callable[[str], "str | None"]


class Ledger:
    """``mode_in_force(provider)``: the mode a provider is in now. While it says "live", news about
    a test-mode payment of that provider moves the payment but never pays its order::

        Ledger(session, orders, signals.send, mode_in_force=lambda name: "live")
    """

    def __init__(
        self,
        session: Session,
        orders: Any,
        send_signal: SignalSender | None = None,
        retry: RetryPolicy | None = None,
        mode_in_force: ModeInForce | None = None,
        write_notices: NoticeWriter | None = None,
    ):
        self.session = session
        self.orders = orders
        self.send_signal = send_signal or (lambda name, payment: None)
        self.retry = retry or RetryPolicy()
        self.mode_in_force = mode_in_force or (lambda provider: None)
        self.write_notices = write_notices

    # ------------------------------------------------------------------ inbox
    @staticmethod
    def receive(
        provider: str,
        body: bytes | str,
        *,
        source: str = "notify",
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        remote_addr: str | None = None,
    ) -> PaymentEvent:
        """An inbox row for news as received, not stored yet: whatever becomes of it — refused,
        applied, kept for a worker, failed — stores it, in the transaction that decides it.
        NUL characters, which PostgreSQL cannot store in text, are kept as U+FFFD (no PSP sends any)."""
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        body = body.replace("\x00", "\ufffd")
        return PaymentEvent(
            provider=provider,
            source=source,
            body=body,
            headers=dict(headers or {}),
            content_type=content_type,
            remote_addr=remote_addr,
            received_at=utcnow(),
        )

    def record(self, provider: str, body: bytes | str, **received: Any) -> PaymentEvent:
        """Store news as received, before anything else looks at it, and commit."""
        row = self.receive(provider, body, **received)
        self.session.add(row)
        _commit_keeping_state(self.session)
        return row

    @staticmethod
    def _item_row(provider: str, item: VerifiedMessage | RejectedItem, source: str,
                  parent_id: int | None = None) -> PaymentEvent:
        """A new, unsaved inbox row for one item of news that came inside something else (a batch,
        the PSP's answer to our own call): the PSP's data for that item is its body."""
        body = json.dumps(item.raw, default=str) if item.raw is not None else ""
        row = Ledger.receive(provider, body, source=source, content_type="application/json")
        row.parent_id = parent_id
        return row

    def reject(self, row: PaymentEvent, outcome: InboxOutcome, detail: str) -> None:
        """Close an inbox row that will not be applied (``REJECTED``: not authentic; ``INVALID``: malformed)."""
        self.session.add(row)
        row.verified = False if outcome == InboxOutcome.REJECTED else row.verified
        row.outcome = outcome
        row.verification_error = detail[:255]
        row.outcome_detail = detail
        row.processed_at = utcnow()
        decided = Outcome(outcome, detail=detail, signals=[("notification_problem", row)])
        self._write_notices(decided)
        self.session.commit()
        self._send_signals(decided)

    def apply_all(self, row: PaymentEvent, items: list[VerifiedMessage | RejectedItem]) -> list[Outcome]:
        """Apply the messages read from one inbox row: a single message is applied on the row
        itself; a batch (several items in one body) gets a child row per item — an item whose
        proof failed (:class:`RejectedItem`) a child row of its own, refused."""
        if len(items) == 1:
            if isinstance(items[0], RejectedItem):
                self.reject(row, InboxOutcome.REJECTED, items[0].reason)
                return [Outcome(InboxOutcome.REJECTED, detail=items[0].reason)]
            return [self.apply(row, items[0])]
        self.session.add(row)
        self._open_batch(row, items)
        _commit_keeping_state(self.session)
        outcomes = []
        for item in items:
            child = self._item_row(row.provider, item, row.source, parent_id=row.id)
            if isinstance(item, RejectedItem):
                self._refuse_item(child, item)
                self.session.add(child)
                outcomes.append(Outcome(InboxOutcome.REJECTED, detail=item.reason,
                                        signals=[("notification_problem", child)]))
                self._write_notices(outcomes[-1])
                self.session.commit()
                self._send_signals(outcomes[-1])
            else:
                outcomes.append(self.apply(child, item))
        return outcomes

    @staticmethod
    def _open_batch(row: PaymentEvent, items: list) -> None:
        refused = sum(isinstance(i, RejectedItem) for i in items)
        row.verified = True
        row.outcome = InboxOutcome.APPLIED if items else InboxOutcome.INVALID
        row.outcome_detail = f"batch of {len(items)} items" + (f", {refused} refused" if refused else "")
        row.processed_at = utcnow()

    @staticmethod
    def _refuse_item(row: PaymentEvent, item: RejectedItem) -> None:
        row.verified = False
        row.outcome = InboxOutcome.REJECTED
        row.verification_error = item.reason[:255]
        row.outcome_detail = item.reason
        row.event_type = (item.event_type or "")[:64] or None
        row.psp_reference = item.psp_reference
        row.processed_at = utcnow()

    def queue_all(
        self, row: PaymentEvent, items: list[VerifiedMessage | RejectedItem], requeue_at: datetime
    ) -> list[int]:
        """Keep the messages read from one inbox row for a worker to apply, in one commit: the row
        (or, for a batch, a child row per item) gets outcome ``queued`` and its message; a batch
        item whose proof failed gets a refused child row. Returns the ids to hand to
        :meth:`apply_stored`; rows still queued at ``requeue_at`` are swept."""
        self.session.add(row)
        if len(items) == 1:
            if isinstance(items[0], RejectedItem):
                self.reject(row, InboxOutcome.REJECTED, items[0].reason)
                return []
            self._describe(row, items[0])
            row.outcome, row.outcome_detail = InboxOutcome.QUEUED, None
            row.next_attempt_at = requeue_at
            _commit_keeping_state(self.session)
            return [row.id]
        self._open_batch(row, items)
        self.session.flush()  # the children name the row as their parent
        children, queued = [], []
        for item in items:
            child = self._item_row(row.provider, item, row.source, parent_id=row.id)
            if isinstance(item, RejectedItem):
                self._refuse_item(child, item)
            else:
                child.outcome, child.next_attempt_at = InboxOutcome.QUEUED, requeue_at
                self._describe(child, item)
                queued.append(child)
            children.append(child)
        self.session.add_all(children)
        refused = [Outcome(InboxOutcome.REJECTED, signals=[("notification_problem", c)])
                   for c in children if c.outcome == InboxOutcome.REJECTED]
        for outcome in refused:
            self._write_notices(outcome)
        self.session.commit()
        for outcome in refused:
            self._send_signals(outcome)
        return [child.id for child in queued]

    def lock_event(self, row_id: int) -> PaymentEvent | None:
        """Lock one inbox row (PostgreSQL: ``FOR UPDATE``; SQLite: the database's write lock) and
        read it afresh: two workers given the same row apply it one after the other."""
        return lock_row(self.session, PaymentEvent, row_id)

    def apply_stored(self, row_id: int, expected: tuple[InboxOutcome, ...] = (InboxOutcome.QUEUED,)) -> Outcome | None:
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
        return [self.apply(self._item_row(provider, message, source), message) for message in messages]

    def record_and_apply_locked(
        self, provider: str, messages: Iterable[VerifiedMessage], *, source: str
    ) -> list[Outcome]:
        """For the PSP's answer to a call made while this transaction holds the order's lock
        (:meth:`lock_order`: a merchant's capture, refund or cancellation). The inbox rows and what
        they prove commit together with the lock's release, so nobody sees the payment between
        the PSP's answer and its record — a second click waits, then finds the first request.
        Should that fail, the answer is recorded and applied the ordinary way, which keeps a
        failure for the retry job (and raises PostProcessingError)."""
        messages = list(messages)
        outcomes = []
        try:
            for message in messages:
                outcomes.append(self._apply(self._item_row(provider, message, source), message))
                self._write_notices(outcomes[-1])
            self.session.commit()
        except Exception:  # noqa: BLE001 - the PSP acted: its answer must not be lost
            self.session.rollback()
            log.warning("recording %s's answer under the order's lock failed: recording it again", provider,
                        exc_info=True)
            return self.record_and_apply(provider, messages, source=source)
        for outcome in outcomes:
            self._send_signals(outcome)
        return outcomes

    # ------------------------------------------------------------------ apply
    def apply(self, row: PaymentEvent, message: VerifiedMessage) -> Outcome:
        """Apply proven news in one transaction, with its inbox row: a row not stored yet
        (:meth:`receive`) is stored by that transaction, complete, or — when the transaction
        fails — on its own with the failure (and the news, for the retry job)."""
        session = self.session
        # what to close should this transaction fail: the stored row, or the row as it came in
        stored_id = row.id
        as_received = None if stored_id is not None else _as_received(row)
        try:
            outcome = self._apply(row, message)
            self._write_notices(outcome)
            session.commit()
        except _SameNewsStored:
            session.rollback()
            outcome = Outcome(InboxOutcome.DUPLICATE, detail="already applied by a concurrent delivery")
            self._close(stored_id, as_received, message, outcome)
        except Exception as exc:
            session.rollback()
            detail = f"{type(exc).__name__}: {exc}"
            log.exception("applying %s news %s failed", message.provider, message.dedupe_key)
            self._close(stored_id, as_received, message, Outcome(InboxOutcome.ERROR, detail=detail))
            raise PostProcessingError(detail) from exc
        self._send_signals(outcome)
        return outcome

    def _write_notices(self, outcome: Outcome) -> None:
        """Hand what the outcome will signal to ``write_notices``, in its transaction."""
        if self.write_notices is None or not outcome.signals:
            return
        if any(isinstance(s, PaymentEvent) and s.id is None for _name, s in outcome.signals):
            self.session.flush()  # the inbox rows' ids
        self.write_notices(self.session, [(name, _inbox_entry(s) if isinstance(s, PaymentEvent) else s)
                                          for name, s in outcome.signals])

    def _send_signals(self, outcome: Outcome) -> None:
        for name, subject in outcome.signals:
            try:
                self.send_signal(name, _inbox_entry(subject) if isinstance(subject, PaymentEvent) else subject)
            except Exception:  # a receiver's bug must not turn a committed payment into a 5xx
                log.exception("receiver of %s raised for %s", name, subject)

    def _close(self, row_id: int | None, as_received: dict[str, Any] | None, message: VerifiedMessage,
               outcome: Outcome) -> None:
        """Store the outcome of news whose transaction failed: on its stored row, or on a new row
        holding what it held when it came in."""
        if row_id is not None:
            row = self.session.get(PaymentEvent, row_id)
        else:
            row = PaymentEvent(**as_received)
            self.session.add(row)
        self._describe(row, message)
        # the rollback took back the link _decide made: the payment's timeline shows the failed attempt
        payment = self._find_payment(message)
        if payment is not None:
            row.payment_id = payment.id
        row.outcome = outcome.outcome
        row.outcome_detail = outcome.detail
        row.attempts = (row.attempts or 0) + 1
        row.processed_at = utcnow()
        row.next_attempt_at = None
        if outcome.outcome == InboxOutcome.ERROR:
            if row.attempts < self.retry.max_attempts:
                row.next_attempt_at = utcnow() + self.retry.delay(row.attempts)
            else:
                row.outcome_detail = f"gave up after {row.attempts} attempts: {outcome.detail}"
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
            amount = event.amount if event.amount is not None else event.operation_amount
            if amount is not None:
                row.amount, row.currency = amount, event.currency
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
        return list(self._lock(_BY_ORDER, {"of_order": order_ref}).scalars())

    def _lock(self, orders: "_LockStatements", params: dict):
        """Lock every payment of the orders selected (in id order); on SQLite, a write first makes
        this transaction the database's only writer (it has no row locks). Returns the result: rows
        of a payment (and the statement's ``also`` column)."""
        session = self.session
        with session.no_autoflush:  # the inbox row's pending changes are not needed to look
            if session.get_bind().dialect.name == "sqlite":
                session.execute(orders.take_write_lock, params)
                return session.execute(orders.select, params)
            return session.execute(orders.select_for_update, params)

    def _lock_payment_of(self, message: VerifiedMessage, row_id: int | None
                         ) -> tuple[Payment | None, list[Payment], int | None]:
        """The payment the news is about, found as :meth:`_find_payment` does, every payment of its
        order, locked, and the id of an inbox row other than ``row_id`` that holds this news already
        — in one statement, which the notification path runs for every delivery."""
        if not (message.payment_token or message.psp_reference):
            return None, [], None
        rows = self._lock(_BY_NEWS, {"news_provider": message.provider, "news_token": message.payment_token,
                                     "news_psp_reference": message.psp_reference,
                                     "dedupe_key": message.dedupe_key, "row_id": row_id or 0}).all()
        payments = [payment for payment, _same in rows]
        mine = [p for p in payments if p.provider == message.provider]
        found = next((p for p in mine if message.payment_token and p.token == message.payment_token), None)
        if found is None and message.psp_reference:
            found = max((p for p in mine if p.psp_reference == message.psp_reference), key=lambda p: p.id, default=None)
        if found is None:
            return None, [], None
        return found, [p for p in payments if p.order_ref == found.order_ref], rows[0][1]

    def _apply(self, row: PaymentEvent, message: VerifiedMessage) -> Outcome:
        """Decide, write what was decided, then hand paid orders to the shop — last, so that the
        shop's own statements find the payment and the inbox row as they now are."""
        outcome, payments = self._decide(row, message)
        to_mark = [(paid.order_ref, paid) for paid in outcome.orders_to_mark]  # read before they are expired
        self._write(row, payments)
        insert_movements(self.session, [{**movement, "event_id": row.id} for movement in outcome.movements])
        for order_ref, paid in to_mark:
            self.orders.mark_paid(order_ref, paid)
        return outcome

    def _write(self, row: PaymentEvent, payments: list[Payment]) -> None:
        """Write what deciding changed with plain statements — each payment's changed columns in
        one UPDATE, an inbox row not stored yet in one INSERT — instead of the session's unit of
        work, which costs every notification several times what these statements do
        (``make bench``). What was written is then what the session holds as the database's values
        (no second SELECT when the shop's ``mark_paid`` or a notice hook reads the payment). A row
        stored earlier is flushed here. Written before the shop's ``mark_paid`` runs, so that a
        clash on the dedupe key is told apart from the shop's own errors."""
        now, session = utcnow(), self.session
        with session.no_autoflush:  # the changes are written here, not flushed by the session first
            for payment in payments:
                changes = _changed_columns(payment)
                if changes:
                    execute_plain(session, UPDATE_PAYMENT, {"payment_id": payment.id, **changes, "updated_at": now})
                    set_committed_value(payment, "updated_at", now)
                    _as_written(session, payment)
            try:
                if sa_inspect(row).transient:
                    row.id = execute_plain(session, _INSERT_EVENT, given_columns(row)).scalar_one()
                else:
                    session.flush()
            except IntegrityError as exc:  # the only unique key an inbox row can clash on: its dedupe key
                raise _SameNewsStored() from exc

    def _decide(self, row: PaymentEvent, message: VerifiedMessage) -> tuple[Outcome, list[Payment]]:
        """What the news does to the payment it names (the order's payments locked) and to its inbox
        row, made on the objects: nothing is written yet. Returns the outcome and the payments locked."""
        self._describe(row, message)
        row.attempts = (row.attempts or 0) + 1
        row.processed_at = utcnow()
        row.next_attempt_at = None
        payment, payments, earlier = self._lock_payment_of(message, row.id)
        if payment is None:
            row.dedupe_key = message.dedupe_key
            row.outcome, row.outcome_detail = InboxOutcome.UNMATCHED, "no payment has this reference"
            signals = [("notification_problem", row)]
            return Outcome(InboxOutcome.UNMATCHED, detail=row.outcome_detail, signals=signals), []

        row.payment_id = payment.id
        if earlier is not None:
            row.outcome, row.outcome_detail = InboxOutcome.DUPLICATE, f"same as event #{earlier}"
            return Outcome(InboxOutcome.DUPLICATE, payment, row.outcome_detail), payments
        row.dedupe_key = message.dedupe_key

        problem = self._mismatch(payment, message)
        if problem:
            payment.flag = problem[:255]
            row.outcome, row.outcome_detail = InboxOutcome.MISMATCH, problem
            log.warning("payment %s: %s", payment.id, problem)
            return Outcome(InboxOutcome.MISMATCH, payment, problem, signals=[("amount_mismatch", row)]), payments

        outcome = Outcome(InboxOutcome.APPLIED, payment)
        for event in message.events:
            self._apply_event(payment, payments, event, outcome)
        self._drop_moot_requests(payment, outcome)
        if message.psp_reference and not payment.psp_reference:
            payment.psp_reference = message.psp_reference
        if message.card:  # what the PSP said of the card, for the merchant's support (newest wins)
            self._keep(payment, card={**(payment.extra or {}).get("card", {}), **message.card})
        for movement in outcome.movements:
            movement["psp_reference"] = payment.psp_reference
        row.outcome = InboxOutcome.APPLIED
        row.outcome_detail = f"status {payment.status}" + ("" if outcome.changed else " (no change)")
        if outcome.held_back:
            row.outcome_detail += f"; {TEST_ON_LIVE}: the order was not marked paid"
            outcome.signals.append(("test_payment_on_live", row))
        pending = payment.pending_operations
        if pending:
            row.outcome_detail += "; awaiting the PSP: " + ", ".join(
                f"{op['operation']} of {_money(op.get('amount'), payment.currency)}" if op.get("operation") != "cancel"
                else "cancellation" for op in pending
            )
        outcome.detail = row.outcome_detail
        return outcome, payments

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
            problem = Ledger._short(payment, event)
            if problem:
                return problem
        return None

    @staticmethod
    def _short(payment: Payment, event: Event) -> str | None:
        """News that moves money must say how much, and an authorization or a capture must be for
        the payment's whole amount — unless the capture is one the merchant asked for (a partial
        capture through the plugin: awaited on the payment, or the PSP's answer to that request)."""
        kind, currency = event.kind, payment.currency
        if kind in (EventKind.APPROVED, EventKind.AUTHORIZED):
            total = event.authorized_total if event.authorized_total is not None else event.amount
            if total is None:
                return f"{kind.value} news without an amount"
            if total < payment.amount:
                return (f"{kind.value} of {_money(total, currency)} is less than the payment's "
                        f"{_money(payment.amount, currency)}")
        elif kind is EventKind.CAPTURED:
            total = event.captured_total if event.captured_total is not None else event.amount
            if total is None:
                return "capture news without an amount"
            if total >= payment.amount:
                return None
            if payment.status_enum in _CAPTURED_BEFORE and total <= payment.captured_amount:
                return None  # older news of what is counted already: changes nothing
            newly = total - payment.captured_amount
            if not 0 < newly <= Ledger._capture_asked(payment, event):
                return (f"capture of {_money(total, currency)} is less than the payment's "
                        f"{_money(payment.amount, currency)}, and no such capture was asked for")
        elif kind is EventKind.REFUNDED and event.refunded_total is None and event.refund_delta is None:
            return "refund news without an amount"
        return None

    @staticmethod
    def _capture_asked(payment: Payment, event: Event) -> int:
        """How much the merchant asked to capture and is not captured yet: captures awaiting the
        PSP, and the capture whose answer this is (``operation``/``operation_amount`` set on the
        CAPTURED event by :meth:`PaymentService.operate`, never by a provider's parsing)."""
        left = max(payment.amount - payment.captured_amount, 0)
        asked = sum(op.get("amount") or left for op in payment.pending_operations if op.get("operation") == "capture")
        if event.operation == "capture" and event.operation_amount:
            asked += event.operation_amount
        return asked

    def _apply_event(self, payment: Payment, siblings: list[Payment], event: Event, outcome: Outcome) -> None:
        kind = event.kind
        if kind is EventKind.APPROVED:
            event = self._as_the_payment_asked(payment, event)
            kind = event.kind
        if kind is EventKind.REQUESTED:
            self._await(payment, event, outcome)
            return
        if kind in _FAILED_OPERATION:
            self._operation_failed(payment, event, outcome)
            return
        if kind is EventKind.CHARGEBACK:
            payment.flag = f"{kind.value}: {event.reason or 'reported by the PSP'}"[:255]
            outcome.changed = True
            outcome.signals.append(("chargeback", payment))
            self._chargeback_moved(payment, event, outcome, MovementKind.CHARGEBACK)
            return
        if kind is EventKind.CHARGEBACK_REVERSED:
            payment.flag = f"{kind.value}: {event.reason or 'reported by the PSP'}"[:255]
            outcome.changed = True
            self._chargeback_moved(payment, event, outcome, MovementKind.CHARGEBACK_REVERSAL)
            return
        if kind is EventKind.REFUNDED:
            self._apply_refund(payment, event, outcome)
            return

        target = _TARGET[kind]
        if kind is EventKind.AUTHORIZED:  # amounts: checked present and whole by _short
            total = event.authorized_total if event.authorized_total is not None else event.amount
            if total > payment.authorized_amount:
                payment.authorized_amount, outcome.changed = total, True
        elif kind is EventKind.CAPTURED:
            total = event.captured_total if event.captured_total is not None else event.amount
            before = payment.captured_amount
            if total > payment.captured_amount:
                payment.captured_amount, outcome.changed = total, True
                self._moved(payment, outcome, MovementKind.CAPTURE, total - before, event)
            payment.authorized_amount = max(payment.authorized_amount, payment.captured_amount)
            self._settle(payment, "capture", event.operation_reference, payment.captured_amount - before, outcome)
        elif event.reason and payment.status_enum not in (S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED):
            payment.failure_reason = event.reason[:255]
        if kind is EventKind.CANCELLED:
            self._settle(payment, "cancel", event.operation_reference, None, outcome)

        move = classify(payment.status, target)
        if move in (Move.SAME, Move.STALE):
            return
        if move is Move.LATE_SUCCESS:
            payment.flag = f"{target.value} after it was {payment.status}"
        self._move(payment, siblings, target, outcome)

    def _test_payment_on_live(self, payment: Payment) -> bool:
        if payment.mode == "live":
            return False
        with self.session.no_autoflush:  # reading the settings writes nothing
            return self.mode_in_force(payment.provider) == "live"

    @staticmethod
    def _as_the_payment_asked(payment: Payment, event: Event) -> Event:
        """An approval means what the payment asked for when it was started, whatever the
        provider's settings say today: money taken under automatic capture, reserved otherwise."""
        total = event.authorized_total if event.authorized_total is not None else event.amount
        if payment.capture == "auto":
            return dataclasses.replace(event, kind=EventKind.CAPTURED, captured_total=total, authorized_total=None)
        return dataclasses.replace(event, kind=EventKind.AUTHORIZED, authorized_total=total)

    # ------------------------------------------------------------------ requests awaiting the PSP
    @staticmethod
    def _keep(payment: Payment, **changes: Any) -> None:
        """Write to ``payment.extra`` (a plain JSON column: a new dict, so the change is seen)."""
        extra = dict(payment.extra or {})
        for key, value in changes.items():
            if value:
                extra[key] = value
            else:
                extra.pop(key, None)
        payment.extra = extra
        if "pending_operations" in changes:
            payment.awaiting_psp_since = oldest_request(changes["pending_operations"] or [])

    def _await(self, payment: Payment, event: Event, outcome: Outcome) -> None:
        if event.operation not in OPERATIONS:
            log.warning("payment %s: a request for an unknown operation %r", payment.id, event.operation)
            return
        pending = payment.pending_operations
        reference = event.operation_reference
        if reference and any(op.get("reference") == reference for op in pending):
            return
        pending.append({
            "operation": event.operation,
            "amount": event.operation_amount,
            "reference": reference,
            "requested_at": utcnow().isoformat(timespec="seconds"),
        })
        self._keep(payment, pending_operations=pending)
        outcome.changed = True

    def _settle(
        self, payment: Payment, operation: str, reference: str | None, amount: int | None, outcome: Outcome
    ) -> dict | None:
        """The outcome of a request arrived: take it off the payment's pending requests. Found by
        the PSP's reference of the operation when the outcome carries one; otherwise the oldest
        requests of that operation the ``amount`` newly taken or refunded covers (``None``: the
        oldest one). Returns the request taken off (the first one), if any."""
        pending = payment.pending_operations
        settled: list[dict] = []
        if reference:
            settled = [op for op in pending if op.get("reference") == reference]
        if not settled:
            candidates = [op for op in pending if op.get("operation") == operation and not (
                reference and op.get("reference"))]
            if amount is None:
                settled = candidates[:1]
            else:
                left = amount
                for op in candidates:
                    size = op.get("amount") or 0
                    if 0 < size <= left:
                        settled.append(op)
                        left -= size
        if not settled:
            return None
        self._keep(payment, pending_operations=[op for op in pending if not any(op is s for s in settled)])
        outcome.changed = True
        return settled[0]

    def _drop_moot_requests(self, payment: Payment, outcome: Outcome) -> None:
        """Requests the payment's status makes pointless (a capture awaited on a payment that was
        cancelled meanwhile, a refund on one refunded in full…) are not awaited any longer."""
        pending = payment.pending_operations
        status = payment.status_enum
        kept = [op for op in pending if status not in _MOOT.get(op.get("operation"), frozenset())]
        if len(kept) != len(pending):
            self._keep(payment, pending_operations=kept)
            outcome.changed = True

    def _operation_failed(self, payment: Payment, event: Event, outcome: Outcome) -> None:
        operation = _FAILED_OPERATION[event.kind]
        reason = event.reason or "reported by the PSP"
        reference = event.operation_reference
        if operation == "refund" and reference and self._take_back_refund(payment, reference, reason, outcome):
            return
        request = self._settle(payment, operation, reference, None, outcome)
        if operation == "refund" and reference:
            # a refund that failed before its success was heard of must not count when that comes
            failed = [r for r in (payment.extra or {}).get("failed_refunds") or [] if r != reference]
            self._keep(payment, failed_refunds=(failed + [reference])[-_REMEMBERED:])
        flag = f"{event.kind.value}: {reason}"
        if request is not None and operation == "cancel":
            flag += "; the cancellation was not made"
        elif request is not None:
            flag += f"; the {operation} of {_money(request.get('amount'), payment.currency)} was not made"
        payment.flag = flag[:255]
        outcome.changed = True

    def _take_back_refund(self, payment: Payment, reference: str, reason: str, outcome: Outcome) -> bool:
        """A refund reported done, then reported failed (Adyen REFUND_FAILED after REFUND): the
        money is the merchant's again. The refunded amount and the status say so, and the payment
        is flagged. Only refunds the ledger counted under that reference can be taken back."""
        counted = dict((payment.extra or {}).get("refunds") or {})
        amount = counted.pop(reference, None)
        if not amount:
            return False
        self._keep(payment, refunds=counted)
        self._moved(payment, outcome, MovementKind.ADJUSTMENT, min(amount, payment.refunded_amount), None,
                    note=f"refund {reference} failed after it was reported done: {reason}"[:1000])
        payment.refunded_amount = max(payment.refunded_amount - amount, 0)
        if payment.status_enum in (S.PARTIALLY_REFUNDED, S.REFUNDED):
            # a correction of the ledger's own count, not a move the PSP reported: no signal
            payment.status = (S.PARTIALLY_REFUNDED if payment.refunded_amount else S.PAID).value
        payment.flag = (
            f"refund_failed: {reason}; the refund of {_money(amount, payment.currency)} did not go through "
            f"(refunded now {_money(payment.refunded_amount, payment.currency)})"
        )[:255]
        outcome.changed = True
        return True

    def _apply_refund(self, payment: Payment, event: Event, outcome: Outcome) -> None:
        reference = event.operation_reference
        extra = payment.extra or {}
        if reference and reference in (extra.get("failed_refunds") or []):
            payment.flag = f"refund {reference} reported done after it was reported failed: not counted"[:255]
            outcome.changed = True
            return
        if reference and reference in (extra.get("refunds") or {}):
            return  # counted already (the same refund reported again under another name)
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
        delta = total - payment.refunded_amount
        payment.refunded_amount = total
        outcome.changed = True
        self._moved(payment, outcome, MovementKind.REFUND, delta, event,
                    note=f"refund {reference}" if reference else None)
        if reference:
            counted = dict(extra.get("refunds") or {})
            counted[reference] = delta
            self._keep(payment, refunds=dict(list(counted.items())[-_REMEMBERED:]))
        self._settle(payment, "refund", reference, delta, outcome)
        # partially_refunded → partially_refunded is a real move: the shop hears of every refund
        self._move(payment, [], S.REFUNDED if total >= payment.captured_amount else S.PARTIALLY_REFUNDED, outcome)

    # ------------------------------------------------------------------ the accounting journal
    @staticmethod
    def _moved(payment: Payment, outcome: Outcome, kind: MovementKind, amount: int, event: Event | None,
               note: str | None = None) -> None:
        """Money moved: a movement for the journal, dated by the PSP's clock where its news gives a date."""
        if amount <= 0:
            return
        occurred_at = (event.occurred_at if event is not None else None) or utcnow()
        outcome.movements.append({
            "kind": kind, "amount": amount, "currency": payment.currency, "provider": payment.provider,
            "mode": payment.mode, "occurred_at": occurred_at, "payment_id": payment.id, "note": note,
        })

    def _chargeback_moved(self, payment: Payment, event: Event, outcome: Outcome, kind: MovementKind) -> None:
        """A chargeback (or its reversal) moves what the PSP says; when it does not say, what the buyer
        could be taken back for — captured less refunded — with a note. Each is counted once per
        payment and PSP reference: the same chargeback in a later snapshot moves nothing again."""
        extra = payment.extra or {}
        key = f"{kind.value}:{event.operation_reference or '-'}"
        if key in (extra.get("chargebacks_counted") or []):
            return
        note = None
        amount = event.operation_amount
        if amount is None:
            amount = payment.captured_amount - payment.refunded_amount
            note = "amount not in the PSP's news: the payment's captured amount less refunds"
        self._keep(payment, chargebacks_counted=((extra.get("chargebacks_counted") or []) + [key])[-_REMEMBERED:])
        self._moved(payment, outcome, kind, amount, event, note=note)

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
        if self._test_payment_on_live(payment):
            # shared test credentials (Sips' simulation key…) prove nothing about real money
            payment.flag = "; ".join(filter(None, (
                f"{TEST_ON_LIVE}: {payment.provider} is live, so this test-mode payment did not pay the order",
                payment.flag)))[:255]
            outcome.held_back = True
            return
        other = next((p for p in siblings if p.id != payment.id and p.order_marked_at is not None), None)
        if other is not None:
            payment.flag = f"order already paid by payment {other.token}: refund this one"
            return
        payment.order_marked_at = utcnow()
        outcome.orders_to_mark.append(payment)
        outcome.signals.append(("order_paid", payment))

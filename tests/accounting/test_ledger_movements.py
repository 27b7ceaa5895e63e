"""The ledger writes the journal: one movement per money move, in the transaction that moves the
payment, tied to the inbox row that proved it, dated by the PSP's clock when its news says."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from flask_psp import signals
from flask_psp.events import Event, EventKind as K, VerifiedMessage
from flask_psp.ledger import Ledger, PostProcessingError
from flask_psp.models import Movement, Payment, PaymentEvent, utcnow

from .test_fec import Orders, a_payment, apply, news

PAID_AT = datetime(2026, 5, 1, 8, 0)


def movements(db):
    db.session.expire_all()
    return [(m.kind, m.amount, m.occurred_at, m.mode) for m in db.session.scalars(select(Movement).order_by(Movement.id))]


def paid(at=PAID_AT, amount=5000):
    return Event(K.CAPTURED, amount=amount, currency="EUR", captured_total=amount, occurred_at=at)


def test_a_capture_is_one_movement_tied_to_its_inbox_row_and_dated_by_the_psp(books):
    app, db, _Order = books
    payment = a_payment(db)
    apply(db, news("paid", paid()))
    (movement,) = db.session.scalars(select(Movement)).all()
    row = db.session.scalars(select(PaymentEvent)).one()
    assert (movement.kind, movement.amount, movement.currency, movement.provider, movement.mode) == (
        "capture", 5000, "EUR", "payplug", "live")
    assert movement.occurred_at == PAID_AT and movement.event_id == row.id and movement.payment_id == payment.id
    assert movement.psp_reference == "pay_42"


def test_the_same_news_twice_or_the_same_total_again_writes_no_second_movement(books):
    app, db, _Order = books
    a_payment(db)
    apply(db, news("paid", paid()))
    assert apply(db, news("paid", paid())).outcome == "duplicate"
    apply(db, news("paid-again-other-key", paid()))  # a snapshot saying the same: nothing new moved
    apply(db, news("r1", Event(K.REFUNDED, refunded_total=1000)))
    apply(db, news("r1-snapshot", Event(K.REFUNDED, refunded_total=1000)))  # PayPlug/HiPay give totals
    apply(db, news("r2-snapshot", Event(K.REFUNDED, refunded_total=1500)))
    assert [(k, a) for k, a, _at, _mode in movements(db)] == [("capture", 5000), ("refund", 1000), ("refund", 500)]


def test_news_without_a_date_is_dated_when_it_is_proven(books):
    app, db, _Order = books
    a_payment(db)
    before = utcnow()
    apply(db, news("paid", Event(K.CAPTURED, amount=5000, currency="EUR", captured_total=5000)))
    ((_kind, _amount, at, _mode),) = movements(db)
    assert before <= at <= utcnow()


def test_when_the_shop_fails_nothing_is_written_and_the_retry_writes_it_once(books):
    app, db, _Order = books
    a_payment(db)

    class Failing(Orders):
        def mark_paid(self, ref, payment):
            raise RuntimeError("the shop's database is down")

    ledger = Ledger(db.session, Failing(), signals.send)
    with pytest.raises(PostProcessingError):
        ledger.apply(ledger.receive("payplug", b"{}"), news("paid", paid()))
    assert movements(db) == []
    row = db.session.scalars(select(PaymentEvent)).one()
    assert row.outcome == "error" and row.verified_message["events"][0]["occurred_at"] == PAID_AT.isoformat()
    outcome = Ledger(db.session, Orders(), signals.send).apply_stored(row.id, expected=("error",))
    assert outcome.outcome == "applied"
    assert movements(db) == [("capture", 5000, PAID_AT, "live")]  # the PSP's date, kept in the inbox row


def test_a_test_mode_payment_makes_test_movements(books):
    app, db, _Order = books
    a_payment(db, mode="test")
    apply(db, news("paid", paid(), mode="test"))
    assert movements(db) == [("capture", 5000, PAID_AT, "test")]


def test_a_chargeback_and_its_reversal_are_movements_counted_once(books):
    app, db, _Order = books
    a_payment(db)
    apply(db, news("paid", paid()))
    later = PAID_AT + timedelta(days=20)
    apply(db, news("cb", Event(K.CHARGEBACK, reason="fraud", operation_amount=5000, occurred_at=later)))
    apply(db, news("cb-snapshot", Event(K.CHARGEBACK, reason="fraud", operation_amount=5000)))
    apply(db, news("cb-won", Event(K.CHARGEBACK_REVERSED, operation_amount=5000, occurred_at=later + timedelta(days=9))))
    assert movements(db)[1:] == [("chargeback", 5000, later, "live"),
                                 ("chargeback_reversal", 5000, later + timedelta(days=9), "live")]


def test_a_chargeback_without_an_amount_takes_what_was_not_refunded_and_says_so(books):
    app, db, _Order = books
    a_payment(db)
    apply(db, news("paid", paid()))
    apply(db, news("r1", Event(K.REFUNDED, refund_delta=1000)))
    apply(db, news("cb", Event(K.CHARGEBACK, reason="HiPay status 129")))
    movement = db.session.scalars(select(Movement).where(Movement.kind == "chargeback")).one()
    assert movement.amount == 4000 and "captured amount less refunds" in movement.note


def test_a_refund_reported_failed_after_it_was_counted_is_taken_back_by_an_adjustment(books):
    """Adyen REFUND then REFUND_FAILED: the journal keeps both, never edits the refund."""
    app, db, _Order = books
    a_payment(db)
    apply(db, news("paid", paid()))
    apply(db, news("refund", Event(K.REFUNDED, refund_delta=2000, operation_reference="re_9")))
    apply(db, news("refund-failed", Event(K.REFUND_FAILED, reason="card closed", operation_reference="re_9")))
    rows = db.session.scalars(select(Movement).order_by(Movement.id)).all()
    assert [(m.kind, m.amount) for m in rows] == [("capture", 5000), ("refund", 2000), ("adjustment", 2000)]
    assert "re_9" in rows[2].note and db.session.get(Payment, rows[0].payment_id).refunded_amount == 0


def test_the_journal_sums_to_what_the_payment_says(books):
    app, db, _Order = books
    payment = a_payment(db)
    apply(db, news("paid", paid()))
    for number, amount in enumerate((700, 1300, 3000)):
        apply(db, news(f"r{number}", Event(K.REFUNDED, refund_delta=amount, operation_reference=f"re_{number}")))
    db.session.expire_all()
    payment = db.session.get(Payment, payment.id)
    rows = db.session.scalars(select(Movement)).all()
    assert sum(m.amount for m in rows if m.kind == "capture") == payment.captured_amount
    assert sum(m.amount for m in rows if m.kind == "refund") == payment.refunded_amount == 5000


def test_stored_news_keeps_its_date_through_the_queue(books):
    app, db, _Order = books
    a_payment(db)
    ledger = Ledger(db.session, Orders(), signals.send)
    (row_id,) = ledger.queue_all(ledger.receive("payplug", b"{}"), [news("paid", paid())], utcnow())
    Ledger(db.session, Orders(), signals.send).apply_stored(row_id)
    assert movements(db) == [("capture", 5000, PAID_AT, "live")]


def test_a_message_naming_no_payment_makes_no_movement(books):
    app, db, _Order = books
    message = VerifiedMessage(provider="payplug", dedupe_key="x", mode="live", event_type="t",
                              psp_reference="pay_unknown", events=[paid()])
    assert apply(db, message).outcome == "unmatched"
    assert movements(db) == []

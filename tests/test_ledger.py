"""The ledger on a real database (SQLite, or PostgreSQL with PSP_TEST_DATABASE_URL), with the
example shop's real orders adapter."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from flask_psp import signals
from flask_psp.events import Event, EventKind as K, VerifiedMessage
from flask_psp.ledger import Ledger, PostProcessingError
from flask_psp.models import Payment, PaymentEvent


@pytest.fixture
def shop(shop_in_context):
    return shop_in_context


@pytest.fixture
def heard():
    received = []

    def listener(name):
        def receive(sender, payment, **extra):
            received.append((name, payment.id))
        return receive

    receivers = {name: listener(name) for name in signals.BY_NAME}
    for name, receiver in receivers.items():
        signals.BY_NAME[name].connect(receiver)
    yield received
    for name, receiver in receivers.items():
        signals.BY_NAME[name].disconnect(receiver)


def new_order(db, Order, ref="ORD-1", amount=2500, currency="EUR"):
    db.session.add(Order(reference=ref, amount=amount, currency=currency, status="pending"))
    db.session.commit()


def new_payment(db, ref="ORD-1", amount=2500, mode="test", capture="auto", psp_reference="pay_1", status="pending"):
    payment = Payment(order_ref=ref, provider="payplug", mode=mode, capture=capture, amount=amount,
                      currency="EUR", status=status, psp_reference=psp_reference)
    db.session.add(payment)
    db.session.commit()
    return payment


def message(key, *events, mode="test", psp_reference="pay_1"):
    return VerifiedMessage(provider="payplug", dedupe_key=key, events=list(events), mode=mode,
                           event_type="test", psp_reference=psp_reference)


def apply(db, orders, msg, stored_first=False):
    """Apply news as a notification brings it (its inbox row stored by the transaction that
    applies it), or as a worker finds it (``stored_first``: the row was stored beforehand)."""
    ledger = Ledger(db.session, orders, signals.send)
    row = ledger.record("payplug", b"{}") if stored_first else ledger.receive("payplug", b"{}")
    return ledger.apply(row, msg)


def paid(amount=2500):
    return Event(K.CAPTURED, amount=amount, currency="EUR", captured_total=amount)


@pytest.fixture
def orders():
    from example_shop import ShopOrders

    return ShopOrders()


def test_paid_news_marks_the_order_paid_and_signals_after_commit(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)
    outcome = apply(db, orders, message("k1", paid()))
    assert outcome.outcome == "applied"
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "paid"
    assert db.session.get(Payment, payment.id).captured_amount == 2500
    assert db.session.get(Order, "ORD-1").status == "paid"
    assert ("order_paid", payment.id) in heard and ("payment_paid", payment.id) in heard


def test_mark_paid_sees_the_payment_and_its_inbox_row_as_they_now_are(shop):
    """mark_paid runs in the transaction that moved the payment: the payment it is handed, and the
    shop's own queries in that transaction, see it paid, with the notification in the inbox."""
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)
    seen = []

    class LookingOrders:
        def get(self, ref):
            return None

        def mark_paid(self, ref, paid):
            stored = db.session.execute(sa.select(Payment.status, Payment.order_marked_at)
                                        .where(Payment.id == paid.id)).one()
            inbox = db.session.execute(sa.select(PaymentEvent.outcome, PaymentEvent.payment_id)).all()
            seen.append((ref, paid.status, paid.captured_amount, tuple(stored), inbox))

    apply(db, LookingOrders(), message("k1", paid()))
    ((ref, status, captured, stored, inbox),) = seen
    assert (ref, status, captured) == ("ORD-1", "paid", 2500)
    assert stored[0] == "paid" and stored[1] is not None
    assert inbox == [("applied", payment.id)]


def test_the_same_news_ten_times_pays_once(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    new_payment(db)
    outcomes = [apply(db, orders, message("same", paid())).outcome for _ in range(10)]
    assert outcomes == ["applied"] + ["duplicate"] * 9
    assert [name for name, _ in heard].count("order_paid") == 1
    rows = db.session.scalars(sa.select(PaymentEvent.outcome)).all()
    assert rows.count("duplicate") == 9


def test_stale_news_after_paid_changes_nothing(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)
    apply(db, orders, message("paid", paid()))
    apply(db, orders, message("pending-late", Event(K.PENDING)))
    apply(db, orders, message("failed-late", Event(K.FAILED, reason="declined")))
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "paid"
    assert db.session.get(Payment, payment.id).failure_reason is None


def test_failure_then_success_ends_paid_and_flagged(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)
    apply(db, orders, message("failed", Event(K.FAILED, reason="timeout at bank")))
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "failed"
    apply(db, orders, message("paid", paid()))
    db.session.expire_all()
    payment = db.session.get(Payment, payment.id)
    assert payment.status == "paid" and "after it was failed" in payment.flag
    assert db.session.get(Order, "ORD-1").status == "paid"


@pytest.mark.parametrize(
    "msg,why",
    [
        (message("m1", paid(2400)), "amount 2400"),
        (message("m2", Event(K.CAPTURED, amount=2500, currency="USD", captured_total=2500)), "currency USD"),
        (message("m3", paid(), mode="live"), "live-mode news for a test-mode payment"),
        (message("m4", paid(), psp_reference="pay_other"), None),
    ],
)
def test_mismatched_news_does_not_pay_and_is_flagged(shop, orders, heard, msg, why):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)
    if msg.psp_reference == "pay_other":
        msg.payment_token = payment.token  # found by token, but the PSP reference is another payment's
    outcome = apply(db, orders, msg)
    db.session.expire_all()
    payment = db.session.get(Payment, payment.id)
    if why is None:
        assert outcome.outcome == "mismatch" and "PSP reference" in payment.flag
    else:
        assert outcome.outcome == "mismatch" and why in payment.flag
    assert payment.status == "pending"
    assert db.session.get(Order, "ORD-1").status == "pending"
    assert heard == []


def test_news_about_an_unknown_payment_is_kept_as_unmatched(shop, orders):
    app, db, Order = shop
    outcome = apply(db, orders, message("u1", paid(), psp_reference="pay_nobody"))
    assert outcome.outcome == "unmatched"
    assert db.session.scalar(sa.select(PaymentEvent.outcome)) == "unmatched"


@pytest.fixture
def noticed():
    """What the signals for the merchant's attention carried, once the transaction committed."""
    received = []

    def listener(name):
        def receive(sender, payment=None, entry=None, **extra):
            from example_shop import db

            committed = db.engine.connect()  # another connection: sees only what was committed
            try:
                count = committed.scalar(sa.select(sa.func.count()).select_from(PaymentEvent))
            finally:
                committed.close()
            received.append((name, sender, entry if entry is not None else payment.flag, count))
        return receive

    receivers = {name: listener(name) for name in signals.NOTICES}
    for name, receiver in receivers.items():
        signals.NOTICES[name].connect(receiver)
    yield received
    for name, receiver in receivers.items():
        signals.NOTICES[name].disconnect(receiver)


def test_the_merchant_hears_of_mismatches_unmatched_news_and_chargebacks_after_commit(shop, orders, noticed):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)
    apply(db, orders, message("m1", paid(2400)))
    apply(db, orders, message("u1", paid(), psp_reference="pay_nobody"))
    apply(db, orders, message("cb", Event(K.CHARGEBACK, reason="fraud")))
    (mismatch, unmatched, chargeback) = noticed
    ids = db.session.scalars(sa.select(PaymentEvent.id).order_by(PaymentEvent.id)).all()
    assert mismatch[:2] == ("amount_mismatch", "payplug") and mismatch[3] == 1
    assert mismatch[2] == {"event_id": ids[0], "provider": "payplug", "mode": "test", "amount": 2400, "currency": "EUR",
                           "status": "mismatch", "detail": "amount 2400 differs from the payment's 2500",
                           "payment_id": payment.id}
    assert type(mismatch[2]["status"]) is str  # plain values, as the signals' docstring promises
    assert unmatched[0] == "notification_problem" and unmatched[2]["status"] == "unmatched"
    assert unmatched[2]["event_id"] == ids[1] and unmatched[2]["payment_id"] is None and unmatched[3] == 2
    assert chargeback[0] == "chargeback" and chargeback[1].id == payment.id and chargeback[2] == "chargeback: fraud"
    assert chargeback[3] == 3


def test_partial_refunds_add_up_to_refunded(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)
    apply(db, orders, message("paid", paid()))
    apply(db, orders, message("r1", Event(K.REFUNDED, refunded_total=1000)))
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "partially_refunded"
    apply(db, orders, message("r1-again", Event(K.REFUNDED, refunded_total=1000)))
    apply(db, orders, message("r2", Event(K.REFUNDED, refund_delta=1500)))
    db.session.expire_all()
    payment = db.session.get(Payment, payment.id)
    assert (payment.status, payment.refunded_amount) == ("refunded", 2500)
    assert [n for n, _ in heard].count("payment_refunded") == 2


def test_manual_capture_marks_the_order_at_authorization_only_once(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db, capture="manual")
    apply(db, orders, message("auth", Event(K.AUTHORIZED, amount=2500, currency="EUR", authorized_total=2500)))
    db.session.expire_all()
    assert db.session.get(Order, "ORD-1").status == "paid"
    apply(db, orders, message("cap", paid()))
    assert [n for n, _ in heard].count("order_paid") == 1
    assert db.session.get(Payment, payment.id).status == "paid"


def test_a_second_payment_of_a_paid_order_is_flagged_for_refund(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    new_payment(db, psp_reference="pay_1")
    second = new_payment(db, psp_reference="pay_2")
    apply(db, orders, message("p1", paid()))
    apply(db, orders, message("p2", paid(), psp_reference="pay_2"))
    db.session.expire_all()
    assert db.session.get(Payment, second.id).status == "paid"
    assert "already paid by payment" in db.session.get(Payment, second.id).flag
    assert [n for n, _ in heard].count("order_paid") == 1


def _warehouse_down(db, Order, ref):
    db.session.get(Order, ref).status = "paid"
    raise RuntimeError("warehouse system down")


def _order_inserted_twice(db, Order, ref):
    """The shop's own constraint refuses its write: not to be taken for a duplicate notification."""
    db.session.execute(sa.insert(Order.__table__).values(reference=ref, amount=1, currency="EUR", status="paid"))


@pytest.mark.parametrize("stored_first", [False, True], ids=["notification", "stored-row"])
@pytest.mark.parametrize("failure, why", [(_warehouse_down, "warehouse system down"),
                                          (_order_inserted_twice, "IntegrityError")], ids=["raises", "integrity"])
def test_mark_paid_failing_changes_nothing_and_is_kept_in_the_inbox(shop, heard, stored_first, failure, why):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)

    class BrokenOrders:
        def get(self, ref):
            return None

        def mark_paid(self, ref, payment):
            failure(db, Order, ref)

    with pytest.raises(PostProcessingError):
        apply(db, BrokenOrders(), message("p", paid()), stored_first=stored_first)
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "pending"
    assert db.session.get(Order, "ORD-1").status == "pending"  # rolled back together
    (row,) = db.session.scalars(sa.select(PaymentEvent)).all()  # kept once, with why it failed
    assert row.outcome == "error" and why in row.outcome_detail and row.dedupe_key is None
    assert row.attempts == 1 and row.body == "{}" and row.verified_message["dedupe_key"] == "p"
    assert row.next_attempt_at is not None  # for the retry job
    assert heard == []
    # the PSP's retry then applies it
    from example_shop import ShopOrders

    assert apply(db, ShopOrders(), message("p", paid())).outcome == "applied"


def test_concurrent_deliveries_apply_exactly_once(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)
    barrier = threading.Barrier(8)
    outcomes, errors = [], []

    def deliver():
        with app.app_context():
            try:
                ledger = Ledger(db.session, orders, signals.send)
                row = ledger.receive("payplug", b"{}")
                barrier.wait()
                outcomes.append(ledger.apply(row, message("same", paid())).outcome)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(outcomes) == ["applied"] + ["duplicate"] * 7
    assert [n for n, _ in heard].count("order_paid") == 1
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "paid"
    inbox = db.session.scalars(sa.select(PaymentEvent.outcome)).all()  # every delivery kept, once
    assert sorted(inbox) == ["applied"] + ["duplicate"] * 7


@pytest.mark.parametrize("capture, status, captured", [("auto", "paid", 2500), ("manual", "authorized", 0),
                                                        ("delayed", "authorized", 0)])
def test_an_approval_takes_the_money_as_the_payment_asked(shop, orders, heard, capture, status, captured):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db, capture=capture)
    if capture == "delayed":
        payment.capture_delay_days = 2
        db.session.commit()
    apply(db, orders, message("approved", Event(K.APPROVED, amount=2500, currency="EUR", authorized_total=2500)))
    db.session.expire_all()
    after = db.session.get(Payment, payment.id)
    assert (after.status, after.captured_amount, after.authorized_amount) == (status, captured, 2500)
    assert (after.capture_due_at is not None) == (capture == "delayed")
    assert db.session.get(Order, "ORD-1").status == "paid"


def test_requests_awaiting_the_psp_are_kept_until_their_outcome(shop, orders, heard):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db, status="paid")
    payment.captured_amount = payment.authorized_amount = 2500
    db.session.commit()
    requested = [Event(K.REQUESTED, currency="EUR", operation="refund", operation_amount=500, operation_reference="r1"),
                 Event(K.REQUESTED, currency="EUR", operation="refund", operation_amount=700, operation_reference="r2")]
    apply(db, orders, message("req-1", requested[0]))
    apply(db, orders, message("req-1-again", requested[0]))  # the same request told twice: awaited once
    apply(db, orders, message("req-2", requested[1]))
    db.session.expire_all()
    after = db.session.get(Payment, payment.id)
    assert [(op["operation"], op["amount"], op["reference"]) for op in after.pending_operations] == [
        ("refund", 500, "r1"), ("refund", 700, "r2")]
    assert after.status == "paid" and after.refunded_amount == 0 and after.refundable_amount == 1300
    assert not any(name == "payment_refunded" for name, _ in heard)

    apply(db, orders, message("done-2", Event(K.REFUNDED, currency="EUR", refund_delta=700, operation_reference="r2")))
    db.session.expire_all()
    after = db.session.get(Payment, payment.id)
    assert [op["reference"] for op in after.pending_operations] == ["r1"]
    assert (after.status, after.refunded_amount, after.refundable_amount) == ("partially_refunded", 700, 1300)
    apply(db, orders, message("failed-1", Event(K.REFUND_FAILED, reason="no", operation_reference="r1")))
    db.session.expire_all()
    after = db.session.get(Payment, payment.id)
    assert after.pending_operations == [] and after.refunded_amount == 700 and after.refundable_amount == 1800
    assert after.flag == "refund_failed: no; the refund of 5.00 EUR was not made"
    apply(db, orders, message("failed-2", Event(K.REFUND_FAILED, reason="late", operation_reference="r2")))
    db.session.expire_all()
    after = db.session.get(Payment, payment.id)
    assert (after.status, after.refunded_amount) == ("paid", 0)


def test_a_stored_request_keeps_what_it_asked_for():
    from flask_psp.ledger import decode_message, encode_message

    news = message("req", Event(K.REQUESTED, currency="EUR", operation="capture", operation_amount=900,
                                operation_reference="mod-1"))
    (event,) = decode_message(encode_message(news)).events
    assert (event.kind, event.operation, event.operation_amount, event.operation_reference) == (
        K.REQUESTED, "capture", 900, "mod-1")


def test_a_forged_batch_item_queued_for_the_workers_is_kept_refused(shop, orders):
    from datetime import datetime

    from flask_psp.events import RejectedItem

    app, db, Order = shop
    new_order(db, Order)
    new_payment(db)
    ledger = Ledger(db.session, orders, signals.send)
    row = ledger.record("payplug", b"[batch]")
    forged = RejectedItem(provider="payplug", reason="signature wrong", raw={"id": "x"}, event_type="REFUND:true",
                          psp_reference="x")
    ids = ledger.queue_all(row, [message("good", paid()), forged], datetime(2030, 1, 1))
    children = db.session.scalars(sa.select(PaymentEvent).where(PaymentEvent.parent_id == row.id)
                                  .order_by(PaymentEvent.id)).all()
    assert [(c.outcome, c.verified) for c in children] == [("queued", True), ("rejected", False)]
    assert ids == [children[0].id] and children[1].verification_error == "signature wrong"
    assert db.session.get(PaymentEvent, row.id).outcome_detail == "batch of 2 items, 1 refused"


@pytest.mark.parametrize("offered", [True, False], ids=["provider offered", "no provider"])
@pytest.mark.parametrize("status, settled", [
    ("created", False), ("pending", False), ("failed", False), ("cancelled", False), ("expired", False),
    ("authorized", True), ("paid", True), ("partially_refunded", True), ("refunded", True),
])
def test_a_checkout_start_stops_at_an_order_a_payment_has_settled(database_url, status, settled, offered):
    """The buyer is not charged twice: an order with a payment authorized, paid or (partly)
    refunded is paid already, whether the provider chosen is offered or not; an open, failed,
    cancelled or expired attempt does not count — a new attempt is recorded (then failed here:
    the PSP's address is a closed port) or, with no provider, the choice is refused."""
    from cryptography.fernet import Fernet

    from example_shop import Order, create_app, db
    from flask_psp.payments import AlreadyPaid, NotAvailable, Urls
    from flask_psp.providers.base import ProviderError

    providers = {"payplug": {"enabled": True, "mode": "test",
                             "test": {"secret_key": "sk_test_x", "endpoint": "http://127.0.0.1:9"}}} if offered else {}
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": database_url,
                      "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(), "PSP_PROVIDERS": providers})
    with app.app_context():
        new_order(db, Order)
        earlier = new_payment(db, status=status)
        state = app.extensions["psp"]
        urls = lambda token: Urls(f"http://shop/return/{token}", f"http://shop/cancel/{token}", "http://shop/notify")  # noqa: E731
        expected = AlreadyPaid if settled else ProviderError if offered else NotAvailable
        with pytest.raises(expected) as stopped:
            state.service().start(state.orders.get("ORD-1"), "payplug", "en", urls)
        db.session.rollback()
        statuses = db.session.scalars(sa.select(Payment.status).order_by(Payment.id)).all()
        if settled:
            assert stopped.value.payment.id == earlier.id
        assert statuses == [status, "failed"] if offered and not settled else statuses == [status]
        db.session.remove()
        db.engine.dispose()

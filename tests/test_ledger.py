"""The ledger on a real database (SQLite, or PostgreSQL with PSP_TEST_DATABASE_URL), with the
example shop's real orders adapter."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from flask_psp import signals
from flask_psp.ledger import Ledger, PostProcessingError
from flask_psp.models import Payment, PaymentEvent
from flask_psp.providers.base import Event, EventKind as K, VerifiedMessage
from tests.conftest import ON_POSTGRES


@pytest.fixture
def shop(database_url):
    from example_shop import Order, create_app, db

    app = create_app({
        "TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": database_url,
        "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(), "PSP_PROVIDERS": {},
    })
    with app.app_context():
        yield app, db, Order
        db.session.remove()
        db.engine.dispose()


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


def apply(db, orders, msg):
    ledger = Ledger(db.session, orders, signals.send)
    row = ledger.record("payplug", b"{}")
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
    first = new_payment(db, psp_reference="pay_1")
    second = new_payment(db, psp_reference="pay_2")
    apply(db, orders, message("p1", paid()))
    apply(db, orders, message("p2", paid(), psp_reference="pay_2"))
    db.session.expire_all()
    assert db.session.get(Payment, second.id).status == "paid"
    assert "already paid by payment" in db.session.get(Payment, second.id).flag
    assert [n for n, _ in heard].count("order_paid") == 1


def test_mark_paid_failing_changes_nothing_and_is_kept_in_the_inbox(shop, heard):
    app, db, Order = shop
    new_order(db, Order)
    payment = new_payment(db)

    class BrokenOrders:
        def get(self, ref):
            return None

        def mark_paid(self, ref, payment):
            db.session.get(Order, ref).status = "paid"
            raise RuntimeError("warehouse system down")

    with pytest.raises(PostProcessingError):
        apply(db, BrokenOrders(), message("p", paid()))
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "pending"
    assert db.session.get(Order, "ORD-1").status == "pending"  # rolled back together
    row = db.session.scalar(sa.select(PaymentEvent))
    assert row.outcome == "error" and "warehouse system down" in row.outcome_detail and row.dedupe_key is None
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
                row = ledger.record("payplug", b"{}")
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

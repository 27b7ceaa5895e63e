"""The ledger's rules on amounts and on test-mode payments, on a real database (SQLite, or PostgreSQL
with PSP_TEST_DATABASE_URL) with the example shop's orders adapter, for news in every shape the
providers hand it: whatever a notification claims, a payment is paid only for its whole amount
(or for a partial capture the merchant asked for), and a test-mode payment never pays an order while
its provider is live."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flask_psp import signals
from flask_psp.events import Event, EventKind as K, VerifiedMessage
from flask_psp.ledger import Ledger
from flask_psp.models import Payment

AMOUNT = 2500


@pytest.fixture
def shop(shop_in_context):
    _app, db, Order = shop_in_context
    return db, Order


class Orders:
    """The example shop's adapter, counting its calls."""

    def __init__(self):
        from example_shop import ShopOrders

        self.shop = ShopOrders()
        self.marked = []

    def get(self, ref):
        return self.shop.get(ref)

    def mark_paid(self, ref, payment):
        self.marked.append(ref)
        self.shop.mark_paid(ref, payment)


@pytest.fixture
def order_paid():
    received = []

    def receive(sender, payment, **extra):
        received.append(payment.order_ref)

    signals.order_paid.connect(receive)
    yield received
    signals.order_paid.disconnect(receive)


def new_payment(db, Order, ref, *, mode="test", capture="auto", status="pending"):
    db.session.add(Order(reference=ref, amount=AMOUNT, currency="EUR", status="pending"))
    payment = Payment(order_ref=ref, provider="payplug", mode=mode, capture=capture, amount=AMOUNT, currency="EUR",
                      status=status, psp_reference=f"pay_{ref}")
    db.session.add(payment)
    db.session.commit()
    return payment


def apply(db, orders, payment, key, *events, mode="test", mode_in_force=None):
    ledger = Ledger(db.session, orders, signals.send, **({"mode_in_force": mode_in_force} if mode_in_force else {}))
    message = VerifiedMessage(provider="payplug", dedupe_key=key, events=list(events), mode=mode, event_type="test",
                              psp_reference=payment.psp_reference)
    return ledger.apply(ledger.receive("payplug", b"{}"), message)


def reread(db, payment):
    db.session.expire_all()
    return db.session.get(Payment, payment.id)


#: news of money taken or reserved as the providers write it, for ``total`` minor units (None: unsaid)
SHAPES = {
    "captured total": lambda total: Event(K.CAPTURED, currency="EUR", captured_total=total),
    "captured whole amount": lambda total: Event(K.CAPTURED, amount=total, currency="EUR"),
    "captured, payment amount given": lambda total: Event(K.CAPTURED, amount=AMOUNT, currency="EUR",
                                                          captured_total=total),
    "authorized total": lambda total: Event(K.AUTHORIZED, currency="EUR", authorized_total=total),
    "approved": lambda total: Event(K.APPROVED, amount=total, currency="EUR", authorized_total=total),
}


def test_no_news_for_less_than_the_payment_or_for_no_amount_pays_it(shop, order_paid):
    db, Order = shop
    orders, refs = Orders(), itertools.count()

    @settings(max_examples=60, deadline=None)
    @given(shape=st.sampled_from(sorted(SHAPES)), total=st.none() | st.integers(min_value=0, max_value=AMOUNT - 1),
           capture=st.sampled_from(["auto", "manual", "delayed"]), status=st.sampled_from(["created", "pending",
                                                                                            "failed", "expired"]))
    def check(shape, total, capture, status):
        assume(total is not None or shape != "captured, payment amount given")  # that is a whole capture
        ref = f"ORD-{next(refs)}"
        payment = new_payment(db, Order, ref, capture=capture, status=status)
        outcome = apply(db, orders, payment, f"k-{ref}", SHAPES[shape](total))
        moved = reread(db, payment)
        assert outcome.outcome == "mismatch" and moved.flag
        assert (moved.status, moved.authorized_amount, moved.captured_amount) == (status, 0, 0)
        assert db.session.get(Order, ref).status == "pending"
        assert ref not in orders.marked and ref not in order_paid

    check()


def test_a_partial_capture_the_merchant_asked_for_is_the_only_partial_one(shop, order_paid):
    db, Order = shop
    orders = Orders()
    payment = new_payment(db, Order, "ORD-P", capture="manual", status="pending")
    apply(db, orders, payment, "auth", Event(K.AUTHORIZED, amount=AMOUNT, currency="EUR", authorized_total=AMOUNT))
    assert reread(db, payment).status == "authorized" and orders.marked == ["ORD-P"]

    unasked = apply(db, orders, payment, "cap-1", Event(K.CAPTURED, currency="EUR", captured_total=1000))
    assert unasked.outcome == "mismatch" and reread(db, payment).captured_amount == 0

    asked = Event(K.CAPTURED, currency="EUR", captured_total=1000, operation="capture", operation_amount=1000)
    assert apply(db, orders, payment, "cap-2", asked).outcome == "applied"
    payment = reread(db, payment)
    assert (payment.status, payment.captured_amount) == ("paid", 1000)
    assert orders.marked == ["ORD-P"]  # the order was paid once, at the authorization


def test_a_test_mode_payment_never_pays_its_order_while_its_provider_is_live(shop, order_paid):
    db, Order = shop
    orders = Orders()
    live_now = {"payplug": "live"}.get
    whole = Event(K.CAPTURED, amount=AMOUNT, currency="EUR", captured_total=AMOUNT)

    test_payment = new_payment(db, Order, "ORD-T")
    outcome = apply(db, orders, test_payment, "t-1", whole, mode_in_force=live_now)
    moved = reread(db, test_payment)
    assert outcome.outcome == "applied" and (moved.status, moved.captured_amount) == ("paid", AMOUNT)
    assert moved.flag.startswith("test payment on a live shop") and moved.order_marked_at is None
    assert orders.marked == [] and order_paid == [] and db.session.get(Order, "ORD-T").status == "pending"
    assert [name for name, _subject in outcome.signals] == ["payment_paid", "test_payment_on_live"]

    authorized = new_payment(db, Order, "ORD-M", capture="manual")  # manual capture: reserved money pays orders
    reserved = Event(K.AUTHORIZED, amount=AMOUNT, currency="EUR", authorized_total=AMOUNT)
    apply(db, orders, authorized, "m-1", reserved, mode_in_force=live_now)
    assert reread(db, authorized).status == "authorized" and orders.marked == []

    live_payment = new_payment(db, Order, "ORD-L", mode="live")
    apply(db, orders, live_payment, "l-1", whole, mode="live", mode_in_force=live_now)
    assert reread(db, live_payment).flag is None and orders.marked == ["ORD-L"] and order_paid == ["ORD-L"]

    in_test = new_payment(db, Order, "ORD-S")  # the provider still in test mode: test money pays test orders
    apply(db, orders, in_test, "s-1", whole, mode_in_force={"payplug": "test"}.get)
    assert orders.marked == ["ORD-L", "ORD-S"]

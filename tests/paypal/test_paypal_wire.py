"""PayPal on the wire: currencies and their exponent, captures that stay pending, PayPal's own
later news (a pending capture cleared or denied, a reversal, a voided authorization), idempotent
retries. The shop and the PayPal simulator run on loopback; every webhook goes through the verify
API."""

from __future__ import annotations

import requests

from tests.paypal.conftest import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, approve, order_id, start


def operate(shop, ref, verb, *args):
    from example_shop import psp

    with shop.app.app_context():
        payment = psp.payments_for(ref)[-1]
        getattr(psp, verb)(payment, *args)
        return payment.status


def add_product(shop, sku, price, currency):
    from example_shop import Product, db

    with shop.app.app_context():
        db.session.add(Product(sku=sku, name=sku.title(), price=price, currency=currency))
        db.session.commit()


def inbox(shop, **where):
    return [e for e in shop.events() if all(e[k] == v for k, v in where.items())]


def token(sim):
    return requests.post(f"{sim.url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                         auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), timeout=10).json()["access_token"]


# ---------------------------------------------------------------------------- currencies
def test_a_yen_order_goes_out_without_decimals_and_is_paid(paypal_shop, sim):
    shop = paypal_shop()
    add_product(shop, "TEA-JP", 1450, "JPY")
    buyer = shop.buyer()
    ref, approval_url = start(buyer, sku="TEA-JP")
    assert sim.orders[order_id(approval_url)]["unit"]["amount"] == {"currency_code": "JPY", "value": "1450"}
    back = approve(buyer, approval_url)
    assert 'data-status="paid"' in back.text
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450 and payment["amount"] == 1450
    (capture,) = sim.captures.values()
    assert capture["capture"]["amount"] == {"currency_code": "JPY", "value": "1450"}
    operate(shop, ref, "refund", 450)
    (refund,) = sim.refunds.values()
    assert refund["refund"]["amount"] == {"currency_code": "JPY", "value": "450"}
    assert shop.payments(ref)[0]["refunded_amount"] == 450


def test_paypal_is_not_offered_for_a_three_decimal_currency(paypal_shop, sim):
    """PayPal's currency list holds no currency with three decimals (KWD, BHD…): such an order
    never reaches PayPal."""
    shop = paypal_shop()
    add_product(shop, "DATES-KW", 12345, "KWD")  # 12.345 KWD
    buyer = shop.buyer()
    ref = buyer.place_order(sku="DATES-KW")
    page = buyer.http.get(f"{shop.url}/psp/checkout/{ref}", timeout=10)
    assert page.status_code == 200 and 'value="paypal"' not in page.text
    forced = buyer.http.post(f"{shop.url}/psp/checkout/{ref}", timeout=10, allow_redirects=False,
                             data={"provider": "paypal", "csrf_token": buyer.csrf(buyer.http.get(shop.url + "/", timeout=10).text)})
    assert forced.status_code == 400 and "not available" in forced.text
    assert shop.payments(ref) == [] and [r for r in sim.requests if r["path"] == "/v2/checkout/orders"] == []


def test_an_instrument_declined_at_capture_fails_the_payment_once(paypal_shop, sim):
    """PayPal may refuse the capture itself (422 INSTRUMENT_DECLINED) instead of answering a
    declined capture: the return and the approval webhook both meet it, the payment fails once."""
    sim.decline_style = "instrument"
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    back = approve(buyer, approval_url, action="decline")
    assert 'data-status="failed"' in back.text
    assert sim.notifier.wait_idle(timeout=10)
    assert sim.notifier.deliveries[0].attempts[-1][0] == 200  # verified; nothing more to do
    (payment,) = shop.payments(ref)
    assert payment["status"] == "failed" and "declined" in payment["failure_reason"]
    assert sim.captures == {} and shop.order(ref)["status"] == "pending"
    # the return and the approval webhook race: whichever comes second is the duplicate
    outcomes = sorted(e["outcome"] for e in shop.events() if e["source"] in ("notify", "return"))
    assert outcomes == ["applied", "duplicate"]


# ---------------------------------------------------------------------------- pending captures
def test_a_pending_capture_shows_pending_until_paypal_says_it_cleared(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    back = approve(buyer, approval_url, action="bank")
    assert 'data-status="pending"' in back.text  # captured, but the eCheck has not cleared
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "pending" and payment["captured_amount"] == 0
    assert shop.order(ref)["status"] == "pending"
    (capture_id,) = sim.captures
    assert [r["event"]["event_type"] for r in sim.sent] == ["CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.PENDING"]

    sim.settle_capture(capture_id)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450
    assert shop.order(ref)["status"] == "paid"
    assert all(v["result"] == "SUCCESS" for v in sim.verifications)


def test_a_pending_capture_denied_fails_the_payment(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url, action="bank")
    assert sim.notifier.wait_idle(timeout=10)
    (capture_id,) = sim.captures
    sim.settle_capture(capture_id, cleared=False)
    assert sim.notifier.wait_idle(timeout=10)
    assert sim.sent[-1]["event"]["event_type"] == "PAYMENT.CAPTURE.DENIED"
    (payment,) = shop.payments(ref)
    assert payment["status"] == "failed" and payment["captured_amount"] == 0
    assert shop.order(ref)["status"] == "pending"  # the buyer may pay again


# ---------------------------------------------------------------------------- PayPal's own news
def test_a_reversal_is_flagged_for_the_merchant(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url)
    assert sim.notifier.wait_idle(timeout=10)
    (capture_id,) = sim.captures
    sim.reverse_capture(capture_id)
    assert sim.notifier.wait_idle(timeout=10)
    assert sim.sent[-1]["event"]["event_type"] == "PAYMENT.CAPTURE.REVERSED"
    assert "custom_id" not in sim.sent[-1]["event"]["resource"]  # found through its capture
    (payment,) = shop.payments(ref)
    assert "chargeback" in (payment["flag"] or "") and payment["status"] == "paid"
    assert inbox(shop, source="notify")[-1]["outcome"] == "applied"


def test_an_authorization_voided_at_paypal_cancels_the_payment(paypal_shop, sim):
    shop = paypal_shop(capture="manual")
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url)
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "authorized"
    (auth_id,) = sim.authorizations
    sim.void_authorization(auth_id)
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "cancelled"
    assert [e["outcome"] for e in inbox(shop, source="notify")][-1] == "applied"


# ---------------------------------------------------------------------------- idempotent retries
def test_two_clicks_on_refund_before_either_finished_refund_once(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url)
    assert sim.notifier.wait_idle(timeout=10)
    sim.notifier.paused = True  # PayPal's PAYMENT.CAPTURE.REFUNDED webhook comes after
    with shop.app.app_context():
        service = shop.app.extensions["psp"].service()
        payment = service.payments_of(ref)[-1]
        provider = service.provider("paypal", payment.mode)
        first = provider.refund(payment, 500)
        second = provider.refund(payment, 500)  # the second click saw the payment as the first did
        outcomes = service.ledger.record_and_apply("paypal", first + second, source="api")
    assert [o.outcome for o in outcomes] == ["applied", "duplicate"]
    refunds = [r for r in sim.requests if r["path"].endswith("/refund")]
    assert [r["status"] for r in refunds] == [201, 200] and refunds[0]["request_id"] == refunds[1]["request_id"]
    assert len(sim.refunds) == 1 and shop.payments(ref)[0]["refunded_amount"] == 500
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    assert inbox(shop, source="notify")[-1]["outcome"] == "duplicate"
    assert shop.payments(ref)[0]["refunded_amount"] == 500


def test_paypal_answers_201_then_200_to_the_same_request_id(sim):
    headers = {"Authorization": f"Bearer {token(sim)}", "PayPal-Request-Id": "shop-order-1-create"}
    body = {"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "EUR", "value": "14.50"}}],
            "payment_source": {"paypal": {"experience_context": {"return_url": "https://shop.example/r",
                                                                 "cancel_url": "https://shop.example/c"}}}}
    first = requests.post(f"{sim.url}/v2/checkout/orders", json=body, headers=headers, timeout=10)
    again = requests.post(f"{sim.url}/v2/checkout/orders", json=body, headers=headers, timeout=10)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and len(sim.orders) == 1
    assert first.json()["status"] == "PAYER_ACTION_REQUIRED"
    assert [link["rel"] for link in first.json()["links"]] == ["self", "payer-action"]


def test_a_pending_refund_or_capture_of_an_authorization_awaits_paypal():
    """PayPal may take a refund (or the capture of an authorization) without completing it yet:
    the payment awaits it, and the completion or failure names the same refund or capture."""
    from flask_psp.providers.base import EventKind as K, ProviderConfig
    from flask_psp.providers.paypal import PayPalProvider

    provider = PayPalProvider(ProviderConfig("paypal", "test", {"client_id": "c", "client_secret": "s",
                                                                 "webhook_id": "W"}))
    amount = {"currency_code": "EUR", "value": "12.50"}
    (pending,) = provider.refund_message({"id": "3RF1", "status": "PENDING", "amount": amount}, "O1", "tok").events
    assert (pending.kind, pending.operation, pending.operation_amount, pending.operation_reference) == (
        K.REQUESTED, "refund", 1250, "3RF1")
    (done,) = provider.refund_message({"id": "3RF1", "status": "COMPLETED", "amount": amount}, "O1", "tok").events
    assert (done.kind, done.refund_delta, done.operation_reference) == (K.REFUNDED, 1250, "3RF1")
    (failed,) = provider.refund_message({"id": "3RF1", "status": "FAILED", "amount": amount}, "O1", "tok").events
    assert (failed.kind, failed.operation_reference) == (K.REFUND_FAILED, "3RF1")
    capture = {"id": "5CP1", "status": "PENDING", "amount": amount, "status_details": {"reason": "ECHECK"}}
    (awaited,) = provider.capture_message(capture, "O1", "tok", from_authorization=True).events
    assert (awaited.kind, awaited.operation, awaited.operation_amount) == (K.REQUESTED, "capture", 1250)
    (buyer_pending,) = provider.capture_message(capture, "O1", "tok", from_authorization=False).events
    assert buyer_pending.kind is K.PENDING  # the buyer's own payment still clearing: the payment is pending

"""PayPal end to end over HTTP: the example shop and the PayPal simulator on loopback, a payer with a
real HTTP client on the approval page, webhooks transmitted by the simulator as PayPal transmits
them and verified through its verify API."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from flask_psp.providers.base import ProviderConfig, ProviderError
from tests.paypal.conftest import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_WEBHOOK_ID,
    approve,
    deliver,
    order_id,
    paypal_settings,
    start,
)


def status_json(shop, token):
    return requests.get(f"{shop.url}/psp/payments/{token}/status.json", timeout=10).json()["status"]


def inbox(shop, **where):
    return [e for e in shop.events() if all(e[k] == v for k, v in where.items())]


def operate(shop, ref, verb, *args):
    from example_shop import psp

    with shop.app.app_context():
        payment = psp.payments_for(ref)[-1]
        getattr(psp, verb)(payment, *args)
        return payment.status


def set_brand(shop, brand):
    from example_shop import db
    from flask_psp.models import PageSettings

    with shop.app.app_context():
        db.session.add(PageSettings(id=1, brand_name=brand, messages={}, provider_look={}))
        db.session.commit()


def captures_made(sim):
    """Captures PayPal really made (a replayed PayPal-Request-Id makes none)."""
    return list(sim.captures)


# ---------------------------------------------------------------------------- buyer flows
def test_payer_approves_and_the_return_captures(paypal_shop, sim):
    shop = paypal_shop()
    set_brand(shop, "Atelier Lyon")
    buyer = shop.buyer(accept_language="fr")
    ref, approval_url = start(buyer, sku="PEN-04", quantity=2)
    assert approval_url == f"{sim.url}/checkoutnow?token={order_id(approval_url)}"
    order = sim.orders[order_id(approval_url)]
    (payment,) = shop.payments(ref)
    assert payment["psp_reference"] == order["id"]
    assert order["intent"] == "CAPTURE"
    assert order["unit"]["amount"] == {"currency_code": "EUR", "value": "170.00"}
    assert order["unit"]["custom_id"] == payment["token"] and order["unit"]["reference_id"] == ref
    context = order["context"]
    assert context["return_url"] == f"{shop.url}/psp/return/{payment['token']}"
    assert context["cancel_url"] == f"{shop.url}/psp/cancel/{payment['token']}"
    assert context["brand_name"] == "Atelier Lyon" and context["locale"] == "fr-FR"
    (create,) = [r for r in sim.requests if r["path"] == "/v2/checkout/orders"]
    assert create["request_id"] == f"{payment['token']}-create"

    back = approve(buyer, approval_url)
    assert back.status_code == 200 and 'data-status="paid"' in back.text  # captured on the return
    assert shop.order(ref)["status"] == "paid"
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 17000
    assert status_json(shop, payment["token"]) == "paid"

    assert sim.notifier.wait_idle(timeout=10)  # CHECKOUT.ORDER.APPROVED and PAYMENT.CAPTURE.COMPLETED
    assert [d.attempts[-1][0] for d in sim.notifier.deliveries] == [200, 200]
    assert len(captures_made(sim)) == 1  # the webhook found it captured, or got the same answer back
    assert shop.payments(ref)[0]["captured_amount"] == 17000
    assert sim.verifications and all(v["result"] == "SUCCESS" for v in sim.verifications)


def test_the_request_id_never_reaches_the_token_call(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url)
    assert sim.notifier.wait_idle(timeout=10)
    assert sim.token_requests
    assert all("Paypal-Request-Id" not in headers for headers in sim.token_requests)
    assert any(r["request_id"] for r in sim.requests if r["path"].startswith("/v2/"))


def test_declined_funding_source_fails(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    back = approve(buyer, approval_url, action="decline")
    assert 'data-status="failed"' in back.text
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "failed" and payment["captured_amount"] == 0
    assert shop.order(ref)["status"] == "pending"


def test_payer_cancels_on_paypal(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    back = approve(buyer, approval_url, action="cancel")
    assert back.url.startswith(f"{shop.url}/psp/cancel/")
    assert 'data-status="cancelled"' in back.text
    assert shop.payments(ref)[0]["status"] == "cancelled"
    assert sim.sent == []
    # the order is still payable: a new attempt pays
    again = buyer.choose(ref, "paypal")
    back = approve(buyer, again.headers["Location"])
    assert 'data-status="paid"' in back.text and shop.order(ref)["status"] == "paid"


@pytest.mark.parametrize("code, expected", [("1234", "paid"), ("0000", "failed")])
def test_card_with_3d_secure_challenge(paypal_shop, sim, code, expected):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    back = approve(buyer, approval_url, action="card", code=code)
    assert f'data-status="{expected}"' in back.text
    assert shop.payments(ref)[0]["status"] == expected


def test_payer_closes_the_tab_after_approving_and_the_webhook_captures(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    redirect = approve(buyer, approval_url, follow=False)
    assert redirect.headers["Location"].startswith(f"{shop.url}/psp/return/")  # never followed
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.order(ref)["status"] == "paid"
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450
    assert len(captures_made(sim)) == 1
    kinds = [r["event"]["event_type"] for r in sim.sent]
    assert kinds == ["CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED"]
    # the capture's own webhook races the approval's request that made the capture: whichever is
    # applied first is "applied", the other one brings nothing new
    assert sorted(e["outcome"] for e in inbox(shop, source="notify")) == ["applied", "duplicate"]


# ---------------------------------------------------------------------------- merchant operations
def test_manual_capture_authorizes_then_capture_from_code(paypal_shop, sim):
    shop = paypal_shop(capture="manual")
    buyer = shop.buyer()
    ref, approval_url = start(buyer, sku="TEE-02")
    assert sim.orders[order_id(approval_url)]["intent"] == "AUTHORIZE"
    back = approve(buyer, approval_url)
    assert 'data-status="authorized"' in back.text
    (payment,) = shop.payments(ref)
    assert payment["status"] == "authorized" and payment["authorized_amount"] == 2900
    assert shop.order(ref)["status"] == "paid"
    assert operate(shop, ref, "capture") == "paid"  # PayPal's answer is the proof
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 2900
    assert sim.notifier.wait_idle(timeout=10)
    assert all(d.attempts[-1][0] == 200 for d in sim.notifier.deliveries)
    assert shop.payments(ref)[0]["captured_amount"] == 2900
    events = [r["event"]["event_type"] for r in sim.sent]
    assert events == ["CHECKOUT.ORDER.APPROVED", "PAYMENT.AUTHORIZATION.CREATED", "PAYMENT.CAPTURE.COMPLETED"]


def test_partial_capture_of_an_authorization(paypal_shop, sim):
    shop = paypal_shop(capture="manual")
    buyer = shop.buyer()
    ref, approval_url = start(buyer, sku="PEN-04")
    approve(buyer, approval_url)
    assert operate(shop, ref, "capture", 5000) == "paid"
    (payment,) = shop.payments(ref)
    assert payment["captured_amount"] == 5000 and payment["amount"] == 8500
    (capture,) = sim.captures.values()
    assert capture["capture"]["amount"] == {"currency_code": "EUR", "value": "50.00"}


def test_void_an_authorization(paypal_shop, sim):
    shop = paypal_shop(capture="manual")
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url)
    assert operate(shop, ref, "cancel") == "cancelled"
    assert sim.notifier.wait_idle(timeout=10)
    (authorization,) = sim.authorizations.values()
    assert authorization["authorization"]["status"] == "VOIDED"
    assert shop.payments(ref)[0]["status"] == "cancelled"


def test_partial_refunds_summing_to_the_whole_make_it_refunded(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer, sku="MAP-03")
    approve(buyer, approval_url)
    assert operate(shop, ref, "refund", 1000) == "partially_refunded"
    assert operate(shop, ref, "refund", 990) == "partially_refunded"
    assert operate(shop, ref, "refund") == "refunded"
    (payment,) = shop.payments(ref)
    assert payment["refunded_amount"] == 3990
    assert [r["refund"]["amount"]["value"] for r in sim.refunds.values()] == ["10.00", "9.90", "20.00"]
    assert sim.notifier.wait_idle(timeout=10)  # the PAYMENT.CAPTURE.REFUNDED webhooks: duplicates
    assert shop.payments(ref)[0]["refunded_amount"] == 3990
    outcomes = [e["outcome"] for e in inbox(shop, source="notify")]
    assert outcomes.count("duplicate") >= 3 and "rejected" not in outcomes


def test_refund_made_in_paypals_back_office_is_matched(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url)
    (capture_id,) = sim.captures
    refund = requests.post(f"{sim.url}/v2/payments/captures/{capture_id}/refund", timeout=10,
                           headers={"Authorization": f"Bearer {paypal_token(sim)}"}, json={"amount": {"currency_code": "EUR", "value": "4.50"}})
    assert refund.status_code == 201
    assert sim.notifier.wait_idle(timeout=10)  # the refund has no custom_id: its capture tells whose it is
    (payment,) = shop.payments(ref)
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == 450


# ---------------------------------------------------------------------------- authenticity
def _pending(paypal_shop, sim, **settings):
    shop = paypal_shop(**settings)
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    return shop, ref, approval_url


def test_forged_event_with_made_up_headers_changes_nothing(paypal_shop, sim):
    shop, ref, approval_url = _pending(paypal_shop, sim)
    (payment,) = shop.payments(ref)
    resource = {"id": "FAKECAPTURE000001", "status": "COMPLETED", "amount": {"currency_code": "EUR", "value": "14.50"},
                "custom_id": payment["token"], "supplementary_data": {"related_ids": {"order_id": payment["psp_reference"]}}}
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", resource, "capture")
    headers = {"Content-Type": "application/json", "PAYPAL-AUTH-ALGO": "SHA256withRSA",
               "PAYPAL-CERT-URL": f"{sim.url}/v1/notifications/certs/CERT-forged", "PAYPAL-TRANSMISSION-ID": "abc",
               "PAYPAL-TRANSMISSION-SIG": "Zm9yZ2Vk", "PAYPAL-TRANSMISSION-TIME": "2026-01-01T00:00:00Z"}
    answer = requests.post(shop.notify_url("paypal"), data=json.dumps(event), headers=headers, timeout=10)
    assert answer.status_code in (401, 403)
    without = requests.post(shop.notify_url("paypal"), data=json.dumps(event), timeout=10,
                            headers={"Content-Type": "application/json"})
    assert without.status_code in (401, 403)
    assert shop.payments(ref)[0]["status"] == "pending" and shop.order(ref)["status"] == "pending"
    assert [e["outcome"] for e in inbox(shop, source="notify")] == ["rejected", "rejected"]
    assert [v["result"] for v in sim.verifications] == ["FAILURE"]  # the headerless one never got that far


def test_a_genuine_event_tampered_with_changes_nothing(paypal_shop, sim):
    shop = paypal_shop()
    # order A is paid, which makes PayPal send a genuine PAYMENT.CAPTURE.COMPLETED
    buyer = shop.buyer()
    ref_a, url_a = start(buyer)
    approve(buyer, url_a)
    assert sim.notifier.wait_idle(timeout=10)
    # order B is pending; someone replays A's capture event rewritten for B
    buyer_b = shop.buyer()
    ref_b, url_b = start(buyer_b)
    (payment_b,) = shop.payments(ref_b)
    (genuine,) = sim.events_of("PAYMENT.CAPTURE.COMPLETED")
    event = json.loads(genuine["body"])
    event["resource"]["custom_id"] = payment_b["token"]
    event["resource"]["supplementary_data"]["related_ids"]["order_id"] = payment_b["psp_reference"]
    answer = requests.post(shop.notify_url("paypal"), data=json.dumps(event), headers=genuine["headers"], timeout=10)
    assert answer.status_code in (401, 403)
    assert shop.payments(ref_b)[0]["status"] == "pending" and shop.order(ref_b)["status"] == "pending"
    assert sim.verifications[-1]["result"] == "FAILURE"


def test_wrong_webhook_id_is_refused(paypal_shop, sim):
    shop = paypal_shop(webhook_id="WH0THERAPPWEBHOOK")
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url, follow=False)  # only the webhook could capture
    assert sim.notifier.wait_until(lambda: sim.notifier.deliveries[0].attempts, timeout=10)
    assert sim.notifier.deliveries[0].attempts[0][0] in (401, 403)
    assert shop.payments(ref)[0]["status"] == "pending"
    assert captures_made(sim) == []


def test_verify_api_down_answers_5xx_changes_nothing_and_the_retry_applies(paypal_shop, sim):
    shop = paypal_shop()
    sim.verify_outage = True
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url, follow=False)
    (delivery,) = sim.notifier.deliveries
    assert sim.notifier.wait_until(lambda: delivery.attempts, timeout=10)
    assert delivery.attempts[0][0] == 503 and not delivery.delivered
    assert shop.payments(ref)[0]["status"] == "pending" and captures_made(sim) == []
    (row,) = inbox(shop, source="notify")
    assert row["outcome"] == "error"
    sim.verify_outage = False
    sim.notifier.retry_now()  # PayPal retries later
    assert sim.notifier.wait_idle(timeout=10)
    assert delivery.delivered
    assert shop.order(ref)["status"] == "paid"


def test_verify_api_unreachable_answers_5xx(make_shop, sim):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    shop = make_shop(psp_providers=paypal_settings(sim, endpoint=dead))
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", {"id": "X1", "status": "COMPLETED", "custom_id": "t"}, "capture")
    sim.send_event(event, url=shop.notify_url("paypal"))
    (delivery,) = sim.notifier.deliveries
    assert sim.notifier.wait_until(lambda: delivery.attempts, timeout=10)
    assert delivery.attempts[0][0] == 503
    (row,) = inbox(shop, source="notify")
    assert row["outcome"] == "error" and row["verified"] is None


def test_approval_of_an_order_paypal_cannot_find_is_stored_and_moves_nothing(paypal_shop, sim):
    shop, ref, approval_url = _pending(paypal_shop, sim)
    (payment,) = shop.payments(ref)
    resource = {"id": "UNKNOWNORDER00001", "intent": "CAPTURE", "status": "APPROVED",
                "purchase_units": [{"custom_id": payment["token"], "amount": {"currency_code": "EUR", "value": "14.50"}}]}
    sim.send_event(sim.event("CHECKOUT.ORDER.APPROVED", resource, "checkout-order"))
    assert sim.notifier.wait_idle(timeout=10)  # a 2xx: retrying would not change PayPal's 404
    assert shop.payments(ref)[0]["status"] == "pending" and captures_made(sim) == []
    (row,) = inbox(shop, source="notify")
    assert row["verified"] is True and row["outcome"] == "applied"


# ---------------------------------------------------------------------------- duplicates, order
def test_duplicates_change_nothing(paypal_shop, sim):
    shop = paypal_shop()
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url)
    operate(shop, ref, "refund", 450)
    assert sim.notifier.wait_idle(timeout=10)
    for record in sim.sent * 2:
        assert deliver(shop, record).status_code == 200
    (payment,) = shop.payments(ref)
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == 450
    assert len(captures_made(sim)) == 1


def paypal_token(sim):
    return requests.post(f"{sim.url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                         auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), timeout=10).json()["access_token"]


def test_capture_event_before_the_approval_event(paypal_shop, sim):
    shop = paypal_shop()
    sim.webhook_url = None  # keep the webhooks; deliver them by hand, in another order
    buyer = shop.buyer()
    ref, approval_url = start(buyer)
    approve(buyer, approval_url, follow=False)  # the payer closed the tab
    (approved,) = sim.sent
    # captured by another of the merchant's tools before the shop heard of the approval
    captured = requests.post(f"{sim.url}/v2/checkout/orders/{order_id(approval_url)}/capture", json={}, timeout=10,
                             headers={"Authorization": f"Bearer {paypal_token(sim)}"})
    assert captured.status_code == 201
    (capture_event,) = sim.events_of("PAYMENT.CAPTURE.COMPLETED")
    assert deliver(shop, capture_event).status_code == 200
    assert shop.payments(ref)[0]["status"] == "paid" and shop.order(ref)["status"] == "paid"
    assert deliver(shop, approved).status_code == 200  # late approval news: PayPal says it is captured already
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450
    assert len(captures_made(sim)) == 1
    assert [e["outcome"] for e in inbox(shop, source="notify")] == ["applied", "duplicate"]


# ---------------------------------------------------------------------------- wire details
def provider(sim, **credentials):
    from flask_psp.providers.paypal import PayPalProvider

    block = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, "webhook_id": DEFAULT_WEBHOOK_ID}
    block.update(credentials)
    return PayPalProvider(ProviderConfig("paypal", "test", block, endpoint=sim.url))


def test_amounts_follow_the_currency_exponent():
    from flask_psp.providers.paypal import PayPalProvider

    assert PayPalProvider.wire_amount(1450, "EUR") == {"currency_code": "EUR", "value": "14.50"}
    assert PayPalProvider.wire_amount(1450, "JPY") == {"currency_code": "JPY", "value": "1450"}
    assert PayPalProvider.wire_amount(150000, "HUF") == {"currency_code": "HUF", "value": "1500"}
    with pytest.raises(ProviderError):
        PayPalProvider.wire_amount(150050, "HUF")
    assert PayPalProvider.read_amount({"currency_code": "JPY", "value": "1450"}) == (1450, "JPY")
    assert PayPalProvider.read_amount({"currency_code": "EUR", "value": "0.10"}) == (10, "EUR")


def test_a_400_is_an_error_not_a_result(sim):
    with pytest.raises(ProviderError) as caught:
        provider(sim)._request("POST", "/v2/checkout/orders", {"intent": "SELL", "purchase_units": []}, "req-1")
    assert caught.value.status == 400 and "INVALID_PARAMETER_VALUE" in caught.value.message


def test_wrong_secret_is_a_clear_error_and_never_loops(sim):
    with pytest.raises(ProviderError) as caught:
        provider(sim, client_secret="wrong")._request("GET", "/v2/checkout/orders/X")
    assert caught.value.message == "PayPal refused the client ID / secret" and "wrong" not in caught.value.message
    assert len(sim.token_requests) == 1


def test_an_expired_token_is_renewed_once(sim):
    client = provider(sim)
    client._request("GET", "/v1/notifications/webhooks/" + DEFAULT_WEBHOOK_ID)
    sim.tokens.clear()  # PayPal forgot the token
    client._request("GET", "/v1/notifications/webhooks/" + DEFAULT_WEBHOOK_ID)
    assert len(sim.token_requests) == 2


def test_provider_objects_share_one_token_and_one_renewal(sim):
    webhook = "/v1/notifications/webhooks/" + DEFAULT_WEBHOOK_ID
    first = provider(sim)
    first._request("GET", webhook)
    second = provider(sim)  # a provider object per request: the token is shared
    second._request("GET", webhook)
    assert len(sim.token_requests) == 1
    sim.tokens.clear()  # PayPal forgot the token
    first._request("GET", webhook)  # renewed once…
    second._request("GET", webhook)  # …and the other object takes the renewed one
    assert len(sim.token_requests) == 2


def test_an_expired_token_is_renewed_once_to_verify_a_webhook(paypal_shop, sim):
    shop, ref, approval_url = _pending(paypal_shop, sim)
    approve(shop.buyer(), approval_url)
    assert sim.notifier.wait_idle(timeout=10)
    (genuine,) = sim.events_of("PAYMENT.CAPTURE.COMPLETED")
    requested = len(sim.token_requests)
    sim.tokens.clear()
    answer = deliver(shop, genuine)
    assert answer.status_code == 200, answer.text
    assert len(sim.token_requests) == requested + 1
    assert sim.verifications[-1]["result"] == "SUCCESS"


def test_test_connection(sim):
    assert provider(sim).test_connection()[0] is True
    ok, message = provider(sim, client_secret="nope").test_connection()
    assert not ok and "client ID / secret" in message
    ok, message = provider(sim, webhook_id="WHUNKNOWN").test_connection()
    assert not ok and "webhook" in message


def test_credentials_are_checked():
    from flask_psp.providers.paypal import PayPalProvider

    good = {"client_id": "a", "client_secret": "b", "webhook_id": "8PT597110X687430LKGECATA"}
    assert PayPalProvider.validate_credentials(good, "live") == []
    assert PayPalProvider.validate_credentials(dict(good, webhook_id=""), "test")
    assert PayPalProvider.validate_credentials(dict(good, webhook_id="https://shop/notify"), "test")

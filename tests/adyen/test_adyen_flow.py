"""Adyen end to end over HTTP: the example shop and the Adyen simulator on loopback, a buyer with a
real HTTP client on the Hosted Checkout page, webhooks signed by the simulator as Adyen signs them."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import requests
import sqlalchemy as sa

from flask_psp.providers.base import EventKind, ProviderConfig
from tests.adyen.conftest import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_SUCCESS,
    adyen_settings,
    deliver,
    pay,
    session_of,
    start,
    still_on_adyen,
)

OTHER_KEY = "0F" * 32  # a valid hex HMAC key that is not the merchant's


def status_json(shop, token):
    return requests.get(f"{shop.url}/psp/payments/{token}/status.json", timeout=10).json()["status"]


def inbox(shop, **where):
    return [e for e in shop.events() if all(e[k] == v for k, v in where.items())]


def psp_capture(shop, ref, amount=None):
    from example_shop import psp

    with shop.app.app_context():
        payment = psp.payments_for(ref)[-1]
        psp.capture(payment, amount)
        return payment.status


def psp_refund(shop, ref, amount=None):
    from example_shop import psp

    with shop.app.app_context():
        payment = psp.payments_for(ref)[-1]
        psp.refund(payment, amount)
        return payment.status


def psp_cancel(shop, ref):
    from example_shop import psp

    with shop.app.app_context():
        payment = psp.payments_for(ref)[-1]
        psp.cancel(payment)
        return payment.status


# ---------------------------------------------------------------------------- buyer flows
def test_buyer_pays_and_the_order_is_paid_when_the_webhook_says_so(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer, sku="PEN-04", quantity=2)
    assert page_url.startswith(sim.url + "/checkoutshopper/sessions/CS")
    session = session_of(sim, page_url)
    sent = session["request"]
    (payment,) = shop.payments(ref)
    assert sent["mode"] == "hosted" and sent["merchantAccount"] == sim.merchant_account
    assert sent["amount"] == {"value": 17000, "currency": "EUR"}
    assert sent["reference"] == payment["token"] and sent["merchantOrderReference"] == ref
    assert sent["returnUrl"] == f"{shop.url}/psp/return/{payment['token']}"
    assert sent["shopperLocale"] == "en-US" and sent["shopperEmail"] == "buyer@example.com"
    assert "additionalData" not in sent and "authenticationData" not in sent
    (call,) = [r for r in sim.requests if r["path"] == "/v72/sessions"]
    assert call["idempotency_key"] and call["status"] == 201

    sim.notifier.paused = True  # the redirect alone must not mark anything paid
    back = pay(buyer, page_url)
    assert back.status_code == 200 and 'data-status="pending"' in back.text
    assert shop.order(ref)["status"] == "pending"
    assert status_json(shop, payment["token"]) == "pending"

    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (delivery,) = sim.notifier.deliveries
    assert delivery.delivered and delivery.attempts[-1][0] == 200
    assert shop.order(ref)["status"] == "paid"
    (payment,) = shop.payments(ref)
    psp_reference = json.loads(delivery.body)["notificationItems"][0]["NotificationRequestItem"]["pspReference"]
    assert payment["status"] == "paid" and payment["captured_amount"] == 17000
    assert payment["psp_reference"] == psp_reference
    assert status_json(shop, payment["token"]) == "paid"
    assert 'data-status="paid"' in buyer.http.get(f"{shop.url}/psp/return/{payment['token']}", timeout=10).text


def test_the_notification_answer_is_accepted(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    record = sim.sent[0]
    again = deliver(shop, record)
    assert again.status_code == 200 and again.text == "[accepted]"


def test_declined_card_fails_and_the_buyer_tries_another_card_on_the_same_page(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    page = pay(buyer, page_url, card=CARD_DECLINED)
    assert still_on_adyen(page)  # Adyen keeps the session open for another attempt
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    # a refused attempt, not a refused payment: pending, with the reason, while the session is open
    assert payment["status"] == "pending" and payment["psp_reference"] is None
    assert payment["failure_reason"] == "Refused"
    assert status_json(shop, payment["token"]) == "pending"
    assert shop.order(ref)["status"] == "pending"
    item = json.loads(sim.sent[0]["body"])["notificationItems"][0]["NotificationRequestItem"]
    assert item["eventCode"] == "AUTHORISATION" and item["success"] == "false"
    assert inbox(shop, source="notify")[0]["outcome"] == "applied"
    sim.notifier.paused = True  # the buyer is back before Adyen's webhook
    back = pay(buyer, page_url)  # a good card, same session
    assert 'data-status="pending"' in back.text  # never "failed": the buyer must not pay twice
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    second = json.loads(sim.sent[1]["body"])["notificationItems"][0]["NotificationRequestItem"]
    assert second["success"] == "true" and second["pspReference"] != item["pspReference"]
    assert payment["status"] == "paid" and payment["psp_reference"] == second["pspReference"]
    assert payment["failure_reason"] is None and payment["flag"] is None
    assert shop.order(ref)["status"] == "paid"


def test_too_many_refusals_end_the_session_and_the_order_stays_payable(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    for _ in range(sim.max_refusals - 1):
        assert still_on_adyen(pay(buyer, page_url, card=CARD_DECLINED))
    back = pay(buyer, page_url, card=CARD_DECLINED)
    assert back.url.startswith(f"{shop.url}/psp/return/")  # session "refused": back at the shop
    assert 'data-status="failed"' in back.text  # Adyen's session API says so
    assert sim.notifier.wait_idle(timeout=10)
    assert [d.attempts[-1][0] for d in sim.notifier.deliveries] == [200] * sim.max_refusals
    (payment,) = shop.payments(ref)
    assert payment["status"] == "failed" and shop.order(ref)["status"] == "pending"
    # the buyer starts again from the shop and pays
    again = buyer.choose(ref, "adyen")
    assert again.status_code == 303
    pay(buyer, again.headers["Location"])
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.order(ref)["status"] == "paid"
    assert [p["status"] for p in shop.payments(ref)] == ["failed", "paid"]


def test_buyer_cancels_on_the_hosted_page(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    back = pay(buyer, page_url, action="cancel")
    assert 'data-status="cancelled"' in back.text
    (payment,) = shop.payments(ref)
    assert payment["status"] == "cancelled"
    assert shop.order(ref)["status"] == "pending"
    assert sim.sent == []  # Adyen sends nothing for a cancelled session


def test_a_forged_return_does_not_settle_anything(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    (payment,) = shop.payments(ref)
    token = payment["token"]
    session_id = page_url.rstrip("/").split("/")[-1]
    for query in ({"sessionId": session_id, "sessionResult": "made-up"}, {"sessionId": "CS0000", "sessionResult": "x"}, {}):
        page = buyer.http.get(f"{shop.url}/psp/return/{token}", params=query, timeout=10)
        assert page.status_code == 200 and 'data-status="pending"' in page.text
    assert shop.payments(ref)[0]["status"] == "pending"


def test_3d_secure_challenge_always_requested(adyen_shop, sim):
    shop = adyen_shop(three_ds="always")
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    assert session_of(sim, page_url)["request"]["authenticationData"] == {"attemptAuthentication": "always"}
    answer = buyer.http.post(page_url, data={"card_number": CARD_SUCCESS, "action": "pay"}, allow_redirects=False, timeout=10)
    assert answer.headers["Location"].endswith("/3ds")  # the success card is challenged too
    pay_back = buyer.http.post(answer.headers["Location"], data={"code": "password"}, allow_redirects=True, timeout=10)
    assert pay_back.status_code == 200
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.order(ref)["status"] == "paid"


def test_3d_secure_challenge_failed(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    page = pay(buyer, page_url, card=CARD_3DS, password="wrong")
    assert still_on_adyen(page)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "pending" and "3D" in (payment["failure_reason"] or "")
    assert shop.order(ref)["status"] == "pending"
    back = pay(buyer, page_url, action="cancel")  # the buyer gives up
    assert 'data-status="cancelled"' in back.text and shop.order(ref)["status"] == "pending"


def test_3d_secure_challenge_passed(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url, card=CARD_3DS)
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.order(ref)["status"] == "paid"


# ---------------------------------------------------------------------------- merchant operations
def test_manual_capture_then_capture_from_code(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    buyer = shop.buyer()
    ref, page_url = start(buyer, sku="TEE-02")
    assert session_of(sim, page_url)["request"]["additionalData"] == {"manualCapture": "true"}
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "authorized" and payment["authorized_amount"] == 2900
    assert payment["captured_amount"] == 0
    assert shop.order(ref)["status"] == "paid"  # manual capture: authorized counts as paid for the order

    sim.notifier.paused = True
    assert psp_capture(shop, ref) == "authorized"  # Adyen only acknowledges; the webhook decides
    (call,) = [r for r in sim.requests if r["path"].endswith("/captures")]
    assert call["path"] == f"/v72/payments/{payment['psp_reference']}/captures" and call["status"] == 201
    assert call["idempotency_key"]
    assert shop.payments(ref)[0]["status"] == "authorized"
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 2900


def test_merchant_cancels_an_authorisation(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    psp_cancel(shop, ref)
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "cancelled"
    assert [json.loads(r["body"])["notificationItems"][0]["NotificationRequestItem"]["eventCode"] for r in sim.sent] == [
        "AUTHORISATION", "CANCELLATION"]


def test_partial_refunds_summing_to_the_whole_make_it_refunded(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer, sku="MAP-03")
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    sim.notifier.paused = True
    assert psp_refund(shop, ref, 1000) == "paid"  # pending at Adyen until its REFUND webhook
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == 1000
    psp_refund(shop, ref, 990)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == 1990
    psp_refund(shop, ref)  # what remains
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "refunded" and payment["refunded_amount"] == 3990
    refunds = [r for r in sim.requests if r["path"].endswith("/refunds")]
    assert len(refunds) == 3 and len({r["idempotency_key"] for r in refunds}) == 3


def test_a_double_click_on_refund_refunds_once(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    sim.notifier.paused = True
    psp_refund(shop, ref, 500)
    with pytest.raises(ValueError, match="a refund of 5.00 EUR is already awaiting Adyen's confirmation"):
        psp_refund(shop, ref, 500)  # the same request again before Adyen's webhook: a second click
    assert len([r for r in sim.requests if r["path"].endswith("/refunds")]) == 1
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["refunded_amount"] == 500
    (sim_payment,) = sim.payments.values()
    assert sim_payment["refunded"] == 500


# ---------------------------------------------------------------------------- authenticity
def _pending_payment(adyen_shop, sim, **settings):
    shop = adyen_shop(**settings)
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    (payment,) = shop.payments(ref)
    return shop, ref, payment


def test_forged_notification_signed_with_another_key_changes_nothing(adyen_shop, sim):
    shop, ref, payment = _pending_payment(adyen_shop, sim)
    item = sim.item("AUTHORISATION", "8815551234567890", merchant_reference=payment["token"], value=1450,
                    hmac_key=OTHER_KEY)
    answer = requests.post(shop.notify_url("adyen"), data=sim.body([item]), timeout=10,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code in (401, 403)
    assert shop.payments(ref)[0]["status"] == "pending" and shop.order(ref)["status"] == "pending"
    (row,) = inbox(shop, source="notify")
    assert row["outcome"] == "rejected" and row["verified"] is False


def test_tampered_and_unsigned_notifications_change_nothing(adyen_shop, sim):
    shop, ref, payment = _pending_payment(adyen_shop, sim)
    genuine = sim.item("AUTHORISATION", "8815551234567890", merchant_reference=payment["token"], value=1, success=False)
    tampered = dict(genuine, success="true", amount={"value": 1450, "currency": "EUR"})
    unsigned = dict(tampered, additionalData={})
    no_extra = {k: v for k, v in tampered.items() if k != "additionalData"}
    empty_sig = dict(tampered, additionalData={"hmacSignature": ""})
    for item in (tampered, unsigned, no_extra, empty_sig):
        answer = requests.post(shop.notify_url("adyen"), data=sim.body([item]), timeout=10,
                               headers={"Content-Type": "application/json"})
        assert answer.status_code in (401, 403), answer.text
    assert shop.payments(ref)[0]["status"] == "pending"
    assert [r["outcome"] for r in inbox(shop, source="notify")] == ["rejected"] * 4


def test_malformed_notification_is_a_4xx(adyen_shop, sim):
    shop = adyen_shop()
    for body in (b"not json", b"[]", b'{"live": "false"}', b'{"live":"false","notificationItems":[1]}'):
        answer = requests.post(shop.notify_url("adyen"), data=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert 400 <= answer.status_code < 500 and answer.status_code not in (401, 403)


def test_adyen_public_hmac_vector():
    """The vector of Adyen's own library tests (PROVIDERS.md), checked by our client and produced by
    the simulator's independent signer."""
    from flask_psp.providers.adyen import AdyenProvider
    from flask_psp.simulator.adyen import sign_item

    key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
    item = {
        "pspReference": "7914073381342284",
        "merchantReference": "TestPayment-1407325143704",
        "merchantAccountCode": "TestMerchant",
        "amount": {"value": 1130, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "success": "true",
        "additionalData": {"hmacSignature": "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},
    }
    assert sign_item(item, key) == "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="
    assert AdyenProvider.signature_valid(item, key) is True
    assert AdyenProvider.signature_valid(item, key.lower()) is True
    assert AdyenProvider.signature_valid(dict(item, amount={"value": 1131, "currency": "EUR"}), key) is False
    assert AdyenProvider.signature_valid(item, OTHER_KEY) is False
    provider = AdyenProvider(ProviderConfig("adyen", "test", {"api_key": "k", "merchant_account": "TestMerchant", "hmac_key": key}))
    from flask_psp.providers.base import InboundRequest

    body = json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}).encode()
    (message,) = provider.verify_notification(InboundRequest(body, {}))
    assert message.psp_reference == "7914073381342284" and message.payment_token == "TestPayment-1407325143704"
    (event,) = message.events  # approved: taken or reserved as the payment asked (the ledger decides)
    assert event.kind is EventKind.APPROVED and event.authorized_total == 1130 and message.mode == "test"


def test_the_library_check_is_wrapped_where_it_would_crash_or_say_nothing():
    """Adyen's helper raises on a missing or empty hmacSignature and answers None without
    additionalData (PROVIDERS.md); the wrapped check answers False to all three."""
    import Adyen
    import pytest

    from flask_psp.providers.adyen import AdyenProvider

    key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
    item = {"pspReference": "7914073381342284", "merchantReference": "TestPayment-1407325143704",
            "merchantAccountCode": "TestMerchant", "amount": {"value": 1130, "currency": "EUR"},
            "eventCode": "AUTHORISATION", "success": "true"}
    with pytest.raises(KeyError):
        Adyen.util.is_valid_hmac_notification(dict(item, additionalData={}), key)
    with pytest.raises(ValueError):
        Adyen.util.is_valid_hmac_notification(dict(item, additionalData={"hmacSignature": ""}), key)
    assert Adyen.util.is_valid_hmac_notification(dict(item), key) is None
    for unsigned in (dict(item, additionalData={}), dict(item, additionalData={"hmacSignature": ""}), dict(item),
                     dict(item, additionalData={"hmacSignature": "%%%"}), {k: v for k, v in item.items() if k != "amount"}):
        assert AdyenProvider.signature_valid(unsigned, key) is False


# ---------------------------------------------------------------------------- batches, duplicates, order
def test_a_batch_applies_every_item_on_its_own(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    refs = []
    for sku in ("MUG-01", "PEN-04"):
        buyer = shop.buyer()
        ref, page_url = start(buyer, sku=sku)
        pay(buyer, page_url)
        refs.append(ref)
    assert sim.notifier.wait_idle(timeout=10)
    with sim.batched():
        for ref in refs:
            psp_capture(shop, ref)
    assert sim.notifier.wait_idle(timeout=10)
    batch = json.loads(sim.sent[-1]["body"])
    assert len(batch["notificationItems"]) == 2
    assert [shop.payments(ref)[0]["status"] for ref in refs] == ["paid", "paid"]
    parent = inbox(shop, source="notify")[-3]
    children = [e for e in inbox(shop, source="notify") if e["id"] > parent["id"]]
    assert [c["outcome"] for c in children] == ["applied", "applied"]
    # Adyen delivers the same batch again: each item is a duplicate on its own
    again = deliver(shop, sim.sent[-1])
    assert again.status_code == 200 and again.text == "[accepted]"
    assert [c["outcome"] for c in inbox(shop, source="notify")[-2:]] == ["duplicate", "duplicate"]
    assert [shop.payments(ref)[0]["captured_amount"] for ref in refs] == [1450, 8500]


def test_a_batch_with_one_forged_item_applies_the_good_one_only(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    buyer = shop.buyer()
    ref, page_url = start(buyer, sku="PEN-04")
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    psp = payment["psp_reference"]
    good = sim.item("CAPTURE", "8800000000000001", merchant_reference=payment["token"], value=8500,
                    original_reference=psp)
    bad = sim.item("REFUND", "8800000000000002", merchant_reference=payment["token"], value=8500,
                   original_reference=psp, hmac_key=OTHER_KEY)
    answer = requests.post(shop.notify_url("adyen"), data=sim.body([good, bad]), timeout=10,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.text == "[accepted]"
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 8500 and payment["refunded_amount"] == 0
    # all bad: refused as a whole
    answer = requests.post(shop.notify_url("adyen"), data=sim.body([bad, dict(good, pspReference="1")]), timeout=10,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code in (401, 403)
    assert shop.payments(ref)[0]["refunded_amount"] == 0


def test_duplicates_change_nothing(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    psp_refund(shop, ref, 450)
    assert sim.notifier.wait_idle(timeout=10)
    for record in sim.sent * 3:
        answer = deliver(shop, record)
        assert answer.status_code == 200 and answer.text == "[accepted]"
    (payment,) = shop.payments(ref)
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == 450
    outcomes = [e["outcome"] for e in inbox(shop, source="notify")]
    assert outcomes.count("applied") == 2 and outcomes.count("duplicate") == 6


def test_capture_webhook_before_the_authorisation_webhook(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    sim.webhook_url = None  # keep the webhooks, deliver them by hand in another order
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    (authorisation,) = sim.sent
    psp = json.loads(authorisation["body"])["notificationItems"][0]["NotificationRequestItem"]["pspReference"]
    # the merchant captures in Adyen's Customer Area before the shop heard of the authorisation
    response = requests.post(f"{sim.url}/v72/payments/{psp}/captures", timeout=10,
                             headers={"X-API-Key": "AQE_test_simulator_key"},
                             json={"merchantAccount": sim.merchant_account, "amount": {"value": 1450, "currency": "EUR"}})
    assert response.status_code == 201
    capture = sim.sent[-1]
    assert deliver(shop, capture).status_code == 200
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450 and payment["psp_reference"] == psp
    assert deliver(shop, authorisation).status_code == 200
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450
    assert shop.order(ref)["status"] == "paid"


def test_amount_mismatch_is_flagged_not_paid(adyen_shop, sim):
    shop, ref, payment = _pending_payment(adyen_shop, sim)
    item = sim.item("AUTHORISATION", "8815551234567890", merchant_reference=payment["token"], value=1)
    answer = requests.post(shop.notify_url("adyen"), data=sim.body([item]), timeout=10,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 200  # verified: stored and flagged, a retry would not change it
    (payment,) = shop.payments(ref)
    assert payment["status"] == "pending" and "amount" in payment["flag"]


def test_item_for_another_merchant_account_is_stored_but_moves_nothing(adyen_shop, sim):
    shop, ref, payment = _pending_payment(adyen_shop, sim)
    item = sim.item("AUTHORISATION", "8815551234567890", merchant_reference=payment["token"], value=1450,
                    merchant_account="SomeOtherECOM")
    answer = requests.post(shop.notify_url("adyen"), data=sim.body([item]), timeout=10,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 200
    assert shop.payments(ref)[0]["status"] == "pending"
    assert inbox(shop, source="notify")[0]["outcome"] == "unmatched"


# ---------------------------------------------------------------------------- HMAC key rotation
NEW_KEY = "A1" * 32


def test_key_rotation_overlap_accepts_both_keys_until_the_date(adyen_shop, sim):
    old_key = sim.hmac_key
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    shop = adyen_shop(hmac_key=NEW_KEY, hmac_key_previous=old_key, hmac_key_previous_until=tomorrow)
    buyer = shop.buyer()
    ref1, page1 = start(buyer)
    pay(buyer, page1)  # signed with the old key: still in flight while the merchant rotates
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.order(ref1)["status"] == "paid"
    sim.hmac_key = NEW_KEY  # Adyen now signs with the new key
    buyer = shop.buyer()
    ref2, page2 = start(buyer)
    pay(buyer, page2)
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.order(ref2)["status"] == "paid"
    assert all(d.attempts == [(200, None)] for d in sim.notifier.deliveries)


def test_after_the_overlap_the_old_key_is_refused(adyen_shop, sim):
    old_key = sim.hmac_key
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    shop = adyen_shop(hmac_key=NEW_KEY, hmac_key_previous=old_key, hmac_key_previous_until=yesterday)
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_until(lambda: sim.notifier.deliveries and sim.notifier.deliveries[0].attempts, timeout=10)
    assert sim.notifier.deliveries[0].attempts[0][0] in (401, 403)
    assert shop.order(ref)["status"] == "pending"  # Adyen would retry; the merchant must fix the key


def test_rotation_settings_are_checked():
    from flask_psp.providers.adyen import AdyenProvider

    good = {"api_key": "k", "merchant_account": "M", "hmac_key": NEW_KEY}
    assert AdyenProvider.validate_credentials(good, "test") == []
    assert AdyenProvider.validate_credentials(dict(good, hmac_key="not-hex"), "test")
    assert AdyenProvider.validate_credentials(dict(good, hmac_key_previous=OTHER_KEY), "test")  # no end date
    assert AdyenProvider.validate_credentials(dict(good, hmac_key_previous=OTHER_KEY, hmac_key_previous_until="soon"), "test")
    assert AdyenProvider.validate_credentials(good, "live")  # live needs the endpoint prefix
    assert AdyenProvider.validate_credentials(dict(good, live_endpoint_prefix="https://x"), "live")
    assert AdyenProvider.validate_credentials(dict(good, live_endpoint_prefix="1797a841fbb37ca7-AdyenDemo"), "live") == []


# ---------------------------------------------------------------------------- modes and URLs
def test_live_mode_with_an_endpoint_uses_the_same_paths_and_live_webhooks(adyen_shop, sim):
    shop = adyen_shop(mode="live")
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    assert session_of(sim, page_url)["live"] is True
    sim.notifier.paused = True  # the buyer is back before the webhook: the return asks Adyen's session API
    pay(buyer, page_url)
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    assert json.loads(sim.sent[0]["body"])["live"] == "true"
    (payment,) = shop.payments(ref)
    assert payment["mode"] == "live" and payment["status"] == "paid"
    assert [r["path"] for r in sim.requests][:2] == ["/v72/sessions", f"/v72/sessions/{page_url.rsplit('/', 1)[-1]}"]


def test_a_test_webhook_cannot_pay_a_live_payment(adyen_shop, sim):
    shop = adyen_shop(mode="live")
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    (payment,) = shop.payments(ref)
    item = sim.item("AUTHORISATION", "8815551234567890", merchant_reference=payment["token"], value=1450)
    answer = requests.post(shop.notify_url("adyen"), data=sim.body([item], live=False), timeout=10,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code in (401, 403)  # no test credentials to verify it with
    assert shop.payments(ref)[0]["status"] == "pending"


def test_urls_per_mode():
    from flask_psp.providers.adyen import AdyenProvider

    creds = {"api_key": "k", "merchant_account": "M", "hmac_key": NEW_KEY, "live_endpoint_prefix": "1797a841fbb37ca7-AdyenDemo"}
    assert AdyenProvider(ProviderConfig("adyen", "test", creds)).base_url == "https://checkout-test.adyen.com/v72"
    assert (AdyenProvider(ProviderConfig("adyen", "live", creds)).base_url
            == "https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout/v72")
    assert AdyenProvider(ProviderConfig("adyen", "live", creds, endpoint="http://127.0.0.1:9/")).base_url == "http://127.0.0.1:9/v72"


def test_wrong_api_key_at_checkout_is_a_clear_error(adyen_shop, sim):
    shop = adyen_shop(api_key="AQE_wrong")
    buyer = shop.buyer()
    ref = buyer.place_order()
    answer = buyer.choose(ref, "adyen")
    assert answer.status_code == 502
    (payment,) = shop.payments(ref)
    assert payment["status"] == "failed" and payment["failure_reason"] == "Adyen refused the API key"
    assert "AQE_wrong" not in answer.text


def test_test_connection_against_the_simulator(sim):
    from flask_psp.providers.adyen import AdyenProvider

    settings = adyen_settings(sim)["adyen"]["test"]
    endpoint = settings.pop("endpoint")
    ok, message = AdyenProvider(ProviderConfig("adyen", "test", settings, endpoint=endpoint)).test_connection()
    assert ok, message
    ok, message = AdyenProvider(ProviderConfig("adyen", "test", dict(settings, api_key="nope"), endpoint=endpoint)).test_connection()
    assert not ok and "API key" in message
    ok, message = AdyenProvider(ProviderConfig("adyen", "test", dict(settings, merchant_account="Other"), endpoint=endpoint)).test_connection()
    assert not ok and "merchant account" in message


def test_adyen_unreachable_at_checkout(make_shop, sim):
    shop = make_shop(psp_providers=adyen_settings(sim, endpoint="http://127.0.0.1:9"))
    buyer = shop.buyer()
    ref = buyer.place_order()
    assert buyer.choose(ref, "adyen").status_code == 502
    assert shop.payments(ref)[0]["failure_reason"] == "Adyen could not be reached (ConnectionError)"


def test_inbox_keeps_the_raw_batch_item(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    from example_shop import db
    from flask_psp.models import PaymentEvent

    with shop.app.app_context():
        row = db.session.scalars(sa.select(PaymentEvent).where(PaymentEvent.source == "notify")).one()
        assert row.event_type == "AUTHORISATION:true" and row.amount == 1450 and row.currency == "EUR"
        assert row.mode == "test" and row.verified is True

"""HiPay Enterprise end to end over HTTP: the example shop, the HiPay simulator on loopback, a buyer on
the hosted page, the redirect with its hash, and the signed notifications arriving several times and
in any order."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from flask_psp.providers.hipay import body_signature

from .conftest import (
    CARD_3DS,
    CARD_OK,
    CARD_REFUSED,
    PASSPHRASE,
    all_delivered,
    go_to_hipay,
    hipay_settings,
    only_payment,
    pay_on_hipay,
)


def test_buyer_pays_and_the_notifications_mark_the_order_paid_once(make_shop, sim, heard):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer, sku="PEN-04", quantity=2)
    assert page_url.startswith(sim.url + "/payment/web/pay/")
    call = sim.requests[-1]
    assert call["path"] == "/v1/hpayment" and call["accept"] == "application/json"
    sent = call["form"]
    payment = only_payment(shop, ref)
    assert sent["orderid"] == payment["token"] and sent["operation"] == "Sale"
    assert (sent["amount"], sent["currency"], sent["eci"], sent["language"]) == ("170.00", "EUR", "7", "en_GB")
    assert sent["authentication_indicator"] == "1" and sent["notify_url"] == f"{shop.url}/psp/notify/hipay"
    for page in ("accept", "decline", "pending", "exception", "cancel"):
        assert sent[f"{page}_url"] == f"{shop.url}/psp/return/{payment['token']}?hipay_page={page}"

    sim.notifier.paused = True  # the buyer is back before HiPay's notifications
    redirect = pay_on_hipay(buyer, page_url)
    assert "hash=" in redirect and "hipay_page=accept" in redirect
    back = requests.get(redirect, timeout=10)  # no cookie needed
    # the redirect proves nothing; the shop asks HiPay, whose answer to that authenticated call does
    assert back.status_code == 200 and 'data-status="paid"' in back.text
    assert (sim.requests[-1]["path"], sim.requests[-1]["args"]) == ("/v1/transaction", {"orderid": payment["token"]})
    (proof,) = [e for e in shop.events() if e["source"] == "return"]
    assert proof["outcome"] == "applied" and proof["verified"] is True
    assert shop.order(ref)["status"] == "paid" and heard == [ref]
    sim.notifier.paused = False
    assert all_delivered(sim)
    statuses = [dict(parse_qsl(d.body.decode()))["status"] for d in sim.notifier.deliveries]
    assert sorted(statuses) == sorted(["142", "116", "117", "118", "116", "118"])
    payment = only_payment(shop, ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 17000
    assert payment["psp_reference"] == sim.order_by_orderid(payment["token"])["reference"]
    assert heard == [ref]  # the notifications that followed changed nothing more
    outcomes = [e["outcome"] for e in shop.events() if e["source"] == "notify"]
    # both 118s (HiPay's copy, asked on the return, told it already) and the repeated 116
    assert outcomes.count("duplicate") == 3 and outcomes.count("rejected") == 0


def test_refused_card(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    sim.notifier.paused = True
    redirect = pay_on_hipay(buyer, page_url, card=CARD_REFUSED)
    assert "hipay_page=decline" in redirect
    back = requests.get(redirect, timeout=10)
    assert 'data-status="failed"' in back.text  # the hash proves the refusal
    sim.notifier.paused = False
    assert all_delivered(sim)
    payment = only_payment(shop, ref)
    assert payment["status"] == "failed" and "113" in payment["failure_reason"]
    assert shop.order(ref)["status"] == "pending"


def test_buyer_cancels_on_the_hosted_page(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    redirect = pay_on_hipay(buyer, page_url, action="cancel")
    assert "hipay_page=cancel" in redirect
    back = requests.get(redirect, timeout=10)
    assert 'data-status="cancelled"' in back.text
    assert only_payment(shop, ref)["status"] == "cancelled"
    assert not sim.notifier.deliveries


@pytest.mark.parametrize("code, status", [("1234", "paid"), ("9999", "failed")])
def test_three_d_secure_challenge(make_shop, sim, code, status):
    shop = make_shop(psp_providers=hipay_settings(sim, three_ds="always"))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    assert sim.requests[-1]["form"]["authentication_indicator"] == "2"
    redirect = pay_on_hipay(buyer, page_url, card=CARD_OK, code=code)
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == status
    assert f'data-status="{status}"' in requests.get(redirect, timeout=10).text
    if status == "failed":
        assert "109" in only_payment(shop, ref)["failure_reason"]


def test_three_d_secure_card_without_merchant_preference(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    pay_on_hipay(buyer, page_url, card=CARD_3DS, code="1234")
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "paid"


def tamper(url, **changes):
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.update(changes)
    return urlunsplit(parts._replace(query=urlencode(params)))


def test_forged_notifications_and_redirects_change_nothing(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    sim.notifier.paused = True
    redirect = pay_on_hipay(buyer, page_url, card=CARD_REFUSED)
    reference = sim.order_by_orderid(only_payment(shop, ref)["token"])["reference"]
    url, body, headers = sim.notification(reference, 113)
    captured = body.replace(b"status=113", b"status=118").replace(b"state=declined", b"state=completed")
    notify = shop.notify_url("hipay")
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    tampered = requests.post(notify, data=captured, headers={**form, "X-ALLOPASS-SIGNATURE": headers["X-ALLOPASS-SIGNATURE"]},
                             timeout=10)
    assert tampered.status_code == 403
    assert requests.post(notify, data=captured, headers=form, timeout=10).status_code == 403  # unsigned
    wrong_key = body_signature(captured, "guessed passphrase")
    assert requests.post(notify, data=captured, headers={**form, "X-ALLOPASS-SIGNATURE": wrong_key},
                         timeout=10).status_code == 403
    sha1 = body_signature(captured, PASSPHRASE, "sha1")  # right passphrase, algorithm not the account's
    assert requests.post(notify, data=captured, headers={**form, "X-ALLOPASS-SIGNATURE": sha1},
                         timeout=10).status_code == 403
    accepted = tamper(redirect, state="completed", status="118", hipay_page="accept")
    assert 'data-status="pending"' in requests.get(accepted, timeout=10).text  # its hash no longer matches

    assert only_payment(shop, ref)["status"] == "pending" and shop.order(ref)["status"] == "pending"
    assert [e["outcome"] for e in shop.events()] == ["rejected"] * 4
    sim.notifier.paused = False
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "failed"


def post(url, notification):
    _, body, headers = notification
    return requests.post(url, data=body, headers=headers, timeout=10)


def test_out_of_order_and_repeated_notifications_end_in_the_right_state(make_shop, sim, heard):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    sim.notifier.paused = True  # HiPay's own deliveries wait: we replay them in a bad order first
    pay_on_hipay(buyer, page_url)
    payment = only_payment(shop, ref)
    reference = sim.order_by_orderid(payment["token"])["reference"]
    notify = shop.notify_url("hipay")

    assert post(notify, sim.notification(reference, 118)).status_code == 200  # captured before authorized
    assert only_payment(shop, ref)["status"] == "paid"
    for status in (116, 142, 117, 118, 116):
        assert post(notify, sim.notification(reference, status)).status_code == 200
        payment = only_payment(shop, ref)
        assert payment["status"] == "paid" and payment["captured_amount"] == 1450
    assert shop.order(ref)["status"] == "paid" and heard == [ref]

    sim.notifier.paused = False  # the originals arrive late, all of them already known
    assert all_delivered(sim)
    payment = only_payment(shop, ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450 and payment["flag"] is None
    assert heard == [ref]
    assert [e["outcome"] for e in shop.events()].count("applied") == 4  # 118, 116, 142, 117 once each


def test_refund_notifications_out_of_order(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer, sku="PEN-04")
    pay_on_hipay(buyer, page_url)
    assert all_delivered(sim)
    token = only_payment(shop, ref)["token"]
    reference = sim.order_by_orderid(token)["reference"]
    sim.notifier.paused = True
    from example_shop import psp

    with shop.app.app_context():
        psp.refund(psp.payment(token), 3000)
    partial = sim.notification(reference, 126)
    with shop.app.app_context():
        psp.refund(psp.payment(token))
    full = sim.notification(reference, 125)
    notify = shop.notify_url("hipay")
    assert post(notify, full).status_code == 200  # the final refund first
    payment = only_payment(shop, ref)
    assert payment["status"] == "refunded" and payment["refunded_amount"] == 8500
    assert post(notify, partial).status_code == 200  # the older, partial one changes nothing
    assert only_payment(shop, ref)["refunded_amount"] == 8500
    sim.notifier.paused = False
    assert all_delivered(sim)
    payment = only_payment(shop, ref)
    assert payment["status"] == "refunded" and payment["refunded_amount"] == 8500 and payment["flag"] is None


def test_wrong_api_credentials_are_reported_and_the_buyer_can_choose_again(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, api_password="not-it"))
    buyer = shop.buyer()
    ref = buyer.place_order()
    answer = buyer.choose(ref, provider="hipay")
    assert answer.status_code == 502
    payment = only_payment(shop, ref)
    assert payment["status"] == "failed" and "API username or password" in payment["failure_reason"]
    assert "not-it" not in payment["failure_reason"]


def test_the_page_settings_reach_hipays_hosted_page(make_shop, sim):
    from example_shop import db
    from flask_psp.admin.page import page_form, save_page

    shop = make_shop(psp_providers=hipay_settings(sim))
    with shop.app.app_context():
        form = page_form(["en", "fr"], {"brand_name": "Atelier Lumière", "hipay_theme_code": "th_atelier"})
        assert save_page(db.session, form, "owner@example.com", ["en", "fr"]) == []
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    sent = sim.requests[-1]["form"]
    assert (sent["theme_code"], sent["merchant_display_name"]) == ("th_atelier", "Atelier Lumière")
    page = buyer.http.get(page_url, timeout=10)
    assert "Atelier Lumière" in page.text and "Theme: th_atelier" in page.text

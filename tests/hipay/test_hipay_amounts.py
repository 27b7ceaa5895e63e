"""A signed HiPay notification for less than the payment never pays it: status 118 ("captured") with
``captured_amount=0.01`` and no ``authorized_amount``, or an authorization (116) that says no amount,
is stored as a mismatch and flagged; the payment does not move and the order is not paid."""

from __future__ import annotations

import itertools
from urllib.parse import urlencode

import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_psp.providers.hipay import body_signature

from .conftest import PASSPHRASE, go_to_hipay, hipay_settings, only_payment


def signed(fields):
    body = urlencode(fields).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded",
                  "X-ALLOPASS-SIGNATURE": body_signature(body, PASSPHRASE)}


def notify(shop, fields):
    body, headers = signed(fields)
    return requests.post(shop.notify_url("hipay"), data=body, headers=headers, timeout=10)


def notifications(shop):
    return [e for e in shop.events() if e["source"] == "notify"]


def test_a_signed_118_for_one_cent_without_authorized_amount_does_not_pay(make_shop, sim, heard):
    shop = make_shop(psp_providers=hipay_settings(sim))
    ref, _page = go_to_hipay(shop, shop.buyer())
    payment = only_payment(shop, ref)
    assert (payment["status"], payment["amount"]) == ("pending", 1450)

    answer = notify(shop, {"status": "118", "transaction_reference": "800000000001", "captured_amount": "0.01",
                           "currency": "EUR", "order[id]": payment["token"], "test": "true"})

    assert answer.status_code == 200
    payment = only_payment(shop, ref)
    assert (payment["status"], payment["captured_amount"]) == ("pending", 0)
    assert "less than the payment's" in payment["flag"]
    assert [e["outcome"] for e in notifications(shop)] == ["mismatch"]
    assert shop.order(ref)["status"] == "pending" and heard == []


def test_an_authorization_that_says_no_amount_does_not_pay_an_order_under_manual_capture(make_shop, sim, heard):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    ref, _page = go_to_hipay(shop, shop.buyer())
    payment = only_payment(shop, ref)
    answer = notify(shop, {"status": "116", "transaction_reference": "800000000002", "currency": "EUR",
                           "order[id]": payment["token"], "test": "true"})
    assert answer.status_code == 200
    payment = only_payment(shop, ref)
    assert (payment["status"], payment["authorized_amount"]) == ("pending", 0) and "without an amount" in payment["flag"]
    assert [e["outcome"] for e in notifications(shop)] == ["mismatch"]
    assert shop.order(ref)["status"] == "pending" and heard == []


def test_no_signed_notification_below_the_amount_pays(make_shop, sim, heard):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    buyer = shop.buyer()
    references = itertools.count(800000001000)  # each example is news of its own
    cents = st.integers(min_value=0, max_value=1449).map(lambda n: f"{n // 100}.{n % 100:02d}")

    @settings(max_examples=30, deadline=None)
    @given(status=st.sampled_from(["116", "118", "119"]), authorized=st.none() | cents, captured=st.none() | cents)
    def check(status, authorized, captured):
        ref, _page = go_to_hipay(shop, buyer)
        fields = {"status": status, "transaction_reference": str(next(references)), "currency": "EUR",
                  "order[id]": only_payment(shop, ref)["token"], "test": "true"}
        if authorized is not None:
            fields["authorized_amount"] = authorized
        if captured is not None:
            fields["captured_amount"] = captured
        assert notify(shop, fields).status_code == 200
        payment = only_payment(shop, ref)
        assert payment["status"] == "pending" and payment["captured_amount"] == 0 and payment["flag"]
        assert notifications(shop)[-1]["outcome"] == "mismatch"
        assert shop.order(ref)["status"] == "pending" and ref not in heard

    check()


def test_a_signed_amount_no_payment_can_hold_is_a_400_kept_as_invalid(make_shop, sim, heard):
    """``Infinity`` or ``1e400`` in a signed notification: unreadable news (400, in the inbox), not a
    500 or a 503 the PSP would retry for ever, and the payment does not move."""
    shop = make_shop(psp_providers=hipay_settings(sim))
    ref, _page = go_to_hipay(shop, shop.buyer())
    token = only_payment(shop, ref)["token"]
    for number, amount in enumerate(["Infinity", "1e400", "NaN"]):
        answer = notify(shop, {"status": "118", "transaction_reference": f"80000000009{number}", "currency": "EUR",
                               "captured_amount": amount, "authorized_amount": amount, "order[id]": token,
                               "test": "true"})
        assert answer.status_code == 400, (amount, answer.status_code)
    assert [e["outcome"] for e in notifications(shop)] == ["invalid"] * 3
    assert only_payment(shop, ref)["status"] == "pending"
    assert shop.order(ref)["status"] == "pending" and heard == []

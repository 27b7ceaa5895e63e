"""A proven Adyen webhook for less than the payment never pays it in full: a CAPTURE of 0.01 EUR,
HMAC-signed with the merchant's key, is stored and flagged as a mismatch, moves nothing, and the order
is not paid. A partial capture the merchant asked for (``psp.capture(payment, amount=…)``) is the only
way to a partly captured payment."""

from __future__ import annotations

import itertools

import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.adyen.conftest import pay, start


def notify(shop, sim, item):
    return requests.post(shop.notify_url("adyen"), data=sim.body([item]), timeout=10,
                         headers={"Content-Type": "application/json"})


def inbox(shop):
    return [e for e in shop.events() if e["source"] == "notify"]


def test_a_signed_capture_of_one_cent_does_not_pay_a_pending_payment(adyen_shop, sim, heard):
    shop = adyen_shop()
    ref, _page = start(shop.buyer())
    (payment,) = shop.payments(ref)
    assert (payment["status"], payment["amount"]) == ("pending", 1450)

    item = sim.item("CAPTURE", "8815551234567890", merchant_reference=payment["token"], value=1)
    assert notify(shop, sim, item).status_code == 200  # proven and stored: Adyen need not retry

    (payment,) = shop.payments(ref)
    assert (payment["status"], payment["captured_amount"]) == ("pending", 0)
    assert "less than the payment's" in payment["flag"]
    assert [e["outcome"] for e in inbox(shop)] == ["mismatch"]
    assert shop.order(ref)["status"] == "pending" and heard == []


def test_only_a_partial_capture_the_merchant_asked_for_captures_part_of_an_authorisation(adyen_shop, sim, heard):
    from example_shop import psp

    shop = adyen_shop(capture="manual")
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "authorized" and heard == [ref]

    unasked = sim.item("CAPTURE", "8815551234567891", merchant_reference=payment["token"], value=100,
                       original_reference=payment["psp_reference"])
    assert notify(shop, sim, unasked).status_code == 200
    (payment,) = shop.payments(ref)
    assert (payment["status"], payment["captured_amount"]) == ("authorized", 0) and payment["flag"]
    assert inbox(shop)[-1]["outcome"] == "mismatch"

    with shop.app.app_context():  # the merchant captures 5.00 EUR of the 14.50 EUR: Adyen confirms it
        psp.capture(psp.payments_for(ref)[-1], amount=500)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert (payment["status"], payment["captured_amount"]) == ("paid", 500)
    assert inbox(shop)[-1]["outcome"] == "applied" and heard == [ref]


def test_no_signed_authorisation_or_capture_below_the_amount_pays(adyen_shop, sim, heard):
    shop = adyen_shop()
    buyer = shop.buyer()
    references = itertools.count(8815551234560000)  # each example is news of its own

    @settings(max_examples=30, deadline=None)
    @given(code=st.sampled_from(["AUTHORISATION", "CAPTURE"]), value=st.integers(min_value=0, max_value=1449))
    def check(code, value):
        ref, _page = start(buyer)
        (payment,) = shop.payments(ref)
        item = sim.item(code, str(next(references)), merchant_reference=payment["token"], value=value)
        assert notify(shop, sim, item).status_code == 200
        (payment,) = shop.payments(ref)
        assert payment["status"] == "pending" and payment["captured_amount"] == 0 and payment["flag"]
        assert inbox(shop)[-1]["outcome"] == "mismatch"
        assert shop.order(ref)["status"] == "pending" and ref not in heard

    check()

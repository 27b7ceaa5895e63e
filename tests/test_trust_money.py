"""Test-mode money never pays a real order, with PayPlug end to end (the example shop and the PayPlug
simulator on loopback): once PayPlug is live, a payment made with the test key (``sk_test_`` keys
get shared) may move, flagged, but never pays its order; live payments pay theirs. And news that
says no amount a ledger can count pays nothing."""

from __future__ import annotations

import requests
from cryptography.fernet import Fernet

from tests.conftest import LIVE_KEY, TEST_KEY, payplug_settings


def start_payment(shop, buyer):
    ref = buyer.place_order()
    answer = buyer.choose(ref)
    assert answer.status_code == 303, answer.text
    return ref, answer.headers["Location"].rstrip("/").split("/")[-1]


def live_payplug(sim):
    return {"payplug": {"enabled": True, "mode": "live", "test": {"secret_key": TEST_KEY, "endpoint": sim.url},
                        "live": {"secret_key": LIVE_KEY, "endpoint": sim.url}}}


def test_a_payplug_test_payment_never_pays_its_order_once_payplug_is_live(make_shop, sim, heard):
    key = Fernet.generate_key().decode()
    shop = make_shop(psp_providers=payplug_settings(sim), PSP_ENCRYPTION_KEY=key)
    ref, payplug_id = start_payment(shop, shop.buyer())
    live = make_shop(psp_providers=live_payplug(sim), PSP_ENCRYPTION_KEY=key)  # the same shop, deployed live
    sim.notifier.paused = True
    sim.pay(payplug_id)  # paid with the test key: PayPlug itself says it is test money

    answer = requests.post(live.notify_url(), json=sim.payments[payplug_id], timeout=10)

    assert answer.status_code == 200
    (payment,) = live.payments(ref)
    assert (payment["mode"], payment["status"], payment["captured_amount"]) == ("test", "paid", payment["amount"])
    assert payment["flag"].startswith("test payment on a live shop")
    assert live.order(ref)["status"] == "pending" and heard == []

    live_ref, live_id = start_payment(live, live.buyer())  # live money still pays
    sim.pay(live_id)
    assert requests.post(live.notify_url(), json=sim.payments[live_id], timeout=10).status_code == 200
    (payment,) = live.payments(live_ref)
    assert (payment["mode"], payment["status"], payment["flag"]) == ("live", "paid", None)
    assert live.order(live_ref)["status"] == "paid" and heard == [live_ref]


def test_payplug_amounts_that_are_not_integers_of_cents_are_no_amounts(make_shop, sim, heard):
    shop = make_shop(psp_providers=payplug_settings(sim, capture="manual"))
    ref, payplug_id = start_payment(shop, shop.buyer())
    sim.notifier.paused = True
    sim.pay(payplug_id)
    sim.payments[payplug_id]["authorization"]["authorized_amount"] = "14.50"  # not PayPlug's integer of cents

    answer = requests.post(shop.notify_url(), json=sim.payments[payplug_id], timeout=10)

    assert answer.status_code == 200  # read as the payment's own amount, not a 500 PayPlug would retry forever
    (payment,) = shop.payments(ref)
    assert (payment["status"], payment["authorized_amount"]) == ("authorized", payment["amount"])
    assert shop.order(ref)["status"] == "paid" and heard == [ref]

    other, other_id = start_payment(shop, shop.buyer())
    sim.pay(other_id)
    sim.payments[other_id]["amount"] = "14.50"
    sim.payments[other_id]["authorization"]["authorized_amount"] = "14.50"
    assert requests.post(shop.notify_url(), json=sim.payments[other_id], timeout=10).status_code == 200
    (payment,) = shop.payments(other)
    assert (payment["status"], payment["authorized_amount"]) == ("pending", 0)
    assert "without an amount" in payment["flag"]
    assert shop.order(other)["status"] == "pending" and heard == [ref]

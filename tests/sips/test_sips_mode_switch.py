"""Sips' responses do not say test or live. A late automatic response of a payment made in test mode,
arriving after the merchant switched Sips to live, names the test merchant: it is checked with the
test merchant's key, never refused for the live key nor accepted with a key that did not seal it.
The switch expired the open test payment; the response is applied to it (flagged), but a test-mode
payment never pays an order once Sips is live: Worldline's simulation key is public."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
import requests
import sqlalchemy as sa

from flask_psp.models import PaymentEvent
from flask_psp.providers.sips import compute_seal
from flask_psp.simulator.sips import DEFAULT_ACCOUNTS, SipsSimulator
from tests.operations import merchant

from .conftest import MERCHANT, SECRET, go_to_sips, only_payment, pay_on_sips

LIVE_MERCHANT = "211000021310001"
LIVE_SECRET = "live-merchant-secret-key-0123456789"


@pytest.fixture
def sim():
    simulator = SipsSimulator(accounts={**DEFAULT_ACCOUNTS, LIVE_MERCHANT: {"secret_key": LIVE_SECRET, "key_version": "2",
                                                                           "name": "Live shop"}},
                              retry_delays=(30, 60, 120))
    server = simulator.serve()
    yield simulator
    simulator.notifier.paused = False
    assert simulator.notifier.wait_idle(timeout=10)
    server.stop()
    simulator.notifier.close()


def sips_form(sim, mode):
    return {"enabled": "on", "mode": mode, "capture": "auto", "three_ds": "when_required", "position": "0",
            "cred-test-merchant_id": MERCHANT, "cred-test-secret_key": SECRET, "cred-test-key_version": "1",
            "cred-test-seal_algorithm": "HMAC-SHA-256", "cred-test-endpoint": sim.url,
            "cred-live-merchant_id": LIVE_MERCHANT, "cred-live-secret_key": LIVE_SECRET, "cred-live-key_version": "2",
            "cred-live-seal_algorithm": "HMAC-SHA-256", "cred-live-endpoint": sim.url}


def switch(owner, sim, mode):
    answer = owner.post("/providers/sips", sips_form(sim, mode))
    assert answer.status_code == 303, answer.text


def test_a_late_test_mode_response_after_the_switch_to_live_is_checked_with_the_test_key(make_shop, sim):
    shop = make_shop(psp_providers={}, PSP_ALLOW_CUSTOM_ENDPOINTS=True)  # the live simulator stands in for Worldline
    owner = merchant(shop, "owner")
    switch(owner, sim, "test")
    buyer = shop.buyer()
    sim.notifier.paused = True  # Sips' automatic response is late…
    ref, sips_page, _fields = go_to_sips(shop, buyer)
    pay_on_sips(buyer, sips_page)  # …and the buyer closes the tab on the receipt page
    assert only_payment(shop, ref)["mode"] == "test"
    switch(owner, sim, "live")  # meanwhile the merchant goes live: the open test payment expires
    assert only_payment(shop, ref)["status"] == "expired"

    (late,) = sim.notifier.deliveries
    forged = late.body.replace(b"Seal=", b"Seal=00")  # the same Data, a seal no key made
    assert requests.post(shop.notify_url("sips"), data=forged, headers=late.headers, timeout=10).status_code == 403
    assert only_payment(shop, ref)["status"] == "expired"

    sim.notifier.paused = False
    assert sim.notifier.wait_until(lambda: late.delivered, timeout=10)
    assert late.attempts == [(200, None)]
    payment = only_payment(shop, ref)
    assert (payment["status"], payment["mode"]) == ("paid", "test")
    assert payment["flag"].startswith("test payment on a live shop")
    assert shop.order(ref)["status"] != "paid"


def test_a_response_naming_the_test_merchant_sealed_with_the_live_key_is_refused(make_shop, sim):
    shop = make_shop(psp_providers={}, PSP_ALLOW_CUSTOM_ENDPOINTS=True)  # the live simulator stands in for Worldline
    owner = merchant(shop, "owner")
    switch(owner, sim, "test")
    buyer = shop.buyer()
    sim.notifier.paused = True
    ref, sips_page, _fields = go_to_sips(shop, buyer)
    pay_on_sips(buyer, sips_page)
    switch(owner, sim, "live")
    (late,) = sim.notifier.deliveries
    fields = dict(parse_qsl(late.body.decode()))
    resealed = {**fields, "Seal": compute_seal(fields["Data"], LIVE_SECRET)}
    answer = requests.post(shop.notify_url("sips"), data=urlencode(resealed), headers=late.headers, timeout=10)
    assert answer.status_code == 403
    assert only_payment(shop, ref)["status"] == "expired"
    with shop.app.app_context():
        row = shop.app.extensions["psp"].db.session.scalars(
            sa.select(PaymentEvent).where(PaymentEvent.outcome == "rejected")).one()
        assert "Seal does not match" in row.verification_error
    sim.notifier.paused = False  # the genuine response, sealed with the test key, still applies…
    assert sim.notifier.wait_until(lambda: late.delivered, timeout=10)
    assert only_payment(shop, ref)["status"] == "paid"
    assert shop.order(ref)["status"] != "paid"  # …to the payment only

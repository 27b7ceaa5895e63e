"""HiPay fixtures: a fresh HiPay Enterprise simulator per test (it overrides the PayPlug ``sim`` that
``make_shop`` uses), the shop's HiPay settings, and a buyer on the hosted page."""

from __future__ import annotations

import pytest

from flask_psp.simulator.hipay import HiPaySimulator
from tests.conftest import serving

USER, PASSWORD, PASSPHRASE = "hipay_sim_api_user", "hipay_sim_api_password", "hipay-sim-passphrase"
CARD_OK = "4111111111111111"
CARD_REFUSED = "4000000000000002"
CARD_3DS = "4000000000003220"


@pytest.fixture
def sim():
    yield from serving(HiPaySimulator(retry_delays=(30, 60, 120)))


def hipay_settings(sim, capture="auto", three_ds="when_required", **credentials):
    block = {"api_username": USER, "api_password": PASSWORD, "secret_passphrase": PASSPHRASE,
             "hash_algorithm": "sha256", "endpoint": sim.url}
    block.update(credentials)
    return {"hipay": {"enabled": True, "mode": "test", "capture": capture, "three_ds": three_ds, "test": block}}


def go_to_hipay(shop, buyer, sku="MUG-01", quantity=1):
    ref = buyer.place_order(sku=sku, quantity=quantity)
    answer = buyer.choose(ref, provider="hipay")
    assert answer.status_code == 303, answer.text
    return ref, answer.headers["Location"]


def pay_on_hipay(buyer, page_url, card=CARD_OK, action="pay", code=None):
    """The buyer fills HiPay's page; returns HiPay's redirect (not followed) back to the shop."""
    page = buyer.http.get(page_url, timeout=10)
    assert page.status_code == 200, page.text
    answer = buyer.http.post(page_url, data={"card_number": card, "expiry": "12/30", "cvc": "123", "action": action},
                             allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    if answer.headers["Location"].endswith("/3ds"):
        challenge = buyer.http.get(answer.headers["Location"], timeout=10)
        assert 'name="code"' in challenge.text
        answer = buyer.http.post(answer.headers["Location"], data={"code": code or "1234"},
                                 allow_redirects=False, timeout=10)
        assert answer.status_code == 303
    return answer.headers["Location"]


def all_delivered(sim, timeout=10):
    return sim.notifier.wait_until(lambda: all(d.delivered for d in sim.notifier.deliveries), timeout=timeout)


def only_payment(shop, ref):
    (payment,) = shop.payments(ref)
    return payment

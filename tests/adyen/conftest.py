"""Adyen fixtures: a fresh Adyen simulator per test (it overrides the PayPlug ``sim`` that
``make_shop`` uses), the shop's Adyen settings, and a buyer who goes through the Hosted Checkout
page with a plain HTTP client."""

from __future__ import annotations

import pytest
import requests

from flask_psp.simulator.adyen import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_SUCCESS,
    DEFAULT_LIVE_KEY,
    DEFAULT_TEST_KEY,
    THREE_DS_PASSWORD,
    AdyenSimulator,
)
from tests.conftest import serving

__all__ = ["CARD_3DS", "CARD_DECLINED", "CARD_SUCCESS", "THREE_DS_PASSWORD", "DEFAULT_LIVE_KEY", "DEFAULT_TEST_KEY"]


@pytest.fixture
def sim():
    yield from serving(AdyenSimulator(retry_delays=(30, 60, 120)))


def adyen_settings(sim, capture="auto", three_ds="when_required", mode="test", capture_delay_days=0, **credentials):
    block = {"api_key": DEFAULT_TEST_KEY if mode == "test" else DEFAULT_LIVE_KEY,
             "merchant_account": sim.merchant_account, "hmac_key": sim.hmac_key, "endpoint": sim.url}
    if mode == "live":
        block["live_endpoint_prefix"] = "1797a841fbb37ca7-FlaskPsp"
    block.update(credentials)
    return {"adyen": {"enabled": True, "mode": mode, "capture": capture, "three_ds": three_ds,
                      "capture_delay_days": capture_delay_days, mode: block}}


@pytest.fixture
def adyen_shop(make_shop, sim):
    """``adyen_shop(**settings)`` → a running shop whose Adyen webhooks the simulator sends to it."""

    def build(**settings):
        shop = make_shop(psp_providers=adyen_settings(sim, **settings))
        sim.webhook_url = shop.notify_url("adyen")
        return shop

    return build


def start(buyer, sku="MUG-01", quantity=1):
    """Place an order and choose Adyen: (order ref, hosted page URL)."""
    ref = buyer.place_order(sku=sku, quantity=quantity)
    answer = buyer.choose(ref, "adyen")
    assert answer.status_code == 303, answer.text
    return ref, answer.headers["Location"]


def pay(buyer, page_url, card=CARD_SUCCESS, action="pay", password=None) -> requests.Response:
    """Fill the hosted page like a buyer; returns the shop's page the buyer lands on, or Adyen's
    page again (200, with the refusal) when the attempt was refused and the session goes on."""
    page = buyer.http.get(page_url, timeout=10)
    assert page.status_code == 200 and 'name="card_number"' in page.text
    answer = buyer.http.post(page_url, data={"card_number": card, "expiry": "03/30", "cvc": "737", "action": action},
                             allow_redirects=False, timeout=10)
    if answer.status_code == 200:
        return answer
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    if location.endswith("/3ds"):
        challenge = buyer.http.get(location, timeout=10)
        assert 'name="code"' in challenge.text
        answer = buyer.http.post(location, data={"code": password or THREE_DS_PASSWORD}, allow_redirects=False, timeout=10)
        if answer.status_code == 200:
            return answer
        assert answer.status_code == 303
        location = answer.headers["Location"]
    return buyer.http.get(location, timeout=10)


def still_on_adyen(page) -> bool:
    """The attempt was refused and the buyer is still on Adyen's page, asked for another card."""
    return page.status_code == 200 and "The payment was refused" in page.text and 'name="card_number"' in page.text


def session_of(sim, page_url) -> dict:
    return sim.sessions[page_url.rstrip("/").split("/")[-1]]


def deliver(shop, record) -> requests.Response:
    """POST a webhook body the simulator made (``sim.sent`` entry) to the shop, synchronously."""
    return requests.post(shop.notify_url("adyen"), data=record["body"], headers=record["headers"], timeout=10)

"""PayPal fixtures: a fresh PayPal simulator per test (it overrides the PayPlug ``sim`` that
``make_shop`` uses), the shop's PayPal settings, and a payer who goes through the approval page
with a plain HTTP client."""

from __future__ import annotations

import pytest
import requests

from flask_psp.simulator.paypal import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_WEBHOOK_ID,
    THREE_DS_CODE,
    PayPalSimulator,
)
from tests.conftest import serving

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_WEBHOOK_ID", "THREE_DS_CODE"]


@pytest.fixture
def sim():
    yield from serving(PayPalSimulator(retry_delays=(30, 60, 120)))


def paypal_settings(sim, capture="auto", three_ds="when_required", **credentials):
    block = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
             "webhook_id": DEFAULT_WEBHOOK_ID, "endpoint": sim.url}
    block.update(credentials)
    return {"paypal": {"enabled": True, "mode": "test", "capture": capture, "three_ds": three_ds, "test": block}}


@pytest.fixture
def paypal_shop(make_shop, sim):
    """``paypal_shop(**settings)`` → a running shop whose PayPal webhooks the simulator sends to it."""

    def build(**settings):
        shop = make_shop(psp_providers=paypal_settings(sim, **settings))
        sim.webhook_url = shop.notify_url("paypal")
        return shop

    return build


def start(buyer, sku="MUG-01", quantity=1):
    """Place an order and choose PayPal: (order ref, approval page URL)."""
    ref = buyer.place_order(sku=sku, quantity=quantity)
    answer = buyer.choose(ref, "paypal")
    assert answer.status_code == 303, answer.text
    return ref, answer.headers["Location"]


def approve(buyer, approval_url, action="approve", code=None, follow=True):
    """The payer's choice on PayPal's page; returns the shop's page the payer lands on (or, with
    ``follow=False``, the redirect PayPal answered: the payer closed the tab)."""
    page = buyer.http.get(approval_url, timeout=10)
    assert page.status_code == 200 and 'value="approve"' in page.text
    answer = buyer.http.post(approval_url, data={"action": action}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    if "/checkoutnow/3ds" in location:
        challenge = buyer.http.get(location, timeout=10)
        assert 'name="code"' in challenge.text
        answer = buyer.http.post(location, data={"code": code or THREE_DS_CODE}, allow_redirects=False, timeout=10)
        assert answer.status_code == 303
        location = answer.headers["Location"]
    if not follow:
        return answer
    return buyer.http.get(location, timeout=10)


def order_id(approval_url):
    return approval_url.split("token=")[1]


def deliver(shop, record) -> requests.Response:
    """POST a webhook the simulator made (``sim.sent`` entry) to the shop, synchronously."""
    return requests.post(shop.notify_url("paypal"), data=record["body"], headers=record["headers"], timeout=10)

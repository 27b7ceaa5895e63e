"""Sips fixtures: a fresh Worldline Sips simulator per test (it overrides the PayPlug ``sim`` that
``make_shop`` uses), the shop's Sips settings, and a buyer who goes through the Paypage forms with a
plain HTTP client."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import requests

from flask_psp.simulator.sips import SIMULATION_MERCHANT, SipsSimulator
from tests.conftest import serving

MERCHANT = SIMULATION_MERCHANT
SECRET = "002001000000001_KEY1"
CARD_OK = "4100000000000000"
CARD_REFUSED = "4100000000000005"
CARD_3DS = "4000000000003220"


@pytest.fixture
def sim():
    yield from serving(SipsSimulator(retry_delays=(30, 60, 120)))


def sips_settings(sim, capture="auto", three_ds="when_required", **credentials):
    block = {"merchant_id": MERCHANT, "secret_key": SECRET, "key_version": "1", "seal_algorithm": "HMAC-SHA-256",
             "endpoint": sim.url}
    block.update(credentials)
    return {"sips": {"enabled": True, "mode": "test", "capture": capture, "three_ds": three_ds, "test": block}}


class _Forms(HTMLParser):
    """Every form of a page: action, id, the values of its hidden inputs (entities decoded) and its
    buttons; and the page's scripts."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.scripts: list[dict] = []
        self._open = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "id": attrs.get("id"), "method": attrs.get("method"),
                               "fields": {}, "buttons": []})
            self._open = True
        elif tag == "input" and self._open and attrs.get("type") == "hidden":
            self.forms[-1]["fields"][attrs.get("name")] = attrs.get("value") or ""
        elif tag == "button" and self._open:
            self.forms[-1]["buttons"].append(attrs)
        elif tag == "script":
            self.scripts.append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = False


def page_parts(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def forms(html: str) -> list[dict]:
    return page_parts(html).forms


def response_form(html: str) -> dict:
    """The receipt page's form that carries the sealed response back to the shop."""
    found = [f for f in forms(html) if f["id"] == "sips-response"]
    assert found, "the Sips page has no response form"
    return found[0]


def go_to_sips(shop, buyer, sku="MUG-01", quantity=1, endpoint=None):
    """Order, choose Sips, follow the shop's auto-submitting form. Returns (order ref, Sips' page)."""
    ref = buyer.place_order(sku=sku, quantity=quantity)
    page = buyer.choose(ref, provider="sips")
    assert page.status_code == 200, page.text
    (form,) = [f for f in forms(page.text) if f["id"] == "psp-redirect"]
    assert form["action"] == (endpoint or shop.sim.url) + "/paymentInit"
    return ref, buyer.http.post(form["action"], data=form["fields"], timeout=10), form["fields"]


def pay_on_sips(buyer, sips_page, card=CARD_OK, action="pay", code=None):
    """Fill Sips' payment page (and the 3-D Secure challenge); returns the receipt page."""
    assert sips_page.status_code == 200, sips_page.text
    (form,) = [f for f in forms(sips_page.text) if f["action"] and "/paymentpage/" in f["action"]]
    answer = buyer.http.post(form["action"], data={"card_number": card, "expiry": "12/30", "cvc": "123",
                                                   "action": action}, allow_redirects=False, timeout=10)
    if answer.status_code == 303:
        challenge = buyer.http.get(answer.headers["Location"], timeout=10)
        assert 'name="code"' in challenge.text
        answer = buyer.http.post(answer.headers["Location"], data={"code": code or "1234"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer


def back_to_shop(receipt_html, accept_language="en"):
    """The browser POSTs the sealed response to normalReturnUrl: a cross-site POST, so no cookie."""
    form = response_form(receipt_html)
    stranger = requests.Session()
    stranger.headers["Accept-Language"] = accept_language
    return stranger.post(form["action"], data=form["fields"], timeout=10)


def only_payment(shop, ref):
    (payment,) = shop.payments(ref)
    return payment

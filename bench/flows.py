"""Real payments for the benchmarks: orders in the shop, checkouts through the plugin, a buyer on
each simulator's hosted page, and the notifications each PSP then makes (kept by the paused notifier)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import requests
import sqlalchemy as sa

from flask_psp.simulator.adyen import CARD_SUCCESS as ADYEN_CARD
from flask_psp.simulator.paypal import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

from .baseline_app import reference_of
from .load import Request
from .provider_calls import ORDER_AMOUNT, provider_call

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def insert_orders(engine, references: list[str]) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO shop_order (reference, email, status, amount, currency, locale) "
                    "VALUES (:reference, 'buyer@example.com', 'pending', :amount, 'EUR', 'en')"),
            [{"reference": ref, "amount": ORDER_AMOUNT} for ref in references],
        )


def buyer_session(shop_url: str, order_ref: str) -> tuple[str, str]:
    """A session cookie and its CSRF token, from the checkout page (reused for every checkout POST)."""
    http = requests.Session()
    http.trust_env = False
    page = http.get(f"{shop_url}/psp/checkout/{order_ref}", timeout=10)
    page.raise_for_status()
    token = CSRF.search(page.text).group(1)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    return cookie, token


def checkout_request(shop, order_ref: str, provider: str, cookie: str, token: str, route: str = "checkout") -> Request:
    """``route``: ``checkout``, or the checkout floor's ``checkout-committing-first``."""
    body = f"provider={provider}&csrf_token={token}".encode()
    return Request("127.0.0.1", shop.port, "POST", f"/psp/{route}/{order_ref}", body,
                   {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Accept-Language": "en"},
                   tag=f"{provider}|{order_ref}", keep_body=provider == "sips")


# ---------------------------------------------------------------------------------- the direct calls
class DirectCalls:
    """The provider call the plugin makes to start a checkout, made directly (checkout baseline)."""

    def __init__(self, simulators, shop_url: str):
        self.sims = simulators
        self.shop_url = shop_url
        self.settings = {name: entry["test"] for name, entry in simulators.settings().items()}
        http = requests.Session()
        http.trust_env = False
        paypal = self.settings["paypal"]
        self.paypal_token = http.post(paypal["endpoint"] + "/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                      auth=(paypal["client_id"], paypal["client_secret"]), timeout=10).json()["access_token"]

    def request(self, provider: str, index: int) -> Request:
        call = provider_call(self.settings[provider], provider, f"direct{index:08d}bench", self.shop_url,
                             self.paypal_token)
        return Request(*call, tag=provider)


# ---------------------------------------------------------------------------------- the buyer pays
class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "id": attrs.get("id"), "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


def _forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class Buyer:
    """Pays on each simulator's hosted page as a buyer would, never following the way back to the
    shop: only the PSP's notification tells the shop."""

    def __init__(self, simulators):
        self.sims = simulators
        self._paypal_token = None

    def _http(self) -> requests.Session:
        http = requests.Session()
        http.trust_env = False
        return http

    def pay(self, provider: str, location: str | None, html: bytes | None) -> None:
        http = self._http()
        card = {"expiry": "12/30", "cvc": "123", "action": "pay"}
        if provider == "sips":
            (form,) = [f for f in _forms(html.decode()) if f["id"] == "psp-redirect"]
            page = http.post(form["action"], data=form["fields"], timeout=10)
            (pay_form,) = [f for f in _forms(page.text) if f["action"] and "/paymentpage/" in f["action"]]
            answer = http.post(pay_form["action"], data={**card, "card_number": "4100000000000000"},
                               allow_redirects=False, timeout=10)
            assert answer.status_code == 200, answer.text
            return
        assert location, f"{provider}: no hosted page"
        http.get(location, timeout=10).raise_for_status()
        if provider == "paypal":
            answer = http.post(location, data={"action": "approve"}, allow_redirects=False, timeout=10)
            assert answer.status_code == 303, answer.text
            # the payer's return would capture: the bench captures itself and delivers PayPal's
            # PAYMENT.CAPTURE.COMPLETED webhook instead
            order_id = location.split("token=")[1]
            sim = self.sims["paypal"]
            captured = http.post(f"{sim.url}/v2/checkout/orders/{order_id}/capture", json={},
                                 headers={"Authorization": f"Bearer {self.paypal_token()}"}, timeout=10)
            assert captured.status_code == 201, captured.text
            return
        number = {"adyen": ADYEN_CARD, "payplug": "4242424242424242", "hipay": "4111111111111111"}[provider]
        answer = http.post(location, data={**card, "card_number": number}, allow_redirects=False, timeout=10)
        assert answer.status_code == 303, answer.text
        assert not answer.headers["Location"].endswith("/3ds"), "unexpected 3-D Secure challenge"

    def paypal_token(self) -> str:
        if self._paypal_token is None:
            sim = self.sims["paypal"]
            self._paypal_token = self._http().post(
                f"{sim.url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), timeout=10).json()["access_token"]
        return self._paypal_token

    def pay_all(self, started: list[tuple[str, str | None, bytes | None]], threads: int = 8) -> None:
        self.paypal_token()
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(self.pay, *item) for item in started]:
                future.result()


# ---------------------------------------------------------------------------------- notifications
def decisive(provider: str, body: bytes) -> bool:
    """The notification that tells the shop the payment was taken (one per payment)."""
    if provider == "adyen":
        item = json.loads(body)["notificationItems"][0]["NotificationRequestItem"]
        return item["eventCode"] == "AUTHORISATION" and item["success"] == "true"
    if provider == "paypal":
        return json.loads(body)["event_type"] == "PAYMENT.CAPTURE.COMPLETED"
    if provider == "payplug":
        data = json.loads(body)
        return data.get("object") == "payment" and data.get("is_paid") is True
    if provider == "hipay":
        return dict(parse_qsl(body.decode())).get("status") == "118"
    return True  # sips: one automatic response per payment


def collect_notifications(notifier, engine) -> dict[str, dict]:
    """order_ref -> {"provider", "url", "body", "headers", "baseline_ref"} for every decisive
    notification the simulators made (the first one per payment)."""
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT order_ref, token, psp_reference FROM psp_payment "
            "WHERE order_ref LIKE 'BENCH-%' OR order_ref LIKE 'CELERY-%'")).all()
    owner = {}
    for order_ref, token, psp_reference in rows:
        owner[token] = order_ref
        if psp_reference:
            owner[psp_reference] = order_ref
    found: dict[str, dict] = {}
    for delivery in list(notifier.deliveries):
        provider = delivery.url.rstrip("/").rsplit("/", 1)[-1]
        if not decisive(provider, delivery.body):
            continue
        ref = reference_of(provider, delivery.body)
        order_ref = owner.get(ref)
        if order_ref is None or order_ref in found:
            continue
        found[order_ref] = {"provider": provider, "url": delivery.url, "body": delivery.body,
                            "headers": dict(delivery.headers), "baseline_ref": ref}
    return found


def notification_request(notification: dict, port: int, tag: str) -> Request:
    """One delivery, on a connection of its own as PSPs send them. (With keep-alive, the load
    generator's few connections stay with the gunicorn workers that accepted them — seen: two of
    four workers busy, two idle — and the figures depended on how they happened to fall.)"""
    path = urlsplit(notification["url"]).path
    return Request("127.0.0.1", port, "POST", path, notification["body"], dict(notification["headers"]), tag=tag,
                   keep_alive=False)

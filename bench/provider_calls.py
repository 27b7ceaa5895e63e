"""The call that starts a payment at each redirecting PSP, as the plugin makes it: sent directly by
the checkout benchmark's baseline (bench/flows.py) and by the checkout floor (bench/floor_app.py),
which imports nothing else of the bench's (no simulator in its workers)."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode, urlsplit

ORDER_AMOUNT = 1450  # EUR cents, every bench order


def provider_call(settings: dict, provider: str, token: str, shop_url: str, paypal_token: str | None) -> tuple:
    """The call that starts a payment at ``provider`` (``settings``: its ``test`` block, endpoint
    included), as the plugin makes it: (host, port, method, path, body, headers)."""
    endpoint = urlsplit(settings["endpoint"])
    back = f"{shop_url}/psp/return/{token}"
    s = settings
    if provider == "payplug":
        body = {"amount": ORDER_AMOUNT, "currency": "EUR",
                "billing": {"email": "buyer@example.com", "language": "en"},
                "hosted_payment": {"return_url": back, "cancel_url": back},
                "notification_url": f"{shop_url}/psp/notify/payplug", "metadata": {"token": token}}
        headers = {"Authorization": f"Bearer {s['secret_key']}", "PayPlug-Version": "2019-08-06"}
        path = "/v1/payments"
    elif provider == "adyen":
        body = {"amount": {"value": ORDER_AMOUNT, "currency": "EUR"}, "merchantAccount": s["merchant_account"],
                "reference": token, "returnUrl": back, "mode": "hosted", "shopperLocale": "en-US"}
        headers = {"X-API-Key": s["api_key"], "Idempotency-Key": token}
        path = "/v72/sessions"
    elif provider == "paypal":
        body = {"intent": "CAPTURE",
                "purchase_units": [{"reference_id": token, "custom_id": token,
                                    "amount": {"currency_code": "EUR", "value": "14.50"}}],
                "payment_source": {"paypal": {"experience_context": {"return_url": back, "cancel_url": back}}}}
        headers = {"Authorization": f"Bearer {paypal_token}", "PayPal-Request-Id": token,
                   "Prefer": "return=representation"}
        path = "/v2/checkout/orders"
    elif provider == "hipay":
        form = {"orderid": token, "operation": "Sale", "description": "bench", "currency": "EUR", "amount": "14.50",
                "accept_url": back, "decline_url": back, "pending_url": back, "exception_url": back,
                "cancel_url": back, "notify_url": f"{shop_url}/psp/notify/hipay", "language": "en_GB",
                "authentication_indicator": "1", "eci": "7"}
        credentials = base64.b64encode(f"{s['api_username']}:{s['api_password']}".encode()).decode()
        return (endpoint.hostname, endpoint.port, "POST", "/v1/hpayment", urlencode(form).encode(),
                {"Authorization": f"Basic {credentials}", "Accept": "application/json",
                 "Content-Type": "application/x-www-form-urlencoded"})
    else:
        raise KeyError(provider)
    headers["Content-Type"] = "application/json"
    return endpoint.hostname, endpoint.port, "POST", path, json.dumps(body).encode(), headers


def payment_page(provider: str, answer: dict) -> tuple[str | None, str]:
    """(the PSP's reference, the payment page's URL) from the answer to :func:`provider_call`."""
    if provider == "adyen":
        return None, answer["url"]
    if provider == "paypal":
        links = {link["rel"]: link["href"] for link in answer.get("links", [])}
        return answer["id"], links.get("payer-action") or links["approve"]
    if provider == "payplug":
        return answer["id"], answer["hosted_payment"]["payment_url"]
    if provider == "hipay":
        return None, answer["forwardUrl"]
    raise KeyError(provider)

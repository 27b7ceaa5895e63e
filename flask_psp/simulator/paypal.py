"""PayPal REST (OAuth2, Orders v2, Payments v2, webhooks) simulated from PayPal's side.

API (JSON; ``Authorization: Bearer <token>`` from ``POST /v1/oauth2/token`` with Basic client id/secret):

* ``POST /v2/checkout/orders`` · ``GET /v2/checkout/orders/<id>`` · ``POST …/<id>/capture`` · ``POST …/<id>/authorize``
* ``POST /v2/payments/authorizations/<id>/capture|void`` · ``GET /v2/payments/captures/<id>`` ·
  ``POST /v2/payments/captures/<id>/refund``
* ``GET /v1/notifications/webhooks/<id>`` · ``POST /v1/notifications/verify-webhook-signature``
* ``PayPal-Request-Id``: a successful answer is replayed for the same id from the same app, with
  ``200 OK`` where the first answer was ``201 Created`` (as PayPal answers an idempotent retry).
* ``Prefer: return=representation`` gives whole objects; otherwise id, status and links only.

Approval page (the payer's side): ``GET|POST /checkoutnow?token=<order id>`` — approve with the
PayPal balance, pay by card through a 3-D Secure challenge, use a funding source that will be
declined, pay by bank (an eCheck: the capture stays ``PENDING`` until :meth:`settle_capture`), or
cancel back to ``cancel_url``.

PayPal's own later news: :meth:`settle_capture` (a pending capture clears — PAYMENT.CAPTURE.COMPLETED —
or is denied — PAYMENT.CAPTURE.DENIED), :meth:`reverse_capture` (PayPal takes the money back after a
dispute — PAYMENT.CAPTURE.REVERSED, whose resource is the reversal's refund object) and
:meth:`void_authorization` (an authorization voided in the dashboard or lapsed — PAYMENT.AUTHORIZATION.VOIDED).

Webhooks go to ``webhook_url`` (like the URL registered for the app in PayPal's dashboard), with the
transmission headers. Only PayPal can tell whether a transmission is genuine: the verify endpoint
answers SUCCESS only for an event this simulator sent, unchanged, with the same headers and the
``webhook_id`` of the app asking.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import string
import uuid
import zlib
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, g, jsonify, redirect, request

from . import base
from .base import HostedPages, ProviderSimulator, current_simulator
from .notifier import DEFAULT_RETRY_DELAYS, Delivery, Notifier

__all__ = ["PayPalSimulator", "THREE_DS_CODE"]

DEFAULT_CLIENT_ID = "sim-client-id"
DEFAULT_CLIENT_SECRET = "sim-client-secret"
DEFAULT_WEBHOOK_ID = "8PT597110X687430LKGECATA"
THREE_DS_CODE = "1234"
#: decimals PayPal accepts per currency (others: 2)
DECIMALS = {"JPY": 0, "HUF": 0, "TWD": 0}
CURRENCIES = set(
    "AUD BRL CAD CNY CZK DKK EUR HKD HUF ILS JPY MYR MXN TWD NZD NOK PHP PLN GBP SGD SEK CHF THB USD".split()
)
_ID_ALPHABET = string.ascii_uppercase + string.digits
#: what the approval page offers the payer (the ``action`` posted)
PAYER_CHOICES = (
    ("approve", "Pay with PayPal balance"),
    ("card", "Pay by card (3-D Secure)"),
    ("decline", "Pay with a funding source that will be declined"),
    ("bank", "Pay from a bank account (eCheck: pending until it clears)"),
    ("cancel", "Cancel and return to the merchant"),
)


def _id(length: int = 17) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _cents(value: str, currency: str) -> int:
    """'10.50' EUR -> 1050 (in 1/100ths for every currency, so sums stay integers)."""
    return int(Decimal(value) * 100)


def _value(cents: int, currency: str) -> str:
    decimals = DECIMALS.get(currency, 2)
    whole = Decimal(cents) / 100
    return f"{whole:.{decimals}f}"


class ApiError(base.ApiError):
    def __init__(self, status: int, name: str, issue: str | None = None, message: str = ""):
        super().__init__(message or name)
        self.status, self.name, self.issue, self.message = status, name, issue, message or name

    def body(self) -> dict:
        if self.status == 401:
            return {"error": self.name, "error_description": self.message}
        body = {"name": self.name, "message": self.message, "debug_id": _id(13).lower()}
        if self.issue:
            body["details"] = [{"issue": self.issue, "description": self.message}]
        return body


blueprint = Blueprint("paypal", __name__)


class PayPalSimulator(ProviderSimulator):
    name, brand = "paypal", "PayPal"
    page_note = "sandbox; nobody is charged."
    blueprint = blueprint
    api_paths = ("/v1/", "/v2/")
    state = {
        "tokens": dict,  # access token -> client id
        "orders": dict,
        "captures": dict,  # capture id -> {"capture", "order", "refunded", "cents"}
        "authorizations": dict,  # authorization id -> {"authorization", "order", "captured"}
        "refunds": dict,  # refund id -> {"refund", "order"}
        "token_requests": list,  # headers of every token request
        "sent": list,  # {"event", "body", "headers", "delivery"}
        "verifications": list,  # {"transmission_id", "result"}
        "_transmissions": dict,
        "_replay": dict,  # (client, path, PayPal-Request-Id) -> (status, body text)
        "_awaiting_3ds": set,
        # True: the verify endpoint answers 503 (PayPal having a bad day)
        "verify_outage": lambda: False,
        # how a funding source that will be declined shows: "capture" (201, a capture DECLINED) or
        # "instrument" (the capture call answers 422 INSTRUMENT_DECLINED and the order stays APPROVED)
        "decline_style": lambda: "capture",
    }

    def __init__(
        self,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        webhook_id: str = DEFAULT_WEBHOOK_ID,
        webhook_url: str | None = None,
        notifier: Notifier | None = None,
        retry_delays=DEFAULT_RETRY_DELAYS,
    ):
        super().__init__(accounts={client_id: client_secret}, notifier=notifier, retry_delays=retry_delays)
        self.client_id = client_id
        self.webhook_id = webhook_id
        #: where webhooks go, as registered for the app (CLI: PSP_SIM_PAYPAL_WEBHOOK_URL)
        self.webhook_url = webhook_url or os.environ.get("PSP_SIM_PAYPAL_WEBHOOK_URL") or None
        self._signing_key = secrets.token_bytes(32)

    def call_details(self) -> dict:
        return {"request_id": request.headers.get("PayPal-Request-Id")}

    def account_lines(self) -> list[str]:
        return [f"client id: {self.client_id}", f"secret: {self.accounts[self.client_id]}",
                f"webhook id: {self.webhook_id}", f"3-D Secure code: {THREE_DS_CODE}",
                f"webhooks to: {self.webhook_url or '(none: set PSP_SIM_PAYPAL_WEBHOOK_URL or .webhook_url)'}"]

    # ================================================================== Python-side helpers
    def event(self, event_type: str, resource: dict, resource_type: str) -> dict:
        return {
            "id": "WH-" + _id(8) + "-" + _id(17),
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": event_type.replace(".", " ").lower(),
            "resource": resource,
            "links": [{"href": f"{self.base_url()}/v1/notifications/webhooks-events/x", "rel": "self", "method": "GET"}],
        }

    def send_event(self, event: dict, url: str | None = None) -> Delivery | None:
        """Sign and send ``event`` as PayPal transmits a webhook (to ``url`` or ``webhook_url``)."""
        body = json.dumps(event, separators=(",", ":")).encode("utf-8")
        transmission_id = str(uuid.uuid4())
        when = _now()
        crc = zlib.crc32(body) & 0xFFFFFFFF
        signed = f"{transmission_id}|{when}|{self.webhook_id}|{crc}".encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PayPal/AUHD-214.0-58543034",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": f"{self.base_url()}/v1/notifications/certs/CERT-360caa42-fca2a594-sim",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(hmac.new(self._signing_key, signed, hashlib.sha256).digest()).decode(),
            "PAYPAL-TRANSMISSION-TIME": when,
        }
        record = {"event": event, "body": body, "headers": headers, "delivery": None}
        with self.lock:
            self._transmissions[transmission_id] = {"headers": headers, "event": json.loads(body), "webhook_id": self.webhook_id}
            self.sent.append(record)
        target = url or self.webhook_url
        if target:
            record["delivery"] = self.notifier.send(target, body, headers)
        return record["delivery"]

    def events_of(self, event_type: str) -> list[dict]:
        with self.lock:
            return [r for r in self.sent if r["event"]["event_type"] == event_type]

    def settle_capture(self, capture_id: str, cleared: bool = True) -> Delivery | None:
        """A pending capture clears (COMPLETED) or is denied (DECLINED), and PayPal says so."""
        with self.lock:
            capture = self.captures[capture_id]["capture"]
            if capture["status"] != "PENDING":
                raise ValueError(f"capture {capture_id} is {capture['status']}, not PENDING")
            capture["status"] = "COMPLETED" if cleared else "DECLINED"
            capture.pop("status_details", None)
            capture["update_time"] = _now()
            event = self.event("PAYMENT.CAPTURE.COMPLETED" if cleared else "PAYMENT.CAPTURE.DENIED", dict(capture), "capture")
        return self.send_event(event)

    def reverse_capture(self, capture_id: str) -> Delivery | None:
        """PayPal reverses a capture (a dispute lost, a chargeback): the money goes back to the
        payer through a refund PayPal makes itself, without the merchant's custom_id. ⚠ the
        capture's status afterwards is not documented; REFUNDED is assumed."""
        with self.lock:
            entry = self.captures[capture_id]
            cents = entry["cents"] - entry["refunded"]
            entry["refunded"] = entry["cents"]
            entry["capture"]["status"] = "REFUNDED"
            refund = self._new_refund(capture_id, cents)
            event = self.event("PAYMENT.CAPTURE.REVERSED", dict(refund), "refund")
        return self.send_event(event)

    def void_authorization(self, auth_id: str) -> Delivery | None:
        """An authorization voided outside the merchant's shop (dashboard, or its validity lapsed)."""
        with self.lock:
            authorization = self.authorizations[auth_id]["authorization"]
            if authorization["status"] not in ("CREATED", "PENDING"):
                raise ValueError(f"authorization {auth_id} is {authorization['status']}")
            authorization["status"] = "VOIDED"
            authorization["update_time"] = _now()
            event = self.event("PAYMENT.AUTHORIZATION.VOIDED", dict(authorization), "authorization")
        return self.send_event(event)

    # ================================================================== objects
    def _order_view(self, order: dict, full: bool = True) -> dict:
        view = {"id": order["id"], "status": order["status"], "links": order["links"]}
        if not full:
            return view
        unit = dict(order["unit"])
        payments = {}
        for key in ("authorizations", "captures", "refunds"):
            if order[key]:
                payments[key] = [dict(self._object(key, i)) for i in order[key]]
        if payments:
            unit["payments"] = payments
        view.update({"intent": order["intent"], "create_time": order["create_time"], "purchase_units": [unit]})
        if order.get("payer"):
            view["payer"] = order["payer"]
        view["payment_source"] = {"paypal": {k: v for k, v in order["source"].items() if k != "experience_context"}}
        return view

    def _object(self, key: str, object_id: str) -> dict:
        if key == "authorizations":
            return self.authorizations[object_id]["authorization"]
        if key == "captures":
            return self.captures[object_id]["capture"]
        return self.refunds[object_id]["refund"]

    def _links(self, kind: str, object_id: str, up: str | None = None) -> list[dict]:
        links = [{"href": f"{self.base_url()}/v2/payments/{kind}/{object_id}", "rel": "self", "method": "GET"}]
        if up:
            links.append({"href": up, "rel": "up", "method": "GET"})
        return links

    def _new_capture(self, order: dict, cents: int, authorization: dict | None, declined: bool, final: bool = True,
                     pending: bool = False) -> dict:
        capture_id = _id()
        currency = order["unit"]["amount"]["currency_code"]
        related = {"order_id": order["id"]}
        if authorization:
            related["authorization_id"] = authorization["id"]
        up = (f"{self.base_url()}/v2/payments/authorizations/{authorization['id']}" if authorization
              else f"{self.base_url()}/v2/checkout/orders/{order['id']}")
        capture = {
            "id": capture_id,
            "status": "DECLINED" if declined else "PENDING" if pending else "COMPLETED",
            "amount": {"currency_code": currency, "value": _value(cents, currency)},
            "final_capture": final,
            "custom_id": order["unit"].get("custom_id"),
            "seller_protection": {"status": "ELIGIBLE"},
            "supplementary_data": {"related_ids": related},
            "create_time": _now(),
            "update_time": _now(),
            "links": self._links("captures", capture_id, up),
        }
        if declined:
            capture["status_details"] = {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"}
        elif pending:
            capture["status_details"] = {"reason": "ECHECK"}
        self.captures[capture_id] = {"capture": capture, "order": order["id"], "refunded": 0, "cents": cents}
        order["captures"].append(capture_id)
        return capture

    def _new_refund(self, capture_id: str, cents: int, custom_id: str | None = None) -> dict:
        entry = self.captures[capture_id]
        currency = entry["capture"]["amount"]["currency_code"]
        refund_id = _id()
        refund = {
            "id": refund_id, "status": "COMPLETED",
            "amount": {"currency_code": currency, "value": _value(cents, currency)},
            "create_time": _now(), "update_time": _now(),
            "links": self._links("refunds", refund_id, f"{self.base_url()}/v2/payments/captures/{capture_id}"),
        }
        if custom_id is not None:
            refund["custom_id"] = custom_id
        self.refunds[refund_id] = {"refund": refund, "order": entry["order"]}
        self.orders[entry["order"]]["refunds"].append(refund_id)
        return refund

    # ================================================================== auth
    def _bearer(self) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        client = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if client is None:
            raise ApiError(401, "invalid_token", message="Token signature verification failed")
        return client

    def _order(self, order_id: str) -> dict:
        order = self.orders.get(order_id)
        if order is None or order["client"] != g.client:
            raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "The specified resource does not exist.")
        return order

    @staticmethod
    def _parse_amount(amount: Any, currency: str | None = None) -> tuple[int, str]:
        if not isinstance(amount, dict) or not isinstance(amount.get("value"), str):
            raise ApiError(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "amount.value is required")
        code = amount.get("currency_code")
        if code not in CURRENCIES or (currency and code != currency):
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "CURRENCY_NOT_SUPPORTED", "currency_code is not accepted")
        text = amount["value"]
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ApiError(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "amount.value is not a number") from None
        decimals = DECIMALS.get(code, 2)
        if value <= 0 or "e" in text.lower() or (("." in text) and len(text.split(".")[1]) > decimals) or (decimals == 0 and "." in text):
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "DECIMAL_PRECISION", f"{code} takes {decimals} decimals")
        return _cents(text, code), code


    def _owned(self, table: dict, object_id: str, what: str) -> dict:
        """The entry of ``table`` for ``object_id`` when it belongs to the calling app (g.client)."""
        entry = table.get(object_id)
        if entry is None or self.orders[entry["order"]]["client"] != g.client:
            raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", f"no such {what}")
        return entry

    def _amount_up_to(self, body: dict, currency: str, remaining: int, exceeded: str, message: str) -> int:
        """The amount the call asks for (all that remains when it names none), at most ``remaining``."""
        cents = remaining
        if body.get("amount") is not None:
            cents, _ = self._parse_amount(body["amount"], currency)
        if cents > remaining:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", exceeded, message)
        return cents

    # ================================================================== API operations (under self.lock)
    # each answers (status, body or None, events to send once the lock is released)
    def _create_order(self, body: dict, full: bool):
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            raise ApiError(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "intent must be CAPTURE or AUTHORIZE")
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1 or not isinstance(units[0], dict):
            raise ApiError(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "one purchase unit is expected")
        unit = dict(units[0])
        cents, currency = self._parse_amount(unit.get("amount"))
        source = ((body.get("payment_source") or {}).get("paypal")) or {}
        context = source.get("experience_context") or body.get("application_context") or {}
        for name in ("return_url", "cancel_url"):
            if not isinstance(context.get(name), str) or not context[name].startswith(("http://", "https://")):
                raise ApiError(422, "UNPROCESSABLE_ENTITY", "MISSING_REQUIRED_PARAMETER", f"{name} is required")
        _check_buyer_data(unit, source, context)
        order_id = _id()
        order = {
            "id": order_id, "client": g.client, "intent": intent, "status": "PAYER_ACTION_REQUIRED",
            "unit": unit, "cents": cents, "source": source, "context": context, "payer": None,
            "declines": False, "funding_pending": False, "create_time": _now(), "authorizations": [], "captures": [], "refunds": [],
            "links": [
                {"href": f"{self.base_url()}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
                {"href": f"{self.base_url()}/checkoutnow?token={order_id}", "rel": "payer-action", "method": "GET"},
            ],
        }
        self.orders[order_id] = order
        return 201, self._order_view(order, full), []

    def _complete_order(self, order_id: str, verb: str, full: bool):
        order = self._order(order_id)
        if order["status"] == "COMPLETED":
            raise ApiError(422, "UNPROCESSABLE_ENTITY",
                           "ORDER_ALREADY_CAPTURED" if order["intent"] == "CAPTURE" else "ORDER_ALREADY_AUTHORIZED",
                           "the order was already completed")
        if order["status"] != "APPROVED":
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED", "the payer has not approved the order")
        if (verb == "capture") != (order["intent"] == "CAPTURE"):
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "ACTION_DOES_NOT_MATCH_INTENT", f"the order intent is {order['intent']}")
        if order["declines"] and self.decline_style == "instrument":
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED",
                           "The instrument presented was either declined by the processor or bank, or it can't be used for this payment.")
        order["status"] = "COMPLETED"
        if verb == "capture":
            capture = self._new_capture(order, order["cents"], None, declined=order["declines"],
                                        pending=order["funding_pending"])
            kind = ("PAYMENT.CAPTURE.DECLINED" if order["declines"] else
                    "PAYMENT.CAPTURE.PENDING" if order["funding_pending"] else "PAYMENT.CAPTURE.COMPLETED")
            return 201, self._order_view(order, full), [self.event(kind, dict(capture), "capture")]
        authorization = self._new_authorization(order)
        return 201, self._order_view(order, full), [
            self.event("PAYMENT.AUTHORIZATION.CREATED", dict(authorization), "authorization")]

    def _new_authorization(self, order: dict) -> dict:
        auth_id = _id()
        currency = order["unit"]["amount"]["currency_code"]
        authorization = {
            "id": auth_id, "status": "CREATED",
            "amount": {"currency_code": currency, "value": _value(order["cents"], currency)},
            "custom_id": order["unit"].get("custom_id"),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
            "expiration_time": _now(), "create_time": _now(),
            "links": self._links("authorizations", auth_id, f"{self.base_url()}/v2/checkout/orders/{order['id']}"),
        }
        self.authorizations[auth_id] = {"authorization": authorization, "order": order["id"], "captured": 0}
        order["authorizations"].append(auth_id)
        return authorization

    def _void(self, auth_id: str, full: bool):
        entry = self._owned(self.authorizations, auth_id, "authorization")
        authorization = entry["authorization"]
        if authorization["status"] not in ("CREATED", "PENDING"):
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "PREVIOUSLY_CAPTURED" if entry["captured"] else "PREVIOUSLY_VOIDED",
                           f"the authorization is {authorization['status']}")
        authorization["status"] = "VOIDED"
        events = [self.event("PAYMENT.AUTHORIZATION.VOIDED", dict(authorization), "authorization")]
        return (200, dict(authorization), events) if full else (204, None, events)

    def _capture_authorization(self, auth_id: str, body: dict, full: bool):
        entry = self._owned(self.authorizations, auth_id, "authorization")
        authorization, order = entry["authorization"], self.orders[entry["order"]]
        if authorization["status"] not in ("CREATED", "PARTIALLY_CAPTURED"):
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_VOIDED" if authorization["status"] == "VOIDED"
                           else "AUTHORIZATION_ALREADY_CAPTURED", f"the authorization is {authorization['status']}")
        remaining = order["cents"] - entry["captured"]
        cents = self._amount_up_to(body, authorization["amount"]["currency_code"], remaining,
                                   "MAX_CAPTURE_AMOUNT_EXCEEDED", "more than authorized")
        final = body.get("final_capture", False) is True or cents == remaining
        entry["captured"] += cents
        authorization["status"] = "CAPTURED" if final else "PARTIALLY_CAPTURED"
        capture = self._new_capture(order, cents, authorization, declined=False, final=final)
        events = [self.event("PAYMENT.CAPTURE.COMPLETED", dict(capture), "capture")]
        view = dict(capture) if full else {"id": capture["id"], "status": capture["status"], "links": capture["links"]}
        return 201, view, events

    def _refund_capture(self, capture_id: str, body: dict, full: bool):
        entry = self._owned(self.captures, capture_id, "capture")
        capture = entry["capture"]
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED" if capture["status"] == "REFUNDED"
                           else "REFUND_NOT_ALLOWED", f"the capture is {capture['status']}")
        cents = self._amount_up_to(body, capture["amount"]["currency_code"], entry["cents"] - entry["refunded"],
                                   "REFUND_AMOUNT_EXCEEDED", "more than what remains")
        entry["refunded"] += cents
        capture["status"] = "REFUNDED" if entry["refunded"] == entry["cents"] else "PARTIALLY_REFUNDED"
        custom_id = body["custom_id"] if isinstance(body.get("custom_id"), str) else None
        refund = self._new_refund(capture_id, cents, custom_id)
        events = [self.event("PAYMENT.CAPTURE.REFUNDED", dict(refund), "refund")]
        view = dict(refund) if full else {"id": refund["id"], "status": "COMPLETED", "links": refund["links"]}
        return 201, view, events

    def _genuine(self, data: dict) -> bool:
        """Whether PayPal sent this transmission, unchanged, for the calling app's webhook (under self.lock)."""
        sent = self._transmissions.get(data["transmission_id"])
        headers = sent["headers"] if sent else {}
        return (
            sent is not None
            and g.client == self.client_id
            and data["webhook_id"] == sent["webhook_id"]
            and data["webhook_event"] == sent["event"]
            and data["auth_algo"] == headers["PAYPAL-AUTH-ALGO"]
            and data["cert_url"] == headers["PAYPAL-CERT-URL"]
            and data["transmission_sig"] == headers["PAYPAL-TRANSMISSION-SIG"]
            and data["transmission_time"] == headers["PAYPAL-TRANSMISSION-TIME"]
        )

    # ================================================================== the payer's side
    def _approve(self, order: dict, declines: bool, pending: bool = False) -> str:
        """The payer approved the order; returns where the payer goes back to. Sends CHECKOUT.ORDER.APPROVED."""
        with self.lock:
            order["status"] = "APPROVED"
            order["declines"] = declines
            order["funding_pending"] = pending
            order["payer"] = {"payer_id": _id(13), "email_address": "buyer@example.com",
                              "name": {"given_name": "Test", "surname": "Buyer"}}
            view = self._order_view(order)
            target = _with_query(order["context"]["return_url"], token=order["id"], PayerID=order["payer"]["payer_id"])
        self.send_event(self.event("CHECKOUT.ORDER.APPROVED", view, "checkout-order"))
        return target

    def _order_page(self, title: str, order: dict | None = None, status: int = 200, **context) -> Response:
        amount = order["unit"]["amount"] if order else None
        return self.page(title, status=status, code=THREE_DS_CODE,
                         merchant=(order["context"].get("brand_name") or "Merchant") if order else None,
                         amount=f"{amount['value']} {amount['currency_code']}" if order else None, **context)


# ====================================================================== HTTP: API
def _json_body() -> dict:
    data = request.get_json(force=True, silent=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON", "a JSON object is expected")
    return data


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _replayable(operation) -> Response:
    """Run ``operation(full)`` under the lock as the calling app (``g.client``), replaying an earlier success
    for the same PayPal-Request-Id; the webhooks it made go out once the lock is released."""
    sim = current_simulator()
    request_id = request.headers.get("PayPal-Request-Id")
    full = "return=representation" in request.headers.get("Prefer", "")
    events = []
    with sim.lock:
        g.client = sim._bearer()
        slot = (g.client, request.path, request_id) if request_id else None
        if slot and slot in sim._replay:
            status, text = sim._replay[slot]
            # "a successful response to an idempotent request returns 200 OK"
            status = 200 if status == 201 else status
        else:
            status, body, events = operation(full)
            text = json.dumps(body) if body is not None else ""
            if slot:
                sim._replay[slot] = (status, text)
    for event in events:
        sim.send_event(event)
    return Response(text, status=status, mimetype="application/json" if text else None)


@blueprint.post("/v1/oauth2/token")
def token():
    sim = current_simulator()
    with sim.lock:
        sim.token_requests.append(dict(request.headers))
    auth = request.authorization
    if auth is None or auth.type != "basic" or sim.accounts.get(auth.username) != auth.password:
        return jsonify({"error": "invalid_client", "error_description": "Client Authentication failed"}), 401
    if request.form.get("grant_type") != "client_credentials":
        return jsonify({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}), 400
    access = "A21AA" + secrets.token_urlsafe(32)
    with sim.lock:
        sim.tokens[access] = auth.username
    return jsonify({"scope": "https://uri.paypal.com/services/payments/payment", "access_token": access,
                    "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400,
                    "nonce": _now() + secrets.token_hex(8)})


@blueprint.post("/v2/checkout/orders")
def create_order():
    body = _json_body()
    return _replayable(lambda full: current_simulator()._create_order(body, full))


@blueprint.get("/v2/checkout/orders/<order_id>")
def get_order(order_id):
    sim = current_simulator()
    with sim.lock:
        g.client = sim._bearer()
        return _json(200, sim._order_view(sim._order(order_id)))


@blueprint.post("/v2/checkout/orders/<order_id>/<verb>")
def complete_order(order_id, verb):
    if verb not in ("capture", "authorize"):
        raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "unknown action")
    return _replayable(lambda full: current_simulator()._complete_order(order_id, verb, full))


@blueprint.post("/v2/payments/authorizations/<auth_id>/<verb>")
def authorization_action(auth_id, verb):
    if verb not in ("capture", "void"):
        raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "unknown action")
    body = _json_body()
    sim = current_simulator()
    if verb == "void":
        return _replayable(lambda full: sim._void(auth_id, full))
    return _replayable(lambda full: sim._capture_authorization(auth_id, body, full))


@blueprint.get("/v2/payments/captures/<capture_id>")
def get_capture(capture_id):
    sim = current_simulator()
    with sim.lock:
        g.client = sim._bearer()
        return _json(200, sim._owned(sim.captures, capture_id, "capture")["capture"])


@blueprint.post("/v2/payments/captures/<capture_id>/refund")
def refund(capture_id):
    body = _json_body()
    return _replayable(lambda full: current_simulator()._refund_capture(capture_id, body, full))


@blueprint.get("/v1/notifications/webhooks/<webhook_id>")
def get_webhook(webhook_id):
    sim = current_simulator()
    with sim.lock:
        g.client = sim._bearer()
    if webhook_id != sim.webhook_id or g.client != sim.client_id:
        raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Webhook not found")
    return jsonify({"id": webhook_id, "url": sim.webhook_url or "",
                    "event_types": [{"name": "*", "description": "ALL"}]})


@blueprint.post("/v1/notifications/verify-webhook-signature")
def verify():
    sim = current_simulator()
    with sim.lock:
        g.client = sim._bearer()
    if sim.verify_outage:
        return jsonify({"name": "INTERNAL_SERVICE_ERROR", "message": "An internal service error occurred."}), 503
    data = request.get_json(force=True, silent=True)
    fields = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")
    if not isinstance(data, dict) or any(not isinstance(data.get(f), str) for f in fields) \
            or not isinstance(data.get("webhook_event"), dict):
        raise ApiError(400, "VALIDATION_ERROR", "MISSING_REQUIRED_PARAMETER", "Invalid request - see details")
    with sim.lock:
        result = "SUCCESS" if sim._genuine(data) else "FAILURE"
        sim.verifications.append({"transmission_id": data["transmission_id"], "result": result})
    return jsonify({"verification_status": result})


# ====================================================================== HTTP: the payer's pages
#: the payer's pages, about the order of ``?token=``, which must still await the payer
_payer_page = HostedPages(
    blueprint, "orders", query="token", status="PAYER_ACTION_REQUIRED",
    conflict=lambda sim, order: sim._order_page("PayPal", order, message=f"This order is {order['status'].lower()}.",
                                                status=409),
    missing=lambda sim: sim._order_page("Unknown order", message="This checkout does not exist.", status=404),
)


@_payer_page.get("/checkoutnow")
def approval_page(sim, order):
    return sim._order_page("Pay with PayPal", order, choices=PAYER_CHOICES)


@_payer_page.post("/checkoutnow")
def approval_submit(sim, order):
    action = request.form.get("action")
    if action in ("approve", "decline", "bank"):
        return redirect(sim._approve(order, declines=action == "decline", pending=action == "bank"), code=303)
    if action == "card":
        with sim.lock:
            sim._awaiting_3ds.add(order["id"])
        return redirect(f"{sim.base_url()}/checkoutnow/3ds?token={order['id']}", code=303)
    if action == "cancel":
        return redirect(_with_query(order["context"]["cancel_url"], token=order["id"]), code=303)
    return sim._order_page("Pay with PayPal", order, choices=PAYER_CHOICES, error="Choose how to pay.", status=400)


@_payer_page.get("/checkoutnow/3ds")
def challenge_page(sim, order):
    return sim._order_page("3-D Secure", order, challenge=True)


@_payer_page.post("/checkoutnow/3ds")
def challenge_submit(sim, order):
    with sim.lock:
        waiting = order["id"] in sim._awaiting_3ds
        sim._awaiting_3ds.discard(order["id"])
    if not waiting:
        return redirect(f"{sim.base_url()}/checkoutnow?token={order['id']}", code=303)
    # a failed challenge leaves a card the issuer will decline
    declines = request.form.get("code", "").strip() != THREE_DS_CODE
    return redirect(sim._approve(order, declines=declines), code=303)


#: checkout_orders_v2: address_portable's fields, shipping_detail.type's values
_ADDRESS_FIELDS = {"address_line_1", "address_line_2", "address_line_3", "admin_area_4", "admin_area_3",
                   "admin_area_2", "admin_area_1", "postal_code", "country_code"}
_SHIPPING_TYPES = ("SHIPPING", "PICKUP_IN_PERSON", "PICKUP_IN_STORE", "PICKUP_FROM_PERSON")


def _check_address(where: str, address) -> None:
    if not isinstance(address, dict) or set(address) - _ADDRESS_FIELDS:
        raise ApiError(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", f"{where}: an address_portable object")
    if not isinstance(address.get("country_code"), str) or len(address["country_code"]) != 2:
        raise ApiError(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", f"{where}.country_code is required")


def _check_buyer_data(unit: dict, source: dict, context: dict) -> None:
    """The buyer's data keeps the Orders v2 shapes (payment_source.paypal.name/address,
    purchase_units[].shipping, experience_context.shipping_preference)."""
    name = source.get("name")
    if name is not None and (not isinstance(name, dict) or set(name) - {"given_name", "surname"}):
        raise ApiError(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX",
                       "payment_source.paypal.name: given_name, surname")
    if source.get("address") is not None:
        _check_address("payment_source.paypal.address", source["address"])
    shipping = unit.get("shipping")
    if shipping is not None:
        if not isinstance(shipping, dict) or set(shipping) - {"name", "type", "options", "address"}:
            raise ApiError(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "purchase_units[0].shipping")
        if "type" in shipping and shipping["type"] not in _SHIPPING_TYPES:
            raise ApiError(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "purchase_units[0].shipping.type")
        if "name" in shipping and (not isinstance(shipping["name"], dict) or set(shipping["name"]) != {"full_name"}):
            raise ApiError(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX",
                           "purchase_units[0].shipping.name supports only full_name")
        _check_address("purchase_units[0].shipping.address", shipping.get("address"))
    preference = context.get("shipping_preference", "GET_FROM_FILE")
    if preference not in ("GET_FROM_FILE", "NO_SHIPPING", "SET_PROVIDED_ADDRESS"):
        raise ApiError(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "shipping_preference")
    if preference == "SET_PROVIDED_ADDRESS" and shipping is None:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "SHIPPING_ADDRESS_INVALID",
                       "SET_PROVIDED_ADDRESS needs purchase_units[0].shipping.address")

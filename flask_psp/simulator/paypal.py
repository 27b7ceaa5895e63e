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

from flask import Response, g, jsonify, redirect, render_template_string, request

from . import DEFAULT_RETRY_DELAYS, Delivery, Notifier, ProviderSimulator

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


class ApiError(Exception):
    def __init__(self, status: int, name: str, issue: str | None = None, message: str = ""):
        super().__init__(message or name)
        self.status, self.name, self.issue, self.message = status, name, issue, message or name


class PayPalSimulator(ProviderSimulator):
    name = "paypal"

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
        #: True: the verify endpoint answers 503 (PayPal having a bad day)
        self.verify_outage = False
        #: how a funding source that will be declined shows: "capture" (201, a capture DECLINED) or
        #: "instrument" (the capture call answers 422 INSTRUMENT_DECLINED and the order stays APPROVED)
        self.decline_style = "capture"
        self._signing_key = secrets.token_bytes(32)
        self._routes()
        self.reset()

    # ================================================================== Python-side helpers
    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, str] = {}  # access token -> client id
            self.orders: dict[str, dict] = {}
            self.captures: dict[str, dict] = {}  # capture id -> {"capture", "order", "authorization"}
            self.authorizations: dict[str, dict] = {}  # authorization id -> {"authorization", "order"}
            self.refunds: dict[str, dict] = {}
            self.requests: list[dict] = []  # {"method", "path", "request_id", "status"}
            self.token_requests: list[dict] = []  # headers of every token request
            self.sent: list[dict] = []  # {"event", "body", "headers", "delivery"}
            self.verifications: list[dict] = []  # {"transmission_id", "result"}
            self._transmissions: dict[str, dict] = {}
            self._replay: dict[tuple[str, str, str], tuple[int, str]] = {}
            self._awaiting_3ds: set[str] = set()
            self.verify_outage = False
            self.decline_style = "capture"

    def describe(self) -> list[str]:
        return [f"client id: {self.client_id}", f"secret: {self.accounts[self.client_id]}",
                f"webhook id: {self.webhook_id}", f"3-D Secure code: {THREE_DS_CODE}",
                f"webhooks to: {self.webhook_url or '(none: set PSP_SIM_PAYPAL_WEBHOOK_URL or .webhook_url)'}"]

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
            capture, order = entry["capture"], self.orders[entry["order"]]
            currency = capture["amount"]["currency_code"]
            cents = entry["cents"] - entry["refunded"]
            entry["refunded"] = entry["cents"]
            capture["status"] = "REFUNDED"
            refund_id = _id()
            refund = {
                "id": refund_id, "status": "COMPLETED",
                "amount": {"currency_code": currency, "value": _value(cents, currency)},
                "create_time": _now(), "update_time": _now(),
                "links": self._links("refunds", refund_id, f"{self.base_url()}/v2/payments/captures/{capture_id}"),
            }
            self.refunds[refund_id] = {"refund": refund, "order": order["id"]}
            order["refunds"].append(refund_id)
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

    # ================================================================== HTTP
    def _routes(self) -> None:
        app = self.app
        app.json.sort_keys = False

        @app.before_request
        def log_request():
            if request.path.startswith(("/v1/", "/v2/")):
                g.api_call = {"method": request.method, "path": request.path,
                              "request_id": request.headers.get("PayPal-Request-Id"), "status": None}
                with self.lock:
                    self.requests.append(g.api_call)

        @app.after_request
        def log_status(response):
            entry = g.get("api_call")
            if entry is not None:
                entry["status"] = response.status_code
            return response

        @app.errorhandler(ApiError)
        def api_error(error: ApiError):
            if error.status == 401:
                return jsonify({"error": error.name, "error_description": error.message}), 401
            body = {"name": error.name, "message": error.message, "debug_id": _id(13).lower()}
            if error.issue:
                body["details"] = [{"issue": error.issue, "description": error.message}]
            return jsonify(body), error.status

        def answer(status: int, body: Any) -> Response:
            return Response(json.dumps(body), status=status, mimetype="application/json")

        def replayable(handler):
            """Run ``handler`` under the lock, replaying an earlier success for the same PayPal-Request-Id."""
            request_id = request.headers.get("PayPal-Request-Id")
            full = "return=representation" in request.headers.get("Prefer", "")
            with self.lock:
                g.client = self._bearer()
                slot = (g.client, request.path, request_id) if request_id else None
                if slot and slot in self._replay:
                    status, text = self._replay[slot]
                    # "a successful response to an idempotent request returns 200 OK"
                    status = 200 if status == 201 else status
                    return Response(text, status=status, mimetype="application/json" if text else None), []
                status, body, events = handler(full)
                text = json.dumps(body) if body is not None else ""
                if slot:
                    self._replay[slot] = (status, text)
            return Response(text, status=status, mimetype="application/json" if text else None), events

        def send_all(events):
            for event in events:
                self.send_event(event)

        def json_body() -> dict:
            data = request.get_json(force=True, silent=True)
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise ApiError(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON", "a JSON object is expected")
            return data

        # ------------------------------------------------------------------ OAuth
        @app.post("/v1/oauth2/token")
        def token():
            with self.lock:
                self.token_requests.append(dict(request.headers))
            auth = request.authorization
            if auth is None or auth.type != "basic" or self.accounts.get(auth.username) != auth.password:
                return jsonify({"error": "invalid_client", "error_description": "Client Authentication failed"}), 401
            if request.form.get("grant_type") != "client_credentials":
                return jsonify({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}), 400
            access = "A21AA" + secrets.token_urlsafe(32)
            with self.lock:
                self.tokens[access] = auth.username
            return jsonify({"scope": "https://uri.paypal.com/services/payments/payment", "access_token": access,
                            "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400,
                            "nonce": _now() + secrets.token_hex(8)})

        # ------------------------------------------------------------------ orders
        @app.post("/v2/checkout/orders")
        def create_order():
            body = json_body()

            def run(full):
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

            response, events = replayable(run)
            send_all(events)
            return response

        @app.get("/v2/checkout/orders/<order_id>")
        def get_order(order_id):
            with self.lock:
                g.client = self._bearer()
                return answer(200, self._order_view(self._order(order_id)))

        @app.post("/v2/checkout/orders/<order_id>/<verb>")
        def complete_order(order_id, verb):
            if verb not in ("capture", "authorize"):
                raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "unknown action")

            def run(full):
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
                currency = order["unit"]["amount"]["currency_code"]
                if verb == "capture":
                    capture = self._new_capture(order, order["cents"], None, declined=order["declines"],
                                                pending=order["funding_pending"])
                    kind = ("PAYMENT.CAPTURE.DECLINED" if order["declines"] else
                            "PAYMENT.CAPTURE.PENDING" if order["funding_pending"] else "PAYMENT.CAPTURE.COMPLETED")
                    events = [self.event(kind, dict(capture), "capture")]
                else:
                    auth_id = _id()
                    authorization = {
                        "id": auth_id, "status": "CREATED",
                        "amount": {"currency_code": currency, "value": _value(order["cents"], currency)},
                        "custom_id": order["unit"].get("custom_id"),
                        "supplementary_data": {"related_ids": {"order_id": order_id}},
                        "expiration_time": _now(), "create_time": _now(),
                        "links": self._links("authorizations", auth_id,
                                             f"{self.base_url()}/v2/checkout/orders/{order_id}"),
                    }
                    self.authorizations[auth_id] = {"authorization": authorization, "order": order_id, "captured": 0}
                    order["authorizations"].append(auth_id)
                    events = [self.event("PAYMENT.AUTHORIZATION.CREATED", dict(authorization), "authorization")]
                return 201, self._order_view(order, full), events

            response, events = replayable(run)
            send_all(events)
            return response

        # ------------------------------------------------------------------ payments
        @app.post("/v2/payments/authorizations/<auth_id>/<verb>")
        def authorization_action(auth_id, verb):
            if verb not in ("capture", "void"):
                raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "unknown action")
            body = json_body()

            def run(full):
                entry = self.authorizations.get(auth_id)
                if entry is None or self.orders[entry["order"]]["client"] != g.client:
                    raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "no such authorization")
                authorization, order = entry["authorization"], self.orders[entry["order"]]
                if verb == "void":
                    if authorization["status"] not in ("CREATED", "PENDING"):
                        raise ApiError(422, "UNPROCESSABLE_ENTITY", "PREVIOUSLY_CAPTURED" if entry["captured"] else "PREVIOUSLY_VOIDED",
                                       f"the authorization is {authorization['status']}")
                    authorization["status"] = "VOIDED"
                    events = [self.event("PAYMENT.AUTHORIZATION.VOIDED", dict(authorization), "authorization")]
                    return (200, dict(authorization), events) if full else (204, None, events)
                if authorization["status"] not in ("CREATED", "PARTIALLY_CAPTURED"):
                    raise ApiError(422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_VOIDED" if authorization["status"] == "VOIDED"
                                   else "AUTHORIZATION_ALREADY_CAPTURED", f"the authorization is {authorization['status']}")
                currency = authorization["amount"]["currency_code"]
                remaining = order["cents"] - entry["captured"]
                cents = remaining
                if body.get("amount") is not None:
                    cents, _ = self._parse_amount(body["amount"], currency)
                if cents > remaining:
                    raise ApiError(422, "UNPROCESSABLE_ENTITY", "MAX_CAPTURE_AMOUNT_EXCEEDED", "more than authorized")
                final = body.get("final_capture", False) is True or cents == remaining
                entry["captured"] += cents
                authorization["status"] = "CAPTURED" if final else "PARTIALLY_CAPTURED"
                capture = self._new_capture(order, cents, authorization, declined=False, final=final)
                events = [self.event("PAYMENT.CAPTURE.COMPLETED", dict(capture), "capture")]
                view = dict(capture) if full else {"id": capture["id"], "status": capture["status"], "links": capture["links"]}
                return 201, view, events

            response, events = replayable(run)
            send_all(events)
            return response

        @app.get("/v2/payments/captures/<capture_id>")
        def get_capture(capture_id):
            with self.lock:
                g.client = self._bearer()
                entry = self.captures.get(capture_id)
                if entry is None or self.orders[entry["order"]]["client"] != g.client:
                    raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "no such capture")
                return answer(200, entry["capture"])

        @app.post("/v2/payments/captures/<capture_id>/refund")
        def refund(capture_id):
            body = json_body()

            def run(full):
                entry = self.captures.get(capture_id)
                if entry is None or self.orders[entry["order"]]["client"] != g.client:
                    raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "no such capture")
                capture, order = entry["capture"], self.orders[entry["order"]]
                if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
                    raise ApiError(422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED" if capture["status"] == "REFUNDED"
                                   else "REFUND_NOT_ALLOWED", f"the capture is {capture['status']}")
                currency = capture["amount"]["currency_code"]
                remaining = entry["cents"] - entry["refunded"]
                cents = remaining
                if body.get("amount") is not None:
                    cents, _ = self._parse_amount(body["amount"], currency)
                if cents > remaining:
                    raise ApiError(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED", "more than what remains")
                entry["refunded"] += cents
                capture["status"] = "REFUNDED" if entry["refunded"] == entry["cents"] else "PARTIALLY_REFUNDED"
                refund_id = _id()
                refund = {
                    "id": refund_id, "status": "COMPLETED",
                    "amount": {"currency_code": currency, "value": _value(cents, currency)},
                    "create_time": _now(), "update_time": _now(),
                    "links": self._links("refunds", refund_id, f"{self.base_url()}/v2/payments/captures/{capture_id}"),
                }
                if isinstance(body.get("custom_id"), str):
                    refund["custom_id"] = body["custom_id"]
                self.refunds[refund_id] = {"refund": refund, "order": order["id"]}
                order["refunds"].append(refund_id)
                events = [self.event("PAYMENT.CAPTURE.REFUNDED", dict(refund), "refund")]
                view = dict(refund) if full else {"id": refund_id, "status": "COMPLETED", "links": refund["links"]}
                return 201, view, events

            response, events = replayable(run)
            send_all(events)
            return response

        # ------------------------------------------------------------------ webhooks
        @app.get("/v1/notifications/webhooks/<webhook_id>")
        def get_webhook(webhook_id):
            with self.lock:
                g.client = self._bearer()
            if webhook_id != self.webhook_id or g.client != self.client_id:
                raise ApiError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Webhook not found")
            return jsonify({"id": webhook_id, "url": self.webhook_url or "",
                            "event_types": [{"name": "*", "description": "ALL"}]})

        @app.post("/v1/notifications/verify-webhook-signature")
        def verify():
            with self.lock:
                g.client = self._bearer()
            if self.verify_outage:
                return jsonify({"name": "INTERNAL_SERVICE_ERROR", "message": "An internal service error occurred."}), 503
            data = request.get_json(force=True, silent=True)
            fields = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")
            if not isinstance(data, dict) or any(not isinstance(data.get(f), str) for f in fields) \
                    or not isinstance(data.get("webhook_event"), dict):
                raise ApiError(400, "VALIDATION_ERROR", "MISSING_REQUIRED_PARAMETER", "Invalid request - see details")
            with self.lock:
                sent = self._transmissions.get(data["transmission_id"])
                headers = sent["headers"] if sent else {}
                genuine = (
                    sent is not None
                    and g.client == self.client_id
                    and data["webhook_id"] == sent["webhook_id"]
                    and data["webhook_event"] == sent["event"]
                    and data["auth_algo"] == headers["PAYPAL-AUTH-ALGO"]
                    and data["cert_url"] == headers["PAYPAL-CERT-URL"]
                    and data["transmission_sig"] == headers["PAYPAL-TRANSMISSION-SIG"]
                    and data["transmission_time"] == headers["PAYPAL-TRANSMISSION-TIME"]
                )
                result = "SUCCESS" if genuine else "FAILURE"
                self.verifications.append({"transmission_id": data["transmission_id"], "result": result})
            return jsonify({"verification_status": result})

        # ------------------------------------------------------------------ the payer's pages
        def payer_order():
            with self.lock:
                order = self.orders.get(request.args.get("token", ""))
            if order is None:
                return None, self._page("Unknown order", message="This checkout does not exist.", status=404)
            if order["status"] != "PAYER_ACTION_REQUIRED":
                return None, self._page("PayPal", order=order, message=f"This order is {order['status'].lower()}.", status=409)
            return order, None

        def approve(order, declines: bool, pending: bool = False):
            with self.lock:
                order["status"] = "APPROVED"
                order["declines"] = declines
                order["funding_pending"] = pending
                order["payer"] = {"payer_id": _id(13), "email_address": "buyer@example.com",
                                  "name": {"given_name": "Test", "surname": "Buyer"}}
                view = self._order_view(order)
                target = _with_query(order["context"]["return_url"], token=order["id"], PayerID=order["payer"]["payer_id"])
            self.send_event(self.event("CHECKOUT.ORDER.APPROVED", view, "checkout-order"))
            return redirect(target, code=303)

        @app.get("/checkoutnow")
        def approval_page():
            order, problem = payer_order()
            return problem or self._page("Pay with PayPal", order=order, form=True)

        @app.post("/checkoutnow")
        def approval_submit():
            order, problem = payer_order()
            if problem:
                return problem
            action = request.form.get("action")
            if action == "approve":
                return approve(order, declines=False)
            if action == "decline":
                return approve(order, declines=True)
            if action == "bank":
                return approve(order, declines=False, pending=True)
            if action == "card":
                with self.lock:
                    self._awaiting_3ds.add(order["id"])
                return redirect(f"{self.base_url()}/checkoutnow/3ds?token={order['id']}", code=303)
            if action == "cancel":
                return redirect(_with_query(order["context"]["cancel_url"], token=order["id"]), code=303)
            return self._page("Pay with PayPal", order=order, form=True, error="Choose how to pay.", status=400)

        @app.get("/checkoutnow/3ds")
        def challenge_page():
            order, problem = payer_order()
            return problem or self._page("3-D Secure", order=order, challenge=True)

        @app.post("/checkoutnow/3ds")
        def challenge_submit():
            order, problem = payer_order()
            if problem:
                return problem
            with self.lock:
                waiting = order["id"] in self._awaiting_3ds
                self._awaiting_3ds.discard(order["id"])
            if not waiting:
                return redirect(f"{self.base_url()}/checkoutnow?token={order['id']}", code=303)
            # a failed challenge leaves a card the issuer will decline
            return approve(order, declines=request.form.get("code", "").strip() != THREE_DS_CODE)

    def _page(self, title: str, status: int = 200, order: dict | None = None, **context) -> Response:
        html = render_template_string(_PAGE, title=title, order=order, code=THREE_DS_CODE, **context)
        return Response(html, status=status, mimetype="text/html")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · PayPal simulator</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}
button{display:block;margin-top:.75rem;padding:.5rem 1rem}.error{color:#a00}.note{color:#666;font-size:.85rem}</style></head>
<body><p class="note">PayPal simulator — sandbox; nobody is charged.</p><h1>{{ title }}</h1>
{% if order %}<p>{{ order.context.brand_name or "Merchant" }} · <strong>{{ order.unit.amount.value }} {{ order.unit.amount.currency_code }}</strong></p>{% endif %}
{% if message %}<p>{{ message }}</p>{% endif %}
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
{% if form %}<form method="post">
<button name="action" value="approve">Pay with PayPal balance</button>
<button name="action" value="card">Pay by card (3-D Secure)</button>
<button name="action" value="decline">Pay with a funding source that will be declined</button>
<button name="action" value="bank">Pay from a bank account (eCheck: pending until it clears)</button>
<button name="action" value="cancel">Cancel and return to the merchant</button></form>{% endif %}
{% if challenge %}<form method="post"><p>Your bank asks you to confirm. Test code: <code>{{ code }}</code></p>
<input name="code" required><button type="submit">Confirm</button></form>{% endif %}
</body></html>
"""

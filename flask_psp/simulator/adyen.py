"""Adyen Checkout API v72, Hosted Checkout page and standard webhooks, simulated from Adyen's side.

API (JSON, ``X-API-Key`` header; a test key makes test payments, a live key live ones):

* ``POST /v72/sessions`` (``mode: "hosted"``) → ``url`` of the hosted page · ``GET /v72/sessions/<id>?sessionResult=…``
* ``POST /v72/payments/<pspReference>/captures|refunds|cancels`` → 201 ``status: "received"``; the
  outcome follows as a CAPTURE / REFUND / CANCELLATION webhook
* ``POST /v72/paymentMethods`` (used to test a connection)
* ``Idempotency-Key``: the same key with the same API key replays the first answer.

Hosted page: ``GET|POST /checkoutshopper/sessions/<id>`` (pay, decline, cancel) and the 3-D Secure
challenge ``…/3ds``. The buyer is sent back to ``returnUrl`` with ``sessionId`` and ``sessionResult``
once the session is over: paid, cancelled, or refused after ``max_refusals`` refused attempts. A
refused attempt keeps the buyer on the page to try another card (each attempt has its own
pspReference and its own AUTHORISATION webhook, ``success: "false"``), as Adyen's sessions do.
3-D Secure: a challenge when the card's issuer asks for one (``CARD_3DS``) or when the session asks
for it (``authenticationData.attemptAuthentication: "always"`` or ``threeDS2RequestData``
``threeDSRequestorChallengeInd`` ``03``/``04``).

Webhooks go to ``webhook_url`` — like the URL a merchant types in Adyen's Customer Area, it is
configuration of the simulator, not part of each payment. Each item is signed with the HMAC key
(HMAC-SHA256 over ``pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success``,
hex-decoded key, base64) in ``additionalData.hmacSignature``; ``with sim.batched():`` groups the
webhooks made inside into one body, as Adyen batches items.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, jsonify, redirect, request

from . import base
from .base import HostedPages, ProviderSimulator, current_simulator
from .notifier import DEFAULT_RETRY_DELAYS, Delivery, Notifier

__all__ = ["AdyenSimulator", "sign_item", "CARD_SUCCESS", "CARD_DECLINED", "CARD_3DS", "THREE_DS_PASSWORD"]

API_VERSION = "v72"
DEFAULT_MERCHANT = "FlaskPspShopECOM"
DEFAULT_HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
DEFAULT_TEST_KEY = "AQE_test_simulator_key"
DEFAULT_LIVE_KEY = "AQE_live_simulator_key"

CARD_SUCCESS = "4111111111111111"
CARD_DECLINED = "4000300011112220"
CARD_3DS = "4917610000000000"
THREE_DS_PASSWORD = "password"
TEST_CARDS = (
    (CARD_SUCCESS, "authorised (a challenge too when the session asks for 3-D Secure always)"),
    (CARD_DECLINED, "refused"),
    (CARD_3DS, f"3-D Secure challenge: '{THREE_DS_PASSWORD}' authorises, anything else refuses"),
)
_ZERO_DECIMAL = {"JPY", "KRW", "ISK", "CLP", "VND", "XOF", "XAF", "XPF", "IDR"}  # display only
SIGNED_FIELDS = (
    "pspReference", "originalReference", "merchantAccountCode", "merchantReference",
    "value", "currency", "eventCode", "success",
)


def sign_item(item: dict, hex_key: str) -> str:
    """Adyen's HMAC signature of one NotificationRequestItem."""
    amount = item.get("amount") or {}
    values = {**item, "value": amount.get("value", ""), "currency": amount.get("currency", "")}
    text = ":".join("" if values.get(name) is None else str(values.get(name)) for name in SIGNED_FIELDS)
    digest = hmac.new(binascii.unhexlify(hex_key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _psp() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(16))


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class ApiError(base.ApiError):
    def __init__(self, status: int, code: str, message: str, kind: str = "validation"):
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind

    def body(self) -> dict:
        return {"status": self.status, "errorCode": self.code, "message": self.message,
                "errorType": self.kind, "pspReference": _psp()}


blueprint = Blueprint("adyen", __name__)


class AdyenSimulator(ProviderSimulator):
    name, brand = "adyen", "Adyen"
    page_note = "Hosted Checkout; no real card is charged."
    blueprint = blueprint
    api_paths = (f"/{API_VERSION}",)
    test_cards = TEST_CARDS
    state = {
        "sessions": dict,
        "payments": dict,  # pspReference -> payment
        "sent": list,  # every webhook body made: {"body", "headers", "delivery", "items"}
        "_idempotent": dict,  # (API key, Idempotency-Key) -> (request digest, status, answer text)
        "_batch": lambda: None,  # the items of the open batched() block
    }

    def __init__(
        self,
        merchant_account: str = DEFAULT_MERCHANT,
        hmac_key: str = DEFAULT_HMAC_KEY,
        api_keys: tuple[str, ...] = (DEFAULT_TEST_KEY,),
        live_api_keys: tuple[str, ...] = (DEFAULT_LIVE_KEY,),
        webhook_url: str | None = None,
        notifier: Notifier | None = None,
        retry_delays=DEFAULT_RETRY_DELAYS,
        max_refusals: int = 3,
    ):
        accounts = {key: False for key in api_keys} | {key: True for key in live_api_keys}
        super().__init__(accounts=accounts, notifier=notifier, retry_delays=retry_delays)
        binascii.unhexlify(hmac_key)  # a hex key, as the Customer Area shows it
        self.merchant_account = merchant_account
        self.hmac_key = hmac_key
        #: where webhooks go, as typed in the Customer Area (CLI: PSP_SIM_ADYEN_WEBHOOK_URL)
        self.webhook_url = webhook_url or os.environ.get("PSP_SIM_ADYEN_WEBHOOK_URL") or None
        #: refused attempts after which a session is over (status "refused") ⚠ Adyen does not publish the number
        self.max_refusals = max_refusals
        #: GET /sessions/{id} answers carry ``reference`` (newer v72 answers); False: ``id`` and
        #: ``status`` only, as older API versions answer
        self.session_result_has_reference = True
        self._batch_lock = threading.Lock()

    def call_details(self) -> dict:
        return {"idempotency_key": request.headers.get("Idempotency-Key")}

    def account_lines(self) -> list[str]:
        lines = [f"merchant account: {self.merchant_account}", f"HMAC key: {self.hmac_key}",
                 f"webhooks to: {self.webhook_url or '(none: set PSP_SIM_ADYEN_WEBHOOK_URL or .webhook_url)'}"]
        return lines + [f"API key ({'live' if live else 'test'}): {key}" for key, live in self.accounts.items()]

    # ================================================================== Python-side helpers
    def item(self, event_code: str, psp_reference: str, *, merchant_reference: str = "", value: int = 0,
             currency: str = "EUR", success: bool = True, original_reference: str = "", reason: str = "",
             merchant_account: str | None = None, additional: dict | None = None, hmac_key: str | None = None) -> dict:
        """A NotificationRequestItem as Adyen writes it, signed with ``hmac_key`` (default: the current key)."""
        item = {
            "additionalData": dict(additional or {}),
            "amount": {"currency": currency, "value": value},
            "eventCode": event_code,
            "eventDate": _now(),
            "merchantAccountCode": merchant_account or self.merchant_account,
            "merchantReference": merchant_reference,
            "originalReference": original_reference,
            "pspReference": psp_reference,
            "reason": reason,
            "success": "true" if success else "false",
        }
        if not original_reference:
            del item["originalReference"]
        item["additionalData"]["hmacSignature"] = sign_item(item, hmac_key or self.hmac_key)
        return item

    def body(self, items: list[dict], live: bool = False) -> bytes:
        return json.dumps(
            {"live": "true" if live else "false", "notificationItems": [{"NotificationRequestItem": i} for i in items]}
        ).encode("utf-8")

    def send_items(self, items: list[dict], live: bool = False, url: str | None = None) -> Delivery | None:
        """Send a webhook body made of ``items`` (several: a batch) to ``url`` or ``webhook_url``."""
        body = self.body(items, live)
        headers = {"Content-Type": "application/json", "User-Agent": "Adyen HttpClient 1.0"}
        record = {"body": body, "headers": headers, "delivery": None, "items": items}
        target = url or self.webhook_url
        if target:
            record["delivery"] = self.notifier.send(target, body, headers)
        with self.lock:
            self.sent.append(record)
        return record["delivery"]

    @contextlib.contextmanager
    def batched(self):
        """Webhooks made inside the block go out as one body (in the order they were made)."""
        with self._batch_lock:
            self._batch = []
        try:
            yield
        finally:
            with self._batch_lock:
                batch, self._batch = self._batch, None
            by_mode: dict[bool, list[dict]] = {}
            for live, item in batch or []:
                by_mode.setdefault(live, []).append(item)
            for live, items in by_mode.items():
                self.send_items(items, live)

    def report(self, event_code: str, payment_psp: str, *, value: int | None = None, success: bool = True,
               reason: str = "", additional: dict | None = None) -> dict:
        """Send a webhook Adyen sends on its own about a payment, not in answer to an API call:
        ``EXPIRE`` (the authorisation lapsed), ``CHARGEBACK`` (a dispute was lost; Adyen gives the
        dispute its own pspReference and the payment's as ``originalReference``), ``CAPTURE_FAILED``
        / ``REFUND_FAILED`` (the scheme rejected a modification accepted earlier: pass the
        modification's pspReference), ``CANCEL_OR_REFUND``… Returns the item sent."""
        with self.lock:
            payment = self.payments.get(payment_psp)
            modification = None
            if payment is None:  # a modification's reference: find its payment
                for candidate in self.payments.values():
                    for mod in candidate["modifications"]:
                        if mod["pspReference"] == payment_psp:
                            payment, modification = candidate, mod
            if payment is None:
                raise KeyError(f"no payment or modification {payment_psp}")
            own = modification["pspReference"] if modification else _psp()
            if value is None:
                value = modification["value"] if modification else payment["amount"]["value"]
            if event_code == "CHARGEBACK":
                payment["refunded"] = payment["captured"]
            elif event_code == "EXPIRE":
                payment["cancelled"] = True
            item = self.item(event_code, own, merchant_reference=payment["reference"], value=value,
                             currency=payment["amount"]["currency"], success=success,
                             original_reference=payment["pspReference"], reason=reason, additional=additional)
            live = payment["live"]
        self._emit(live, item)
        return item

    def _emit(self, live: bool, item: dict) -> None:
        """Send one item (or keep it for the current batch). Never called under self.lock."""
        with self._batch_lock:
            if self._batch is not None:
                self._batch.append((live, item))
                return
        self.send_items([item], live)

    # ================================================================== API
    def _authenticate(self) -> bool:
        key = request.headers.get("X-API-Key", "")
        if key not in self.accounts:
            raise ApiError(401, "000", "HTTP Status Response - Unauthorized", "security")
        return self.accounts[key]

    def _merchant_check(self, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "702", "Structure of the request is invalid")
        if body.get("merchantAccount") != self.merchant_account:
            raise ApiError(403, "901", "Invalid Merchant Account", "security")
        return body

    @staticmethod
    def _amount(body: dict, required: bool = True) -> dict | None:
        amount = body.get("amount")
        if amount is None and not required:
            return None
        if not isinstance(amount, dict) or not _is_int(amount.get("value")) or not isinstance(amount.get("currency"), str):
            raise ApiError(422, "100", "Required field 'amount' is not provided or invalid.")
        if amount["value"] < 0:
            raise ApiError(422, "137", "Invalid amount specified")
        return {"value": amount["value"], "currency": amount["currency"]}

    def _create_session(self, live: bool, body: dict) -> dict:
        amount = self._amount(body)
        for name in ("reference", "returnUrl"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiError(422, "130", f"Required field '{name}' is not provided.")
        if len(body["reference"]) > 80:
            raise ApiError(422, "130", "Field 'reference' is too long (max 80)")
        _check_buyer_data(body)
        session_id = "CS" + secrets.token_hex(8).upper()
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
        manual = str((body.get("additionalData") or {}).get("manualCapture", "")).lower() == "true"
        challenge_indicator = (body.get("threeDS2RequestData") or {}).get("threeDSRequestorChallengeInd")
        always_3ds = ((body.get("authenticationData") or {}).get("attemptAuthentication") == "always"
                      or challenge_indicator in ("03", "04"))
        session = {
            "id": session_id,
            "live": live,
            "request": body,
            "status": "active",
            "result": None,
            "manual": manual,
            "always_3ds": always_3ds,
            "awaiting_3ds": False,
            "payments": [],
            "refusals": 0,
        }
        answer = {
            "amount": amount,
            "expiresAt": expires.isoformat(),
            "id": session_id,
            "merchantAccount": body["merchantAccount"],
            "mode": body.get("mode") or "embedded",
            "reference": body["reference"],
            "returnUrl": body["returnUrl"],
            "shopperLocale": body.get("shopperLocale") or "en-US",
            "sessionData": base64.b64encode(secrets.token_bytes(48)).decode("ascii"),
        }
        if body.get("themeId"):
            answer["themeId"] = body["themeId"]
        if answer["mode"] == "hosted":
            answer["url"] = f"{self.base_url()}/checkoutshopper/sessions/{session_id}"
        with self.lock:
            self.sessions[session_id] = session
        return answer

    def _payment_for(self, live: bool, psp: str) -> dict:
        payment = self.payments.get(psp)
        if payment is None or payment["live"] != live:
            raise ApiError(422, "167", "Original pspReference required for this operation")
        return payment

    def _modification(self, live: bool, psp: str, kind: str, body: dict) -> tuple[dict, dict]:
        """Validate and record a modification request; returns (answer, webhook item)."""
        with self.lock:
            payment = self._payment_for(live, psp)
            amount = self._amount(body, required=kind != "cancels")
            if amount is not None and amount["currency"] != payment["amount"]["currency"]:
                raise ApiError(422, "138", "Currency must match the original payment")
            mod_psp = _psp()
            reference = body.get("reference") or payment["reference"]
            value = amount["value"] if amount else payment["amount"]["value"]
            success, reason = True, ""
            if kind == "captures":
                code = "CAPTURE"
                if not payment["authorised"] or not payment["manual"] or payment["captured"] or payment["cancelled"]:
                    success, reason = False, "Payment cannot be captured"
                elif value > payment["amount"]["value"] or value <= 0:
                    success, reason = False, "Capture amount exceeds the authorised amount"
                else:
                    payment["captured"] = value
            elif kind == "refunds":
                code = "REFUND"
                refundable = payment["captured"] - payment["refunded"]
                if value <= 0 or value > refundable:
                    success, reason = False, "Refund amount exceeds the captured amount"
                else:
                    payment["refunded"] += value
            else:
                code = "CANCELLATION"
                if not payment["authorised"] or payment["captured"] or payment["cancelled"]:
                    success, reason = False, "Payment cannot be cancelled"
                else:
                    payment["cancelled"] = True
            payment["modifications"].append({"kind": kind, "pspReference": mod_psp, "value": value, "success": success})
            answer = {
                "merchantAccount": self.merchant_account,
                "paymentPspReference": psp,
                "pspReference": mod_psp,
                "reference": reference,
                "status": "received",
            }
            if amount is not None:
                answer["amount"] = amount
            item = self.item(
                code, mod_psp, merchant_reference=reference, value=value, currency=payment["amount"]["currency"],
                success=success, original_reference=psp, reason=reason,
            )
        return answer, item

    # ================================================================== buyer
    def _authorise(self, session_id: str, number: str, challenge_passed: bool | None) -> tuple[str, dict | None]:
        """The buyer submitted a card (and maybe a 3-D Secure answer). Returns (session status, item)."""
        with self.lock:
            session = self.sessions[session_id]
            body = session["request"]
            psp = _psp()
            authorised = number == CARD_SUCCESS or (number == CARD_3DS and challenge_passed is not False)
            if challenge_passed is False:
                authorised = False
            payment = {
                "pspReference": psp,
                "session": session_id,
                "reference": body["reference"],
                "amount": dict(body["amount"]),
                "live": session["live"],
                "manual": session["manual"],
                "authorised": authorised,
                "captured": 0 if session["manual"] or not authorised else body["amount"]["value"],
                "refunded": 0,
                "cancelled": False,
                "three_ds": challenge_passed is not None,
                "modifications": [],
            }
            self.payments[psp] = payment
            session["payments"].append(psp)
            if authorised:
                session["status"] = "completed"
            else:
                session["refusals"] += 1
                if session["refusals"] >= self.max_refusals:
                    session["status"] = "refused"
            additional = {"cardSummary": number[-4:], "paymentMethod": "visa"}
            if authorised:
                additional["authCode"] = "".join(secrets.choice("0123456789") for _ in range(6))
            item = self.item(
                "AUTHORISATION", psp, merchant_reference=body["reference"], value=body["amount"]["value"],
                currency=body["amount"]["currency"], success=authorised,
                reason="" if authorised else ("3D Not Authenticated" if challenge_passed is False else "Refused"),
                additional=additional,
            )
            return session["status"], item

    def _finish(self, session: dict) -> str:
        session["result"] = session["result"] or base64.urlsafe_b64encode(secrets.token_bytes(24)).decode("ascii")
        return _with_query(session["request"]["returnUrl"], sessionId=session["id"], sessionResult=session["result"])


    # ================================================================== pages
    def _after_attempt(self, session: dict, status: str, item: dict) -> Response:
        """Send the attempt's webhook; back to the shop when the session is over, else the page
        again with the refusal, to try another card."""
        self._emit(session["live"], item)
        if status == "active":
            left = self.max_refusals - session["refusals"]
            return self._session_page("Payment", session, form=True,
                                      error=f"The payment was refused ({item['reason']}). Try another card ({left} attempt(s) left).")
        with self.lock:
            target = self._finish(session)
        return redirect(target, code=303)


    def _session_page(self, title: str, session: dict, status: int = 200, **context) -> Response:
        value = session["request"]["amount"]
        whole, cents = divmod(value["value"], 100)
        amount = (f"{value['value']} {value['currency']}" if value["currency"] in _ZERO_DECIMAL
                  else f"{whole}.{cents:02d} {value['currency']}")
        return self.page(title, status=status,
                         merchant=f"{self.merchant_account} · {session['request']['reference']}", amount=amount,
                         detail=None if session["live"] else "test mode", secret="password", code=THREE_DS_PASSWORD,
                         **context)


# ====================================================================== HTTP: API
def _json_body():
    data = request.get_json(force=True, silent=True)
    if data is None:
        raise ApiError(400, "702", "Structure of the request is invalid")
    return data


def _idempotent(handler) -> Response:
    """Answer ``handler()`` -> (body, status, (live, webhook item) or None); the same Idempotency-Key from the
    same API key gets the first answer again (a different request with it: 422)."""
    sim = current_simulator()
    key = request.headers.get("Idempotency-Key")
    slot = (request.headers.get("X-API-Key", ""), key) if key else None
    digest = hashlib.sha256(request.get_data()).hexdigest()
    if slot:
        with sim.lock:
            earlier = sim._idempotent.get(slot)
        if earlier is not None:
            if earlier[0] != digest:
                raise ApiError(422, "704", "request already processed or in progress")
            return Response(earlier[2], status=earlier[1], mimetype="application/json",
                            headers={"Idempotent-Replayed": "true"})
    body, status, item = handler()
    text = json.dumps(body)
    if slot:
        with sim.lock:
            sim._idempotent[slot] = (digest, status, text)
    if item is not None:
        sim._emit(item[0], item[1])
    return Response(text, status=status, mimetype="application/json")


@blueprint.post(f"/{API_VERSION}/sessions")
def create_session():
    sim = current_simulator()
    live = sim._authenticate()
    body = sim._merchant_check(_json_body())
    return _idempotent(lambda: (sim._create_session(live, body), 201, None))


@blueprint.get(f"/{API_VERSION}/sessions/<session_id>")
def session_result(session_id):
    sim = current_simulator()
    live = sim._authenticate()
    with sim.lock:
        session = sim.sessions.get(session_id)
        if session is None or session["live"] != live:
            raise ApiError(422, "000", "Session not found")
        if not session["result"] or request.args.get("sessionResult") != session["result"]:
            raise ApiError(422, "14_030", "sessionResult is invalid")
        answer = {"id": session_id, "status": session["status"]}
        if sim.session_result_has_reference:
            answer["reference"] = session["request"]["reference"]
        return jsonify(answer)


@blueprint.post(f"/{API_VERSION}/paymentMethods")
def payment_methods():
    sim = current_simulator()
    sim._authenticate()
    sim._merchant_check(_json_body())
    return jsonify({"paymentMethods": [{"brands": ["visa", "mc", "amex"], "name": "Cards", "type": "scheme"}]})


@blueprint.post(f"/{API_VERSION}/payments/<psp>/<kind>")
def modification(psp, kind):
    if kind not in ("captures", "refunds", "cancels"):
        raise ApiError(404, "000", "Not found")
    sim = current_simulator()
    live = sim._authenticate()
    body = sim._merchant_check(_json_body())

    def run():
        answer, item = sim._modification(live, psp, kind, body)
        return answer, 201, (live, item)

    return _idempotent(run)


# ====================================================================== HTTP: hosted page
def _session_over(sim, session):
    return sim._session_page("Payment", session, message=f"This session is {session['status']}.",
                             back=sim._finish(session), status=409)


#: the pages of an active session
_open_session = HostedPages(blueprint, "sessions", status="active", conflict=_session_over, missing=lambda sim: sim.page(
    "Unknown session", message="This payment session does not exist.", status=404))


@_open_session.get("/checkoutshopper/sessions/<session_id>")
def hosted_page(sim, session):
    return sim._session_page("Payment", session, form=True)


@_open_session.post("/checkoutshopper/sessions/<session_id>")
def hosted_submit(sim, session):
    if request.form.get("action", "pay") == "cancel":
        with sim.lock:
            session["status"] = "canceled"
            target = sim._finish(session)
        return redirect(target, code=303)
    number = "".join(request.form.get("card_number", "").split())
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return sim._session_page("Payment", session, form=True, error="Enter a card number.", status=400)
    if number == CARD_3DS or (number == CARD_SUCCESS and session["always_3ds"]):
        with sim.lock:
            session["awaiting_3ds"] = number
        return redirect(f"{sim.base_url()}/checkoutshopper/sessions/{session['id']}/3ds", code=303)
    return sim._after_attempt(session, *sim._authorise(session["id"], number, None))


@_open_session.get("/checkoutshopper/sessions/<session_id>/3ds")
def challenge_page(sim, session):
    if not session["awaiting_3ds"]:
        return redirect(f"{sim.base_url()}/checkoutshopper/sessions/{session['id']}", code=303)
    return sim._session_page("3-D Secure", session, challenge=True)


@_open_session.post("/checkoutshopper/sessions/<session_id>/3ds")
def challenge_submit(sim, session):
    with sim.lock:
        number, session["awaiting_3ds"] = session["awaiting_3ds"], False
    if not number:
        return redirect(f"{sim.base_url()}/checkoutshopper/sessions/{session['id']}", code=303)
    passed = request.form.get("code", "").strip() == THREE_DS_PASSWORD
    return sim._after_attempt(session, *sim._authorise(session["id"], number, passed))


#: CheckoutService-v72: Address' required fields; DeliveryAddress adds firstName and lastName
_ADDRESS_REQUIRED = ("city", "country", "houseNumberOrName", "postalCode", "street")
_ADDRESS_FIELDS = {*_ADDRESS_REQUIRED, "stateOrProvince"}
_PHONE = re.compile(r"\+[0-9]{1,3}[0-9]{4,15}")


def _check_buyer_data(body: dict) -> None:
    """The buyer's data keeps the Checkout API's shapes, as Adyen checks them (422, code 130)."""
    for name, extra in (("billingAddress", set()), ("deliveryAddress", {"firstName", "lastName"})):
        address = body.get(name)
        if address is None:
            continue
        if not isinstance(address, dict):
            raise ApiError(422, "130", f"Field '{name}' is not an object")
        unknown = set(address) - _ADDRESS_FIELDS - extra
        if unknown:
            raise ApiError(422, "130", f"Unknown field(s) in '{name}': {', '.join(sorted(unknown))}")
        for part in _ADDRESS_REQUIRED:
            if not isinstance(address.get(part), str) or (part != "houseNumberOrName" and not address[part]):
                raise ApiError(422, "130", f"Required field '{name}.{part}' is not provided.")
        if not re.fullmatch(r"[A-Z]{2}", address["country"]):
            raise ApiError(422, "130", f"Field '{name}.country' must be an ISO 3166-1 alpha-2 code")
    name = body.get("shopperName")
    if name is not None and (not isinstance(name, dict) or set(name) != {"firstName", "lastName"}):
        raise ApiError(422, "130", "Field 'shopperName' takes firstName and lastName")
    phone = body.get("telephoneNumber")
    if phone is not None and not (isinstance(phone, str) and _PHONE.fullmatch(phone)):
        raise ApiError(422, "130", "Field 'telephoneNumber' must be '+', a country code and the number")

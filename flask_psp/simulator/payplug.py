"""PayPlug API v1 and hosted payment page, simulated from PayPlug's side.

API (JSON, ``Authorization: Bearer sk_test_…|sk_live_…``, ``PayPlug-Version`` recorded):

* ``POST /v1/payments`` · ``GET /v1/payments/<id>`` · ``PATCH /v1/payments/<id>`` (``captured`` / ``aborted``)
* ``POST|GET /v1/payments/<id>/refunds`` · ``GET /v1/payments/<id>/refunds/<refund_id>``

Hosted page: ``GET|POST /pay/<id>`` and the 3-D Secure challenge ``GET|POST /pay/<id>/3ds``.
Notifications: the resource itself (payment or refund), POSTed unsigned as JSON to ``notification_url``.
Amounts are integers in cents throughout.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request
from werkzeug.exceptions import HTTPException

from . import base
from .base import HostedPages, ProviderSimulator, current_simulator
from .notifier import DEFAULT_RETRY_DELAYS, Delivery, Notifier

__all__ = ["PayPlugSimulator", "SimulatorConflict", "TEST_CARDS", "THREE_DS_CODE"]

DEFAULT_ACCOUNTS = {"sk_test_simulator": "demo", "sk_live_simulator": "demo"}

CARD_SUCCESS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_3DS = "4000000000003220"
THREE_DS_CODE = "1234"

TEST_CARDS = (
    (CARD_SUCCESS, "success (3-D Secure too when the payment asks for it)"),
    (CARD_DECLINED, "declined"),
    (CARD_3DS, f"3-D Secure challenge: code {THREE_DS_CODE} succeeds, anything else fails"),
    ("any other number", "declined"),
)

MIN_AMOUNT = 99
MAX_AMOUNT = 2_000_000
CURRENCIES = ("EUR",)
AUTHORIZATION_LIFETIME = 7 * 24 * 3600
REFUNDABLE_FOR = 13 * 30 * 24 * 3600  # ⚠ a window of about 13 months; no public figure

FAILURES = {
    "card_declined": "The card was declined.",
    "3ds_declined": "The 3-D Secure authentication failed.",
    "aborted_buyer": "The buyer cancelled.",
    "aborted_api": "The payment was aborted.",
}

_ID_ALPHABET = string.ascii_letters + string.digits


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def format_euros(cents: int) -> str:
    """12345 -> '123.45 EUR' with integer arithmetic only."""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}{cents // 100:,}.{cents % 100:02d} EUR"


def _brand(number: str) -> str | None:
    if number.startswith("4"):
        return "Visa"
    if number[:2] in ("51", "52", "53", "54", "55") or "2221" <= number[:4] <= "2720":
        return "Mastercard"
    if number[:2] in ("34", "37"):
        return "American Express"
    return None


class SimulatorConflict(Exception):
    """The payment already has an outcome (or is in no state for the requested step)."""


class ApiError(base.ApiError):
    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    def body(self) -> dict:
        body = {"message": self.message, "object": "error"}
        if self.details:
            body["details"] = self.details
        return body


blueprint = Blueprint("payplug", __name__)


class PayPlugSimulator(ProviderSimulator):
    """PayPlug's API and hosted page. ``accounts`` maps secret keys to merchant names."""

    name, brand = "payplug", "PayPlug"
    blueprint = blueprint
    default_accounts = DEFAULT_ACCOUNTS
    api_paths = ("/v1/",)
    test_cards = TEST_CARDS
    state = {
        "payments": dict,  # id -> payment object (the live data)
        "refunds": dict,  # payment id -> refund objects, in creation order
        "owners": dict,  # payment id -> (merchant, is_live)
        "created_with": dict,  # payment id -> the creation request body, as received
        "_awaiting_3ds": dict,  # payment id -> card details waiting for the challenge
        "_force_3ds": dict,
    }

    def __init__(self, accounts: dict | None = None, notifier: Notifier | None = None,
                 retry_delays=DEFAULT_RETRY_DELAYS, clock=None):
        super().__init__(accounts, notifier, retry_delays)
        self.clock = clock or (lambda: int(time.time()))  # unix seconds; replaceable by tests

    def check_account(self, key: str, account: Any) -> None:
        if not key.startswith(("sk_test_", "sk_live_")):
            raise ValueError(f"a PayPlug secret key starts with sk_test_ or sk_live_: {key[:8]}…")

    def call_details(self) -> dict:
        return {"payplug_version": request.headers.get("PayPlug-Version"),
                "body": request.get_json(force=True, silent=True) if request.content_length else None}

    def account_lines(self) -> list[str]:
        return ["secret keys: " + ", ".join(sorted(self.accounts))]

    # ================================================================== Python-side helpers
    def pay(self, payment_id: str, card: str = CARD_SUCCESS, *, expiry: str = "12/34", action: str = "pay",
            code: str | None = None) -> str:
        """Do what the hosted page does when the buyer submits it, without HTTP. Returns the outcome:
        ``paid``, ``authorized``, ``card_declined``, ``3ds_declined``, ``aborted`` — or ``3ds_required`` when
        the card needs the challenge and no ``code`` was given (then call :meth:`submit_3ds`).
        Raises KeyError for an unknown payment, SimulatorConflict when it already has an outcome."""
        outcome, notification = self._submit_card(payment_id, card, expiry, action)
        self._send(notification)
        if outcome == "3ds_required" and code is not None:
            return self.submit_3ds(payment_id, code)
        return outcome

    def submit_3ds(self, payment_id: str, code: str) -> str:
        """Answer the 3-D Secure challenge (``1234`` succeeds). Returns the outcome as :meth:`pay` does."""
        outcome, notification = self._answer_3ds(payment_id, code)
        self._send(notification)
        return outcome

    def notify(self, payment_id: str) -> Delivery | None:
        """Send the payment's current object again to its ``notification_url`` (None when it has none)."""
        with self.lock:
            payment = self.payments[payment_id]
            notification = self._notification_for(payment, payment)
        return self._send(notification)

    # ================================================================== state changes (under self.lock)
    def _now(self) -> int:
        return int(self.clock())

    def _outcome(self, payment: dict) -> str | None:
        if payment["failure"]:
            return payment["failure"]["code"]
        if payment["is_paid"]:
            return "paid"
        if payment["authorization"]:
            return "authorized"
        return None

    def _create_payment(self, merchant: str, is_live: bool, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        details: dict[str, str] = {}
        deferred = "authorized_amount" in body and body.get("authorized_amount") is not None
        if deferred and body.get("amount") is not None:
            details["amount"] = "Give either amount or authorized_amount, not both."
        field_name = "authorized_amount" if deferred else "amount"
        amount = body.get(field_name)
        if amount is None:
            details.setdefault("amount", "This field is required.")
        elif not _is_int(amount):
            details[field_name] = "An integer number of cents is expected."
        elif not MIN_AMOUNT <= amount <= MAX_AMOUNT:
            details[field_name] = f"The amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} cents."
        currency = body.get("currency")
        if currency not in CURRENCIES:
            details["currency"] = "Only EUR is accepted." if currency is not None else "This field is required."
        hosted = body.get("hosted_payment")
        if not isinstance(hosted, dict) or not isinstance(hosted.get("return_url"), str) or not hosted["return_url"]:
            details["hosted_payment"] = "hosted_payment.return_url is required."
        elif hosted.get("cancel_url") is not None and not isinstance(hosted["cancel_url"], str):
            details["hosted_payment"] = "hosted_payment.cancel_url must be a string."
        for name in ("billing", "shipping", "metadata"):
            if body.get(name) is not None and not isinstance(body[name], dict):
                details[name] = "An object is expected."
        for name in ("billing", "shipping"):
            if isinstance(body.get(name), dict):
                problem = _buyer_problem(name, body[name])
                if problem:
                    details[name] = problem
        notification_url = body.get("notification_url")
        if notification_url is not None and not isinstance(notification_url, str):
            details["notification_url"] = "A URL is expected."
        for name in ("force_3ds", "save_card"):
            if body.get(name) is not None and not isinstance(body[name], bool):
                details[name] = "A boolean is expected."
        if details:
            raise ApiError(400, "The parameters are invalid: " + "; ".join(
                f"{k}: {v}" for k, v in sorted(details.items())), details)

        payment_id = _new_id("pay_")
        payment = {
            "id": payment_id,
            "object": "payment",
            "is_live": is_live,
            "amount": amount,
            "amount_refunded": 0,
            "authorized_amount": amount if deferred else 0,
            "currency": currency,
            "created_at": self._now(),
            "is_paid": False,
            "paid_at": None,
            "is_refunded": False,
            "is_3ds": None,
            "save_card": bool(body.get("save_card") or False),
            "card": {"last4": None, "country": None, "exp_month": None, "exp_year": None, "brand": None},
            "billing": body.get("billing"),
            "shipping": body.get("shipping"),
            "hosted_payment": {
                "payment_url": f"{self.base_url()}/pay/{payment_id}",
                "return_url": hosted["return_url"],
                "cancel_url": hosted.get("cancel_url"),
                "paid_at": None,
                "sent_by": None,
            },
            "notification": {"url": notification_url, "response_code": None},
            "failure": None,
            "metadata": body.get("metadata") or {},
            "authorization": None,
            "refundable_after": None,
            "refundable_until": None,
            "installment_plan_id": None,
        }
        with self.lock:
            self.payments[payment_id] = payment
            self.refunds[payment_id] = []
            self.owners[payment_id] = (merchant, is_live)
            self._force_3ds[payment_id] = bool(body.get("force_3ds"))
            self.created_with[payment_id] = body
        return payment

    def _fill_card(self, payment: dict, number: str, exp_month: int, exp_year: int) -> None:
        payment["card"] = {
            "last4": number[-4:] if len(number) >= 4 else number,
            "country": "FR",
            "exp_month": exp_month,
            "exp_year": exp_year,
            "brand": _brand(number),
        }

    def _succeed(self, payment: dict, is_3ds: bool) -> str:
        now = self._now()
        payment["is_3ds"] = is_3ds
        payment["hosted_payment"]["paid_at"] = now
        if payment["authorized_amount"]:
            payment["authorization"] = {
                "authorized_amount": payment["authorized_amount"],
                "authorized_at": now,
                "expires_at": now + AUTHORIZATION_LIFETIME,
            }
            return "authorized"
        self._mark_paid(payment, now)
        return "paid"

    def _mark_paid(self, payment: dict, now: int) -> None:
        payment["is_paid"] = True
        payment["paid_at"] = now
        payment["refundable_after"] = now
        payment["refundable_until"] = now + REFUNDABLE_FOR

    def _fail(self, payment: dict, code: str, message_key: str | None = None) -> str:
        payment["failure"] = {"code": code, "message": FAILURES[message_key or code]}
        return code

    @staticmethod
    def _parse_expiry(expiry: str) -> tuple[int, int]:
        text = (expiry or "").replace(" ", "")
        month, sep, year = text.partition("/")
        if not sep or not (month.isdigit() and year.isdigit()) or len(month) not in (1, 2) or len(year) not in (2, 4):
            raise ValueError("The expiry date must read MM/YY.")
        month_number = int(month)
        if not 1 <= month_number <= 12:
            raise ValueError("The expiry month must be between 01 and 12.")
        year_number = int(year) + (2000 if len(year) == 2 else 0)
        return month_number, year_number

    def _submit_card(self, payment_id: str, card: str, expiry: str, action: str) -> tuple[str, Any]:
        """The buyer submitted the hosted page. Returns (outcome, notification to send or None)."""
        with self.lock:
            payment = self.payments[payment_id]
            if self._outcome(payment):
                raise SimulatorConflict(f"payment {payment_id} already has an outcome: {self._outcome(payment)}")
            if action == "cancel":
                self._awaiting_3ds.pop(payment_id, None)
                outcome = self._fail(payment, "aborted", "aborted_buyer")
                return outcome, self._notification_for(payment, payment)
            if action != "pay":
                raise ValueError(f"unknown action {action!r}")
            number = "".join((card or "").split())
            if not number.isdigit() or not 12 <= len(number) <= 19:
                raise ValueError("The card number must be 12 to 19 digits.")
            exp_month, exp_year = self._parse_expiry(expiry)
            self._fill_card(payment, number, exp_month, exp_year)
            if number == CARD_3DS or (number == CARD_SUCCESS and self._force_3ds.get(payment_id)):
                self._awaiting_3ds[payment_id] = {"number": number}
                return "3ds_required", None
            self._awaiting_3ds.pop(payment_id, None)
            if number == CARD_SUCCESS:
                outcome = self._succeed(payment, is_3ds=False)
            else:
                payment["is_3ds"] = False
                outcome = self._fail(payment, "card_declined")
            return outcome, self._notification_for(payment, payment)

    def _answer_3ds(self, payment_id: str, code: str) -> tuple[str, Any]:
        with self.lock:
            payment = self.payments[payment_id]
            if self._outcome(payment):
                raise SimulatorConflict(f"payment {payment_id} already has an outcome: {self._outcome(payment)}")
            if payment_id not in self._awaiting_3ds:
                raise SimulatorConflict(f"payment {payment_id} is not waiting for a 3-D Secure answer")
            del self._awaiting_3ds[payment_id]
            if (code or "").strip() == THREE_DS_CODE:
                outcome = self._succeed(payment, is_3ds=True)
            else:
                payment["is_3ds"] = True
                outcome = self._fail(payment, "3ds_declined")
            return outcome, self._notification_for(payment, payment)

    def _capture(self, payment: dict) -> None:
        if payment["is_paid"]:
            raise ApiError(400, "This payment is already captured.")
        if payment["failure"]:
            raise ApiError(400, f"This payment failed ({payment['failure']['code']}) and cannot be captured.")
        authorization = payment["authorization"]
        if not authorization:
            raise ApiError(400, "This payment is not authorized: there is nothing to capture.")
        now = self._now()
        if now > authorization["expires_at"]:
            raise ApiError(400, "The authorization of this payment has expired.")
        self._mark_paid(payment, now)

    def _abort(self, payment: dict) -> None:
        if payment["is_paid"]:
            raise ApiError(400, "This payment is paid and cannot be aborted; refund it instead.")
        if payment["failure"]:
            raise ApiError(400, f"This payment already failed ({payment['failure']['code']}).")
        self._awaiting_3ds.pop(payment["id"], None)
        self._fail(payment, "aborted", "aborted_api")

    def _update(self, payment: dict, body: Any) -> dict:
        """PATCH: capture or abort the payment; returns it."""
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        captured = body.get("captured") is True
        aborted = body.get("aborted") is True
        if captured and aborted:
            raise ApiError(400, "Send either captured or aborted, not both.")
        if captured:
            self._capture(payment)
        elif aborted:
            self._abort(payment)
        else:
            raise ApiError(400, "Nothing to update: send {\"captured\": true} or {\"aborted\": true}.")
        return payment

    def _refund(self, payment: dict, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        if not payment["is_paid"]:
            raise ApiError(400, "This payment is not paid: there is nothing to refund.")
        remaining = payment["amount"] - payment["amount_refunded"]
        amount = body.get("amount")
        if amount is None:
            amount = remaining
        if not _is_int(amount):
            raise ApiError(400, "The amount must be an integer number of cents.", {"amount": "integer expected"})
        if amount < 1:
            raise ApiError(400, "The refund amount must be at least 1 cent.", {"amount": "too small"})
        if amount > remaining:
            raise ApiError(400, f"The refund amount exceeds what remains refundable ({remaining} cents).",
                           {"amount": "too large"})
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise ApiError(400, "metadata must be an object.", {"metadata": "object expected"})
        refund = {
            "id": _new_id("re_"),
            "object": "refund",
            "amount": amount,
            "currency": payment["currency"],
            "created_at": self._now(),
            "is_live": payment["is_live"],
            "metadata": metadata or {},
            "payment_id": payment["id"],
        }
        self.refunds[payment["id"]].append(refund)
        payment["amount_refunded"] += amount
        payment["is_refunded"] = payment["amount_refunded"] >= payment["amount"]
        return refund

    # ================================================================== notifications
    def _notification_for(self, payment: dict, resource: dict):
        """Snapshot ``resource`` for a notification of ``payment`` (call under the lock; send with _send)."""
        url = payment["notification"]["url"]
        if not url:
            return None
        return payment["id"], url, json.dumps(resource, separators=(",", ":")).encode("utf-8")

    def _send(self, notification) -> Delivery | None:
        """Queue a snapshot taken by _notification_for. Never called under self.lock (the notifier's own
        lock is taken inside; waiting predicates may read the simulator's data)."""
        if notification is None:
            return None
        payment_id, url, body = notification

        def record(delivery, status, error):
            with self.lock:
                payment = self.payments.get(payment_id)
                if payment is not None:
                    payment["notification"]["response_code"] = status

        return self.notifier.send(
            url, body, {"Content-Type": "application/json", "User-Agent": "PayPlug-Simulator/1"}, on_attempt=record
        )

    # ================================================================== HTTP: API
    def _authenticate(self) -> tuple[str, bool]:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(401, "Missing or malformed Authorization header: send 'Bearer <secret key>'.")
        merchant = self.accounts.get(key)
        if merchant is None:
            raise ApiError(401, "Invalid secret key.")
        return merchant, key.startswith("sk_live_")

    def _owned_payment(self, payment_id: str) -> dict:
        merchant, is_live = self._authenticate()
        if self.owners.get(payment_id) != (merchant, is_live):
            raise ApiError(404, "The resource you requested could not be found.")
        return self.payments[payment_id]

    @staticmethod
    def _json_body() -> Any:
        data = request.get_json(force=True, silent=True)
        if data is None:
            raise ApiError(400, "The request body must be valid JSON.")
        return data

    # ================================================================== pages
    @staticmethod
    def _exit_url(payment: dict, outcome: str) -> str:
        hosted = payment["hosted_payment"]
        if outcome == "aborted" and hosted.get("cancel_url"):
            return hosted["cancel_url"]
        return hosted["return_url"]

    def _payment_page(self, title: str, payment: dict, status: int = 200, **context):
        merchant = self.owners.get(payment["id"], ("", False))[0]
        detail = payment["id"] + ("" if payment["is_live"] else " · test mode")
        return self.page(title, status=status, merchant=merchant, amount=format_euros(payment["amount"]),
                         detail=detail, **context)

    def _form_page(self, payment: dict, error: str | None = None, status: int = 200):
        return self._payment_page("Payment", payment, form=True, error=error, status=status)

    def _outcome_page(self, payment: dict, status: int = 200):
        outcome = self._outcome(payment)
        if outcome == "paid":
            message = "This payment is paid."
        elif outcome == "authorized":
            message = "This payment is authorized."
        else:
            message = f"This payment failed: {payment['failure']['message']}"
        return self._payment_page("Payment", payment, message=message, failed=outcome not in ("paid", "authorized"),
                                  back=self._exit_url(payment, outcome), status=status)


# ====================================================================== HTTP: API
@blueprint.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    if request.path.startswith("/v1/"):
        return jsonify({"message": error.description, "object": "error"}), error.code
    return error


@blueprint.post("/v1/payments")
def create_payment():
    sim = current_simulator()
    merchant, is_live = sim._authenticate()
    payment = sim._create_payment(merchant, is_live, sim._json_body())
    with sim.lock:
        return jsonify(payment), 201


@blueprint.get("/v1/payments/<payment_id>")
def get_payment(payment_id):
    sim = current_simulator()
    with sim.lock:
        return jsonify(sim._owned_payment(payment_id))


def _change_payment(payment_id: str, change) -> Response:
    """Apply ``change(payment, body) -> resource`` to an owned payment under the lock; the resource is
    the answer and the notification, which goes out once the lock is released."""
    sim = current_simulator()
    body = sim._json_body()
    with sim.lock:
        payment = sim._owned_payment(payment_id)
        resource = change(payment, body)
        notification = sim._notification_for(payment, resource)
        answer = jsonify(resource)
    sim._send(notification)
    return answer


@blueprint.patch("/v1/payments/<payment_id>")
def patch_payment(payment_id):
    return _change_payment(payment_id, current_simulator()._update)


@blueprint.post("/v1/payments/<payment_id>/refunds")
def create_refund(payment_id):
    return _change_payment(payment_id, current_simulator()._refund), 201


@blueprint.get("/v1/payments/<payment_id>/refunds")
def list_refunds(payment_id):
    sim = current_simulator()
    with sim.lock:
        sim._owned_payment(payment_id)
        return jsonify({"object": "list", "data": list(sim.refunds[payment_id])})


@blueprint.get("/v1/payments/<payment_id>/refunds/<refund_id>")
def get_refund(payment_id, refund_id):
    sim = current_simulator()
    with sim.lock:
        sim._owned_payment(payment_id)
        for refund in sim.refunds[payment_id]:
            if refund["id"] == refund_id:
                return jsonify(refund)
    raise ApiError(404, "The resource you requested could not be found.")


# ====================================================================== HTTP: hosted page
_known_payment = HostedPages(blueprint, "payments", missing=lambda sim: sim.page(
    "Unknown payment", message="This payment does not exist.", status=404))


@_known_payment.get("/pay/<payment_id>")
def hosted_page(sim, payment):
    with sim.lock:
        return sim._outcome_page(payment) if sim._outcome(payment) else sim._form_page(payment)


@_known_payment.post("/pay/<payment_id>")
def hosted_submit(sim, payment):
    with sim.lock:
        if sim._outcome(payment):
            return sim._outcome_page(payment, status=409)
    try:
        outcome, notification = sim._submit_card(payment["id"], request.form.get("card_number", ""),
                                                  request.form.get("expiry", ""), request.form.get("action", "pay"))
    except SimulatorConflict:
        with sim.lock:
            return sim._outcome_page(payment, status=409)
    except ValueError as exc:
        with sim.lock:
            return sim._form_page(payment, error=str(exc), status=400)
    sim._send(notification)
    if outcome == "3ds_required":
        return redirect(f"{sim.base_url()}/pay/{payment['id']}/3ds", code=303)
    return redirect(sim._exit_url(payment, outcome), code=303)


@_known_payment.get("/pay/<payment_id>/3ds")
def three_ds_page(sim, payment):
    with sim.lock:
        if sim._outcome(payment):
            return sim._outcome_page(payment)
        if payment["id"] not in sim._awaiting_3ds:
            return redirect(f"{sim.base_url()}/pay/{payment['id']}", code=303)
        return sim._payment_page("3-D Secure", payment, challenge=True, code=THREE_DS_CODE)


@_known_payment.post("/pay/<payment_id>/3ds")
def three_ds_submit(sim, payment):
    try:
        outcome, notification = sim._answer_3ds(payment["id"], request.form.get("code", ""))
    except SimulatorConflict:
        with sim.lock:
            if sim._outcome(payment):
                return sim._outcome_page(payment, status=409)
            return sim._payment_page("3-D Secure", payment, status=409,
                                     message="No 3-D Secure challenge is waiting for this payment.")
    sim._send(notification)
    return redirect(sim._exit_url(payment, outcome), code=303)


#: billing/shipping keys (PayPlug's README example, its WooCommerce module's PayplugAddressData)
_BUYER_FIELDS = {"title", "first_name", "last_name", "email", "address1", "address2", "postcode", "city", "state",
                 "country", "language", "company_name", "mobile_phone_number", "landline_phone_number"}
DELIVERY_TYPES = ("BILLING", "VERIFIED", "NEW", "SHIP_TO_STORE", "DIGITAL_GOODS", "TRAVEL_OR_EVENT", "OTHER")


def _buyer_problem(name: str, fields: dict) -> str | None:
    allowed = _BUYER_FIELDS | ({"delivery_type"} if name == "shipping" else set())
    unknown = set(fields) - allowed
    if unknown:
        return f"Unknown field(s): {', '.join(sorted(unknown))}."
    country = fields.get("country")
    if country is not None and not (isinstance(country, str) and len(country) == 2 and country.isupper()):
        return "country: an ISO 3166-1 alpha-2 code is expected."
    for phone in ("mobile_phone_number", "landline_phone_number"):
        value = fields.get(phone)
        if value is not None and not (isinstance(value, str) and value.startswith("+") and value[1:].isdigit()):
            return f"{phone}: a number in E.164 format is expected."
    if name == "shipping" and fields.get("delivery_type") not in (None, *DELIVERY_TYPES):
        return "delivery_type: one of " + ", ".join(DELIVERY_TYPES) + "."
    return None

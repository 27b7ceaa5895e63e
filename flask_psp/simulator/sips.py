"""Worldline Sips 2.0 simulated from Worldline's side: Paypage POST, its hosted pages, the sealed
responses, and the Sips Office JSON cash-management interface.

Paypage
    ``POST /paymentInit`` (form: ``Data``, ``Seal``, ``InterfaceVersion``, optional ``SealAlgorithm`` and
    ``Encode``). The Seal is checked with the merchant's secret key: a wrong Seal gets Sips' error page
    and nothing else; a ``keyVersion`` the merchant does not have ends the transaction at once with
    ``responseCode=34``, reported by both responses (sealed with the merchant's current key, whose
    version the response's ``keyVersion`` names). Otherwise the payment page is shown; the buyer pays,
    is declined, goes through a 3-D Secure challenge or cancels (``responseCode=17``).

Responses
    Sips answers twice with the same sealed fields: server to server, POSTed to
    ``automaticResponseUrl`` through the :class:`Notifier` (retried on non-2xx), and through the
    buyer's browser, which POSTs the receipt page's form to ``normalReturnUrl`` (a plain HTML form here:
    a test's HTTP client reads its fields and POSTs them).

Office JSON
    ``POST /rs-services/v2/cashManagement/{validate,cancel,refund}`` and
    ``POST /rs-services/v2/diagnostic/getTransactionData``. JSON seal: HMAC-SHA-256 of the values of every
    field except ``keyVersion``, ``sealAlgorithm`` and ``seal``, in alphabetical order of the names.
    Transaction statuses: ``TO_VALIDATE`` (VALIDATION mode) → ``TO_CAPTURE`` → ``CAPTURED`` at the nightly
    remittance (:meth:`SipsSimulator.end_of_day`); before it, money is taken back by ``cancel``; after
    it, by ``refund`` (``24`` otherwise). ⚠ the ``newStatus`` values of refunds are not publicly sourced.

Nothing here imports from ``flask_psp`` outside the simulator package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, redirect, request
from iso4217 import Currency

from . import base
from .base import HostedPages, ProviderSimulator, current_simulator
from .notifier import Delivery

__all__ = ["SipsSimulator", "SIMULATION_MERCHANT", "TEST_CARDS", "THREE_DS_CODE"]

SIMULATION_MERCHANT = "002001000000001"
DEFAULT_ACCOUNTS = {
    SIMULATION_MERCHANT: {"secret_key": "002001000000001_KEY1", "key_version": "1", "name": "Sips simulation shop"},
}

CARD_SUCCESS = "4100000000000000"
CARD_DECLINED = "4100000000000005"
CARD_3DS = "4000000000003220"
THREE_DS_CODE = "1234"
TEST_CARDS = (
    (CARD_SUCCESS, "accepted (3-D Secure challenge too when the merchant asks CHALLENGE)"),
    (CARD_DECLINED, "refused: responseCode 05"),
    (CARD_3DS, f"3-D Secure challenge: code {THREE_DS_CODE} succeeds, anything else is refused"),
    ("any other number", "refused: responseCode 05"),
)

HMAC_SHA256 = "HMAC-SHA-256"
#: the buyer's containers and their fields (worldline/sips-sdk-php Common/Field ``Contact`` and ``Address``)
_CONTACT = {"email", "firstname", "gender", "lastname", "mobile", "phone", "title"}
_ADDRESS = {"addressAdditional1", "addressAdditional2", "addressAdditional3", "city", "company", "country", "postBox",
            "state", "street", "streetNumber", "zipCode"}
BUYER_CONTAINERS = {"customerContact": _CONTACT, "billingContact": _CONTACT, "holderContact": _CONTACT,
                    "deliveryContact": _CONTACT, "customerAddress": _ADDRESS, "billingAddress": _ADDRESS,
                    "holderAddress": _ADDRESS, "deliveryAddress": _ADDRESS}
CAPTURE_MODES = ("AUTHOR_CAPTURE", "VALIDATION", "IMMEDIATE")
CHALLENGE_MODES = ("CHALLENGE", "CHALLENGE_MANDATE", "NO_CHALLENGE", "NO_PREFERENCE")
_REFERENCE = re.compile(r"[A-Za-z0-9]{1,35}")
_KNOWN_NUMBERS = {f"{c.number:03d}": c for c in Currency if c.number is not None}

ERROR_TEXT = {
    "03": "Invalid merchant contract",
    "12": "Invalid transaction: check the fields of the request",
    "30": "Format error",
    "34": "Suspicion of fraud: the Seal is incorrect",
    "94": "Duplicated transaction: this transactionReference has already been used",
}


class SipsError(base.ApiError):
    """A payment request Sips refuses before any payment page: its error page is shown."""

    status = 400

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _seal(data: str, key: str, algorithm: str) -> str:
    if algorithm == HMAC_SHA256:
        return hmac.new(key.encode("utf-8"), data.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256((data + key).encode("utf-8")).hexdigest()


def _json_values(value: Any):
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, dict):
        for name in sorted(value):
            yield from _json_values(value[name])
    elif isinstance(value, list):
        for item in value:
            yield from _json_values(item)
    else:
        yield str(value)


def _json_seal(body: dict, key: str) -> str:
    text = "".join(
        piece for name in sorted(body) if name not in ("keyVersion", "sealAlgorithm", "seal")
        for piece in _json_values(body[name])
    )
    return hmac.new(key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def _parse_data(data: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in data.split("|"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise SipsError("30", f"Data part without '=': {part[:30]}")
        fields[name] = value
    return fields


def _minor_to_text(amount: int, number: str) -> str:
    currency = _KNOWN_NUMBERS.get(number)
    exponent = currency.exponent if currency is not None and currency.exponent is not None else 2
    code = currency.code if currency is not None else number
    if exponent == 0:
        return f"{amount:,} {code}"
    units, cents = divmod(amount, 10 ** exponent)
    return f"{units:,}.{cents:0{exponent}d} {code}"


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


blueprint = Blueprint("sips", __name__)


class SipsSimulator(ProviderSimulator):
    """``accounts``: ``{merchantId: {"secret_key": …, "key_version": "1", "name": …}}``."""

    name, brand = "sips", "Worldline Sips"
    blueprint = blueprint
    default_accounts = DEFAULT_ACCOUNTS
    test_cards = TEST_CARDS
    sort_json_keys = True  # the Office JSON answers list their fields in alphabetical order
    state = {
        "transactions": dict,  # (merchantId, transactionReference) -> transaction
        "sessions": dict,  # payment page session -> (merchantId, transactionReference)
        "init_requests": list,  # each accepted or refused /paymentInit, for tests to inspect
        "office_requests": list,
    }

    def check_account(self, merchant: str, account: Any) -> None:
        if not str(merchant).isdigit() or not account.get("secret_key") or not str(account.get("key_version", "")).isdigit():
            raise ValueError(f"a Sips account needs a numeric merchantId, a secret_key and a numeric key_version: {merchant}")

    def account_lines(self) -> list[str]:
        return [f"merchant {m}: secret key {a['secret_key']}, key version {a['key_version']}"
                for m, a in self.accounts.items()]

    def error_answer(self, error: SipsError) -> Response:
        return self._error_page(error, status=400)


    # ================================================================== Python-side helpers
    def transaction(self, reference: str, merchant_id: str | None = None) -> dict:
        with self.lock:
            for (merchant, ref), tx in self.transactions.items():
                if ref == reference and (merchant_id is None or merchant == merchant_id):
                    return tx
        raise KeyError(reference)

    def end_of_day(self) -> int:
        """The nightly remittance: every TO_CAPTURE transaction is captured. Returns how many."""
        count = 0
        with self.lock:
            for tx in self.transactions.values():
                if tx["status"] == "TO_CAPTURE" and tx["current_amount"] > 0:
                    tx["status"] = "CAPTURED"
                    tx["captured_amount"] = tx["current_amount"]
                    count += 1
        return count

    def resend_automatic_response(self, reference: str) -> Delivery | None:
        tx = self.transaction(reference)
        return self._send_automatic(tx)

    # ================================================================== Paypage
    def _account(self, merchant_id: str | None) -> dict:
        account = self.accounts.get(merchant_id or "")
        if account is None:
            raise SipsError("03", f"Unknown merchantId {merchant_id!r}")
        return account

    def _init(self, form) -> dict:
        """Check a /paymentInit form; returns the new transaction (or raises SipsError)."""
        data, seal = form.get("Data"), form.get("Seal")
        interface = form.get("InterfaceVersion") or ""
        if not data or not seal or not interface:
            raise SipsError("12", "Data, Seal and InterfaceVersion are required")
        if not interface.startswith("HP_"):
            raise SipsError("30", f"InterfaceVersion {interface!r} is not a Paypage POST version (HP_x.y)")
        algorithm = form.get("SealAlgorithm") or "SHA-256"
        if algorithm not in (HMAC_SHA256, "SHA-256"):
            raise SipsError("30", f"Unknown SealAlgorithm {algorithm!r}")
        sealed = data
        if (form.get("Encode") or "").lower() == "base64":
            try:
                data = base64.b64decode(data).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise SipsError("30", "Data is not valid base64") from None
        fields = _parse_data(data)
        account = self._account(fields.get("merchantId"))
        self.init_requests.append({"fields": fields, "seal_algorithm": algorithm, "interface": interface})
        wrong_version = fields.get("keyVersion") != str(account["key_version"])
        if not wrong_version and not hmac.compare_digest(
            _seal(sealed, account["secret_key"], algorithm).encode(), seal.strip().lower().encode("utf-8")
        ):
            raise SipsError("34", "The Seal does not match the Data with this merchant's secret key")
        reference = fields.get("transactionReference") or ""
        if not _REFERENCE.fullmatch(reference):
            raise SipsError("12", "transactionReference: 1 to 35 letters and digits")
        if not fields.get("normalReturnUrl"):
            raise SipsError("12", "normalReturnUrl is required")
        problems = []
        if not (fields.get("amount") or "").isdigit() or int(fields["amount"]) <= 0:
            problems.append("amount: a positive whole number of minor units")
        if fields.get("currencyCode") not in _KNOWN_NUMBERS:
            problems.append("currencyCode: an ISO 4217 numeric code")
        if fields.get("captureMode", "AUTHOR_CAPTURE") not in CAPTURE_MODES:
            problems.append("captureMode: AUTHOR_CAPTURE, VALIDATION or IMMEDIATE")
        day = fields.get("captureDay", "0")
        if not day.isdigit() or int(day) > 99:
            problems.append("captureDay: 0 to 99")
        if fields.get("fraudData.challengeMode3DS", "NO_PREFERENCE") not in CHALLENGE_MODES:
            problems.append("fraudData.challengeMode3DS: " + ", ".join(CHALLENGE_MODES))
        for name in fields:
            container, _, part = name.partition(".")
            if container in BUYER_CONTAINERS and part not in BUYER_CONTAINERS[container]:
                problems.append(f"{name}: {container} has no field {part!r}")
        if problems and not wrong_version:
            raise SipsError("12", "; ".join(problems))
        merchant = fields["merchantId"]
        with self.lock:
            if (merchant, reference) in self.transactions:
                raise SipsError("94", f"transactionReference {reference} has already been used")
            session = secrets.token_urlsafe(18)
            tx = {
                "merchant_id": merchant,
                "reference": reference,
                "session": session,
                "request": fields,
                "seal_algorithm": algorithm,
                "interface_version": interface,
                "amount": int(fields["amount"]) if (fields.get("amount") or "").isdigit() else 0,
                "currency": fields.get("currencyCode", ""),
                "status": "PAYMENT_PAGE",
                "current_amount": 0,
                "captured_amount": 0,
                "refunded_amount": 0,
                "response_code": None,
                "response": None,
                "card": None,
                "operations": [],
            }
            self.transactions[(merchant, reference)] = tx
            self.sessions[session] = (merchant, reference)
        if wrong_version:
            self._finish(tx, "34")
        return tx

    def _needs_challenge(self, tx: dict, number: str) -> bool:
        mode = tx["request"].get("fraudData.challengeMode3DS", "NO_PREFERENCE")
        return number == CARD_3DS or (number == CARD_SUCCESS and mode in ("CHALLENGE", "CHALLENGE_MANDATE"))

    def _finish(self, tx: dict, code: str, acquirer: str | None = None, authent: str | None = None) -> None:
        """The transaction has its outcome: build and seal the response, send the automatic one."""
        with self.lock:
            account = self.accounts[tx["merchant_id"]]
            request_fields = tx["request"]
            tx["response_code"] = code
            if code == "00":
                validation = request_fields.get("captureMode") == "VALIDATION"
                tx["status"] = "TO_VALIDATE" if validation else "TO_CAPTURE"
                tx["current_amount"] = tx["amount"]
            elif code == "17":
                tx["status"] = "ABORTED"
            else:
                tx["status"] = "REFUSED"
            pairs = [
                ("amount", str(tx["amount"])),
                ("currencyCode", tx["currency"]),
                ("merchantId", tx["merchant_id"]),
                ("transactionReference", tx["reference"]),
                ("keyVersion", str(account["key_version"])),
                ("responseCode", code),
                ("transactionDateTime", _now()),
                ("captureMode", request_fields.get("captureMode", "AUTHOR_CAPTURE")),
                ("captureDay", request_fields.get("captureDay", "0")),
                ("orderChannel", request_fields.get("orderChannel", "INTERNET")),
            ]
            if acquirer:
                pairs.append(("acquirerResponseCode", acquirer))
            if code == "00":
                pairs.append(("authorisationId", f"{secrets.randbelow(10**6):06d}"))
            card = tx["card"]
            if card:
                pairs += [
                    ("paymentMeanType", "CARD"),
                    ("paymentMeanBrand", "VISA" if card.startswith("4") else "MASTERCARD"),
                    ("maskedPan", card[:4] + "#" * (len(card) - 6) + card[-2:]),
                ]
            if authent:
                pairs.append(("holderAuthentStatus", authent))
            for name in ("orderId", "returnContext", "customerLanguage", "customerId"):
                if request_fields.get(name):
                    pairs.append((name, request_fields[name]))
            data = "|".join(f"{k}={v}" for k, v in pairs)
            response = {
                "Data": data,
                "Seal": _seal(data, account["secret_key"], tx["seal_algorithm"]),
                "InterfaceVersion": tx["interface_version"],
            }
            if tx["seal_algorithm"] == HMAC_SHA256:
                response["SealAlgorithm"] = HMAC_SHA256  # ⚠ echoed as the request declared it
            tx["response"] = response
        self._send_automatic(tx)

    def _send_automatic(self, tx: dict) -> Delivery | None:
        with self.lock:
            url = tx["request"].get("automaticResponseUrl")
            response = dict(tx["response"] or {})
        if not url or not response:
            return None
        return self.notifier.send(
            url, urlencode(response).encode("ascii"),
            {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Sips-Simulator/2.0"},
        )

    def _by_session(self, session: str) -> dict | None:
        with self.lock:
            key = self.sessions.get(session)
            return self.transactions.get(key) if key else None

    # ================================================================== Office JSON
    def _office(self, operation: str, body: Any) -> dict:
        if not isinstance(body, dict):
            return {"responseCode": "30"}
        self.office_requests.append({"operation": operation, "body": dict(body)})
        account = self.accounts.get(str(body.get("merchantId") or ""))
        if account is None:
            return {"responseCode": "03"}
        key = account["secret_key"]

        def answer(fields: dict) -> dict:
            fields = {**fields, "operationDateTime": _now()}
            fields["seal"] = _json_seal(fields, key)
            return fields

        if str(body.get("keyVersion")) != str(account["key_version"]):
            return answer({"responseCode": "34"})
        if not hmac.compare_digest(_json_seal(body, key).encode(), str(body.get("seal") or "").strip().lower().encode("utf-8")):
            return answer({"responseCode": "34"})
        interface = str(body.get("interfaceVersion") or "")
        prefix = "DR_WS_" if operation == "getTransactionData" else "CR_WS_"
        if not interface.startswith(prefix):
            return answer({"responseCode": "30", "errorFieldName": "interfaceVersion"})
        reference = str(body.get("transactionReference") or "")
        with self.lock:
            tx = self.transactions.get((str(body["merchantId"]), reference))
            if tx is None:
                return answer({"responseCode": "25"})
            if operation == "getTransactionData":
                return answer({
                    "responseCode": "00", "transactionStatus": tx["status"], "amount": tx["amount"],
                    "currentAmount": tx["current_amount"], "currencyCode": tx["currency"],
                    "transactionReference": reference,
                })
            amount = body.get("operationAmount")
            try:
                amount = int(str(amount))
            except ValueError:
                return answer({"responseCode": "30", "errorFieldName": "operationAmount"})
            if amount <= 0:
                return answer({"responseCode": "12", "errorFieldName": "operationAmount"})
            if str(body.get("currencyCode") or "") != tx["currency"]:
                return answer({"responseCode": "12", "errorFieldName": "currencyCode"})
            status = tx["status"]
            if operation == "validate":
                if status != "TO_VALIDATE" or amount > tx["current_amount"]:
                    return answer({"responseCode": "24"})
                tx["status"], tx["current_amount"] = "TO_CAPTURE", amount
            elif operation == "cancel":
                if status not in ("TO_VALIDATE", "TO_CAPTURE") or amount > tx["current_amount"]:
                    return answer({"responseCode": "24"})
                tx["current_amount"] -= amount
                if tx["current_amount"] == 0:
                    tx["status"] = "CANCELLED"
            elif operation == "refund":
                if status != "CAPTURED" or amount > tx["captured_amount"] - tx["refunded_amount"]:
                    return answer({"responseCode": "24"})
                tx["refunded_amount"] += amount
            else:
                return answer({"responseCode": "40"})
            tx["operations"].append((operation, amount))
            new_status = "TO_CREDIT" if operation == "refund" else tx["status"]
            new_amount = tx["captured_amount"] - tx["refunded_amount"] if operation == "refund" else tx["current_amount"]
            return answer({
                "responseCode": "00", "acquirerResponseCode": "00", "newStatus": new_status,
                "newAmount": new_amount, "authorisationId": f"{secrets.randbelow(10**6):06d}",
            })


    # ================================================================== pages
    def _error_page(self, error: SipsError, status: int) -> Response:
        label = ERROR_TEXT.get(error.code, "Error")
        return self.page("Error", status=status, detail=error.detail,
                         error=f"Error during the processing of the payment request: responseCode={error.code} — {label}")

    def _tx_page(self, title: str, tx: dict, status: int = 200, **context) -> Response:
        template = tx["request"].get("templateName")
        return self.page(
            title, status=status, note=self.page_note + (f" Page template: {template}." if template else ""),
            merchant=self.accounts.get(tx["merchant_id"], {}).get("name"),
            amount=_minor_to_text(tx["amount"], tx["currency"]) if tx["amount"] else None,
            detail=f"transactionReference {tx['reference']}", **context,
        )

    def _payment_page(self, tx: dict, error: str | None = None, status: int = 200) -> Response:
        return self._tx_page("Payment", tx, form=True, error=error, status=status,
                             action=f"{self.base_url()}/paymentpage/{tx['session']}")

    def _receipt(self, tx: dict, status: int = 200) -> Response:
        code = tx["response_code"]
        if code == "00":
            message = "Your payment has been accepted."
        elif code == "17":
            message = "You cancelled the payment."
        elif code == "34":
            message = "The payment was refused (responseCode 34)."
        else:
            message = f"Your payment was refused (responseCode {code})."
        return self._tx_page("Payment receipt", tx, message=message, outcome=code, status=status, template=_RECEIPT,
                             return_url=tx["request"].get("normalReturnUrl"), fields=tx["response"])


#: the receipt: the outcome, and the form that carries the sealed response back to the shop
_RECEIPT = """{% extends "layout.html" %}
{% block message %}{% if message %}<p id="sips-outcome" data-response-code="{{ outcome }}"{% if outcome != "00" %} class="error"{% endif %}>{{ message }}</p>{% endif %}{% endblock %}
{% block extra %}{% if fields %}
<form id="sips-response" method="post" action="{{ return_url }}">
  {% for name, value in fields.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
  <button type="submit">Return to the shop</button>
</form>
{% endif %}{% endblock %}
"""

_NO_CHALLENGE = SipsError("12", "No 3-D Secure challenge is waiting")


def _no_challenge(sim, tx=None):
    """No such session, or no 3-D Secure challenge waits on it: 404 to look at, 409 to answer."""
    return sim._error_page(_NO_CHALLENGE, status=404 if request.method == "GET" else 409)


#: the pages of the payment session in the URL
_paypage = HostedPages(blueprint, SipsSimulator._by_session, missing=lambda sim: sim._error_page(
    SipsError("12", "Unknown or expired payment session"), status=404))
_challenges = HostedPages(blueprint, SipsSimulator._by_session, status="AWAITING_3DS", conflict=_no_challenge,
                          missing=_no_challenge)


# ====================================================================== HTTP: Paypage
@blueprint.post("/paymentInit")
def payment_init():
    sim = current_simulator()
    tx = sim._init(request.form)
    return sim._receipt(tx) if tx["response"] is not None else sim._payment_page(tx)


@_paypage.get("/paymentpage/<session>")
def payment_page(sim, tx):
    if tx["response"] is not None:
        return sim._receipt(tx)
    if tx["status"] == "AWAITING_3DS":
        return redirect(f"{sim.base_url()}/paymentpage/{tx['session']}/3ds", code=303)
    return sim._payment_page(tx)


@_paypage.post("/paymentpage/<session>")
def payment_submit(sim, tx):
    with sim.lock:
        if tx["status"] != "PAYMENT_PAGE":
            return sim._receipt(tx, status=409) if tx["response"] else sim._payment_page(tx, status=409)
        if request.form.get("action") == "cancel":
            finish = ("17", None, None)
        else:
            number = "".join((request.form.get("card_number") or "").split())
            if not number.isdigit() or not 12 <= len(number) <= 19:
                return sim._payment_page(tx, error="The card number must be 12 to 19 digits.", status=400)
            tx["card"] = number
            if sim._needs_challenge(tx, number):
                tx["status"] = "AWAITING_3DS"
                return redirect(f"{sim.base_url()}/paymentpage/{tx['session']}/3ds", code=303)
            finish = ("00", "00", "NOT_PARTICIPATING") if number == CARD_SUCCESS else ("05", "05", None)
    sim._finish(tx, *finish)
    return sim._receipt(tx)


@_challenges.get("/paymentpage/<session>/3ds")
def challenge_page(sim, tx):
    return sim._tx_page("3-D Secure", tx, challenge=True, code=THREE_DS_CODE)


@_challenges.post("/paymentpage/<session>/3ds")
def challenge_submit(sim, tx):
    with sim.lock:
        if tx["status"] != "AWAITING_3DS":  # answered meanwhile
            return _no_challenge(sim)
        tx["status"] = "PAYMENT_PAGE"
    if (request.form.get("code") or "").strip() == THREE_DS_CODE:
        sim._finish(tx, "00", "00", "SUCCESS")
    else:
        sim._finish(tx, "05", "05", "FAILURE")
    return sim._receipt(tx)


# ====================================================================== HTTP: Office JSON
@blueprint.post("/rs-services/v2/cashManagement/<any(validate, cancel, refund):operation>")
def office(operation):
    return jsonify(current_simulator()._office(operation, request.get_json(force=True, silent=True)))


@blueprint.post("/rs-services/v2/diagnostic/getTransactionData")
def diagnostic():
    return jsonify(current_simulator()._office("getTransactionData", request.get_json(force=True, silent=True)))

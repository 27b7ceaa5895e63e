"""HiPay Enterprise simulated from HiPay's side: the hosted payment page API, the page itself, the
redirects with their ``hash``, the signed notifications and the maintenance operations.

API (HTTP Basic with the API username and password, form-urlencoded, JSON answers):

* ``POST /v1/hpayment`` → ``{"forwardUrl": …, "order": {…}}``
* ``POST /v1/maintenance/transaction/<reference>`` (``operation`` capture|refund|cancel, optional
  ``amount`` as a decimal) → the transaction after the request (117 capture requested, 124 refund
  requested, 175 cancellation requested); the outcome follows as notifications.
* ``GET /v1/transaction?orderid=…`` → the order's transactions: ``{"transaction": {…}}`` for one,
  ``{"transaction": [{…}, …]}`` for several (as HiPay's PHP and Node.js SDKs read it),
  ``{"transaction": []}`` for an order whose page was never submitted, 404 ``3000001`` "Unknown
  Order" for an order the account never created; ``GET /v1/transaction/<reference>`` →
  ``{"transaction": {…}}``, 404 ``3000002`` "Unknown Transaction" for another account's or no
  transaction. A transaction is HiPay's ``Transaction`` model (hipay/openapi-hipay
  ``enterprise/gateway.yaml``): camelCase fields, amounts as decimal strings, ``reason`` an object.
  Every call wants HTTP Basic: 401 ``1000001`` "Incorrect Credentials" otherwise.

Hosted page: ``GET|POST /payment/web/pay/<id>`` and its 3-D Secure challenge ``…/3ds``.

Redirects carry the transaction's parameters and ``hash`` = hash of every non-empty parameter of the
final URL but ``hash``, sorted by name, each as ``name + value + passphrase``.

Notifications: form-urlencoded POSTs to ``notify_url`` with ``X-ALLOPASS-SIGNATURE`` = hex
hash(raw body + passphrase), the account's algorithm (sha1, sha256 or sha512). Like the real platform,
one transaction sends several (``142, 116, 117, 118`` for a sale) and repeats some (:data:`REPEATS`);
they are delivered concurrently and retried, so they may arrive in any order.

Nothing here imports from ``flask_psp`` outside the simulator package.
"""

from __future__ import annotations

import base64
import json
import hashlib
import secrets
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from typing import Any, NamedTuple

from flask import Blueprint, jsonify, redirect, request
from iso4217 import Currency

from . import base
from .base import HostedPages, ProviderSimulator, current_simulator
from .notifier import DEFAULT_RETRY_DELAYS, Delivery, Notifier

__all__ = ["HiPaySimulator", "TEST_CARDS", "THREE_DS_CODE", "SALE_STATUSES", "REPEATS"]

DEFAULT_ACCOUNTS = {
    "hipay_sim_api_user": {
        "password": "hipay_sim_api_password",
        "passphrase": "hipay-sim-passphrase",
        "hash_algorithm": "sha256",
        "mid": "00001326452",
        "live": False,
        "name": "HiPay simulator shop",
    },
}

CARD_SUCCESS = "4111111111111111"
CARD_DECLINED = "4000000000000002"
CARD_3DS = "4000000000003220"
THREE_DS_CODE = "1234"
TEST_CARDS = (
    (CARD_SUCCESS, "authorized (3-D Secure challenge when authentication_indicator=2)"),
    (CARD_DECLINED, "refused (113)"),
    (CARD_3DS, f"3-D Secure challenge unless bypassed: code {THREE_DS_CODE} succeeds, anything else fails (109)"),
    ("any other number", "refused (113)"),
)

#: what a successful payment notifies, in order; the statuses of REPEATS are sent twice (again at the end)
SALE_STATUSES = (142, 116, 117, 118)
AUTHORIZATION_STATUSES = (142, 116)
REPEATS = (116, 118)
MESSAGES = {
    109: "Authentication Failed", 113: "Refused", 114: "Expired", 115: "Cancelled", 116: "Authorized",
    117: "Capture Requested", 118: "Captured", 119: "Partially Captured", 124: "Refund Requested",
    125: "Refunded", 126: "Partially Refunded", 142: "Authorization Requested", 165: "Refund Refused",
    173: "Capture Refused", 175: "Authorization Cancellation requested",
}
#: the acquirer reason a declined transaction reports (gateway documentation, appendix "Error codes")
DECLINE_REASONS = {109: (4000011, "Authentication failed. Please retry or cancel"),
                   113: (4010101, "Refusal (No Explicit Reason)")}
PENDING_STATUSES = {142, 117, 124, 175}
DECLINED_STATUSES = {109, 110, 111, 113, 163}
HASHES = ("sha1", "sha256", "sha512")


class _MoneyMove(NamedTuple):
    """How a maintenance operation moves money from one amount of the transaction to another."""

    source: str  # the amount it takes from ("authorized" for a capture)
    target: str  # the amount it adds to ("captured")
    allowed: tuple[int, ...]  # the statuses it may start from
    requested: int  # the status of the request taken
    full: int  # the status once target == source
    partial: int  # the status while target < source
    refused: int  # what the acquirer says when it refuses it


MONEY_MOVES = {
    "capture": _MoneyMove("authorized", "captured", (116, 119), 117, 118, 119, 173),
    "refund": _MoneyMove("captured", "refunded", (118, 119, 124, 125, 126), 124, 125, 126, 165),
}


class ApiError(base.ApiError):
    def __init__(self, status: int, code: int, message: str, description: str = ""):
        super().__init__(message)
        self.status, self.code, self.message, self.description = status, code, message, description

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "description": self.description}


def _wrong_status(tx: dict) -> ApiError:
    return ApiError(403, 3020105, "Action denied : Wrong transaction status", f"the transaction is in status {tx['status']}")


def _exponent(code: str) -> int:
    try:
        currency = Currency(code)
    except (ValueError, KeyError):
        raise ApiError(400, 1010201, "Invalid Parameter", f"currency: unknown ISO 4217 code {code!r}") from None
    if currency.exponent is None:
        raise ApiError(400, 1010201, "Invalid Parameter", f"currency: {code} cannot be paid in")
    return currency.exponent


def _decimal(amount: int, currency: str) -> str:
    exponent = _exponent(currency)
    if exponent == 0:
        return str(amount)
    units, rest = divmod(amount, 10 ** exponent)
    return f"{units}.{rest:0{exponent}d}"


def _minor(text: str, currency: str, field: str) -> int:
    exponent = _exponent(currency)
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ApiError(400, 1010201, "Invalid Parameter", f"{field}: a decimal amount is expected") from None
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value() or scaled <= 0:
        raise ApiError(400, 1010201, "Invalid Parameter",
                       f"{field}: a positive amount with at most {exponent} decimals is expected")
    return int(scaled)


def _hash(text: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, text).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


#: CustomerShippingInfoRequest's fields, without their shipto_ prefix
_SHIPTO_FIELDS = {"firstname", "lastname", "recipientinfo", "house", "streetaddress", "streetaddress2", "city", "state",
                  "zipcode", "country", "phone", "msisdn", "gender"}

blueprint = Blueprint("hipay", __name__)


class HiPaySimulator(ProviderSimulator):
    """``accounts``: ``{api_username: {"password", "passphrase", "hash_algorithm", "mid", "live", "name"}}``."""

    name, brand = "hipay", "HiPay"
    blueprint = blueprint
    default_accounts = DEFAULT_ACCOUNTS
    api_paths = ("/v1/",)
    test_cards = TEST_CARDS
    state = {
        "orders": dict,  # page id -> order
        "transactions": dict,  # transaction_reference -> transaction
    }

    def __init__(self, accounts: dict | None = None, notifier: Notifier | None = None,
                 retry_delays=DEFAULT_RETRY_DELAYS, repeats=REPEATS):
        super().__init__(accounts, notifier, retry_delays)
        self.repeats = tuple(repeats)
        #: maintenance operations ("capture", "refund") the acquirer refuses after HiPay took them:
        #: the answer says requested (117, 124), the notification that follows says refused (173, 165)
        self.refused_operations: set[str] = set()

    def check_account(self, user: str, account: Any) -> None:
        if account.get("hash_algorithm", "sha256") not in HASHES or not account.get("passphrase"):
            raise ValueError(f"HiPay account {user}: needs a passphrase and a hash_algorithm among {HASHES}")

    def call_details(self) -> dict:
        return {"args": request.args.to_dict(), "form": request.form.to_dict(), "accept": request.headers.get("Accept")}

    def account_lines(self) -> list[str]:
        return [f"API user {user} / {a['password']}, passphrase {a['passphrase']} ({a.get('hash_algorithm', 'sha256')})"
                for user, a in self.accounts.items()]

    # ================================================================== Python-side helpers
    def order_by_orderid(self, orderid: str) -> dict:
        with self.lock:
            for order in self.orders.values():
                if order["fields"]["orderid"] == orderid:
                    return order
        raise KeyError(orderid)

    def send_notifications(self, reference: str, statuses) -> list[Delivery]:
        """Send the notifications of ``statuses`` for a transaction, in the given order, each built from
        the transaction's state when that status was reached (e.g. ``[118, 116]`` for a late 116)."""
        deliveries = []
        for status in statuses:
            notification = self.notification(reference, status)
            if notification is not None:
                deliveries.append(self._deliver(*notification))
        return deliveries

    # ================================================================== accounts
    def _authenticate(self) -> tuple[str, dict]:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise ApiError(401, 1000001, "Incorrect Credentials", "HTTP Basic authentication is required")
        try:
            user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(401, 1000001, "Incorrect Credentials", "malformed Authorization header") from None
        account = self.accounts.get(user)
        if account is None or not secrets.compare_digest(account["password"].encode(), password.encode()):
            raise ApiError(401, 1000001, "Incorrect Credentials", "API username or password is incorrect")
        return user, account

    # ================================================================== hpayment
    def _create_order(self, user: str, account: dict, form) -> dict:
        fields = {k: v for k, v in form.items()}
        missing = [name for name in ("orderid", "operation", "description", "currency", "amount", "accept_url",
                                     "decline_url", "pending_url", "exception_url", "cancel_url") if not fields.get(name)]
        if missing:
            raise ApiError(400, 1010101, "Missing Parameter", ", ".join(missing))
        if fields["operation"] not in ("Sale", "Authorization"):
            raise ApiError(400, 1010201, "Invalid Parameter", "operation: Sale or Authorization")
        if len(fields["orderid"]) > 32:
            raise ApiError(400, 1010201, "Invalid Parameter", "orderid: 32 characters at most")
        if fields.get("authentication_indicator", "1") not in ("0", "1", "2"):
            raise ApiError(400, 1010201, "Invalid Parameter", "authentication_indicator: 0, 1 or 2")
        if fields.get("eci", "7") not in ("1", "2", "7", "9", "10"):
            raise ApiError(400, 1010201, "Invalid Parameter", "eci")
        currency = fields["currency"].upper()
        amount = _minor(fields["amount"], currency, "amount")
        if len(fields.get("merchant_display_name", "")) > 32:
            raise ApiError(400, 1010201, "Invalid Parameter", "merchant_display_name: 32 characters at most")
        if "custom_data" in fields:
            try:
                custom = json.loads(fields["custom_data"])
            except ValueError:
                custom = None
            if not isinstance(custom, dict):
                raise ApiError(400, 1010201, "Invalid Parameter", "custom_data: a JSON object")
        self._check_buyer_fields(fields)
        page_id = secrets.token_hex(16)
        order = {
            "id": page_id,
            "user": user,
            "fields": fields,
            "amount": amount,
            "currency": currency,
            "status": "page",
            "reference": None,
            "attempts": 0,
            "created": _now(),
        }
        with self.lock:
            self.orders[page_id] = order
        return order

    @staticmethod
    def _check_buyer_fields(fields: dict) -> None:
        """The buyer's fields keep HiPay's shapes (gateway ``CustomerBillingInfoRequest`` and
        ``CustomerShippingInfoRequest``): ISO 3166-1 alpha-2 countries."""
        for name in ("country", "shipto_country"):
            value = fields.get(name)
            if value is not None and not (len(value) == 2 and value.isalpha() and value.isupper()):
                raise ApiError(400, 1010201, "Invalid Parameter", f"{name}: an ISO 3166-1 alpha-2 country code")
        for name in fields:
            if name.startswith("shipto_") and name[len("shipto_"):] not in _SHIPTO_FIELDS:
                raise ApiError(400, 1010201, "Invalid Parameter", f"{name}: not a shipping field")

    def _order_json(self, order: dict) -> dict:
        fields = order["fields"]
        return {
            "id": fields["orderid"],
            "dateCreated": order["created"],
            "attempts": str(order["attempts"]),
            "amount": _decimal(order["amount"], order["currency"]),
            "shipping": "0.00",
            "tax": "0.00",
            "decimals": str(_exponent(order["currency"])),
            "currency": order["currency"],
            "customerId": fields.get("cid", ""),
            "language": fields.get("language", "en_GB"),
            "email": fields.get("email", ""),
        }

    # ================================================================== transactions
    def _new_transaction(self, order: dict, card: str, three_ds: bool) -> dict:
        reference = str(800_000_000_000 + secrets.randbelow(10 ** 11))
        tx = {
            "reference": reference,
            "order": order["id"],
            "user": order["user"],
            "currency": order["currency"],
            "authorized": 0,
            "captured": 0,
            "refunded": 0,
            "status": 101,
            "card": card,
            "three_ds": three_ds,
            "created": _now(),
            "authorized_at": None,
            "snapshots": {},  # status -> (authorized, captured, refunded, date) when reached
        }
        order["reference"] = reference
        order["attempts"] += 1
        tx["attempt"] = order["attempts"]
        self.transactions[reference] = tx
        return tx

    def _reach(self, tx: dict, status: int) -> None:
        tx["status"] = status
        tx["snapshots"][status] = (tx["authorized"], tx["captured"], tx["refunded"], _now())

    def notification(self, reference: str, status: int):
        """(url, body, headers) of the notification of ``status`` for ``reference``, or None."""
        with self.lock:
            tx = self.transactions[reference]
            order = self.orders[tx["order"]]
            url = order["fields"].get("notify_url")
            if not url:
                return None
            account = self.accounts[tx["user"]]
            authorized, captured, refunded, date = tx["snapshots"].get(
                status, (tx["authorized"], tx["captured"], tx["refunded"], _now()))
            currency = tx["currency"]
            card = tx["card"] or ""
            state = "pending" if status in PENDING_STATUSES else "declined" if status in DECLINED_STATUSES else "completed"
            pairs = [
                ("state", state),
                ("reason", "" if state != "declined" else f"{status}: {MESSAGES.get(status, 'Declined')}"),
                ("test", "false" if account.get("live") else "true"),
                ("mid", account.get("mid", "")),
                ("attempt_id", str(order["attempts"])),
                ("authorization_code", "test123" if tx["authorized_at"] else ""),
                ("transaction_reference", reference),
                ("date_created", tx["created"]),
                ("date_updated", date),
                ("date_authorized", tx["authorized_at"] or ""),
                ("status", str(status)),
                ("message", MESSAGES.get(status, "")),
                ("authorized_amount", _decimal(authorized or order["amount"], currency)),
                ("captured_amount", _decimal(captured, currency)),
                ("refunded_amount", _decimal(refunded, currency)),
                ("decimals", str(_exponent(currency))),
                ("currency", currency),
                ("ip_address", "127.0.0.1"),
                ("ip_country", "FR"),
                ("eci", order["fields"].get("eci", "7")),
                ("payment_product", "visa"),
                ("payment_method[token]", hashlib.sha1(card.encode()).hexdigest() if card else ""),
                ("payment_method[brand]", "VISA"),
                ("payment_method[pan]", (card[:6] + "******" + card[-4:]) if card else ""),
                ("payment_method[card_expiry_month]", "12"),
                ("payment_method[card_expiry_year]", "2030"),
                ("payment_method[country]", "FR"),
                ("three_d_secure[eci]", "5" if tx["three_ds"] else ""),
                ("three_d_secure[enrollment_status]", "Y" if tx["three_ds"] else "N"),
                ("fraud_screening[scoring]", "0"),
                ("fraud_screening[result]", "ACCEPTED"),
                ("order[id]", order["fields"]["orderid"]),
                ("order[date_created]", order["created"]),
                ("order[attempts]", str(order["attempts"])),
                ("order[amount]", _decimal(order["amount"], currency)),
                ("order[shipping]", "0.00"),
                ("order[tax]", "0.00"),
                ("order[decimals]", str(_exponent(currency))),
                ("order[currency]", currency),
                ("order[customer_id]", order["fields"].get("cid", "")),
                ("order[language]", order["fields"].get("language", "en_GB")),
                ("order[email]", order["fields"].get("email", "")),
            ]
            for index in range(1, 5):
                if order["fields"].get(f"cdata{index}"):
                    pairs.append((f"cdata{index}", order["fields"][f"cdata{index}"]))
            body = urlencode(pairs).encode("utf-8")
            algorithm = account.get("hash_algorithm", "sha256")
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "HiPay-Simulator/1",
                "X-ALLOPASS-SIGNATURE": _hash(body + account["passphrase"].encode("utf-8"), algorithm),
            }
        return url, body, headers

    def _deliver(self, url: str, body: bytes, headers: dict) -> Delivery:
        return self.notifier.send(url, body, headers)

    def _notify_sequence(self, reference: str, statuses) -> list[Delivery]:
        sequence = list(statuses) + [s for s in self.repeats if s in statuses]
        return self.send_notifications(reference, sequence)

    # ================================================================== buyer outcomes
    def _authorize(self, order: dict, tx: dict) -> tuple[str, list[int]]:
        tx["authorized"] = order["amount"]
        tx["authorized_at"] = _now()
        self._reach(tx, 142)
        self._reach(tx, 116)
        if order["fields"]["operation"] == "Sale":
            tx["captured"] = order["amount"]
            self._reach(tx, 117)
            self._reach(tx, 118)
            return "accept", list(SALE_STATUSES)
        return "accept", list(AUTHORIZATION_STATUSES)

    def _decline(self, tx: dict, status: int) -> tuple[str, list[int]]:
        statuses = [142, status] if status != 109 else [status]
        for each in statuses:
            self._reach(tx, each)
        return "decline", statuses

    def _redirect_url(self, order: dict, page: str, tx: dict | None) -> str:
        account = self.accounts[order["user"]]
        base = order["fields"][f"{page}_url"]
        parts = urlsplit(base)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        added: dict[str, str] = {"orderid": order["fields"]["orderid"]}
        if tx is not None:
            status = tx["status"]
            card = tx["card"] or ""
            added.update({
                "cid": order["fields"].get("cid", ""),
                "state": "declined" if status in DECLINED_STATUSES else "completed",
                "status": str(status),
                "reason": "" if status not in DECLINED_STATUSES else MESSAGES.get(status, "Declined"),
                "test": "0" if account.get("live") else "1",
                "reference": tx["reference"],
                "approval": "test123" if tx["authorized_at"] else "",
                "authorized": tx["authorized_at"] or "",
                "ip": "127.0.0.1",
                "country": "FR",
                "lang": order["fields"].get("language", "en_GB")[:2],
                "email": order["fields"].get("email", ""),
                "score": "0",
                "fraud": "accepted",
                "review": "",
                "avscheck": "",
                "cvccheck": "",
                "pp": "visa",
                "eci3ds": "5" if tx["three_ds"] else "",
                "veres": "Y" if tx["three_ds"] else "N",
                "pares": "Y" if tx["three_ds"] and tx["authorized_at"] else "",
                "cardtoken": hashlib.sha1(card.encode()).hexdigest() if card else "",
                "cardbrand": "VISA",
                "cardpan": ("*" * (len(card) - 4) + card[-4:]) if card else "",
                "cardexpiry": "203012",
                "cardcountry": "FR",
            })
        params.update(added)
        algorithm = account.get("hash_algorithm", "sha256")
        passphrase = account["passphrase"]
        text = "".join(f"{k}{v}{passphrase}" for k, v in sorted(params.items()) if k != "hash" and v != "")
        params["hash"] = _hash(text.encode("utf-8"), algorithm)
        return urlunsplit(parts._replace(query=urlencode(params)))


    def _settle(self, order: dict, card: str, three_ds: bool, authorized: bool, declined: int) -> tuple[str, dict, list[int]]:
        """The buyer's attempt is over: (where the buyer goes, the transaction, the statuses to notify)."""
        order["status"] = "done"
        tx = self._new_transaction(order, card, three_ds=three_ds)
        page_name, statuses = self._authorize(order, tx) if authorized else self._decline(tx, declined)
        return self._redirect_url(order, page_name, tx), tx, statuses

    # ================================================================== maintenance
    def _maintenance(self, user: str, reference: str, form) -> tuple[dict, list[int]]:
        tx = self.transactions.get(reference)
        if tx is None or tx["user"] != user:
            raise ApiError(404, 3000002, "Transaction not found", f"no transaction {reference} for this account")
        operation = (form.get("operation") or "").lower()
        if operation in MONEY_MOVES:
            return self._move_money(tx, operation, form.get("amount"))
        if operation == "cancel":
            if tx["status"] != 116 or tx["captured"]:
                raise _wrong_status(tx)
            self._reach(tx, 175)
            self._reach(tx, 115)
            return tx, [175, 115]
        raise ApiError(400, 1010201, "Invalid Parameter", "operation: capture, refund or cancel")

    def _move_money(self, tx: dict, operation: str, amount_text: str | None) -> tuple[dict, list[int]]:
        """A capture or a refund, of ``amount_text`` or of all that remains."""
        move = MONEY_MOVES[operation]
        remaining = tx[move.source] - tx[move.target]
        if tx["status"] not in move.allowed or remaining <= 0:
            raise _wrong_status(tx)
        currency = tx["currency"]
        amount = _minor(amount_text, currency, "amount") if amount_text else remaining
        if amount > remaining:
            raise ApiError(400, 3020107, "Amount too high", f"at most {_decimal(remaining, currency)} can be {move.target}")
        if operation in self.refused_operations:
            return self._refused(tx, move.requested, move.refused)
        tx[move.target] += amount
        self._reach(tx, move.requested)
        self._reach(tx, move.full if tx[move.target] == tx[move.source] else move.partial)
        return tx, [move.requested, tx["status"]]

    def _refused(self, tx: dict, requested: int, refused: int) -> tuple[dict, list[int]]:
        """A request taken, then refused by the acquirer: nothing moved, the transaction is back
        where it was (another attempt may be made)."""
        before = tx["status"]
        self._reach(tx, requested)
        self._reach(tx, refused)
        tx["status"] = before
        return tx, [requested, refused]

    def _progress_json(self, tx: dict, status: int, date: str, amounts: tuple[int, int, int]) -> dict:
        """The fields every view of a transaction carries about where it stands (in this order)."""
        currency = tx["currency"]
        authorized, captured, refunded = amounts
        return {
            "transactionReference": tx["reference"],
            "dateCreated": tx["created"],
            "dateUpdated": date,
            "dateAuthorized": tx["authorized_at"] or "",
            "status": str(status),
            "message": MESSAGES.get(status, ""),
            "authorizedAmount": _decimal(authorized, currency),
            "capturedAmount": _decimal(captured, currency),
            "refundedAmount": _decimal(refunded, currency),
        }

    def _operation_json(self, tx: dict, operation: str, status: int) -> dict:
        account = self.accounts[tx["user"]]
        *amounts, date = tx["snapshots"][status]
        return {
            "operation": operation,
            "test": "false" if account.get("live") else "true",
            "mid": account.get("mid", ""),
            "authorizationCode": "test123",
            **self._progress_json(tx, status, date, tuple(amounts)),
            "decimals": str(_exponent(tx["currency"])),
            "currency": tx["currency"],
        }

    def _transaction_json(self, tx: dict) -> dict:
        """A transaction as the transaction information service shows it, in its current status."""
        account = self.accounts[tx["user"]]
        order = self.orders[tx["order"]]
        status = tx["status"]
        *amounts, date = tx["snapshots"].get(status, (tx["authorized"], tx["captured"], tx["refunded"], tx["created"]))
        currency = tx["currency"]
        card = tx["card"] or ""
        declined = status in DECLINED_STATUSES
        code, reason = DECLINE_REASONS.get(status, (4000001, "Declined"))
        answer = {
            "state": "pending" if status in PENDING_STATUSES else "declined" if declined else "completed",
            "reason": {"code": str(code), "message": reason} if declined else {},
            "forwardUrl": "",
            "test": "false" if account.get("live") else "true",
            "mid": account.get("mid", ""),
            "attemptId": str(tx["attempt"]),
            "authorizationCode": "test123" if tx["authorized_at"] else "",
            **self._progress_json(tx, status, date, tuple(amounts)),
            "creditedAmount": _decimal(0, currency),
            "decimals": str(_exponent(currency)),
            "currency": currency,
            "ipAddress": "127.0.0.1",
            "ipCountry": "FR",
            "deviceId": "",
            "avsResult": "",
            "cvcResult": "",
            "eci": order["fields"].get("eci", "7"),
            "paymentProduct": "visa",
            "paymentMethod": {
                "token": hashlib.sha1(card.encode()).hexdigest() if card else "",
                "brand": "VISA",
                "pan": (card[:6] + "******" + card[-4:]) if card else "",
                "cardHolder": "",
                "cardExpiryMonth": "12",
                "cardExpiryYear": "2030",
                "issuer": "",
                "country": "FR",
            },
            "threeDSecure": {"eci": "5" if tx["three_ds"] else "", "enrollmentStatus": "Y" if tx["three_ds"] else "N",
                             "enrollmentMessage": "", "authenticationStatus": "", "authenticationMessage": "",
                             "authenticationToken": "", "xid": ""},
            "fraudScreening": {"scoring": "0", "result": "ACCEPTED", "review": ""},
            "order": self._order_json(order),
        }
        for index in range(1, 5):
            if order["fields"].get(f"cdata{index}"):
                answer[f"cdata{index}"] = order["fields"][f"cdata{index}"]
        return answer


    # ================================================================== pages
    def _order_page(self, title: str, order: dict | None = None, status: int = 200, **context):
        if order is None:
            return self.page(title, status=status, **context)
        fields = order["fields"]
        theme = fields.get("theme_code")
        return self.page(
            title, status=status, lang=fields.get("language", "en_GB")[:2],
            note=self.page_note + (f" Theme: {theme}." if theme else ""),
            merchant=fields.get("merchant_display_name") or self.accounts.get(order["user"], {}).get("name"),
            amount=f"{_decimal(order['amount'], order['currency'])} {order['currency']}",
            detail=fields.get("description"), **context,
        )


# ====================================================================== HTTP: API
@blueprint.post("/v1/hpayment")
def hpayment():
    sim = current_simulator()
    user, account = sim._authenticate()
    order = sim._create_order(user, account, request.form)
    with sim.lock:
        answer = {
            "forwardUrl": f"{sim.base_url()}/payment/web/pay/{order['id']}",
            "test": "false" if account.get("live") else "true",
            "mid": account.get("mid", ""),
            **{f"cdata{i}": order["fields"].get(f"cdata{i}", "") for i in range(1, 5)},
            **({"custom_data": order["fields"]["custom_data"]} if order["fields"].get("custom_data") else {}),
            "order": sim._order_json(order),
        }
    return jsonify(answer)


@blueprint.get("/v2/security-settings")
def security_settings():
    """The account's security settings as hipay-fullservice-sdk-php reads them (``hashingAlgorithm``;
    the SDK's HashAlgorithm names: SHA1, SHA256, SHA512)."""
    sim = current_simulator()
    _user, account = sim._authenticate()
    return jsonify({"hashingAlgorithm": account.get("hash_algorithm", "sha256").upper()})


@blueprint.post("/v1/maintenance/transaction/<reference>")
def maintenance(reference):
    sim = current_simulator()
    user, _ = sim._authenticate()
    operation = (request.form.get("operation") or "").lower()
    with sim.lock:
        tx, statuses = sim._maintenance(user, reference, request.form)
        answer = sim._operation_json(tx, operation, statuses[0])
    sim.send_notifications(reference, statuses)
    return jsonify(answer)


@blueprint.get("/v1/transaction")
def order_transactions():
    sim = current_simulator()
    user, _ = sim._authenticate()
    orderid = request.args.get("orderid", "")
    if not orderid:
        raise ApiError(400, 1010101, "Required Parameter Missing", "orderid")
    with sim.lock:
        orders = [o for o in sim.orders.values() if o["user"] == user and o["fields"]["orderid"] == orderid]
        if not orders:
            raise ApiError(404, 3000001, "Unknown Order", f"no order {orderid} for this account")
        found = [sim._transaction_json(tx) for tx in sim.transactions.values()
                 if any(tx["order"] == o["id"] for o in orders)]
    return jsonify({"transaction": found[0] if len(found) == 1 else found})


@blueprint.get("/v1/transaction/<reference>")
def transaction(reference):
    sim = current_simulator()
    user, _ = sim._authenticate()
    with sim.lock:
        tx = sim.transactions.get(reference)
        if tx is None or tx["user"] != user:
            raise ApiError(404, 3000002, "Unknown Transaction", f"no transaction {reference} for this account")
        return jsonify({"transaction": sim._transaction_json(tx)})


# ====================================================================== HTTP: hosted page
_known_order = HostedPages(blueprint, "orders", missing=lambda sim: sim._order_page(
    "Unknown payment", status=404, message="This payment page does not exist."))


def _no_challenge(sim, order=None):
    """No such page, or no 3-D Secure challenge waits on it: 404 to look at, 409 to answer."""
    return sim._order_page("3-D Secure", status=404 if request.method == "GET" else 409,
                           message="No 3-D Secure challenge is waiting.")


_challenges = HostedPages(blueprint, "orders", status="3ds", conflict=_no_challenge, missing=_no_challenge)


@_known_order.get("/payment/web/pay/<page_id>")
def page(sim, order):
    if order["status"] == "done":
        return sim._order_page("Payment", order, status=410, message="This payment page has been used.")
    return sim._order_page("Payment", order, form=True)


@_known_order.post("/payment/web/pay/<page_id>")
def submit(sim, order):
    with sim.lock:
        if order["status"] != "page":
            return sim._order_page("Payment", order, status=409, message="This payment page has been used.")
        if request.form.get("action") == "cancel":
            order["status"] = "done"
            return redirect(sim._redirect_url(order, "cancel", None), code=303)
        number = "".join((request.form.get("card_number") or "").split())
        if not number.isdigit() or not 12 <= len(number) <= 19:
            return sim._order_page("Payment", order, form=True, status=400,
                                   error="The card number must be 12 to 19 digits.")
        indicator = order["fields"].get("authentication_indicator", "1")
        if (number == CARD_3DS and indicator != "0") or (number == CARD_SUCCESS and indicator == "2"):
            order["status"] = "3ds"
            order["card"] = number
            return redirect(f"{sim.base_url()}/payment/web/pay/{order['id']}/3ds", code=303)
        target, tx, statuses = sim._settle(order, number, three_ds=False,
                                           authorized=number in (CARD_SUCCESS, CARD_3DS), declined=113)
    sim._notify_sequence(tx["reference"], statuses)
    return redirect(target, code=303)


@_challenges.get("/payment/web/pay/<page_id>/3ds")
def challenge(sim, order):
    return sim._order_page("3-D Secure", order, challenge=True, code=THREE_DS_CODE)


@_challenges.post("/payment/web/pay/<page_id>/3ds")
def challenge_submit(sim, order):
    passed = (request.form.get("code") or "").strip() == THREE_DS_CODE
    with sim.lock:
        if order["status"] != "3ds":  # answered meanwhile
            return _no_challenge(sim)
        target, tx, statuses = sim._settle(order, order["card"], three_ds=True, authorized=passed, declined=109)
    sim._notify_sequence(tx["reference"], statuses)
    return redirect(target, code=303)

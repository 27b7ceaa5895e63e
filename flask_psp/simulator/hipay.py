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
import hashlib
import secrets
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Response, g, jsonify, redirect, render_template_string, request
from iso4217 import Currency

from . import DEFAULT_RETRY_DELAYS, Delivery, Notifier, ProviderSimulator

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


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, description: str = ""):
        super().__init__(message)
        self.status, self.code, self.message, self.description = status, code, message, description


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


class HiPaySimulator(ProviderSimulator):
    """``accounts``: ``{api_username: {"password", "passphrase", "hash_algorithm", "mid", "live", "name"}}``."""

    name = "hipay"

    def __init__(self, accounts: dict | None = None, notifier: Notifier | None = None,
                 retry_delays=DEFAULT_RETRY_DELAYS, repeats=REPEATS):
        super().__init__(accounts=DEFAULT_ACCOUNTS if accounts is None else accounts, notifier=notifier,
                         retry_delays=retry_delays)
        for user, account in self.accounts.items():
            if account.get("hash_algorithm", "sha256") not in HASHES or not account.get("passphrase"):
                raise ValueError(f"HiPay account {user}: needs a passphrase and a hash_algorithm among {HASHES}")
        self.repeats = tuple(repeats)
        #: maintenance operations ("capture", "refund") the acquirer refuses after HiPay took them:
        #: the answer says requested (117, 124), the notification that follows says refused (173, 165)
        self.refused_operations: set[str] = set()
        self.orders: dict[str, dict] = {}  # page id -> order
        self.transactions: dict[str, dict] = {}  # transaction_reference -> transaction
        self.api_calls: list[dict] = []
        self._routes()

    # ================================================================== Python-side helpers
    def reset(self) -> None:
        with self.lock:
            self.orders.clear()
            self.transactions.clear()
            self.api_calls.clear()

    def describe(self) -> list[str]:
        lines = [f"API user {user} / {a['password']}, passphrase {a['passphrase']} ({a.get('hash_algorithm', 'sha256')})"
                 for user, a in self.accounts.items()]
        return lines + [f"card {number}: {meaning}" for number, meaning in TEST_CARDS]

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

    # ================================================================== maintenance
    def _maintenance(self, user: str, reference: str, form) -> tuple[dict, list[int]]:
        tx = self.transactions.get(reference)
        if tx is None or tx["user"] != user:
            raise ApiError(404, 3000002, "Transaction not found", f"no transaction {reference} for this account")
        operation = (form.get("operation") or "").lower()
        amount_text = form.get("amount")
        currency = tx["currency"]
        status = tx["status"]
        if operation == "capture":
            remaining = tx["authorized"] - tx["captured"]
            if status not in (116, 119) or remaining <= 0:
                raise ApiError(403, 3020105, "Action denied : Wrong transaction status",
                               f"the transaction is in status {status}")
            amount = _minor(amount_text, currency, "amount") if amount_text else remaining
            if amount > remaining:
                raise ApiError(400, 3020107, "Amount too high", f"at most {_decimal(remaining, currency)} can be captured")
            if "capture" in self.refused_operations:
                return self._refused(tx, 117, 173)
            tx["captured"] += amount
            self._reach(tx, 117)
            self._reach(tx, 118 if tx["captured"] == tx["authorized"] else 119)
            return tx, [117, tx["status"]]
        if operation == "refund":
            remaining = tx["captured"] - tx["refunded"]
            if status not in (118, 119, 124, 125, 126) or remaining <= 0:
                raise ApiError(403, 3020105, "Action denied : Wrong transaction status",
                               f"the transaction is in status {status}")
            amount = _minor(amount_text, currency, "amount") if amount_text else remaining
            if amount > remaining:
                raise ApiError(400, 3020107, "Amount too high", f"at most {_decimal(remaining, currency)} can be refunded")
            if "refund" in self.refused_operations:
                return self._refused(tx, 124, 165)
            tx["refunded"] += amount
            self._reach(tx, 124)
            self._reach(tx, 125 if tx["refunded"] == tx["captured"] else 126)
            return tx, [124, tx["status"]]
        if operation == "cancel":
            if status != 116 or tx["captured"]:
                raise ApiError(403, 3020105, "Action denied : Wrong transaction status",
                               f"the transaction is in status {status}")
            self._reach(tx, 175)
            self._reach(tx, 115)
            return tx, [175, 115]
        raise ApiError(400, 1010201, "Invalid Parameter", "operation: capture, refund or cancel")

    def _refused(self, tx: dict, requested: int, refused: int) -> tuple[dict, list[int]]:
        """A request taken, then refused by the acquirer: nothing moved, the transaction is back
        where it was (another attempt may be made)."""
        before = tx["status"]
        self._reach(tx, requested)
        self._reach(tx, refused)
        tx["status"] = before
        return tx, [requested, refused]

    def _operation_json(self, tx: dict, operation: str, status: int) -> dict:
        account = self.accounts[tx["user"]]
        authorized, captured, refunded, date = tx["snapshots"][status]
        currency = tx["currency"]
        return {
            "operation": operation,
            "test": "false" if account.get("live") else "true",
            "mid": account.get("mid", ""),
            "authorizationCode": "test123",
            "transactionReference": tx["reference"],
            "dateCreated": tx["created"],
            "dateUpdated": date,
            "dateAuthorized": tx["authorized_at"] or "",
            "status": str(status),
            "message": MESSAGES.get(status, ""),
            "authorizedAmount": _decimal(authorized, currency),
            "capturedAmount": _decimal(captured, currency),
            "refundedAmount": _decimal(refunded, currency),
            "decimals": str(_exponent(currency)),
            "currency": currency,
        }

    def _transaction_json(self, tx: dict) -> dict:
        """A transaction as the transaction information service shows it, in its current status."""
        account = self.accounts[tx["user"]]
        order = self.orders[tx["order"]]
        status = tx["status"]
        authorized, captured, refunded, date = tx["snapshots"].get(
            status, (tx["authorized"], tx["captured"], tx["refunded"], tx["created"]))
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
            "transactionReference": tx["reference"],
            "dateCreated": tx["created"],
            "dateUpdated": date,
            "dateAuthorized": tx["authorized_at"] or "",
            "status": str(status),
            "message": MESSAGES.get(status, ""),
            "authorizedAmount": _decimal(authorized, currency),
            "capturedAmount": _decimal(captured, currency),
            "refundedAmount": _decimal(refunded, currency),
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

    # ================================================================== HTTP
    def _routes(self) -> None:
        app = self.app
        app.json.sort_keys = False

        @app.errorhandler(ApiError)
        def api_error(error: ApiError):
            return jsonify({"code": error.code, "message": error.message, "description": error.description}), error.status

        @app.before_request
        def record():
            if request.path.startswith("/v1/"):
                call = {"method": request.method, "path": request.path, "args": request.args.to_dict(),
                        "form": request.form.to_dict(), "accept": request.headers.get("Accept"), "status": None}
                g.api_call = call
                with self.lock:
                    self.api_calls.append(call)

        @app.after_request
        def record_answer(response):
            call = g.get("api_call")
            if call is not None:
                call["status"] = response.status_code
            return response

        @app.post("/v1/hpayment")
        def hpayment():
            user, account = self._authenticate()
            order = self._create_order(user, account, request.form)
            with self.lock:
                answer = {
                    "forwardUrl": f"{self.base_url()}/payment/web/pay/{order['id']}",
                    "test": "false" if account.get("live") else "true",
                    "mid": account.get("mid", ""),
                    **{f"cdata{i}": order["fields"].get(f"cdata{i}", "") for i in range(1, 5)},
                    "order": self._order_json(order),
                }
            return jsonify(answer)

        @app.post("/v1/maintenance/transaction/<reference>")
        def maintenance(reference):
            user, _ = self._authenticate()
            operation = (request.form.get("operation") or "").lower()
            with self.lock:
                tx, statuses = self._maintenance(user, reference, request.form)
                answer = self._operation_json(tx, operation, statuses[0])
            self.send_notifications(reference, statuses)
            return jsonify(answer)

        @app.get("/v1/transaction")
        def order_transactions():
            user, _ = self._authenticate()
            orderid = request.args.get("orderid", "")
            if not orderid:
                raise ApiError(400, 1010101, "Required Parameter Missing", "orderid")
            with self.lock:
                orders = [o for o in self.orders.values() if o["user"] == user and o["fields"]["orderid"] == orderid]
                if not orders:
                    raise ApiError(404, 3000001, "Unknown Order", f"no order {orderid} for this account")
                found = [self._transaction_json(tx) for tx in self.transactions.values()
                         if any(tx["order"] == o["id"] for o in orders)]
            return jsonify({"transaction": found[0] if len(found) == 1 else found})

        @app.get("/v1/transaction/<reference>")
        def transaction(reference):
            user, _ = self._authenticate()
            with self.lock:
                tx = self.transactions.get(reference)
                if tx is None or tx["user"] != user:
                    raise ApiError(404, 3000002, "Unknown Transaction", f"no transaction {reference} for this account")
                return jsonify({"transaction": self._transaction_json(tx)})

        # ---------------------------------------------------------------- hosted page
        @app.get("/payment/web/pay/<page_id>")
        def page(page_id):
            order = self.orders.get(page_id)
            if order is None:
                return self._page("Unknown payment", status=404, message="This payment page does not exist.")
            if order["status"] == "done":
                return self._page("Payment", order=order, status=410, message="This payment page has been used.")
            return self._page("Payment", order=order, form=True)

        @app.post("/payment/web/pay/<page_id>")
        def submit(page_id):
            order = self.orders.get(page_id)
            if order is None:
                return self._page("Unknown payment", status=404, message="This payment page does not exist.")
            with self.lock:
                if order["status"] != "page":
                    return self._page("Payment", order=order, status=409, message="This payment page has been used.")
                if request.form.get("action") == "cancel":
                    order["status"] = "done"
                    return redirect(self._redirect_url(order, "cancel", None), code=303)
                number = "".join((request.form.get("card_number") or "").split())
                if not number.isdigit() or not 12 <= len(number) <= 19:
                    return self._page("Payment", order=order, form=True, status=400,
                                      error="The card number must be 12 to 19 digits.")
                indicator = order["fields"].get("authentication_indicator", "1")
                challenge = (number == CARD_3DS and indicator != "0") or (number == CARD_SUCCESS and indicator == "2")
                if challenge:
                    order["status"] = "3ds"
                    order["card"] = number
                    return redirect(f"{self.base_url()}/payment/web/pay/{page_id}/3ds", code=303)
                order["status"] = "done"
                tx = self._new_transaction(order, number, three_ds=False)
                if number in (CARD_SUCCESS, CARD_3DS):
                    page_name, statuses = self._authorize(order, tx)
                else:
                    page_name, statuses = self._decline(tx, 113)
                target = self._redirect_url(order, page_name, tx)
            self._notify_sequence(tx["reference"], statuses)
            return redirect(target, code=303)

        @app.get("/payment/web/pay/<page_id>/3ds")
        def challenge(page_id):
            order = self.orders.get(page_id)
            if order is None or order["status"] != "3ds":
                return self._page("3-D Secure", status=404, message="No 3-D Secure challenge is waiting.")
            return self._page("3-D Secure", order=order, challenge=True, code=THREE_DS_CODE)

        @app.post("/payment/web/pay/<page_id>/3ds")
        def challenge_submit(page_id):
            order = self.orders.get(page_id)
            with self.lock:
                if order is None or order["status"] != "3ds":
                    return self._page("3-D Secure", status=409, message="No 3-D Secure challenge is waiting.")
                order["status"] = "done"
                tx = self._new_transaction(order, order["card"], three_ds=True)
                if (request.form.get("code") or "").strip() == THREE_DS_CODE:
                    page_name, statuses = self._authorize(order, tx)
                else:
                    page_name, statuses = self._decline(tx, 109)
                target = self._redirect_url(order, page_name, tx)
            self._notify_sequence(tx["reference"], statuses)
            return redirect(target, code=303)

    def _page(self, title: str, status: int = 200, order: dict | None = None, **context) -> Response:
        fields = order["fields"] if order else {}
        account = self.accounts.get(order["user"], {}) if order else {}
        html = render_template_string(
            _PAGE, title=title, order=order, cards=TEST_CARDS,
            merchant=fields.get("merchant_display_name") or account.get("name"),
            theme=fields.get("theme_code"), language=fields.get("language", "en_GB"),
            amount=f"{_decimal(order['amount'], order['currency'])} {order['currency']}" if order else None,
            **context,
        )
        return Response(html, status=status, mimetype="text/html")


_PAGE = """<!doctype html>
<html lang="{{ language[:2] }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · HiPay simulator</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  .box { border: 1px solid #ccc; border-radius: 8px; padding: 1rem 1.25rem; }
  .amount { font-size: 1.6rem; font-weight: bold; }
  label { display: block; margin-top: .75rem; }
  input { width: 100%; padding: .4rem; font-size: 1rem; box-sizing: border-box; }
  button { margin-top: 1rem; padding: .5rem 1rem; font-size: 1rem; }
  .error { color: #a00; }
  .note { color: #666; font-size: .85rem; }
  td { padding: .2rem .5rem; border-top: 1px solid #eee; }
</style>
</head>
<body>
<p class="note">HiPay simulator — no real card is charged.{% if theme %} Theme: {{ theme }}.{% endif %}</p>
<main class="box">
<h1>{{ title }}</h1>
{% if order %}
  {% if merchant %}<p id="merchant">{{ merchant }}</p>{% endif %}
  <p class="amount">{{ amount }}</p>
  <p class="note">{{ order.fields.description }}</p>
{% endif %}
{% if message %}<p>{{ message }}</p>{% endif %}
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
{% if form %}
<form method="post">
  <label>Card number <input name="card_number" inputmode="numeric" autocomplete="cc-number"></label>
  <label>Expiry (MM/YY) <input name="expiry" autocomplete="cc-exp"></label>
  <label>CVC <input name="cvc" inputmode="numeric" autocomplete="cc-csc"></label>
  <button name="action" value="pay">Pay {{ amount }}</button>
  <button name="action" value="cancel">Cancel</button>
</form>
<table><caption>Test cards (any future expiry, any CVC)</caption>
{% for number, meaning in cards %}<tr><td><code>{{ number }}</code></td><td>{{ meaning }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if challenge %}
<form method="post">
  <p>Your bank asks you to confirm this payment. The test code is <code>{{ code }}</code>.</p>
  <label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code"></label>
  <button type="submit">Confirm</button>
</form>
{% endif %}
</main>
</body>
</html>
"""

"""HiPay Enterprise (formerly TPP / Fullservice): hosted payment page over plain HTTP.

No maintained Python SDK exists; facts and sources are in ``PROVIDERS.md`` (HiPay's own PHP SDK and
gateway documentation).

* ``POST /v1/hpayment`` (HTTP Basic with the API user and password, form-urlencoded, ``Accept:
  application/json``) opens the hosted page and answers ``forwardUrl``.
* The buyer comes back to one of five redirect URLs, all ``/return/<token>?hipay_page=…``. HiPay adds
  the transaction's parameters and a ``hash`` (the parameters sorted by name, each non-empty one as
  ``name + value + passphrase``, hashed). The redirect never marks a payment paid: a verified hash may
  only report a refusal or the buyer's cancellation; the money comes with the notifications.
* Notifications are form-urlencoded POSTs signed with ``X-ALLOPASS-SIGNATURE`` = hex
  ``hash(raw body + passphrase)`` (sha1, sha256 or sha512, an account setting). One transaction sends
  several (142, 116, 117, 118…), some more than once, in no guaranteed order: each is read as an
  absolute snapshot (``captured_amount``, ``refunded_amount``), so the ledger ends in the right state
  whatever the order, and a repeated one is a duplicate.
* Captures, refunds and cancellations: ``POST /v1/maintenance/transaction/{reference}``. HiPay
  answers "requested" (117, 124, 175): the payment awaits the notification of the outcome, or of
  the refusal (173 capture refused, 165 refund refused).
* The scheduled jobs ask HiPay itself: ``GET /v1/transaction?orderid=<token>`` on the gateway
  (HTTP Basic; hipay/openapi-hipay ``enterprise/gateway.yaml``, operation
  ``getTransactionsByReference``) answers the order's transactions — one as an object, several as a
  list (how HiPay's PHP and Node.js SDKs read it). The answer is proof because HiPay gave it to our
  authenticated call; it is read like a notification of the same status, with the same dedupe key,
  so news already notified is a duplicate and a repeated check changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..money import UnknownCurrency, from_decimal_string, to_decimal_string
from ..events import psp_time
from .base import (
    CheckoutRequest,
    CheckoutStart,
    CredentialField,
    Event,
    EventKind,
    InboundRequest,
    MalformedNotification,
    NotAuthentic,
    Provider,
    ProviderError,
    VerifiedMessage,
)

API_URLS = {"test": "https://stage-api.hipay.com", "live": "https://api.hipay.com"}
GATEWAY_URLS = {
    "test": "https://stage-secure-gateway.hipay-tpp.com/rest",
    "live": "https://secure-gateway.hipay-tpp.com/rest",
}
#: the hosts of API_URLS and GATEWAY_URLS: an endpoint override names one base for both
OWN_HOSTS = {
    "test": ("stage-api.hipay.com", "stage-secure-gateway.hipay-tpp.com"),
    "live": ("api.hipay.com", "secure-gateway.hipay-tpp.com"),
}
HASH_ALGORITHMS = ("sha256", "sha1", "sha512")
#: how the merchant reads them in HiPay's back office
HASH_NAMES = {"sha1": "SHA-1", "sha256": "SHA-256", "sha512": "SHA-512"}
SIGNATURE_HEADER = "X-Allopass-Signature"
#: our marker on the five redirect URLs (HiPay adds its own parameters beside it)
PAGE_PARAM = "hipay_page"
REDIRECT_PAGES = ("accept", "decline", "pending", "exception", "cancel")

AUTHENTICATION_INDICATOR = {"always": "2", "when_required": "1", "frictionless": "1"}
LANGUAGES = {"fr": "fr_FR", "en": "en_GB", "de": "de_DE", "es": "es_ES", "it": "it_IT", "nl": "nl_NL", "pt": "pt_PT"}

# status codes (HiPay gateway documentation, appendix "Payment status"; hipay-fullservice-sdk-php
# ``TransactionStatus``; 143 and 178, absent from both, as HiPay's own Shopware module reads them)
PENDING = {112, 140, 142, 200}
AUTHORIZED = {116}
CAPTURED = {118, 119, 120, 121, 122, 123}
#: statuses that can only follow a capture: their captured_amount proves money was taken
AFTER_CAPTURE = {124, 125, 126, 129}
REFUNDED = {125, 126}
FAILED = {109, 110, 111, 113, 151, 163, 178}
EXPIRED = {114}
CANCELLED = {115, 143}
CAPTURE_FAILED = {173}
REFUND_FAILED = {165}
CHARGEBACK = {129}
#: a maintenance answer in these statuses took the request only: the outcome follows by notification
REQUESTED = {117: "capture", 124: "refund", 175: "cancel"}
#: statuses an attempt reaches only once the money was authorized: that attempt decides the order
TOOK_MONEY = AUTHORIZED | CAPTURED | AFTER_CAPTURE | CHARGEBACK | CAPTURE_FAILED | REFUND_FAILED | set(REQUESTED)
#: the gateway's "Unknown Order" and "Unknown Transaction" error codes (its appendix "Error codes")
UNKNOWN = {"3000001", "3000002"}
STATUS_NAMES = {
    109: "authentication failed", 110: "blocked", 111: "denied", 112: "authorized and pending",
    113: "refused", 114: "expired", 115: "cancelled", 116: "authorized", 117: "capture requested",
    118: "captured", 119: "partially captured", 120: "collected", 121: "partially collected",
    122: "settled", 123: "partially settled", 124: "refund requested", 125: "refunded",
    126: "partially refunded", 129: "charged back", 140: "authentication requested", 142: "authorization requested",
    143: "authorization cancelled",
    151: "acquirer not found", 163: "authorization refused", 165: "refund refused", 173: "capture refused",
    175: "authorization cancellation requested", 178: "soft decline", 200: "pending payment",
}


# ---------------------------------------------------------------------------- signatures (pure functions)
def body_signature(body: bytes, passphrase: str, algorithm: str = "sha256") -> str:
    """``X-ALLOPASS-SIGNATURE`` of a notification: hex hash of the raw body followed by the passphrase."""
    if algorithm not in HASH_ALGORITHMS:
        raise ValueError(f"unknown HiPay hash algorithm {algorithm!r}")
    return hashlib.new(algorithm, body + passphrase.encode("utf-8")).hexdigest()


def redirect_hash(params: Mapping[str, str], passphrase: str, algorithm: str = "sha256") -> str:
    """The ``hash`` of a redirect: parameters sorted by name, ``hash`` and empty values left out, each
    contributing ``name + value + passphrase``."""
    if algorithm not in HASH_ALGORITHMS:
        raise ValueError(f"unknown HiPay hash algorithm {algorithm!r}")
    text = "".join(
        f"{name}{value}{passphrase}" for name, value in sorted(params.items()) if name != "hash" and value != ""
    )
    return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()


def _same(expected: str, given: str | None) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), (given or "").strip().lower().encode("ascii", "replace"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _status(transaction: Mapping[str, Any]) -> int:
    try:
        return int(str(transaction.get("status") or "").strip())
    except ValueError:
        return 0


def _order_id(transaction: Mapping[str, Any]) -> str | None:
    order = transaction.get("order")
    return str(order["id"]) if isinstance(order, dict) and order.get("id") else None


def _deciding(transactions: list[dict[str, Any]]) -> dict[str, Any]:
    """An order may hold several attempts (a refused card, then another): the one that reached an
    authorization decides it, else the latest attempt. Applying them all would let an older
    refusal give the payment its PSP reference and the later success be refused as another's."""

    def latest(item: tuple[int, dict[str, Any]]) -> tuple[int, str, int]:
        index, transaction = item
        try:
            attempt = int(str(transaction.get("attemptId") or 0))
        except ValueError:
            attempt = 0
        return attempt, str(transaction.get("dateCreated") or ""), index

    took_money = [t for t in transactions if _status(t) in TOOK_MONEY]
    return max(enumerate(took_money or transactions), key=latest)[1]


class HiPayProvider(Provider):
    name = "hipay"
    display_name = "HiPay Enterprise"
    credential_fields = (
        CredentialField("api_username", "API username"),
        CredentialField("api_password", "API password", secret=True),
        CredentialField("secret_passphrase", "Secret passphrase", secret=True),
        CredentialField("hash_algorithm", "Hash algorithm", required=False, choices=HASH_ALGORITHMS, default="sha256"),
    )
    own_hosts = OWN_HOSTS
    three_ds_mapping = {"always": "authentication_indicator=2", "when_required": "authentication_indicator=1",
                        "frictionless": "authentication_indicator=1"}
    look_field = ("hipay_theme_code", "HiPay theme code (theme_code)")

    # ------------------------------------------------------------------ settings
    @classmethod
    def notification_mode(cls, inbound: InboundRequest) -> str | None:
        fields = cls._parse_form(inbound)
        test = (fields.get("test") or "").strip().lower()
        if test in ("true", "1"):
            return "test"
        if test in ("false", "0"):
            return "live"
        return None

    def hosted_page_hosts(self) -> set[str]:
        # forwardUrl: hpayment's page on the gateway host (HiPay's documentation samples:
        # stage-secure-gateway.hipay-tpp.com/payment/web/pay/…); ⚠ the Hosted Page v2 host is not
        # confirmed: PSP_EXTRA_REDIRECT_HOSTS adds it
        return {"stage-secure-gateway.hipay-tpp.com", "secure-gateway.hipay-tpp.com", "stage-api.hipay.com",
                "api.hipay.com"}

    @property
    def hash_algorithm(self) -> str:
        return self.credentials.get("hash_algorithm") or "sha256"

    @property
    def passphrase(self) -> str:
        return self.credentials["secret_passphrase"]

    def _base(self, table: dict[str, str]) -> str:
        if self.config.endpoint:
            return self.config.endpoint.rstrip("/")
        return table["live" if self.config.mode == "live" else "test"]

    def _call(
        self, method: str, url: str, data: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        response = self.http_call(
            method,
            url,
            data=data,
            params=params,
            auth=(self.credentials["api_username"], self.credentials["api_password"]),
            headers={"Accept": "application/json"},
        )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return response.status_code, answer

    def _error(self, what: str, status: int, answer: Any) -> ProviderError:
        if status == 401:
            return ProviderError("HiPay refused the API username or password", status=status)
        detail = ""
        if isinstance(answer, dict):
            detail = ": " + "; ".join(str(answer[k]) for k in ("message", "description") if answer.get(k))
            if answer.get("code"):
                detail += f" (code {answer['code']})"
        return ProviderError(f"HiPay refused the {what} (HTTP {status}){detail}", status=status,
                             retryable=status >= 500)

    # ------------------------------------------------------------------ checkout
    def build_hpayment(self, request: CheckoutRequest) -> dict[str, str]:
        try:
            amount = to_decimal_string(request.amount, request.currency)
        except UnknownCurrency as exc:
            raise ProviderError(str(exc)) from None
        fields = {
            "orderid": request.token,
            "operation": "Authorization" if self.config.capture == "manual" else "Sale",
            "description": (request.description or f"Order {request.order_ref}")[:255],
            "currency": request.currency,
            "amount": amount,
            "notify_url": request.notify_url,
            "language": LANGUAGES.get((request.locale or "en")[:2].lower(), "en_GB"),
            "authentication_indicator": AUTHENTICATION_INDICATOR.get(self.config.three_ds, "1"),
            "eci": "7",
            # the cdata1…cdata10 fields are legacy (hipay-fullservice-sdk-php CHANGELOG: "Remove CDATA
            # parameters (Use custom_data now)"); custom_data is a JSON object
            "custom_data": json.dumps({"order_ref": request.order_ref}, separators=(",", ":")),
        }
        for page in REDIRECT_PAGES:
            fields[f"{page}_url"] = _with_query(request.return_url, **{PAGE_PARAM: page})
        look = request.provider_look or {}
        if look.get("hipay_theme_code"):
            fields["theme_code"] = look["hipay_theme_code"]
        if request.brand_name:
            fields["merchant_display_name"] = request.brand_name[:32]
        if request.email:
            fields["email"] = request.email
        # PSD2 buyer data (hipay-fullservice-sdk-php CustomerBillingInfoRequest and
        # CustomerShippingInfoRequest: the shipping fields are the billing ones prefixed shipto_)
        for prefix, address in (("", request.billing), ("shipto_", request.shipping_address())):
            if address is None:
                continue
            for theirs, value in (("firstname", address.first_name), ("lastname", address.last_name),
                                  ("recipientinfo", address.company), ("streetaddress", address.line1),
                                  ("streetaddress2", address.line2), ("zipcode", address.postcode),
                                  ("city", address.city), ("country", address.country), ("phone", address.phone)):
                if value:
                    fields[prefix + theirs] = value
        return fields

    def start_checkout(self, request: CheckoutRequest, payment_mode: str) -> CheckoutStart:
        status, answer = self._call("POST", self._base(API_URLS) + "/v1/hpayment", self.build_hpayment(request))
        if status not in (200, 201) or not isinstance(answer, dict):
            raise self._error("payment page", status, answer)
        url = answer.get("forwardUrl")
        if not url:
            raise ProviderError("HiPay's answer has no forwardUrl")
        return CheckoutStart(psp_reference=None, redirect_url=url)

    # ------------------------------------------------------------------ reading HiPay's news
    @staticmethod
    def _parse_form(inbound: InboundRequest) -> dict[str, str]:
        return inbound.form_fields()

    def _amount(self, value: Any, currency: str | None) -> int | None:
        if value in (None, "") or not currency:
            return None
        try:
            return from_decimal_string(str(value), currency)
        except (ValueError, UnknownCurrency):
            raise MalformedNotification(f"unreadable amount {value!r} {currency}") from None

    def snapshot_message(self, snap: dict[str, Any], event_type: str) -> VerifiedMessage:
        """One proven snapshot of a HiPay transaction (notification or maintenance answer) as events.

        ``snap``: reference, status, currency, authorized, captured, refunded (decimal strings),
        test, message, reason, order_id."""
        try:
            status = int(str(snap.get("status") or "").strip())
        except ValueError:
            raise MalformedNotification(f"unreadable HiPay status {snap.get('status')!r}") from None
        reference = str(snap.get("reference") or "").strip()
        if not reference:
            raise MalformedNotification("the HiPay news has no transaction reference")
        currency = (snap.get("currency") or "").upper() or None
        authorized = self._amount(snap.get("authorized"), currency)
        # None: not said (then a capture is of what was authorized); 0 said is 0
        said_captured = self._amount(snap.get("captured"), currency)
        captured = said_captured or 0
        refunded = self._amount(snap.get("refunded"), currency) or 0
        name = STATUS_NAMES.get(status, "unknown status")
        reason = f"HiPay status {status} ({name})"
        detail = snap.get("reason") or snap.get("message")
        if detail and str(detail).lower() != name:
            reason += f": {detail}"
        full = authorized or None

        events: list[Event] = []
        if status in CAPTURED or (status in AFTER_CAPTURE and captured):
            # the amount is checked by the ledger: a capture for less than the payment is no payment
            events.append(Event(EventKind.CAPTURED, amount=full, currency=currency,
                                captured_total=said_captured if said_captured is not None else full, reason=reason))
        elif status in AUTHORIZED:
            events.append(Event(EventKind.AUTHORIZED, amount=full, currency=currency, authorized_total=full,
                                reason=reason))
        elif status in PENDING:
            events.append(Event(EventKind.PENDING))  # no reason: the ledger would take it for a failure reason
        elif status in FAILED:
            events.append(Event(EventKind.FAILED, reason=reason))
        elif status in EXPIRED:
            events.append(Event(EventKind.EXPIRED, reason=reason))
        elif status in CANCELLED:
            events.append(Event(EventKind.CANCELLED, reason=reason))
        elif status in CAPTURE_FAILED:
            events.append(Event(EventKind.CAPTURE_FAILED, reason=reason))
        elif status in REFUND_FAILED:
            events.append(Event(EventKind.REFUND_FAILED, reason=reason))
        if status in REFUNDED and refunded:
            events.append(Event(EventKind.REFUNDED, refunded_total=refunded, reason=reason))
        if status in CHARGEBACK:
            events.append(Event(EventKind.CHARGEBACK, reason=reason))
        # 117, 124, 175 and other steps: recorded in the inbox, nothing moves until the outcome arrives

        test = str(snap.get("test") or "").strip().lower()
        mode = "test" if test in ("true", "1") else "live" if test in ("false", "0") else self.config.mode
        return VerifiedMessage(
            provider=self.name,
            dedupe_key=f"hipay:{reference}:{status}:{captured}:{refunded}",
            events=events,
            mode=mode,
            event_type=f"{event_type} {status}",
            psp_reference=reference,
            payment_token=snap.get("order_id") or None,
            merchant_reference=snap.get("order_id") or None,
            raw=snap.get("raw"),
        )

    def _signature_problem(self, body: bytes, signature: str) -> str:
        """Why a notification's signature is refused. HiPay's PHP SDK defaults to SHA-1 and other
        integrations to SHA-256: a signature that matches the passphrase with another algorithm
        than the configured one is still refused (that is the setting's point), but the merchant is
        told which one and what to set."""
        configured = HASH_NAMES[self.hash_algorithm]
        for algorithm in HASH_ALGORITHMS:
            if algorithm != self.hash_algorithm and _same(body_signature(body, self.passphrase, algorithm), signature):
                return (f"signed with {HASH_NAMES[algorithm]}, not {configured} as configured: set the hash algorithm "
                        f"to {algorithm} in the panel, or change it to {configured} in HiPay's back office "
                        "(Integration → Security settings)")
        return f"X-ALLOPASS-SIGNATURE does not match ({self.hash_algorithm} with the passphrase)"

    def verify_notification(self, inbound: InboundRequest) -> list[VerifiedMessage]:
        signature = _header(inbound.headers, SIGNATURE_HEADER)
        if not signature:
            raise NotAuthentic("the notification has no X-ALLOPASS-SIGNATURE header")
        if not _same(body_signature(inbound.body, self.passphrase, self.hash_algorithm), signature):
            raise NotAuthentic(self._signature_problem(inbound.body, signature))
        fields = self._parse_form(inbound)
        if not fields.get("status") or not fields.get("transaction_reference"):
            raise MalformedNotification("a HiPay notification carries status and transaction_reference")
        snap = {
            "reference": fields["transaction_reference"],
            "status": fields["status"],
            "currency": fields.get("currency") or fields.get("order[currency]"),
            "authorized": fields.get("authorized_amount"),
            "captured": fields.get("captured_amount"),
            "refunded": fields.get("refunded_amount"),
            "test": fields.get("test"),
            "message": fields.get("message"),
            "reason": fields.get("reason"),
            "order_id": fields.get("order[id]"),
            "raw": fields,
        }
        message = self.snapshot_message(snap, "notification")
        occurred_at = psp_time(fields.get("date_updated"))
        for event in message.events:
            event.occurred_at = occurred_at
        return [message]

    def handle_return(self, payment: Any, inbound: InboundRequest) -> list[VerifiedMessage]:
        """The redirect proves nothing about money. With a valid ``hash`` it may report a refusal or the
        buyer's cancellation; a wrong hash is refused. Otherwise HiPay is asked (:meth:`fetch`, an
        authenticated call), so a buyer back from an accepted payment sees it paid without waiting for
        the notifications."""
        params = dict(inbound.args)
        given = params.get("hash")
        if not given:
            return self.fetch(payment)
        page = params.get(PAGE_PARAM)
        if not _same(redirect_hash(params, self.passphrase, self.hash_algorithm), given):
            # ⚠ no source says whether HiPay's hash covers the merchant's own query parameters: accept a
            # hash over HiPay's parameters alone, but then our page marker is unproven and ignored
            theirs = {k: v for k, v in params.items() if k != PAGE_PARAM}
            if not _same(redirect_hash(theirs, self.passphrase, self.hash_algorithm), given):
                raise NotAuthentic("the redirect's hash does not match")
            page = None
        if params.get("orderid") and params["orderid"] != payment.token:
            raise NotAuthentic("the redirect is about another order")
        state = (params.get("state") or "").lower()
        status = params.get("status") or ""
        test = params.get("test")
        mode = "test" if test in ("1", "true") else "live" if test in ("0", "false") else self.config.mode
        if page == "cancel" and not params.get("reference"):
            event = Event(EventKind.CANCELLED, reason="the buyer cancelled on HiPay's payment page")
        elif state == "declined" or (page == "decline" and status):
            try:
                code = int(status)
            except ValueError:
                code = 0
            kind = EventKind.EXPIRED if code in EXPIRED else EventKind.CANCELLED if code in CANCELLED else EventKind.FAILED
            event = Event(kind, reason=f"HiPay status {status} ({STATUS_NAMES.get(code, 'declined')})")
        else:
            return self.fetch(payment)  # accepted or pending: only HiPay's own copy proves money
        reference = params.get("reference") or None
        return [
            VerifiedMessage(
                provider=self.name,
                dedupe_key=f"hipay:redirect:{payment.token}:{page}:{reference or ''}:{status}",
                events=[event],
                mode=mode,
                event_type=f"redirect {page or state}",
                psp_reference=reference,
                payment_token=payment.token,
                raw={k: v for k, v in params.items() if k != "hash"},
            )
        ]

    # ------------------------------------------------------------------ money operations
    def _maintenance(
        self, payment: Any, operation: str, amount: int | None, asked: int | None = None
    ) -> list[VerifiedMessage]:
        """``amount``: what is sent (None: the whole, as HiPay wants it); ``asked``: what that is."""
        if not payment.psp_reference:
            raise ProviderError("HiPay has not reported a transaction reference for this payment yet")
        data = {"operation": operation}
        if amount is not None:
            data["amount"] = to_decimal_string(amount, payment.currency)
        url = f"{self._base(GATEWAY_URLS)}/v1/maintenance/transaction/{payment.psp_reference}"
        status, answer = self._call("POST", url, data)
        if status not in (200, 201) or not isinstance(answer, dict):
            raise self._error(operation, status, answer)
        snap = {
            "reference": answer.get("transactionReference") or payment.psp_reference,
            "status": answer.get("status"),
            "currency": answer.get("currency") or payment.currency,
            "authorized": answer.get("authorizedAmount"),
            "captured": answer.get("capturedAmount"),
            "refunded": answer.get("refundedAmount"),
            "test": answer.get("test"),
            "message": answer.get("message"),
            "order_id": payment.token,
            "raw": answer,
        }
        message = self.snapshot_message(snap, f"maintenance {operation}")
        try:
            status = int(str(answer.get("status") or "").strip())
        except ValueError:
            status = 0
        if REQUESTED.get(status) == operation:
            # "capture requested" and the like: HiPay took the request, its notifications tell
            # the outcome. The payment awaits them; this answer is news of its own, once.
            message.events.append(Event(EventKind.REQUESTED, currency=payment.currency, operation=operation,
                                        operation_amount=asked))
            message.dedupe_key = f"hipay:{snap['reference']}:request:{operation}:{uuid.uuid4().hex}"
        return [message]

    def capture(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        whole = payment.captured_amount == 0 and amount == payment.authorized_amount
        return self._maintenance(payment, "capture", None if whole else amount, amount)

    def refund(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        whole = payment.refunded_amount == 0 and payment.pending_amount("refund") == 0 and amount == payment.captured_amount
        return self._maintenance(payment, "refund", None if whole else amount, amount)

    def cancel(self, payment: Any) -> list[VerifiedMessage]:
        return self._maintenance(payment, "cancel", None)

    # ------------------------------------------------------------------ asking HiPay
    def fetch(self, payment: Any) -> list[VerifiedMessage]:
        """HiPay's own view of the payment's order, for the scheduled jobs: the transaction that
        decides it, read as its notification would be. Nothing when HiPay holds no transaction for
        the order (the buyer never submitted the page)."""
        url = f"{self._base(GATEWAY_URLS)}/v1/transaction"
        status, answer = self._call("GET", url, params={"orderid": payment.token})
        if status == 404 and isinstance(answer, dict) and str(answer.get("code")) in UNKNOWN:
            return []
        if status != 200:
            raise self._error("transaction lookup", status, answer)
        if not isinstance(answer, dict):
            raise MalformedNotification("HiPay's transaction lookup did not answer a JSON object")
        found = answer.get("transaction") or []
        if isinstance(found, dict):
            found = [found]  # one transaction comes as an object, several as a list
        if not isinstance(found, list) or not all(isinstance(t, dict) for t in found):
            raise MalformedNotification("HiPay's transaction lookup answered something else than transactions")
        ours = [t for t in found if _order_id(t) in (None, payment.token)]
        if not ours:
            return []
        tx = _deciding(ours)
        reason = tx.get("reason")
        order = tx.get("order") if isinstance(tx.get("order"), dict) else {}
        snap = {
            "reference": tx.get("transactionReference"),
            "status": tx.get("status"),
            "currency": tx.get("currency") or order.get("currency") or payment.currency,
            "authorized": tx.get("authorizedAmount"),
            "captured": tx.get("capturedAmount"),
            "refunded": tx.get("refundedAmount"),
            "test": tx.get("test"),
            "message": tx.get("message"),
            "reason": reason.get("message") if isinstance(reason, dict) else reason,
            "order_id": payment.token,
            "raw": tx,
        }
        return [self.snapshot_message(snap, "transaction lookup")]

    def test_connection(self) -> tuple[bool, str]:
        try:
            status, _ = self._call("GET", self._base(GATEWAY_URLS) + "/v1/transaction?orderid=flask-psp-connection-test")
        except ProviderError as exc:
            return False, exc.message
        if status == 401:
            return False, "HiPay refused the API username or password (Integration → Security settings)"
        if status not in (200, 400, 404):
            return False, f"HiPay answered HTTP {status}"
        connected = f"Connected to HiPay Enterprise in {self.config.mode} mode"
        reported = self.account_hash_algorithm()
        configured = HASH_NAMES[self.hash_algorithm]
        if reported is None:
            return True, connected + "; HiPay's security settings could not be read: check in its back office " \
                                     f"that the hash algorithm is {configured}"
        if reported not in HASH_ALGORITHMS:
            return True, connected + f"; HiPay reports the hash algorithm {reported!r}: check that it is {configured}"
        if reported != self.hash_algorithm:
            return False, (f"{connected}, but HiPay signs with {HASH_NAMES[reported]} and the panel says {configured}: "
                           f"every notification would be refused. Set the hash algorithm to {reported}, or change "
                           f"it to {configured} in HiPay's back office (Integration → Security settings)")
        return True, connected + f"; HiPay signs with {configured}, as configured"

    def account_hash_algorithm(self) -> str | None:
        """The hash algorithm of the account's security settings, ``GET /v2/security-settings`` on
        the API host (hipay-fullservice-sdk-php ``GatewayClient::requestSecuritySettings``, field
        ``hashingAlgorithm``), normalised to ``sha1``/``sha256``/``sha512`` when it reads as one;
        None when HiPay does not answer it."""
        try:
            status, answer = self._call("GET", self._base(API_URLS) + "/v2/security-settings")
        except ProviderError:
            return None
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("hashingAlgorithm"), str):
            return None
        value = answer["hashingAlgorithm"]
        compact = re.sub(r"[^a-z0-9]", "", value.lower())
        return compact if compact in HASH_ALGORITHMS else value

"""PayPal Orders v2, with ``paypalrestsdk.Api`` (1.13.3) as the OAuth client and transport.

The SDK's own v1 payment classes are deprecated by PayPal; only its ``Api`` object is used: it
fetches and caches the client-credentials token and offers generic ``get``/``post``. One ``Api``
per provider instance, built from that mode's credentials, so sandbox and live never share a token.
Its quirks are handled in a small subclass:

* transport: ``http_call`` is overridden to go through :meth:`Provider.http_call` (timeout, shared
  pool, network errors as a retryable ProviderError) instead of a bare ``requests.request`` without
  a timeout that also logs request headers — the Basic credentials and the bearer token — at DEBUG;
* every non-2xx answer becomes :class:`PayPalAnswer` (status + parsed body), so a 400 is never
  mistaken for a result (the SDK returns ``{"error": …}`` for it) and a 401 never loops (the SDK
  retries 401 recursively without bound); one token refresh is retried here instead;
* per-call headers (``PayPal-Request-Id``) are kept off the token request (the SDK forwards them);
* a GET carries no body (the SDK sends ``null``).

Webhooks are proven by PayPal's verify API with the merchant's ``webhook_id`` — the raw event is
passed on byte for byte. Failure → NotAuthentic; PayPal unreachable → ProofUnavailable (5xx, PayPal
retries): an event is never processed unverified. Captures, authorizations, voids and refunds are
our own calls to PayPal, and their answers are the proof the returned messages rest on.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

import paypalrestsdk

from ..money import from_decimal_string, to_decimal_string
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
    ProofUnavailable,
    Provider,
    ProviderError,
    VerifiedMessage,
)

API_URLS = {"test": "https://api-m.sandbox.paypal.com", "live": "https://api-m.paypal.com"}
#: paypalrestsdk's own default endpoints are the older api.sandbox.paypal.com / api.paypal.com
OWN_HOSTS = {"test": ("api-m.sandbox.paypal.com", "api.sandbox.paypal.com"), "live": ("api-m.paypal.com", "api.paypal.com")}
TOKEN_PATH = "/v1/oauth2/token"
VERIFY_PATH = "/v1/notifications/verify-webhook-signature"
#: currencies PayPal accepts; HUF and TWD only in whole units (no decimals on the wire)
CURRENCIES = frozenset(
    "AUD BRL CAD CNY CZK DKK EUR HKD HUF ILS JPY MYR MXN TWD NZD NOK PHP PLN GBP SGD SEK CHF THB USD".split()
)
_WHOLE_UNITS_ONLY = {"HUF": 100, "TWD": 100}
_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_TRANSMISSION_HEADERS = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}
_NOT_APPROVED = ("CREATED", "SAVED", "PAYER_ACTION_REQUIRED")
_T = TypeVar("_T")


class PayPalAnswer(Exception):
    """PayPal answered with a non-2xx status (``data``: the parsed body, if any)."""

    def __init__(self, status: int, data: Any, token_call: bool = False):
        super().__init__(f"PayPal answered {status}")
        self.status = status
        self.data = data if isinstance(data, dict) else {}
        self.token_call = token_call

    @property
    def issue(self) -> str | None:
        details = self.data.get("details")
        if isinstance(details, list) and details and isinstance(details[0], dict):
            return details[0].get("issue")
        return self.data.get("name") or self.data.get("error")


class _Api(paypalrestsdk.Api):
    """``paypalrestsdk.Api`` with its quirks handled (see the module docstring)."""

    #: (token endpoint, client id, secret digest) -> (token_hash, token_request_at): a provider object
    #: is built per request, the token lives for hours (the SDK drops it when ``expires_in`` has passed)
    _shared_tokens: dict[tuple[str, str, str], tuple[dict, Any]] = {}
    #: held while :attr:`_shared_tokens` is read or changed (threaded servers)
    _shared_tokens_lock = threading.Lock()

    def __init__(self, transport, **kwargs):
        self._transport = transport
        super().__init__(**kwargs)
        self._token_key = (self.token_endpoint, self.client_id, hashlib.sha256(self.client_secret.encode()).hexdigest())
        with self._shared_tokens_lock:
            self.token_hash, self.token_request_at = self._shared_tokens.get(self._token_key, (None, None))

    def get_token_hash(self, *args, **kwargs):
        held = self.token_hash
        token = super().get_token_hash(*args, **kwargs)
        if self.token_hash and self.token_hash is not held:  # a new one: shared, never an older one
            with self._shared_tokens_lock:
                self._shared_tokens[self._token_key] = (self.token_hash, self.token_request_at)
        return token

    def forget_token(self) -> None:
        """PayPal refused the token this object holds (expired early, revoked): drop it from the
        shared cache — or, when another object has renewed it there meanwhile, take that one."""
        with self._shared_tokens_lock:
            shared = self._shared_tokens.get(self._token_key)
            if shared is not None and shared[0] is self.token_hash:
                del self._shared_tokens[self._token_key]
                shared = None
        self.token_hash, self.token_request_at = shared or (None, None)

    def with_fresh_token_on_401(self, call: Callable[[], _T]) -> _T:
        """``call()``; when PayPal answers 401 to it (not to the token request itself), once more
        with a new token. The SDK's own retry on 401 has no bound; this one retries once::

            data = api.with_fresh_token_on_401(lambda: api.get(path, headers=headers))
        """
        try:
            return call()
        except PayPalAnswer as exc:
            if exc.status != 401 or exc.token_call:
                raise
        self.forget_token()
        return call()

    def headers(self, refresh_token=None, headers=None):
        # the SDK passes per-call headers on to the token request; they stay off it
        return super().headers(refresh_token=refresh_token, headers={})

    def http_call(self, url, method, **kwargs):
        if method == "GET":
            kwargs.pop("data", None)
        response = self._transport(method, url, **kwargs)
        text = response.content.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            data = None
        if 200 <= response.status_code < 300 and data is not None:
            return data
        raise PayPalAnswer(response.status_code, data, token_call=urlsplit(url).path.endswith(TOKEN_PATH))


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): v for k, v in headers.items()}


def _link(resource: Mapping[str, Any], rel: str) -> str | None:
    for link in resource.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel and isinstance(link.get("href"), str):
            return link["href"]
    return None


class PayPalProvider(Provider):
    name = "paypal"
    display_name = "PayPal"
    credential_fields = (
        CredentialField("client_id", "Client ID"),
        CredentialField("client_secret", "Secret", secret=True),
        CredentialField("webhook_id", "Webhook ID"),
    )
    own_hosts = OWN_HOSTS
    three_ds_mapping = {"always": "SCA_ALWAYS", "when_required": "SCA_WHEN_REQUIRED", "frictionless": "SCA_WHEN_REQUIRED"}
    currencies = CURRENCIES
    return_needs_processing = True

    def __init__(self, config, http=None):
        super().__init__(config, http)
        self._api = _Api(
            self.http_call,
            mode="live" if config.mode == "live" else "sandbox",
            client_id=self.credentials.get("client_id", ""),
            client_secret=self.credentials.get("client_secret", ""),
            endpoint=self.base_url,
        )

    # ------------------------------------------------------------------ settings
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str], mode: str) -> list[str]:
        problems = super().validate_credentials(credentials, mode)
        webhook_id = (credentials.get("webhook_id") or "").strip()
        if webhook_id and not _ID.fullmatch(webhook_id):
            problems.append("the webhook ID is the ID PayPal shows beside the webhook URL (letters and digits)")
        return problems

    @classmethod
    def notification_mode(cls, inbound: InboundRequest) -> str | None:
        """A hint only, to pick the credentials that verify it: PayPal's verify API decides."""
        host = urlsplit(_lower_keys(inbound.headers).get("paypal-cert-url") or "").hostname or ""
        if host.endswith(".sandbox.paypal.com"):
            return "test"
        if host in ("api.paypal.com", "api-m.paypal.com"):
            return "live"
        return None

    def hosted_page_hosts(self) -> set[str]:
        return {"www.paypal.com", "www.sandbox.paypal.com"}

    @property
    def base_url(self) -> str:
        return (self.config.endpoint or API_URLS["live" if self.config.mode == "live" else "test"]).rstrip("/")

    # ------------------------------------------------------------------ HTTP
    def _call(self, method: str, path: str, body: dict | None = None, request_id: str | None = None) -> dict:
        headers = {"Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id

        def send():
            if method == "GET":
                return self._api.get(path, headers=headers)
            return self._api.post(path, body or {}, headers=headers)

        try:
            data = self._api.with_fresh_token_on_401(send)
        except PayPalAnswer as exc:
            if exc.token_call:
                raise self._error(exc) from None
            raise
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _error(exc: PayPalAnswer) -> ProviderError:
        if exc.token_call and exc.status in (400, 401):
            return ProviderError("PayPal refused the client ID / secret", status=401)
        detail = exc.issue
        text = f"PayPal answered {exc.status}" + (f": {detail}" if isinstance(detail, str) else "")
        return ProviderError(text, status=exc.status, retryable=exc.status >= 500 or exc.status == 429)

    def _request(self, method: str, path: str, body: dict | None = None, request_id: str | None = None) -> dict:
        try:
            return self._call(method, path, body, request_id)
        except PayPalAnswer as exc:
            raise self._error(exc) from None

    @staticmethod
    def _checked_id(value: Any, what: str) -> str:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise ProviderError(f"malformed PayPal {what} id", status=422)
        return value

    # ------------------------------------------------------------------ amounts
    @staticmethod
    def wire_amount(amount: int, currency: str) -> dict[str, str]:
        step = _WHOLE_UNITS_ONLY.get(currency)
        if step:
            if amount % step:
                raise ProviderError(f"PayPal takes whole {currency} amounts only")
            return {"currency_code": currency, "value": str(amount // step)}
        return {"currency_code": currency, "value": to_decimal_string(amount, currency)}

    @staticmethod
    def read_amount(amount: Any) -> tuple[int | None, str | None]:
        if not isinstance(amount, dict):
            return None, None
        currency = amount.get("currency_code")
        if not isinstance(currency, str):
            return None, None
        try:
            return from_decimal_string(str(amount.get("value")), currency), currency
        except ValueError:
            return None, currency

    # ------------------------------------------------------------------ checkout

    def build_order(self, request: CheckoutRequest) -> dict[str, Any]:
        unit: dict[str, Any] = {
            "reference_id": request.order_ref[:256],
            "custom_id": request.token,  # echoed by captures, authorizations and webhooks
            "amount": self.wire_amount(request.amount, request.currency),
        }
        if request.description:
            unit["description"] = request.description[:127]
        context: dict[str, Any] = {
            "return_url": request.return_url,
            "cancel_url": request.cancel_url,
            "locale": request.regional_locale(),
            "landing_page": "NO_PREFERENCE",
            "shipping_preference": "NO_SHIPPING",
            "user_action": "PAY_NOW",
        }
        if request.brand_name:
            context["brand_name"] = request.brand_name[:127]
        source: dict[str, Any] = {"experience_context": context}
        if request.email:
            source["email_address"] = request.email
        # PSD2 buyer data (paypal-rest-api-specifications checkout_orders_v2: payment_source.paypal's
        # name and address — the deprecated ``payer`` moved there —, purchase_units[].shipping)
        billing, shipping = request.billing, request.shipping_address()
        if billing is not None:
            if billing.first_name or billing.last_name:
                source["name"] = {k: v for k, v in (("given_name", billing.first_name),
                                                    ("surname", billing.last_name)) if v}
            if billing.country:
                source["address"] = _paypal_address(billing)
        if shipping is not None and shipping.country and request.delivery_type in ("shipped", "pickup", None):
            unit["shipping"] = {"type": "PICKUP_IN_STORE" if request.delivery_type == "pickup" else "SHIPPING",
                                "address": _paypal_address(shipping)}
            full_name = " ".join(p for p in (shipping.first_name, shipping.last_name) if p)
            if full_name:
                unit["shipping"]["name"] = {"full_name": full_name[:300]}
            context["shipping_preference"] = "SET_PROVIDED_ADDRESS"
        return {
            "intent": "AUTHORIZE" if self.config.capture == "manual" else "CAPTURE",
            "purchase_units": [unit],
            "payment_source": {"paypal": source},
        }

    def start_checkout(self, request: CheckoutRequest, payment_mode: str) -> CheckoutStart:
        data = self._request("POST", "/v2/checkout/orders", self.build_order(request), f"{request.token}-create")
        url = _link(data, "payer-action") or _link(data, "approve")
        if not data.get("id") or not url:
            raise ProviderError("PayPal's answer has no order id or approval link")
        return CheckoutStart(psp_reference=data["id"], redirect_url=url)

    def handle_return(self, payment: Any, inbound: InboundRequest) -> list[VerifiedMessage]:
        """Back from PayPal: capture (or authorize) the approved order, idempotently."""
        if not payment.psp_reference:
            return []
        return self.complete(payment.psp_reference)

    def complete(self, order_id: str) -> list[VerifiedMessage]:
        """Capture or authorize an approved order, as its intent says; an order already completed
        (by the other path: return or webhook) is read back instead. Same PayPal-Request-Id on both
        paths, so a race yields one capture."""
        order_id = self._checked_id(order_id, "order")
        order = self._request("GET", f"/v2/checkout/orders/{order_id}")
        if order.get("status") != "APPROVED":
            return self.order_messages(order)
        verb = "authorize" if order.get("intent") == "AUTHORIZE" else "capture"
        try:
            data = self._call("POST", f"/v2/checkout/orders/{order_id}/{verb}", {}, f"{order_id}-{verb}")
        except PayPalAnswer as exc:
            if exc.status == 422 and exc.issue == "INSTRUMENT_DECLINED":
                return [self._order_message(order, EventKind.FAILED, "INSTRUMENT_DECLINED", "the payer's funding source was declined")]
            if exc.status == 422:  # already captured/authorized meanwhile: PayPal's copy says how
                return self.order_messages(self._request("GET", f"/v2/checkout/orders/{order_id}"))
            raise self._error(exc) from None
        return self.order_messages(data)

    # ------------------------------------------------------------------ reading PayPal's objects
    def _message(self, key: str, events: list[Event], event_type: str, token: Any, order_id: Any, raw: Any) -> VerifiedMessage:
        return VerifiedMessage(
            provider=self.name,
            dedupe_key=f"paypal:{self.config.mode}:{key}"[:191],
            events=events,
            mode=self.config.mode,
            event_type=event_type[:64],
            psp_reference=order_id if isinstance(order_id, str) and order_id else None,
            payment_token=token if isinstance(token, str) and token else None,
            merchant_reference=token if isinstance(token, str) else None,
            raw=raw,
        )

    def _order_message(self, order: dict, kind: EventKind, state: str, reason: str | None = None) -> VerifiedMessage:
        unit = (order.get("purchase_units") or [{}])[0] or {}
        return self._message(
            f"order:{order.get('id')}:{state}", [Event(kind, reason=reason)], f"order:{state}",
            unit.get("custom_id"), order.get("id"), order,
        )

    def capture_message(self, capture: dict, order_id: Any, token: Any, from_authorization: bool) -> VerifiedMessage:
        status = str(capture.get("status") or "")
        value, currency = self.read_amount(capture.get("amount"))
        reason = ((capture.get("status_details") or {}).get("reason")) or status.lower()
        K = EventKind
        capture_id = capture.get("id") if isinstance(capture.get("id"), str) else None
        if status in ("COMPLETED", "REFUNDED", "PARTIALLY_REFUNDED"):
            state = "COMPLETED"  # money was taken; refunds are news of their own
            events = [
                Event(K.CAPTURED, amount=None if from_authorization else value, currency=currency, captured_total=value,
                      operation_reference=capture_id, occurred_at=psp_time(capture.get("create_time")))
            ]
        elif status == "PENDING" and from_authorization:
            # the merchant's capture of an authorization, taken but not cleared yet: awaited
            state, events = status, [Event(K.REQUESTED, currency=currency, operation="capture", operation_amount=value,
                                           operation_reference=capture_id, reason=reason)]
        elif status == "PENDING":
            state, events = status, [Event(K.PENDING, reason=reason)]
        elif status in ("DECLINED", "DENIED", "FAILED"):
            # PAYMENT.CAPTURE.DENIED (a pending capture refused) carries DECLINED; DENIED is v1's word
            state, events = "DECLINED", [Event(K.CAPTURE_FAILED if from_authorization else K.FAILED, reason=reason,
                                               operation_reference=capture_id)]
        else:
            state, events = status or "UNKNOWN", []
        return self._message(f"capture:{capture.get('id')}:{state}", events, f"capture:{state}", token, order_id, capture)

    def authorization_message(self, authorization: dict, order_id: Any, token: Any) -> VerifiedMessage:
        status = str(authorization.get("status") or "")
        value, currency = self.read_amount(authorization.get("amount"))
        K = EventKind
        if status in ("CREATED", "CAPTURED", "PARTIALLY_CAPTURED"):
            state, events = "CREATED", [Event(K.AUTHORIZED, amount=value, currency=currency, authorized_total=value)]
        elif status == "VOIDED":
            state, events = status, [Event(K.CANCELLED, reason="authorization voided")]
        elif status == "DENIED":
            state, events = status, [Event(K.FAILED, reason="authorization denied")]
        elif status == "EXPIRED":
            state, events = status, [Event(K.EXPIRED, reason="authorization expired")]
        elif status == "PENDING":
            state, events = status, [Event(K.PENDING, reason="authorization pending")]
        else:
            state, events = status or "UNKNOWN", []
        return self._message(
            f"authorization:{authorization.get('id')}:{state}", events, f"authorization:{state}", token, order_id, authorization
        )

    def refund_message(self, refund: dict, order_id: Any, token: Any) -> VerifiedMessage:
        status = str(refund.get("status") or "")
        value, currency = self.read_amount(refund.get("amount"))
        K = EventKind
        refund_id = refund.get("id") if isinstance(refund.get("id"), str) else None
        if status == "COMPLETED":
            events = [Event(K.REFUNDED, currency=currency, refund_delta=value, operation_reference=refund_id,
                            occurred_at=psp_time(refund.get("create_time")))]
        elif status in ("FAILED", "CANCELLED"):
            events = [Event(K.REFUND_FAILED, reason=f"refund {status.lower()}", operation_reference=refund_id)]
        elif status == "PENDING":
            # taken, not done yet (e.g. the payer paid by eCheck): awaited until the
            # PAYMENT.CAPTURE.REFUNDED webhook (or PayPal's copy of the order) says it completed
            events = [Event(K.REQUESTED, currency=currency, operation="refund", operation_amount=value,
                            operation_reference=refund_id)]
        else:
            events = []
        return self._message(f"refund:{refund.get('id')}:{status}", events, f"refund:{status}", token, order_id, refund)

    def order_messages(self, order: dict) -> list[VerifiedMessage]:
        """Everything an order object proves, oldest news first."""
        unit = (order.get("purchase_units") or [{}])[0] or {}
        token, order_id = unit.get("custom_id"), order.get("id")
        payments = unit.get("payments") or {}
        messages = [self.authorization_message(a, order_id, token) for a in payments.get("authorizations") or []]
        by_authorization = bool(payments.get("authorizations")) or order.get("intent") == "AUTHORIZE"
        messages += [self.capture_message(c, order_id, token, by_authorization) for c in payments.get("captures") or []]
        messages += [self.refund_message(r, order_id, token) for r in payments.get("refunds") or []]
        if not messages and order.get("status") == "VOIDED":
            messages.append(self._order_message(order, EventKind.CANCELLED, "VOIDED", "order voided"))
        return messages

    def _get_order(self, payment: Any) -> dict:
        return self._request("GET", f"/v2/checkout/orders/{self._checked_id(payment.psp_reference, 'order')}")

    def fetch(self, payment: Any) -> list[VerifiedMessage]:
        """PayPal's copy of the order — and an order the payer approved but nobody completed (the
        tab closed before the return, the webhook lost) is completed here as on the return: same
        PayPal-Request-Id, so it is captured (or authorized) once whichever path comes first."""
        if not payment.psp_reference:
            return []
        return self.complete(payment.psp_reference)

    # ------------------------------------------------------------------ webhooks
    def _verify(self, inbound: InboundRequest, headers: dict[str, str]) -> None:
        fields = {name: headers[header] for name, header in _TRANSMISSION_HEADERS.items()}
        fields["webhook_id"] = self.credentials["webhook_id"].strip()
        # the event goes back byte for byte: a re-serialised copy may not verify
        body = json.dumps(fields)[:-1] + ', "webhook_event": ' + inbound.body.decode("utf-8") + "}"
        url = self.base_url + VERIFY_PATH
        try:
            answer = self._api.with_fresh_token_on_401(
                lambda: self._api.http_call(url, "POST", data=body.encode("utf-8"), headers=self._api.headers()))
        except PayPalAnswer as exc:
            if exc.token_call or exc.status in (401, 403, 429) or exc.status >= 500:
                raise ProofUnavailable(f"PayPal's verify API answered {exc.status}") from None
            raise NotAuthentic(f"PayPal's verify API refused the event ({exc.status} {exc.issue or ''})".strip()) from None
        except ProviderError as exc:
            raise ProofUnavailable(exc.message) from None
        status = answer.get("verification_status") if isinstance(answer, dict) else None
        if status != "SUCCESS":
            raise NotAuthentic(f"PayPal's verify API says {status or 'nothing'}")

    def verify_notification(self, inbound: InboundRequest) -> list[VerifiedMessage]:
        event = inbound.json()
        if not (
            isinstance(event, dict)
            and isinstance(event.get("id"), str)
            and isinstance(event.get("event_type"), str)
            and isinstance(event.get("resource"), dict)
        ):
            raise MalformedNotification("a PayPal webhook event has an id, an event_type and a resource")
        headers = _lower_keys(inbound.headers)
        missing = [h for h in _TRANSMISSION_HEADERS.values() if not headers.get(h)]
        if missing:
            raise NotAuthentic(f"missing {', '.join(missing)}")
        self._verify(inbound, headers)
        try:
            return self.event_messages(event)
        except ProviderError as exc:
            if exc.retryable or exc.status is None:
                # verified, but acting on it needs PayPal (capture on approval): retry later
                raise ProofUnavailable(exc.message) from None
            # PayPal refused the follow-up for good: keep the verified event, move nothing
            resource = event["resource"]
            unit = (resource.get("purchase_units") or [{}])[0] or {}
            token = resource.get("custom_id") or unit.get("custom_id")
            return [self._message(f"event:{event['id']}", [], event["event_type"], token, None, event)]

    def event_messages(self, event: dict) -> list[VerifiedMessage]:
        kind, resource, event_id = event["event_type"], event["resource"], event["id"]
        related = ((resource.get("supplementary_data") or {}).get("related_ids")) or {}
        token = resource.get("custom_id")
        order_id = related.get("order_id")

        def bare(events=()):
            return [self._message(f"event:{event_id}", list(events), kind, token, order_id, event)]

        if kind == "CHECKOUT.ORDER.APPROVED":
            unit = (resource.get("purchase_units") or [{}])[0] or {}
            token, order_id = unit.get("custom_id"), resource.get("id")
            # the buyer may have closed the tab after approving: capture here as on the return
            return self.complete(order_id) or bare()
        if kind in ("PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.PENDING", "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED"):
            return [self.capture_message(resource, order_id, token, bool(related.get("authorization_id")))]
        if kind == "PAYMENT.CAPTURE.REFUNDED":
            if "/refunds/" not in (_link(resource, "self") or "/refunds/"):
                # the capture itself rather than the refund: read the order's refunds
                return self.order_messages(self._request("GET", f"/v2/checkout/orders/{self._checked_id(order_id, 'order')}"))
            if not token:
                token, order_id = self._capture_owner(resource)
            return [self.refund_message(resource, order_id, token)]
        if kind == "PAYMENT.CAPTURE.REVERSED":
            if not token:
                token, order_id = self._capture_owner(resource)
            value, currency = self.read_amount(resource.get("amount"))
            return [
                self._message(
                    f"reversal:{resource.get('id')}",
                    [Event(EventKind.CHARGEBACK, currency=currency, reason="PayPal reversed the capture")],
                    kind, token, order_id, resource,
                )
            ]
        if kind in ("PAYMENT.AUTHORIZATION.CREATED", "PAYMENT.AUTHORIZATION.VOIDED"):
            return [self.authorization_message(resource, order_id, token)]
        return bare()

    def _capture_owner(self, refund: dict) -> tuple[Any, Any]:
        """A refund made in PayPal's back office carries no custom_id: ask its capture whose it is."""
        up = _link(refund, "up") or ""
        capture_id = up.rstrip("/").rsplit("/", 1)[-1] if "/captures/" in up else None
        if not capture_id:
            return None, None
        capture = self._request("GET", f"/v2/payments/captures/{self._checked_id(capture_id, 'capture')}")
        related = ((capture.get("supplementary_data") or {}).get("related_ids")) or {}
        return capture.get("custom_id"), related.get("order_id")

    # ------------------------------------------------------------------ money operations
    def _open(self, order: dict, key: str, statuses: tuple[str, ...]) -> dict | None:
        unit = (order.get("purchase_units") or [{}])[0] or {}
        for item in (unit.get("payments") or {}).get(key) or []:
            if item.get("status") in statuses:
                return item
        return None

    def capture(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        order = self._get_order(payment)
        authorization = self._open(order, "authorizations", ("CREATED", "PARTIALLY_CAPTURED"))
        if authorization is None:
            raise ProviderError("PayPal has no open authorization for this payment")
        auth_id = self._checked_id(authorization.get("id"), "authorization")
        body = {
            "amount": self.wire_amount(amount, payment.currency),
            "final_capture": amount + payment.captured_amount >= payment.authorized_amount,
        }
        data = self._request(
            "POST",
            f"/v2/payments/authorizations/{auth_id}/capture",
            body,
            f"{payment.token}-capture-{amount}-{payment.captured_amount}",
        )
        return [self.capture_message(data, order.get("id"), payment.token, True)]

    def refund(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        order = self._get_order(payment)
        capture = self._open(order, "captures", ("COMPLETED", "PARTIALLY_REFUNDED"))
        if capture is None:
            raise ProviderError("PayPal has no refundable capture for this payment")
        capture_id = self._checked_id(capture.get("id"), "capture")
        data = self._request(
            "POST",
            f"/v2/payments/captures/{capture_id}/refund",
            {"amount": self.wire_amount(amount, payment.currency), "custom_id": payment.token},
            f"{payment.token}-refund-{amount}-{payment.refunded_amount}",
        )
        return [self.refund_message(data, order.get("id"), payment.token)]

    def cancel(self, payment: Any) -> list[VerifiedMessage]:
        if not payment.psp_reference:
            return []
        order = self._get_order(payment)
        authorization = self._open(order, "authorizations", ("CREATED", "PENDING"))
        if authorization is not None:
            auth_id = self._checked_id(authorization.get("id"), "authorization")
            data = self._request("POST", f"/v2/payments/authorizations/{auth_id}/void", {}, f"{payment.token}-void")
            # 204 without a body (or the voided authorization with Prefer: return=representation)
            voided = data if data.get("status") else {**authorization, "status": "VOIDED"}
            return [self.authorization_message(voided, order.get("id"), payment.token)]
        if order.get("status") in _NOT_APPROVED:
            return [self._order_message(order, EventKind.CANCELLED, "cancelled", "cancelled before approval")]
        raise ProviderError(
            "PayPal already took this payment: refund it instead"
            if order.get("status") == "COMPLETED"
            else "the buyer has approved this PayPal payment: capture it, then refund if needed"
        )

    def abandon(self, payment: Any) -> list[VerifiedMessage]:
        """The buyer left PayPal through the cancel link: PayPal's copy of the order says whether
        anything was approved; an unapproved order counts as cancelled."""
        if not payment.psp_reference:
            return []
        order = self._get_order(payment)
        if order.get("status") in _NOT_APPROVED:
            return [self._order_message(order, EventKind.CANCELLED, "cancelled", "the buyer cancelled on PayPal")]
        return self.order_messages(order)

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._api.get_access_token()
        except PayPalAnswer as exc:
            return False, (
                "PayPal refused the client ID / secret: copy them again (developer.paypal.com → Apps & Credentials)"
                if exc.status in (400, 401) else f"PayPal answered {exc.status}"
            )
        except ProviderError as exc:
            return False, exc.message
        try:
            self._call("GET", f"/v1/notifications/webhooks/{self._checked_id(self.credentials['webhook_id'].strip(), 'webhook')}")
        except PayPalAnswer as exc:
            if exc.status == 404:
                return False, "this app has no webhook with that ID: copy the Webhook ID shown beside the webhook URL"
            return False, f"PayPal answered {exc.status} about the webhook"
        except ProviderError as exc:
            return False, exc.message
        return True, f"Connected to PayPal in {'live' if self.config.mode == 'live' else 'sandbox'} mode"


def _paypal_address(address: Any) -> dict[str, str]:
    """PayPal's address_portable: ``country_code`` required, the rest as filled."""
    parts = (("address_line_1", address.line1), ("address_line_2", address.line2), ("admin_area_2", address.city),
             ("postal_code", address.postcode), ("country_code", address.country))
    return {k: v for k, v in parts if v}

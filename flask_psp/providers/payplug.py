"""PayPlug (API v1, version 2019-08-06) over plain HTTP.

The official ``payplug`` library keeps the secret key and base URL in module globals and sets no
request timeout, which mixes test and live keys in a threaded server; every call here carries its
own key and timeout instead. PayPlug notifications are unsigned: the only proof is to fetch the
resource back from the API with the merchant's key and trust that copy alone.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

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

API_URL = "https://api.payplug.com"
API_VERSION = "2019-08-06"
_FAILURE_KIND = {"aborted": EventKind.CANCELLED, "timeout": EventKind.EXPIRED}


def _minor_units(value: Any) -> int | None:
    """An amount PayPlug gives (an integer of minor units); anything else is no amount, which the
    ledger refuses for news that moves money."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class PayPlugProvider(Provider):
    name = "payplug"
    display_name = "PayPlug"
    credential_fields = (CredentialField("secret_key", "Secret key", secret=True),)
    own_hosts = {"test": ("api.payplug.com",), "live": ("api.payplug.com",)}  # one host; the key says the mode
    three_ds_mapping = {"always": "force_3ds: true", "when_required": "(PayPlug decides)",
                        "frictionless": "(PayPlug decides)"}
    currencies = frozenset({"EUR"})
    min_amount, max_amount = 99, 2_000_000

    # ------------------------------------------------------------------ settings
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str], mode: str) -> list[str]:
        problems = super().validate_credentials(credentials, mode)
        key = (credentials.get("secret_key") or "").strip()
        expected = "sk_live_" if mode == "live" else "sk_test_"
        if key and not key.startswith(expected):
            other = "test" if expected == "sk_live_" else "live"
            problems.append(
                f"the {mode} secret key must start with {expected} (this one looks like a {other} key)"
                if key.startswith(("sk_test_", "sk_live_"))
                else f"the {mode} secret key must start with {expected}"
            )
        return problems

    @classmethod
    def notification_mode(cls, inbound: InboundRequest) -> str | None:
        data = inbound.json()
        if not isinstance(data, dict):
            raise MalformedNotification("body is not a JSON object")
        return "live" if data.get("is_live") is True else "test"

    def hosted_page_hosts(self) -> set[str]:
        return {"secure.payplug.com"}

    # ------------------------------------------------------------------ HTTP
    @property
    def base_url(self) -> str:
        return (self.config.endpoint or API_URL).rstrip("/")

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        response = self.http_call(
            method,
            self.base_url + path,
            json=body,
            headers={
                "Authorization": f"Bearer {self.credentials['secret_key']}",
                "PayPlug-Version": API_VERSION,
                "Accept": "application/json",
            },
        )
        try:
            data = response.json()
        except ValueError:
            data = None
        return response.status_code, data

    def _expect(self, status: int, data: Any, *ok: int) -> Any:
        if status in ok and isinstance(data, dict):
            return data
        message = data.get("message") if isinstance(data, dict) else None
        if status == 401:
            raise ProviderError("PayPlug refused the secret key", status=status)
        raise ProviderError(
            f"PayPlug answered {status}" + (f": {message}" if message else ""),
            status=status,
            retryable=status >= 500,
        )

    # ------------------------------------------------------------------ checkout
    def build_payment_request(self, request: CheckoutRequest) -> dict[str, Any]:
        language = request.locale if request.locale in ("fr", "en", "it") else "en"
        billing = _payplug_address(request.billing, request.email, language)
        shipping = _payplug_address(request.shipping_address() or request.billing, request.email, language)
        shipping["delivery_type"] = _delivery_type(request)
        body: dict[str, Any] = {
            "currency": request.currency,
            "billing": billing,
            "shipping": shipping,
            "hosted_payment": {"return_url": request.return_url, "cancel_url": request.cancel_url},
            "notification_url": request.notify_url,
            "metadata": {"psp_token": request.token, "order_ref": request.order_ref},
        }
        if self.config.capture == "manual":
            body["authorized_amount"] = request.amount
        else:
            body["amount"] = request.amount
        if self.config.three_ds == "always":
            body["force_3ds"] = True
        return body

    def start_checkout(self, request: CheckoutRequest, payment_mode: str) -> CheckoutStart:
        status, data = self._call("POST", "/v1/payments", self.build_payment_request(request))
        data = self._expect(status, data, 200, 201)
        url = (data.get("hosted_payment") or {}).get("payment_url")
        if not data.get("id") or not url:
            raise ProviderError("PayPlug's answer has no payment id or payment page")
        return CheckoutStart(psp_reference=data["id"], redirect_url=url)

    # ------------------------------------------------------------------ reading PayPlug's copy
    def message_from_payment(self, data: dict[str, Any], event_type: str = "payment") -> VerifiedMessage:
        """One proven snapshot of a PayPlug payment as neutral events."""
        amount, currency = _minor_units(data.get("amount")), (data.get("currency") or "").upper() or None
        authorization = data.get("authorization") or {}
        failure = data.get("failure") or {}
        refunded = _minor_units(data.get("amount_refunded")) or 0
        events: list[Event] = []
        if data.get("is_paid"):
            state = "paid"
            events.append(Event(EventKind.CAPTURED, amount=amount, currency=currency, captured_total=amount,
                                occurred_at=psp_time((data.get("hosted_payment") or {}).get("paid_at"))))
        elif failure:
            # checked before the authorization: a deferred payment aborted (or whose authorization
            # lapsed) keeps its ``authorization`` block, and ``failure`` says how it ended
            state = ""
            kind = _FAILURE_KIND.get(failure.get("code"), EventKind.FAILED)
            events.append(Event(kind, reason=failure.get("message") or failure.get("code")))
        elif authorization.get("authorized_at"):
            state = "authorized"
            events.append(
                Event(
                    EventKind.AUTHORIZED,
                    amount=amount,
                    currency=currency,
                    authorized_total=_minor_units(authorization.get("authorized_amount")) or amount,
                )
            )
        else:
            state = ""
            events.append(Event(EventKind.PENDING))
        if refunded:
            events.append(Event(EventKind.REFUNDED, refunded_total=refunded))
        fingerprint = f"{state}:{failure.get('code') or ''}:{refunded}"
        return VerifiedMessage(
            provider=self.name,
            dedupe_key=f"payplug:{data['id']}:{fingerprint}",
            events=events,
            mode="live" if data.get("is_live") else "test",
            event_type=f"{event_type}:{state or failure.get('code') or 'pending'}",
            psp_reference=data["id"],
            payment_token=(data.get("metadata") or {}).get("psp_token"),
            raw=data,
        )

    def _fetch_payment(self, payment_id: str) -> dict[str, Any]:
        status, data = self._call("GET", f"/v1/payments/{payment_id}")
        return self._expect(status, data, 200)

    def notification_body(self, payment: Any) -> bytes:
        """What PayPlug would notify about ``payment`` now: its payment object as the API gives it
        (a notification is the resource itself, unsigned). ``flask psp simulate notify`` posts it to
        the shop; raises ProviderError when PayPlug does not give it."""
        return json.dumps(self._fetch_payment(payment.psp_reference)).encode("utf-8")

    def fetch(self, payment: Any) -> list[VerifiedMessage]:
        if not payment.psp_reference:
            return []
        return [self.message_from_payment(self._fetch_payment(payment.psp_reference), "fetch")]

    def verify_notification(self, inbound: InboundRequest) -> list[VerifiedMessage]:
        data = inbound.json()
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise MalformedNotification("a PayPlug notification is a JSON resource with an id")
        kind = data.get("object")
        if kind == "payment":
            payment_id = data["id"]
        elif kind == "refund" and isinstance(data.get("payment_id"), str):
            payment_id = data["payment_id"]
        else:
            raise MalformedNotification(f"unexpected PayPlug object {kind!r}")
        if not payment_id.replace("_", "").isalnum():
            raise MalformedNotification("malformed PayPlug id")
        try:
            fresh = self._fetch_payment(payment_id)
        except ProviderError as exc:
            if exc.status in (401, 403, 404):
                raise NotAuthentic(f"PayPlug does not know {payment_id} under this account") from None
            raise ProofUnavailable(exc.message) from None
        return [self.message_from_payment(fresh, f"notification:{kind}")]

    # ------------------------------------------------------------------ money operations
    def capture(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        if amount != payment.authorized_amount:
            raise ProviderError("PayPlug captures the whole authorized amount only")
        status, data = self._call("PATCH", f"/v1/payments/{payment.psp_reference}", {"captured": True})
        return [self.message_from_payment(self._expect(status, data, 200), "capture")]

    def refund(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        status, data = self._call(
            "POST",
            f"/v1/payments/{payment.psp_reference}/refunds",
            {"amount": amount, "metadata": {"psp_token": payment.token}},
        )
        self._expect(status, data, 200, 201)
        return [self.message_from_payment(self._fetch_payment(payment.psp_reference), "refund")]

    def cancel(self, payment: Any) -> list[VerifiedMessage]:
        status, data = self._call("PATCH", f"/v1/payments/{payment.psp_reference}", {"aborted": True})
        return [self.message_from_payment(self._expect(status, data, 200), "abort")]

    def abandon(self, payment: Any) -> list[VerifiedMessage]:
        if not payment.psp_reference:
            return []
        status, data = self._call("PATCH", f"/v1/payments/{payment.psp_reference}", {"aborted": True})
        if status == 200 and isinstance(data, dict):
            return [self.message_from_payment(data, "abort")]
        return self.fetch(payment)  # already paid or failed: PayPlug's copy says which

    def test_connection(self) -> tuple[bool, str]:
        try:
            status, _ = self._call("GET", "/v1/payments/pay_connectiontest")
        except ProviderError as exc:
            return False, exc.message
        if status == 401:
            return False, "PayPlug refused the secret key: copy it again from the PayPlug portal (Settings → API keys)"
        if status in (200, 404):
            return True, f"Connected to PayPlug in {self.config.mode} mode"
        return False, f"PayPlug answered {status}"


#: OrderInfo.delivery_type → PayPlug's shipping.delivery_type (BILLING, VERIFIED, NEW, SHIP_TO_STORE,
#: DIGITAL_GOODS, TRAVEL_OR_EVENT, OTHER: PayPlug's README example and its WooCommerce module's
#: PayplugAddressData); "shipped" is BILLING or NEW as the shipping address is the billing one or not
_DELIVERY_TYPES = {"digital": "DIGITAL_GOODS", "pickup": "SHIP_TO_STORE", "travel_or_event": "TRAVEL_OR_EVENT",
                   "other": "OTHER"}
#: French mobile numbers (+33 6, +33 7): PayPlug wants mobiles and landlines apart
_FRENCH_MOBILE = ("+336", "+337")


def _delivery_type(request: CheckoutRequest) -> str:
    if request.delivery_type == "shipped":
        shipping = request.shipping
        if shipping is None or shipping.is_empty() or request.billing is None or shipping.same_place(request.billing):
            return "BILLING"
        return "NEW"
    return _DELIVERY_TYPES.get(request.delivery_type or "", "OTHER")


def _payplug_address(address: Any, email: str | None, language: str) -> dict[str, Any]:
    """PayPlug's billing/shipping object: every key the address fills (none left empty)."""
    fields: dict[str, Any] = {"email": email, "language": language}
    if address is not None:
        fields.update({
            "first_name": address.first_name, "last_name": address.last_name, "company_name": address.company,
            "address1": address.line1, "address2": address.line2, "postcode": address.postcode,
            "city": address.city, "country": address.country,
        })
        if address.phone:
            kind = "mobile_phone_number" if address.phone.startswith(_FRENCH_MOBILE) else "landline_phone_number"
            fields[kind] = address.phone
    return {k: v for k, v in fields.items() if v}

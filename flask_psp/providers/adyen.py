"""Adyen Checkout API v72: Hosted Checkout sessions, HMAC-signed standard webhooks, modifications.

API calls go through the official ``Adyen`` library (16.x), with two things made explicit per
provider instance so that test and live, or two threads, never share anything:

* the URL: each API object's ``baseUrl`` is set before every call (test
  ``https://checkout-test.adyen.com/v72``, live
  ``https://{live_endpoint_prefix}-checkout-live.adyenpayments.com/checkout/v72``, or
  ``{endpoint}/v72`` when an endpoint override is configured), and the library's own URL
  rewriting (``-test`` → ``-live``) is switched off so an override is used exactly as given;
* the transport: the library's HTTP client is replaced (the library documents ``request`` as the
  method to override) by one that calls :meth:`Provider.http_call`, so every call has our timeout,
  uses the shared connection pool and turns network failures into a retryable ProviderError.

Webhooks: every item of a batch is checked on its own with ``Adyen.util.is_valid_hmac_notification``
(a missing or empty signature is a rejection, never a crash). The return from the hosted page
proves nothing by itself; the payment stays "pending" until the AUTHORISATION webhook, except
when Adyen's own session API says the buyer cancelled or the session is over. A refused attempt
(AUTHORISATION ``success: "false"``) leaves it pending too: the buyer may try another card in the
same session. An AUTHORISATION means what the payment's session asked (``manualCapture`` or not),
so it is an approval the ledger reads with the payment's own capture policy.

Modifications (capture, refund, cancel) are only acknowledged: the payment awaits the webhook whose
pspReference is the one Adyen gave the request.
"""

from __future__ import annotations

import binascii
import re
from datetime import date, datetime, timezone
from typing import Any, Mapping
from urllib.parse import quote

import Adyen
from Adyen.client import AdyenClient
from Adyen.exceptions import AdyenError
from Adyen.services.checkout import AdyenCheckoutApi

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
    RejectedItem,
    VerifiedMessage,
)

API_VERSION = "v72"
TEST_URL = f"https://checkout-test.adyen.com/{API_VERSION}"
LIVE_URL = "https://{prefix}-checkout-live.adyenpayments.com/checkout/" + API_VERSION
#: where Hosted Checkout's session ``url`` points: Adyen's checkoutshopper hosts, the test one and
#: one per live region (EU, US, AU, APSE, IN: Adyen's web and mobile SDKs' Environment lists; NEA:
#: the newer SDKs' Environment.NEA ⚠ not in adyen-openapi). A new region before a release knows
#: it: PSP_EXTRA_REDIRECT_HOSTS
HOSTED_PAGE_HOSTS = frozenset(
    {
        "checkoutshopper-test.adyen.com",
        "checkoutshopper-live-nea.adyen.com",
        "checkoutshopper-live.adyen.com",
        "checkoutshopper-live-us.adyen.com",
        "checkoutshopper-live-au.adyen.com",
        "checkoutshopper-live-apse.adyen.com",
        "checkoutshopper-live-in.adyen.com",
    }
)
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PSP_REFERENCE = re.compile(r"[A-Za-z0-9]{1,64}")
#: shopperLocale for a bare language code (Adyen wants language-COUNTRY)
#: EMV 3-D Secure challenge indicator (threeDS2RequestData.threeDSRequestorChallengeInd)
CHALLENGE_REQUESTED = "03"  # challenge requested: the merchant's preference
NO_CHALLENGE_REQUESTED = "02"
#: GET /sessions/{id} statuses that settle the payment without a webhook
_SESSION_OUTCOME = {"canceled": EventKind.CANCELLED, "expired": EventKind.EXPIRED, "refused": EventKind.FAILED}


class _Client(AdyenClient):
    """The library's client, using the base URL it is given as it is (see the module docstring)."""

    def _determine_api_url(self, platform, endpoint):
        return endpoint


class _Transport:
    """The library's HTTP client contract (``request`` → raw body, raw request, status, headers),
    carried by ``Provider.http_call``."""

    def __init__(self, provider: "AdyenProvider"):
        self.provider = provider
        self.user_agent = f"flask-psp {Adyen.settings.LIB_NAME}/{Adyen.settings.LIB_VERSION}"

    def request(self, method, url, json=None, data=None, username="", password="", xapikey="", headers=None):
        headers = dict(headers or {})
        if xapikey:
            headers["X-API-Key"] = xapikey
        headers["User-Agent"] = self.user_agent
        response = self.provider.http_call(method, url, json=json, data=data, headers=headers)
        return response.text, json, response.status_code, response.headers


def _hex_problem(label: str, value: str) -> str | None:
    if value and not _HEX.fullmatch(value):
        return f"{label} must be the hexadecimal key shown in the Adyen Customer Area"
    return None


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        return None


class AdyenProvider(Provider):
    name = "adyen"
    display_name = "Adyen"
    credential_fields = (
        CredentialField("api_key", "API key", secret=True),
        CredentialField("merchant_account", "Merchant account"),
        CredentialField("hmac_key", "HMAC key (hex)", secret=True),
        CredentialField("live_endpoint_prefix", "Live endpoint URL prefix", modes=("live",)),
        CredentialField("theme_id", "Hosted Checkout theme id", required=False),
        CredentialField("hmac_key_previous", "Previous HMAC key, during a rotation (hex)", secret=True, required=False),
        CredentialField("hmac_key_previous_until", "Accept the previous HMAC key until (YYYY-MM-DD)", required=False),
    )
    #: Checkout and Classic (pal) API hosts; live ones carry the merchant's prefix (the library's
    #: ``ENDPOINT_CHECKOUT_LIVE_SUFFIX`` and ``ENDPOINT_PROTOCOL`` live URLs)
    own_hosts = {
        "test": ("checkout-test.adyen.com", "pal-test.adyen.com"),
        "live": ("{live_endpoint_prefix}-checkout-live.adyenpayments.com", "{live_endpoint_prefix}-pal-live.adyenpayments.com"),
    }
    unanswered_hint = (
        "no status lookup for Hosted Checkout: find it in the Customer Area (merchant reference = payment token); "
        "check the Standard webhook (URL /notify/adyen, HMAC key as set here). Settlement reports also tell"
    )
    three_ds_mapping = {"always": "attemptAuthentication: always", "when_required": "(Adyen decides)",
                        "frictionless": "(Adyen decides)"}
    look_field = ("adyen_theme_id", "Adyen theme id (themeId)")

    def __init__(self, config, http=None):
        super().__init__(config, http)
        client = _Client(
            xapikey=self.credentials.get("api_key"),
            platform="live" if config.mode == "live" else "test",
            merchant_account=self.credentials.get("merchant_account"),
            live_endpoint_prefix=self.credentials.get("live_endpoint_prefix") or None,
        )
        client.http_client = _Transport(self)
        client.http_init = True
        self._checkout = AdyenCheckoutApi(client=client)

    # ------------------------------------------------------------------ settings
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str], mode: str) -> list[str]:
        problems = super().validate_credentials(credentials, mode)
        for name, label in (("hmac_key", "the HMAC key"), ("hmac_key_previous", "the previous HMAC key")):
            problem = _hex_problem(label, (credentials.get(name) or "").strip())
            if problem:
                problems.append(problem)
        prefix = (credentials.get("live_endpoint_prefix") or "").strip()
        if mode == "live" and prefix and not _PREFIX.fullmatch(prefix):
            problems.append(
                "the live endpoint prefix is the part before -checkout-live.adyenpayments.com "
                "(Customer Area → Developers → API URLs), e.g. 1797a841fbb37ca7-AdyenDemo"
            )
        previous = (credentials.get("hmac_key_previous") or "").strip()
        until = (credentials.get("hmac_key_previous_until") or "").strip()
        if previous and not until:
            problems.append("say until when the previous HMAC key is accepted (hmac_key_previous_until, YYYY-MM-DD)")
        if until and _parse_date(until) is None:
            problems.append("hmac_key_previous_until must be a date written YYYY-MM-DD")
        return problems

    @classmethod
    def notification_mode(cls, inbound: InboundRequest) -> str | None:
        data = inbound.json()
        if not isinstance(data, dict):
            raise MalformedNotification("an Adyen notification is a JSON object")
        return "live" if str(data.get("live")).lower() == "true" else "test"

    def hosted_page_hosts(self) -> set[str]:
        return set(HOSTED_PAGE_HOSTS)

    def notification_answer(self) -> tuple[str, int, dict[str, str]]:
        return "[accepted]", 200, {"Content-Type": "text/plain"}

    # ------------------------------------------------------------------ API calls
    @property
    def base_url(self) -> str:
        if self.config.endpoint:
            return self.config.endpoint.rstrip("/") + "/" + API_VERSION
        if self.config.mode == "live":
            return LIVE_URL.format(prefix=self.credentials["live_endpoint_prefix"].strip())
        return TEST_URL

    def _api(self, which: str):
        api = getattr(self._checkout, which)
        api.baseUrl = self.base_url
        return api

    def _call(self, which: str, method: str, *args, **kwargs) -> dict[str, Any]:
        try:
            result = getattr(self._api(which), method)(*args, **kwargs)
        except AdyenError as exc:
            raise self._error(exc) from None
        return result.message if isinstance(result.message, dict) else {}

    @staticmethod
    def _error(exc: AdyenError) -> ProviderError:
        status = exc.status_code if isinstance(exc.status_code, int) else None
        detail = exc.message.get("message") if isinstance(exc.message, dict) else None
        if status == 401:
            return ProviderError("Adyen refused the API key", status=status)
        if status == 403:
            return ProviderError("this Adyen API key may not act for this merchant account", status=status)
        text = f"Adyen answered {status}" if status else "Adyen refused the request"
        if detail and isinstance(detail, str):
            text += f": {detail[:200]}"
        return ProviderError(text, status=status, retryable=status is None or status >= 500)

    # ------------------------------------------------------------------ checkout

    def build_session_request(self, request: CheckoutRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "mode": "hosted",
            "merchantAccount": self.credentials["merchant_account"],
            "amount": {"value": request.amount, "currency": request.currency},
            # the webhooks echo it as merchantReference: it finds the payment again
            "reference": request.token,
            "merchantOrderReference": request.order_ref,
            "returnUrl": request.return_url,
            "shopperLocale": request.regional_locale(),
        }
        if request.email:
            body["shopperEmail"] = request.email
        if request.country:
            body["countryCode"] = request.country.upper()
        billing, shipping = request.billing, request.shipping_address()
        if request.first_name or request.last_name:
            body["shopperName"] = {"firstName": request.first_name or "", "lastName": request.last_name or ""}
        # PSD2 buyer data (CheckoutService-v72 CreateCheckoutSessionRequest: billingAddress,
        # deliveryAddress, shopperName, telephoneNumber, company); an address goes only whole, with
        # Address' required city, country, houseNumberOrName, postalCode and street
        if billing is not None and _adyen_address(billing):
            body["billingAddress"] = _adyen_address(billing)
        if shipping is not None and _adyen_address(shipping):
            body["deliveryAddress"] = {**_adyen_address(shipping), "firstName": shipping.first_name or "",
                                       "lastName": shipping.last_name or ""}
        if billing is not None and billing.phone:
            body["telephoneNumber"] = billing.phone  # E.164: "+", country code, number
        if billing is not None and billing.company:
            body["company"] = {"name": billing.company}
        theme = (request.provider_look or {}).get("adyen_theme_id") or self.credentials.get("theme_id")
        if theme:
            body["themeId"] = theme
        if self.config.capture == "manual":
            body["additionalData"] = {"manualCapture": "true"}
        elif self.config.capture_delay_days:
            body["captureDelayHours"] = self.config.capture_delay_days * 24
        # 3-D Secure preference (the issuer has the last word): "always" asks for a challenge,
        # "frictionless" asks for none, "when_required" leaves it to Adyen's dynamic 3-D Secure
        if self.config.three_ds == "always":
            body["authenticationData"] = {"attemptAuthentication": "always"}
            body["threeDS2RequestData"] = {"threeDSRequestorChallengeInd": CHALLENGE_REQUESTED}
        elif self.config.three_ds == "frictionless":
            body["threeDS2RequestData"] = {"threeDSRequestorChallengeInd": NO_CHALLENGE_REQUESTED}
        return body

    def start_checkout(self, request: CheckoutRequest, payment_mode: str) -> CheckoutStart:
        data = self._call(
            "payments_api", "sessions", self.build_session_request(request), idempotency_key=f"{request.token}-session"
        )
        if not data.get("id") or not data.get("url"):
            raise ProviderError("Adyen's answer has no session id or payment page")
        # the payment's PSP reference arrives with the AUTHORISATION webhook: the session id is not it
        return CheckoutStart(psp_reference=None, redirect_url=data["url"], extra={"adyen_session_id": data["id"]})

    def handle_return(self, payment: Any, inbound: InboundRequest) -> list[VerifiedMessage]:
        """The redirect proves nothing; Adyen's session API is asked whether the session ended
        without a payment (cancelled, expired, refused). A payment is decided by its webhook."""
        session_id = inbound.args.get("sessionId") or ""
        result = inbound.args.get("sessionResult") or ""
        expected = (payment.extra or {}).get("adyen_session_id")
        if not (session_id and result and session_id == expected and _SESSION_ID.fullmatch(session_id)):
            return []
        data = self._call(
            "payments_api",
            "get_result_of_payment_session",
            session_id,
            query_parameters={"sessionResult": quote(result, safe="")},
        )
        status = data.get("status")
        kind = _SESSION_OUTCOME.get(status)
        # ``reference`` is in newer v72 answers only (older ones hold id and status): when
        # present it must be ours; the session id already ties the answer to this payment
        if kind is None or data.get("id") != session_id or data.get("reference", payment.token) != payment.token:
            return []
        return [
            VerifiedMessage(
                provider=self.name,
                dedupe_key=f"adyen:{payment.mode}:session:{session_id}:{status}",
                # "refused": the AUTHORISATION webhook carries the precise reason; keep it
                events=[Event(kind, reason=None if status == "refused" else f"Adyen session {status}")],
                mode=payment.mode,
                event_type=f"session:{status}",
                payment_token=payment.token,
                merchant_reference=payment.token,
                raw=data,
            )
        ]

    # ------------------------------------------------------------------ webhooks
    def hmac_keys(self, today: date | None = None) -> list[str]:
        """The keys a signature may be made with: the current one, and the previous one until the
        last day of the overlap the merchant set (inclusive, UTC)."""
        keys = [self.credentials["hmac_key"].strip()]
        previous = (self.credentials.get("hmac_key_previous") or "").strip()
        until = _parse_date(self.credentials.get("hmac_key_previous_until") or "")
        today = today or datetime.now(timezone.utc).date()
        if previous and until is not None and today <= until:
            keys.append(previous)
        return keys

    @staticmethod
    def signature_valid(item: Mapping[str, Any], key: str) -> bool:
        """The library's check, wrapped: no ``additionalData``, no or empty ``hmacSignature``, an
        item without an amount — all are "not signed", never an exception."""
        extra = item.get("additionalData")
        if not isinstance(extra, dict) or not isinstance(extra.get("hmacSignature"), str) or not extra["hmacSignature"]:
            return False
        if not isinstance(item.get("amount"), dict):
            return False
        try:
            return Adyen.util.is_valid_hmac_notification(dict(item), key) is True
        except (KeyError, ValueError, TypeError, binascii.Error):
            return False

    def verify_notification(self, inbound: InboundRequest) -> list[VerifiedMessage]:
        data = inbound.json()
        if not isinstance(data, dict) or not isinstance(data.get("notificationItems"), list):
            raise MalformedNotification("an Adyen notification has a notificationItems list")
        items = []
        for entry in data["notificationItems"]:
            item = entry.get("NotificationRequestItem") if isinstance(entry, dict) else None
            if not isinstance(item, dict):
                raise MalformedNotification("each notificationItems entry holds a NotificationRequestItem")
            items.append(item)
        if not items:
            raise MalformedNotification("the notification has no items")
        mode = "live" if str(data.get("live")).lower() == "true" else "test"
        keys = self.hmac_keys()
        results: list[VerifiedMessage | RejectedItem] = []
        for item in items:
            if any(self.signature_valid(item, k) for k in keys):
                results.append(self.message_from_item(item, mode))
            else:
                # each item is its own piece of news, signed on its own: a bad one is refused (the
                # inbox keeps it so) and the others still apply
                results.append(RejectedItem(
                    provider=self.name,
                    reason="HMAC signature missing or wrong",
                    raw=dict(item),
                    event_type=f"{item.get('eventCode') or '?'}:{item.get('success') or '?'}"[:64],
                    psp_reference=str(item.get("pspReference") or "")[:128] or None,
                ))
        if not any(isinstance(r, VerifiedMessage) for r in results):
            raise NotAuthentic(
                "no item carries a valid HMAC signature" if len(items) > 1 else "HMAC signature missing or wrong"
            )
        return results

    def message_from_item(self, item: Mapping[str, Any], mode: str) -> VerifiedMessage:
        code = str(item.get("eventCode") or "")
        success = str(item.get("success")).lower() == "true"
        psp = str(item.get("pspReference") or "")
        original = str(item.get("originalReference") or "") or None
        amount = item.get("amount") if isinstance(item.get("amount"), dict) else {}
        value = amount.get("value")
        value = value if isinstance(value, int) and not isinstance(value, bool) else None
        currency = amount.get("currency") if isinstance(amount.get("currency"), str) else None
        reason = str(item.get("reason") or "") or None
        reference = item.get("merchantReference") if isinstance(item.get("merchantReference"), str) else None
        extra = item.get("additionalData") if isinstance(item.get("additionalData"), dict) else {}
        ours = item.get("merchantAccountCode") == self.credentials["merchant_account"]

        events = self.events_for(code, success, value, currency, reason, extra, psp or None) if ours else []
        occurred_at = psp_time(item.get("eventDate"))
        for event in events:
            event.occurred_at = occurred_at
        payment_reference = original or psp
        if code == "AUTHORISATION" and not success:
            # a refused attempt: the buyer may still pay within the same session with another
            # pspReference, so this one must not become the payment's reference
            payment_reference = None
        return VerifiedMessage(
            provider=self.name,
            dedupe_key=f"adyen:{mode}:{psp}:{code}:{'true' if success else 'false'}"[:191],
            events=events,
            mode=mode,
            event_type=(f"{code}:{'true' if success else 'false'}" + ("" if ours else ":other-merchant-account"))[:64],
            psp_reference=payment_reference if ours else None,
            payment_token=reference if ours else None,
            merchant_reference=reference,
            raw=dict(item),
        )

    def events_for(
        self, code: str, success: bool, value: int | None, currency: str | None, reason: str | None, extra: Mapping,
        reference: str | None = None,
    ) -> list[Event]:
        """``reference``: the item's pspReference — for a modification (capture, refund,
        cancellation) the one Adyen gave the request, which ties the outcome to it."""
        K = EventKind
        if code == "AUTHORISATION":
            if not success:
                # one refused attempt: Adyen keeps the session open for another card, so the
                # payment stays pending (with the reason) until an attempt succeeds or the
                # session ends — refused after too many attempts, cancelled or expired, as
                # Adyen's session API tells on the buyer's return
                return [Event(K.PENDING, reason=reason or "Refused")]
            # captured at once or only authorised, as the payment's session asked (manualCapture):
            # the ledger reads the payment's own capture policy, not today's settings. Under
            # automatic capture Adyen captures by itself and sends no CAPTURE webhook for it
            return [Event(K.APPROVED, amount=value, currency=currency, authorized_total=value)]
        if code == "CAPTURE":
            if success:
                return [Event(K.CAPTURED, currency=currency, captured_total=value, operation_reference=reference)]
            return [Event(K.CAPTURE_FAILED, reason=reason, operation_reference=reference)]
        if code == "CAPTURE_FAILED":
            return [Event(K.CAPTURE_FAILED, reason=reason, operation_reference=reference)]
        if code == "REFUND":
            if success:
                return [Event(K.REFUNDED, currency=currency, refund_delta=value, operation_reference=reference)]
            return [Event(K.REFUND_FAILED, reason=reason, operation_reference=reference)]
        if code == "REFUND_FAILED":
            return [Event(K.REFUND_FAILED, reason=reason, operation_reference=reference)]
        if code == "CANCELLATION":
            if success:
                return [Event(K.CANCELLED, currency=currency, reason=reason or "cancelled", operation_reference=reference)]
            return [Event(K.CANCEL_FAILED, reason=reason or "Adyen refused the cancellation", operation_reference=reference)]
        if code == "CANCEL_OR_REFUND":
            if not success:
                return []
            action = str(extra.get("modification.action") or "").lower()
            cancelled = Event(K.CANCELLED, currency=currency, reason="cancelled", operation_reference=reference)
            refunded = Event(K.REFUNDED, currency=currency, refund_delta=value, operation_reference=reference)
            if action == "cancel":
                return [cancelled]
            if action == "refund":
                return [refunded]
            return [cancelled, refunded]
        if code in ("EXPIRE", "OFFER_CLOSED"):
            return [Event(K.EXPIRED, reason=reason or code.lower())] if success else []
        if code == "CHARGEBACK":
            return [Event(K.CHARGEBACK, reason=reason or "chargeback", currency=currency, operation_amount=value)]
        if code == "CHARGEBACK_REVERSED":
            return [Event(K.CHARGEBACK_REVERSED, reason=reason or "chargeback reversed", currency=currency,
                          operation_amount=value)]
        return []

    # ------------------------------------------------------------------ modifications
    def _modify(
        self, what: str, method: str, payment: Any, body: dict[str, Any], key: str, amount: int | None = None
    ) -> list[VerifiedMessage]:
        if not payment.psp_reference or not _PSP_REFERENCE.fullmatch(payment.psp_reference):
            raise ProviderError("Adyen has not reported this payment's reference yet")
        body = {"merchantAccount": self.credentials["merchant_account"], "reference": payment.token, **body}
        data = self._call("modifications_api", method, body, payment.psp_reference, idempotency_key=key)
        if data.get("status") != "received" or not isinstance(data.get("pspReference"), str):
            raise ProviderError(f"Adyen did not take the request ({data.get('status') or 'no answer'})")
        # Adyen only acknowledges; the outcome comes with the CAPTURE / REFUND / CANCELLATION
        # webhook, whose pspReference is this request's. The payment shows the request as
        # awaiting it (no money moves), and a replayed request (same Idempotency-Key, same
        # pspReference) is a duplicate.
        return [
            VerifiedMessage(
                provider=self.name,
                dedupe_key=f"adyen:{payment.mode}:request:{data['pspReference']}"[:191],
                events=[Event(EventKind.REQUESTED, currency=payment.currency, operation=what, operation_amount=amount,
                              operation_reference=data["pspReference"])],
                mode=payment.mode,
                event_type=f"{what} requested, awaiting Adyen",
                psp_reference=payment.psp_reference,
                payment_token=payment.token,
                merchant_reference=payment.token,
                raw={**data, "request": what, "idempotencyKey": key},
            )
        ]

    def capture(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        return self._modify(
            "capture",
            "capture_authorised_payment",
            payment,
            {"amount": {"value": amount, "currency": payment.currency}},
            f"{payment.token}-capture-{amount}-{payment.captured_amount}",
            amount,
        )

    def refund(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        return self._modify(
            "refund",
            "refund_captured_payment",
            payment,
            {"amount": {"value": amount, "currency": payment.currency}},
            f"{payment.token}-refund-{amount}-{payment.refunded_amount}",
            amount,
        )

    def cancel(self, payment: Any) -> list[VerifiedMessage]:
        if not payment.psp_reference:
            # nothing authorised yet: the session simply expires at Adyen
            raise ProviderError("this Adyen payment has no authorisation to cancel yet; the session expires by itself")
        return self._modify("cancel", "cancel_authorised_payment_by_psp_reference", payment, {}, f"{payment.token}-cancel")

    def abandon(self, payment: Any) -> list[VerifiedMessage]:
        return []  # Hosted Checkout has no cancel URL: the return and the webhooks tell

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("payments_api", "payment_methods", {"merchantAccount": self.credentials["merchant_account"]})
        except ProviderError as exc:
            if exc.status == 401:
                return False, "Adyen refused the API key: copy it again (Customer Area → Developers → API credentials)"
            if exc.status == 403:
                return False, "this API key may not use this merchant account: check the merchant account name and the key's roles"
            return False, exc.message
        return True, f"Connected to Adyen in {self.config.mode} mode"


def _adyen_address(address: Any) -> dict[str, str] | None:
    """Adyen's Address from ours, or None when a required part is missing. ``street`` takes the
    first line whole (number included) and ``houseNumberOrName`` the second, or "" ⚠."""
    if not (address.line1 and address.postcode and address.city and address.country):
        return None
    return {"street": address.line1, "houseNumberOrName": address.line2 or "", "postalCode": address.postcode,
            "city": address.city, "country": address.country}

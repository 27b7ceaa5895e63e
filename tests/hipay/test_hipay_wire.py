"""HiPay's wire format without a network: the public signature vectors, the hosted-page request, and
how notifications and redirects are read."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import pytest

from flask_psp.providers.base import (
    CheckoutRequest,
    EventKind,
    InboundRequest,
    NotAuthentic,
    ProviderConfig,
    ProviderError,
)
from flask_psp.providers.hipay import HiPayProvider, body_signature, redirect_hash


@pytest.mark.parametrize("algorithm, expected", [
    ("sha1", "9cf701f5d7519f1aeabe69a2857ee85fefbf31a3"),
    ("sha256", "9664430560899c4a1eeff059f4244265d783bdba077c525943ec1438db04b8bc"),
    ("sha512", "dca1c8cd59e00362d6c1516596e5cc514778f7d88a2fcbedf4feae035333dddc3e86175d7df65616857571d3ce75b994fe3abc43048bfca248cdb198c521e7a0"),
])
def test_public_redirect_hash_vectors(algorithm, expected):
    # hipay/hipay-fullservice-sdk-php SignatureTest (PROVIDERS.md)
    assert redirect_hash({"signature": "testSignature"}, "testSignature", algorithm) == expected
    assert redirect_hash({"signature": "testSignature", "empty": "", "hash": "x"}, "testSignature", algorithm) == expected


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_notification_signature_is_the_hash_of_body_and_passphrase(algorithm):
    body = b"state=completed&status=118&transaction_reference=800000000001"
    assert body_signature(body, "pass", algorithm) == hashlib.new(algorithm, body + b"pass").hexdigest()


def provider(capture="auto", three_ds="when_required", mode="test", **credentials):
    block = {"api_username": "u", "api_password": "p", "secret_passphrase": "secret", **credentials}
    return HiPayProvider(ProviderConfig(name="hipay", mode=mode, credentials=block, capture=capture, three_ds=three_ds))


def checkout(**changes):
    values = dict(token="tok_ABC-123", order_ref="ORD-7", amount=1450, currency="EUR", email="b@example.com",
                  description="1 × Mug", locale="fr", return_url="https://shop.example/psp/return/tok_ABC-123",
                  cancel_url="https://shop.example/psp/cancel/tok_ABC-123",
                  notify_url="https://shop.example/psp/notify/hipay", brand_name="A very long brand name for a small shop",
                  provider_look={"hipay_theme_code": "th_42"})
    values.update(changes)
    return CheckoutRequest(**values)


def test_hosted_page_request_fields():
    fields = provider().build_hpayment(checkout())
    assert (fields["orderid"], fields["operation"], fields["amount"], fields["currency"]) == ("tok_ABC-123", "Sale", "14.50", "EUR")
    assert (fields["language"], fields["eci"], fields["authentication_indicator"]) == ("fr_FR", "7", "1")
    assert fields["theme_code"] == "th_42" and fields["merchant_display_name"] == "A very long brand name for a sma"
    assert fields["cancel_url"] == "https://shop.example/psp/return/tok_ABC-123?hipay_page=cancel"
    assert fields["notify_url"] == "https://shop.example/psp/notify/hipay" and fields["email"] == "b@example.com"
    manual = provider(capture="manual", three_ds="always").build_hpayment(checkout(currency="JPY", amount=1450))
    assert (manual["operation"], manual["amount"], manual["authentication_indicator"]) == ("Authorization", "1450", "2")
    assert provider().build_hpayment(checkout(currency="KWD", amount=1450))["amount"] == "1.450"


def notification(status, signed_with="secret", algorithm="sha256", **extra):
    fields = {"state": "completed", "status": str(status), "transaction_reference": "800000000001", "test": "true",
              "authorized_amount": "14.50",
              # HiPay fills captured_amount from 117 "capture requested" on (its documentation's example)
              "captured_amount": "14.50" if status in (117, 118, 124, 125, 126) else "0.00",
              "refunded_amount": {125: "14.50", 126: "5.00"}.get(status, "0.00"), "currency": "EUR",
              "order[id]": "tok_ABC-123", **extra}
    body = urlencode(fields).encode()
    return InboundRequest(body=body, headers={"X-Allopass-Signature": body_signature(body, signed_with, algorithm)},
                          content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("status, kinds", [
    (142, [EventKind.PENDING]), (116, [EventKind.AUTHORIZED]), (117, []), (118, [EventKind.CAPTURED]),
    (125, [EventKind.CAPTURED, EventKind.REFUNDED]), (126, [EventKind.CAPTURED, EventKind.REFUNDED]),
    (113, [EventKind.FAILED]), (163, [EventKind.FAILED]), (178, [EventKind.FAILED]), (114, [EventKind.EXPIRED]),
    (115, [EventKind.CANCELLED]), (143, [EventKind.CANCELLED]), (124, [EventKind.CAPTURED]),
    (173, [EventKind.CAPTURE_FAILED]), (165, [EventKind.REFUND_FAILED]), (129, [EventKind.CHARGEBACK]),
])
def test_status_codes(status, kinds):
    (message,) = provider().verify_notification(notification(status))
    assert [e.kind for e in message.events] == kinds
    assert message.payment_token == "tok_ABC-123" and message.psp_reference == "800000000001"
    assert message.mode == "test"


def test_amounts_are_absolute_snapshots_in_minor_units():
    (message,) = provider().verify_notification(notification(126))
    captured, refunded = message.events
    assert (captured.captured_total, captured.amount, captured.currency) == (1450, 1450, "EUR")
    assert refunded.refunded_total == 500
    same = provider().verify_notification(notification(126))[0]
    assert same.dedupe_key == message.dedupe_key  # a repeat is recognised
    assert provider().verify_notification(notification(125))[0].dedupe_key != message.dedupe_key


def test_notification_signature_checks():
    with pytest.raises(NotAuthentic):
        provider().verify_notification(notification(118, signed_with="other"))
    with pytest.raises(NotAuthentic):
        provider().verify_notification(notification(118, algorithm="sha1"))
    assert provider(hash_algorithm="sha512").verify_notification(notification(118, algorithm="sha512"))
    unsigned = notification(118)
    with pytest.raises(NotAuthentic):
        provider().verify_notification(InboundRequest(body=unsigned.body, headers={}))
    assert HiPayProvider.notification_mode(notification(118, test="false")) == "live"


class FakePayment:
    token = "tok_ABC-123"


def signed_args(params, passphrase="secret"):
    return {**params, "hash": redirect_hash(params, passphrase)}


def test_redirects_prove_refusals_but_never_a_payment():
    accept = signed_args({"hipay_page": "accept", "orderid": "tok_ABC-123", "state": "completed", "status": "118",
                          "reference": "800000000001", "test": "1"})
    with pytest.raises(ProviderError):  # an accepted redirect proves no money: HiPay itself is asked
        provider().handle_return(FakePayment(), InboundRequest(b"", {}, args=accept))
    decline = signed_args({"hipay_page": "decline", "orderid": "tok_ABC-123", "state": "declined", "status": "113",
                           "reference": "800000000001", "test": "1"})
    (message,) = provider().handle_return(FakePayment(), InboundRequest(b"", {}, args=decline))
    assert [e.kind for e in message.events] == [EventKind.FAILED] and message.mode == "test"
    cancel = signed_args({"hipay_page": "cancel", "orderid": "tok_ABC-123"})
    (message,) = provider().handle_return(FakePayment(), InboundRequest(b"", {}, args=cancel))
    assert [e.kind for e in message.events] == [EventKind.CANCELLED]
    with pytest.raises(NotAuthentic):
        provider().handle_return(FakePayment(), InboundRequest(b"", {}, args={**decline, "status": "118"}))
    other = signed_args({"hipay_page": "decline", "orderid": "someone-else", "state": "declined", "status": "113"})
    with pytest.raises(NotAuthentic):
        provider().handle_return(FakePayment(), InboundRequest(b"", {}, args=other))
    with pytest.raises(ProviderError):  # unsigned: proves nothing, HiPay is asked
        provider().handle_return(FakePayment(), InboundRequest(b"", {}, args={"hipay_page": "cancel"}))


def test_a_hash_over_hipays_own_parameters_only_proves_no_page():
    theirs = {"orderid": "tok_ABC-123"}
    args = {**theirs, "hipay_page": "cancel", "hash": redirect_hash(theirs, "secret")}
    with pytest.raises(ProviderError):  # no page proven, so no cancellation: HiPay is asked instead
        provider().handle_return(FakePayment(), InboundRequest(b"", {}, args=args))

"""The Sips wire format without a network: the public seal vectors, the Data the shop sends, and how
a sealed response is read."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_psp.providers.base import (
    CheckoutRequest,
    EventKind,
    MalformedNotification,
    NotAuthentic,
    ProviderConfig,
    ProviderError,
)
from flask_psp.providers.sips import (
    SipsProvider,
    compute_json_seal,
    compute_seal,
    decode_data,
    encode_data,
    transaction_reference,
)
from flask_psp.simulator import sips as simulator

KEY = "002001000000001_KEY1"
# worldline/Sips-International-non-FR-PHPlibrary tests (PROVIDERS.md)
VECTOR_DATA = ("amount=1234|currencyCode=978|merchantId=002001000000001|normalReturnUrl=http://www.normalreturnurl.com"
               "|transactionReference=marlon1|keyVersion=1")
VECTOR_SEAL = "65421e720d149e8a79bdc9a29f6c462ed199b78f32e558c6c5fc15f0084e5384"


def test_public_sha256_vector_on_both_sides():
    assert compute_seal(VECTOR_DATA, KEY, "SHA-256") == VECTOR_SEAL
    assert simulator._seal(VECTOR_DATA, KEY, "SHA-256") == VECTOR_SEAL  # written separately, from Sips' side


def test_hmac_seal_is_keyed_with_the_secret():
    expected = hmac.new(KEY.encode(), VECTOR_DATA.encode(), hashlib.sha256).hexdigest()
    assert compute_seal(VECTOR_DATA, KEY, "HMAC-SHA-256") == expected != VECTOR_SEAL
    assert simulator._seal(VECTOR_DATA, KEY, "HMAC-SHA-256") == expected


def test_office_json_seal_follows_the_sdk_concatenation():
    # worldline/sips-sdk-php tests/src/Common/Seal/JsonSealCalculatorTest.php: the seal data of these fields
    fields = {
        "amount": 2, "automaticResponseUrl": "http://test.com", "currencyCode": "978",
        "interfaceVersion": "IR_WS_2.19", "normalReturnUrl": "http://localhost/return.php", "orderChannel": "INTERNET",
        "templateName": "custom", "transactionReference": "test", "keyVersion": 1, "sealAlgorithm": "HMAC-SHA-256",
        "customerContact": {"lastname": "Lastname", "firstname": "Firstname"},
        "customerAddress": {"country": "CustomerCountry", "city": "CustomerCity"},
    }
    text = "2http://test.com978CustomerCityCustomerCountryFirstnameLastnameIR_WS_2.19http://localhost/return.phpINTERNETcustomtest"
    expected = hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert compute_json_seal(fields, KEY) == expected
    assert compute_json_seal({**fields, "seal": "anything"}, KEY) == expected
    assert simulator._json_seal(fields, KEY) == expected


def provider(capture="auto", three_ds="when_required", delay=0, **credentials):
    block = {"merchant_id": "002001000000001", "secret_key": KEY, "key_version": "1", **credentials}
    return SipsProvider(ProviderConfig(name="sips", mode="test", credentials=block, capture=capture,
                                       capture_delay_days=delay, three_ds=three_ds))


def checkout(**changes):
    values = dict(token="Ab-3_xYz" * 4, order_ref="ORD-42", amount=1450, currency="EUR", email="b@example.com",
                  description="1 × Mug", locale="fr", return_url="https://shop.example/psp/return/t",
                  cancel_url="https://shop.example/psp/cancel/t", notify_url="https://shop.example/psp/notify/sips",
                  provider_look={"sips_template_name": "shop_template"})
    values.update(changes)
    return CheckoutRequest(**values)


def test_form_posts_data_seal_and_algorithm_to_paymentinit():
    started = provider().start_checkout(checkout(), "test")
    assert started.form_action == "https://payment-webinit.simu.sips-services.com/paymentInit"
    assert set(started.form_fields) == {"Data", "Seal", "InterfaceVersion", "SealAlgorithm"}
    assert started.form_fields["Seal"] == compute_seal(started.form_fields["Data"], KEY, "HMAC-SHA-256")
    data = decode_data(started.form_fields["Data"])
    assert data["transactionReference"] == started.psp_reference == "Ab3xYz" * 4
    assert data["templateName"] == "shop_template" and data["customerLanguage"] == "fr"
    assert data["returnContext"] == "Ab-3_xYz" * 4 and data["orderId"] == "ORD-42"
    live = SipsProvider(ProviderConfig(name="sips", mode="live", credentials=provider().credentials))
    assert live.start_checkout(checkout(), "live").form_action == "https://payment-webinit.sips-services.com/paymentInit"
    # the Office server of each Paypage's environment (worldline/sips-sdk-php SipsEnvironment)
    assert provider().office_url == "https://office-server.simu.sips-services.com/rs-services/v2"
    assert live.office_url == "https://office-server.sips-services.com/rs-services/v2"


@pytest.mark.parametrize("currency, amount, code", [("EUR", 1450, "978"), ("JPY", 1450, "392"), ("KWD", 1450, "414")])
def test_currency_is_the_iso_numeric_code_and_amount_stays_in_minor_units(currency, amount, code):
    data = dict(provider().build_data(checkout(currency=currency, amount=amount)))
    assert (data["currencyCode"], data["amount"]) == (code, "1450")


@pytest.mark.parametrize("policy, mode", [("always", "CHALLENGE"), ("when_required", "NO_PREFERENCE"),
                                          ("frictionless", "NO_CHALLENGE")])
def test_three_d_secure_preference(policy, mode):
    assert dict(provider(three_ds=policy).build_data(checkout()))["fraudData.challengeMode3DS"] == mode


def test_capture_settings():
    auto = dict(provider().build_data(checkout()))
    assert (auto["captureMode"], auto["captureDay"]) == ("AUTHOR_CAPTURE", "0")
    manual = dict(provider(capture="manual", delay=4).build_data(checkout()))
    assert (manual["captureMode"], manual["captureDay"]) == ("VALIDATION", "4")
    default = dict(provider(capture="manual").build_data(checkout()))
    assert (default["captureMode"], default["captureDay"]) == ("VALIDATION", "6")


def test_transaction_reference_is_alphanumeric_and_unique_per_token():
    from flask_psp.models import new_token

    references = {transaction_reference(new_token()) for _ in range(200)}
    assert len(references) == 200 and all(r.isalnum() and len(r) <= 35 for r in references)


def sealed(fields, key=KEY, algorithm="HMAC-SHA-256"):
    data = encode_data(fields.items())
    return {"Data": data, "Seal": compute_seal(data, key, algorithm), "InterfaceVersion": "HP_2.31"}


BASE = {"amount": "1450", "currencyCode": "978", "merchantId": "002001000000001", "transactionReference": "abc123",
        "keyVersion": "1", "captureMode": "AUTHOR_CAPTURE", "returnContext": "tok"}


@pytest.mark.parametrize("code, kind", [("00", EventKind.CAPTURED), ("60", EventKind.PENDING),
                                        ("17", EventKind.CANCELLED), ("97", EventKind.EXPIRED),
                                        ("05", EventKind.FAILED), ("34", EventKind.FAILED)])
def test_response_codes(code, kind):
    message = provider().read_response(sealed({**BASE, "responseCode": code}), "automatic")
    assert [e.kind for e in message.events] == [kind]
    assert message.psp_reference == "abc123" and message.payment_token == "tok"
    assert message.dedupe_key == f"sips:002001000000001:abc123:{code}"


def test_validation_mode_success_is_an_authorization_with_amount_and_currency():
    message = provider().read_response(sealed({**BASE, "responseCode": "00", "captureMode": "VALIDATION"}), "return")
    (event,) = message.events
    assert (event.kind, event.amount, event.currency, event.authorized_total) == (EventKind.AUTHORIZED, 1450, "EUR", 1450)


def test_base64_encoded_data_is_verified_as_sent():
    data = base64.b64encode(encode_data({**BASE, "responseCode": "00"}.items()).encode()).decode()
    form = {"Data": data, "Seal": compute_seal(data, KEY), "Encode": "base64"}
    assert provider().read_response(form, "return").events[0].kind is EventKind.CAPTURED


def test_unsealed_wrongly_sealed_and_foreign_responses_are_refused():
    good = sealed({**BASE, "responseCode": "00"})
    with pytest.raises(NotAuthentic):
        provider().read_response({**good, "Seal": ""}, "return")
    with pytest.raises(NotAuthentic):
        provider(seal_algorithm="SHA-256").read_response(good, "return")  # verified with the configured algorithm
    with pytest.raises(NotAuthentic):
        provider().read_response(sealed({**BASE, "responseCode": "00"}, key="other"), "return")
    with pytest.raises(NotAuthentic):
        provider().read_response(sealed({**BASE, "responseCode": "00", "merchantId": "999"}), "return")
    with pytest.raises(MalformedNotification):
        provider().read_response({"Seal": "x"}, "return")


def test_credentials_are_checked_in_words_a_merchant_understands():
    assert SipsProvider.validate_credentials({"merchant_id": "002001000000001", "secret_key": "k", "key_version": "1"},
                                             "test") == []
    problems = SipsProvider.validate_credentials(
        {"merchant_id": "0020A", "secret_key": "k", "key_version": "v1", "seal_algorithm": "MD5"}, "live")
    assert len(problems) == 3 and any("key version" in p for p in problems)


# what a buyer or a shop's form can put in the checkout's Data: e-mail, order reference, template name, language
_TYPED = st.text(alphabet=st.sampled_from("ab09@.-_ |=%&+\u00e9responseCode"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(email=_TYPED, order_ref=_TYPED, template=_TYPED, locale=_TYPED, algorithm=st.sampled_from(["HMAC-SHA-256",
                                                                                                  "SHA-256"]))
def test_the_sealed_payment_request_never_reads_as_a_response(email, order_ref, template, locale, algorithm):
    """The checkout's Data is sealed with the key that seals Sips' responses; whatever the buyer typed into it,
    posted back it is refused, never read as news about the payment."""
    sips = provider(seal_algorithm=algorithm)
    try:
        started = sips.start_checkout(checkout(email=email or None, order_ref=order_ref, locale=locale,
                                               provider_look={"sips_template_name": template}), "test")
    except ProviderError:
        return  # refused to build: nothing sealed
    with pytest.raises(NotAuthentic, match="payment request"):
        sips.read_response(started.form_fields, "return")

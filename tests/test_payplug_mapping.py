"""PayPlug request mapping and snapshot reading, without the network."""

from flask_psp.providers.base import CheckoutRequest, EventKind as K, ProviderConfig
from flask_psp.providers.payplug import PayPlugProvider


def provider(**config):
    settings = {"name": "payplug", "mode": "test", "credentials": {"secret_key": "sk_test_x"}}
    settings.update(config)
    return PayPlugProvider(ProviderConfig(**settings))


def request(**changes):
    values = dict(
        token="tok123", order_ref="ORD-9", amount=4590, currency="EUR", email="ann@example.fr", description="2 mugs",
        locale="fr", return_url="https://shop.example/psp/return/tok123", cancel_url="https://shop.example/psp/cancel/tok123",
        notify_url="https://shop.example/psp/notify/payplug", first_name="Ann", last_name="Martin",
        address={"line1": "3 rue Neuve", "postcode": "69001", "city": "Lyon"}, country="FR",
    )
    values.update(changes)
    return CheckoutRequest(**values)


def test_auto_capture_sends_amount_billing_urls_and_our_token():
    body = provider().build_payment_request(request())
    assert body["amount"] == 4590 and "authorized_amount" not in body
    assert body["currency"] == "EUR"
    assert body["billing"] == {
        "email": "ann@example.fr", "first_name": "Ann", "last_name": "Martin", "language": "fr",
        "address1": "3 rue Neuve", "postcode": "69001", "city": "Lyon", "country": "FR",
    }
    assert body["hosted_payment"] == {
        "return_url": "https://shop.example/psp/return/tok123", "cancel_url": "https://shop.example/psp/cancel/tok123",
    }
    assert body["notification_url"] == "https://shop.example/psp/notify/payplug"
    assert body["metadata"] == {"psp_token": "tok123", "order_ref": "ORD-9"}
    assert "force_3ds" not in body


def test_manual_capture_asks_for_an_authorization_and_3ds_always_forces_it():
    body = provider(capture="manual", three_ds="always").build_payment_request(request())
    assert body["authorized_amount"] == 4590 and "amount" not in body
    assert body["force_3ds"] is True


def test_unsupported_language_falls_back_to_english():
    assert provider().build_payment_request(request(locale="de"))["billing"]["language"] == "en"


def snapshot(**fields):
    data = {"id": "pay_1", "object": "payment", "is_live": False, "amount": 4590, "currency": "EUR",
            "is_paid": False, "amount_refunded": 0, "failure": None, "authorization": None,
            "metadata": {"psp_token": "tok123"}}
    data.update(fields)
    return data


def test_snapshots_become_events():
    read = provider().message_from_payment
    paid = read(snapshot(is_paid=True))
    assert [e.kind for e in paid.events] == [K.CAPTURED] and paid.events[0].captured_total == 4590
    assert paid.payment_token == "tok123" and paid.mode == "test" and paid.psp_reference == "pay_1"
    refunded = read(snapshot(is_paid=True, amount_refunded=1000))
    assert [e.kind for e in refunded.events] == [K.CAPTURED, K.REFUNDED] and refunded.events[1].refunded_total == 1000
    assert refunded.dedupe_key != paid.dedupe_key
    assert read(snapshot(failure={"code": "aborted", "message": "x"})).events[0].kind is K.CANCELLED
    assert read(snapshot(failure={"code": "timeout", "message": "x"})).events[0].kind is K.EXPIRED
    assert read(snapshot(failure={"code": "card_declined", "message": "Declined"})).events[0].kind is K.FAILED
    authorized = read(snapshot(authorization={"authorized_at": 1, "authorized_amount": 4590}))
    assert authorized.events[0].kind is K.AUTHORIZED
    # a deferred payment aborted (or whose authorization lapsed) keeps its authorization block
    aborted = read(snapshot(authorization={"authorized_at": 1, "authorized_amount": 4590},
                            failure={"code": "aborted", "message": "The payment was aborted."}))
    assert [e.kind for e in aborted.events] == [K.CANCELLED] and aborted.dedupe_key != authorized.dedupe_key
    lapsed = read(snapshot(authorization={"authorized_at": 1, "authorized_amount": 4590},
                           failure={"code": "timeout", "message": "x"}))
    assert [e.kind for e in lapsed.events] == [K.EXPIRED]
    assert read(snapshot(is_live=True)).mode == "live"
    assert read(snapshot()).events[0].kind is K.PENDING


def test_keys_must_match_the_mode():
    assert PayPlugProvider.validate_credentials({"secret_key": "sk_test_1"}, "test") == []
    assert "looks like a live key" in PayPlugProvider.validate_credentials({"secret_key": "sk_live_1"}, "test")[0]
    assert "must start with sk_live_" in PayPlugProvider.validate_credentials({"secret_key": "sk_test_1"}, "live")[0]

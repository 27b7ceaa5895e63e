"""Each provider reads the PSP's own date of a money event from its news (field names and shapes
as the PSPs' documentation shows them), which dates the accounting movement."""

from __future__ import annotations

from datetime import datetime

from flask_psp.events import EventKind as K, psp_time
from flask_psp.providers.base import ProviderConfig


def test_psp_timestamps_are_read_as_naive_utc():
    assert psp_time("2021-01-01T01:00:00+01:00") == datetime(2021, 1, 1, 0, 0)  # Adyen eventDate
    assert psp_time("2018-02-25T17:48:01Z") == datetime(2018, 2, 25, 17, 48, 1)  # PayPal create_time
    assert psp_time("2026-12-05T10:00:00+0000") == datetime(2026, 12, 5, 10, 0)  # HiPay date_updated
    assert psp_time(1434010827) == datetime(2015, 6, 11, 8, 20, 27)  # PayPlug: Unix seconds
    for nothing in (None, "", "yesterday", True, 10 ** 20, "2026-13-01T00:00:00Z", {"date": 1}):
        assert psp_time(nothing) is None


def test_adyen_dates_every_event_of_an_item_by_its_event_date_and_gives_the_chargeback_amount():
    from flask_psp.providers.adyen import AdyenProvider

    provider = AdyenProvider(ProviderConfig("adyen", "test", {"api_key": "k", "merchant_account": "TestMerchant",
                                                              "hmac_key": "00" * 32}))
    item = {"eventCode": "CHARGEBACK", "success": "true", "pspReference": "9915555555555555",
            "originalReference": "9913333333333333", "merchantAccountCode": "TestMerchant",
            "merchantReference": "tok", "amount": {"currency": "EUR", "value": 1500},
            "eventDate": "2021-01-01T01:00:00+01:00", "reason": "Fraudulent transaction"}
    (event,) = provider.message_from_item(item, "test").events
    assert (event.kind, event.operation_amount, event.occurred_at) == (K.CHARGEBACK, 1500, datetime(2021, 1, 1))
    reversed_item = dict(item, eventCode="CHARGEBACK_REVERSED", eventDate="2021-02-01T10:00:00+01:00")
    (event,) = provider.message_from_item(reversed_item, "test").events
    assert (event.kind, event.occurred_at) == (K.CHARGEBACK_REVERSED, datetime(2021, 2, 1, 9, 0))
    (event,) = provider.message_from_item(dict(item, eventCode="REFUND", eventDate="not a date"), "test").events
    assert event.kind is K.REFUNDED and event.occurred_at is None  # proven all the same: dated when received


def test_paypal_dates_a_capture_and_a_refund_by_their_create_time():
    from flask_psp.providers.paypal import PayPalProvider

    provider = PayPalProvider(ProviderConfig("paypal", "test", {"client_id": "c", "client_secret": "s",
                                                                 "webhook_id": "W"}))
    amount = {"currency_code": "EUR", "value": "12.50"}
    (capture,) = provider.capture_message({"id": "2GG2", "status": "COMPLETED", "amount": amount,
                                           "create_time": "2018-02-25T17:48:01Z"}, "O1", "tok", False).events
    (refund,) = provider.refund_message({"id": "3RF1", "status": "COMPLETED", "amount": amount,
                                         "create_time": "2018-03-01T08:00:00-08:00"}, "O1", "tok").events
    assert capture.occurred_at == datetime(2018, 2, 25, 17, 48, 1) and refund.occurred_at == datetime(2018, 3, 1, 16)


def test_payplug_dates_a_payment_by_its_paid_at():
    from flask_psp.providers.payplug import PayPlugProvider

    provider = PayPlugProvider(ProviderConfig("payplug", "test", {"secret_key": "sk_test_x"}))
    payment = {"id": "pay_5iHMDxy4ABR4YBVW4UscIn", "is_live": False, "is_paid": True, "amount": 3300,
               "amount_refunded": 0, "currency": "EUR", "hosted_payment": {"paid_at": 1434010827},
               "metadata": {"psp_token": "tok"}}
    (event,) = provider.message_from_payment(payment).events
    assert event.kind is K.CAPTURED and event.occurred_at == datetime(2015, 6, 11, 8, 20, 27)


def test_sips_dates_a_payment_by_its_transaction_date_time():
    from flask_psp.providers.sips import SipsProvider

    provider = SipsProvider(ProviderConfig(name="sips", mode="test", credentials={
        "merchant_id": "002001000000001", "secret_key": "k", "key_version": "1"}))
    fields = {"responseCode": "00", "amount": "1000", "currencyCode": "978", "captureMode": "AUTHOR_CAPTURE",
              "transactionDateTime": "2018-04-18T14:44:12+02:00", "transactionReference": "ref1"}
    message = provider.message_from_response(fields, "ref1", "notify")
    assert message.events[0].occurred_at == datetime(2018, 4, 18, 12, 44, 12)

"""Adyen on the wire: what the sessions request carries, how every webhook event code moves a
payment, and how a modification shows while Adyen has not answered by webhook yet. The shop and
the Adyen simulator run on loopback; webhooks are made and signed by the simulator."""

from __future__ import annotations

import dataclasses
import json

import pytest

from flask_psp.providers.adyen import AdyenProvider
from flask_psp.providers.base import CheckoutRequest, ProviderConfig
from tests.adyen.conftest import pay, session_of, start


def inbox(shop, **where):
    return [e for e in shop.events() if all(e[k] == v for k, v in where.items())]


def event_types(shop, source):
    from example_shop import db
    from flask_psp.models import PaymentEvent
    import sqlalchemy as sa

    with shop.app.app_context():
        rows = db.session.scalars(sa.select(PaymentEvent).where(PaymentEvent.source == source).order_by(PaymentEvent.id))
        return [(r.event_type, r.outcome) for r in rows]


def operate(shop, ref, verb, *args):
    from example_shop import psp

    with shop.app.app_context():
        payment = psp.payments_for(ref)[-1]
        getattr(psp, verb)(payment, *args)
        return payment.status


class CountryOrders:
    """The shop's adapter, telling the buyer's country as a shop with addresses would."""

    def __init__(self, inner, country):
        self.inner, self.country = inner, country

    def get(self, ref):
        order = self.inner.get(ref)
        return dataclasses.replace(order, country=self.country, first_name="Jeanne", last_name="Martin") if order else None

    def mark_paid(self, ref, payment):
        self.inner.mark_paid(ref, payment)


def set_page(shop, **look):
    from example_shop import db
    from flask_psp.models import PageSettings

    with shop.app.app_context():
        db.session.add(PageSettings(id=1, brand_name="Atelier", messages={}, provider_look=look))
        db.session.commit()


# ---------------------------------------------------------------------------- the sessions request
def test_session_carries_locale_country_theme_and_no_challenge_preference(adyen_shop, sim):
    shop = adyen_shop(three_ds="frictionless")
    state = shop.app.extensions["psp"]
    state.orders = CountryOrders(state.orders, "FR")
    set_page(shop, adyen_theme_id="5f8a7d6c-theme")
    buyer = shop.buyer(accept_language="fr-FR,fr;q=0.9")
    ref, page_url = start(buyer)
    sent = session_of(sim, page_url)["request"]
    assert sent["shopperLocale"] == "fr-FR" and sent["countryCode"] == "FR"
    assert sent["shopperName"] == {"firstName": "Jeanne", "lastName": "Martin"}
    assert sent["themeId"] == "5f8a7d6c-theme"
    assert sent["threeDS2RequestData"] == {"threeDSRequestorChallengeInd": "02"}  # no challenge requested
    assert "authenticationData" not in sent and "additionalData" not in sent and "captureDelayHours" not in sent
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.order(ref)["status"] == "paid"


def test_theme_from_the_credentials_when_the_page_settings_name_none(adyen_shop, sim):
    shop = adyen_shop(theme_id="credential-theme")
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    sent = session_of(sim, page_url)["request"]
    assert sent["themeId"] == "credential-theme" and "countryCode" not in sent
    assert "threeDS2RequestData" not in sent  # "when required": Adyen's own 3-D Secure rules


def test_always_challenge_asks_for_a_challenge_both_ways(adyen_shop, sim):
    shop = adyen_shop(three_ds="always")
    ref, page_url = start(shop.buyer())
    sent = session_of(sim, page_url)["request"]
    assert sent["authenticationData"] == {"attemptAuthentication": "always"}
    assert sent["threeDS2RequestData"] == {"threeDSRequestorChallengeInd": "03"}


def test_capture_after_some_days_is_an_authorisation_at_adyen(adyen_shop, sim):
    """A delay is kept by the plugin (its scheduled capture), so Adyen is asked for a manual
    capture; a provider told "auto + delay" directly sends captureDelayHours."""
    shop = adyen_shop(capture_delay_days=3)
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    sent = session_of(sim, page_url)["request"]
    assert sent["additionalData"] == {"manualCapture": "true"} and "captureDelayHours" not in sent
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "authorized" and shop.order(ref)["status"] == "paid"

    creds = {"api_key": "k", "merchant_account": "M", "hmac_key": "A1" * 32}
    request = CheckoutRequest(token="t" * 32, order_ref="O1", amount=1450, currency="EUR", email=None, description=None,
                              locale="en", return_url="https://shop/r", cancel_url="https://shop/c", notify_url="https://shop/n")
    direct = AdyenProvider(ProviderConfig("adyen", "test", creds, capture="auto", capture_delay_days=2))
    body = direct.build_session_request(request)
    assert body["captureDelayHours"] == 48 and "additionalData" not in body


def test_amounts_are_minor_units_whatever_the_exponent(adyen_shop, sim):
    from example_shop import Product, db

    shop = adyen_shop()
    with shop.app.app_context():
        db.session.add(Product(sku="TEA-JP", name="Sencha", price=1450, currency="JPY"))
        db.session.commit()
    buyer = shop.buyer()
    ref, page_url = start(buyer, sku="TEA-JP")
    assert session_of(sim, page_url)["request"]["amount"] == {"value": 1450, "currency": "JPY"}  # ¥1450
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450


def test_a_session_result_without_reference_still_tells_a_cancel(adyen_shop, sim):
    """Older API versions answer GET /sessions/{id} with id and status only."""
    sim.session_result_has_reference = False
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    back = pay(buyer, page_url, action="cancel")
    assert 'data-status="cancelled"' in back.text
    assert shop.payments(ref)[0]["status"] == "cancelled"


# ---------------------------------------------------------------------------- every event code
def _paid(adyen_shop, sim, capture):
    shop = adyen_shop(capture=capture)
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == ("authorized" if capture == "manual" else "paid")
    return shop, ref, payment


EVENTS = [
    # capture, event code, report() options, status after, flag (substring) after, refunded after
    ("manual", "CAPTURE", {"success": False, "reason": "Insufficient balance on payment"}, "authorized", "capture_failed", 0),
    ("auto", "CAPTURE_FAILED", {"reason": "Capture refused by the scheme"}, "paid", "capture_failed", 0),
    ("auto", "REFUND", {"success": False, "reason": "Insufficient in-process funds"}, "paid", "refund_failed", 0),
    ("auto", "REFUND_FAILED", {"reason": "Refund refused by the scheme"}, "paid", "refund_failed", 0),
    ("manual", "CANCELLATION", {"success": False, "reason": "Payment already captured"}, "authorized", "cancel_failed", 0),
    ("manual", "CANCEL_OR_REFUND", {"additional": {"modification.action": "cancel"}}, "cancelled", None, 0),
    ("auto", "CANCEL_OR_REFUND", {"additional": {"modification.action": "refund"}}, "refunded", None, 1450),
    ("manual", "EXPIRE", {"reason": "Authorisation expired"}, "expired", None, 0),
    ("auto", "CHARGEBACK", {"reason": "Fraudulent transaction"}, "paid", "chargeback", 0),
]


@pytest.mark.parametrize("capture, code, options, status, flag, refunded", EVENTS, ids=[f"{e[1]}-{e[0]}" for e in EVENTS])
def test_event_code_moves_the_payment(adyen_shop, sim, capture, code, options, status, flag, refunded):
    shop, ref, payment = _paid(adyen_shop, sim, capture)
    item = sim.report(code, payment["psp_reference"], **options)
    assert item["originalReference"] == payment["psp_reference"]
    assert sim.notifier.wait_idle(timeout=10)
    assert sim.notifier.deliveries[-1].attempts[-1][0] == 200
    (after,) = shop.payments(ref)
    assert after["status"] == status
    assert after["refunded_amount"] == refunded
    if flag:
        assert flag in (after["flag"] or "")
    else:
        assert after["flag"] is None
    assert inbox(shop, source="notify")[-1]["outcome"] == "applied"
    assert shop.order(ref)["status"] == "paid"  # the shop's order is not unpaid by a webhook


def test_an_unknown_event_code_is_stored_and_moves_nothing(adyen_shop, sim):
    shop, ref, payment = _paid(adyen_shop, sim, "auto")
    sim.report("REPORT_AVAILABLE", payment["psp_reference"])
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "paid" and shop.payments(ref)[0]["flag"] is None
    assert event_types(shop, "notify")[-1] == ("REPORT_AVAILABLE:true", "applied")


# ---------------------------------------------------------------------------- requests awaiting Adyen
def test_a_capture_shows_as_requested_until_adyen_confirms(adyen_shop, sim):
    shop, ref, payment = _paid(adyen_shop, sim, "manual")
    sim.notifier.paused = True
    assert operate(shop, ref, "capture", 1000) == "authorized"
    with pytest.raises(ValueError, match="a capture of 10.00 EUR is already awaiting Adyen's confirmation"):
        operate(shop, ref, "capture", 1000)  # a double click: not sent again
    (waiting,) = shop.payments(ref)
    assert waiting["status"] == "authorized" and waiting["captured_amount"] == 0
    assert event_types(shop, "api") == [("capture requested, awaiting Adyen", "applied")]
    captures = [r for r in sim.requests if r["path"].endswith("/captures")]
    assert len(captures) == 1 and captures[0]["idempotency_key"]
    (sim_payment,) = sim.payments.values()
    assert [m["kind"] for m in sim_payment["modifications"]] == ["captures"]  # one capture at Adyen
    (row,) = [e for e in inbox(shop, source="api") if e["outcome"] == "applied"]
    assert json.loads(row["body"])["amount"] == {"value": 1000, "currency": "EUR"}  # Adyen's acknowledgement
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (after,) = shop.payments(ref)
    assert after["status"] == "paid" and after["captured_amount"] == 1000


def test_a_refund_and_a_cancel_show_as_requested_too(adyen_shop, sim):
    shop, ref, payment = _paid(adyen_shop, sim, "auto")
    sim.notifier.paused = True
    assert operate(shop, ref, "refund", 450) == "paid"
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "partially_refunded"
    shop2, ref2, _ = _paid(adyen_shop, sim, "manual")
    sim.notifier.paused = True
    assert operate(shop2, ref2, "cancel") == "authorized"
    assert event_types(shop2, "api")[-1] == ("cancel requested, awaiting Adyen", "applied")
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    assert shop2.payments(ref2)[0]["status"] == "cancelled"
    assert ("refund requested, awaiting Adyen", "applied") in event_types(shop, "api")


def test_a_refused_modification_request_changes_nothing(adyen_shop, sim):
    from flask_psp.providers.base import ProviderError

    shop, ref, payment = _paid(adyen_shop, sim, "manual")
    sim.merchant_account = "SomeoneElseECOM"  # Adyen now refuses this merchant account: 403
    with pytest.raises(ProviderError) as caught:
        operate(shop, ref, "capture")
    assert caught.value.status == 403
    assert shop.payments(ref)[0]["status"] == "authorized" and event_types(shop, "api") == []

"""Adyen has no status lookup for Hosted Checkout sessions: a payment still pending after
``PSP_RECONCILE_AFTER`` is flagged, once, with what the merchant should check; requests Adyen took
but never confirmed (a lost CAPTURE webhook) are flagged after ``PSP_AWAITING_PSP_AFTER`` and
counted in the overview's health box. The flags go when the news comes."""

from __future__ import annotations

from datetime import timedelta

from flask_psp.admin.dashboard import dashboard
from flask_psp.extension import current_state
from flask_psp.models import utcnow

from .conftest import pay, start
from .test_adyen_flow import psp_capture


def reconcile(shop, now):
    with shop.app.app_context():
        (report,) = current_state().jobs().run(["reconcile"], now=now)
        return report


def health(shop):
    with shop.app.app_context():
        state = current_state()
        return dashboard(state.db.session)["awaiting_psp_overdue"]


def test_a_payment_adyen_never_told_about_is_flagged_with_what_to_check(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    assert reconcile(shop, utcnow() + timedelta(minutes=10)).flagged == 0  # not yet PSP_RECONCILE_AFTER
    report = reconcile(shop, utcnow() + timedelta(minutes=31))
    assert report.flagged == 1 and "1 flagged" in str(report)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "pending"
    assert payment["flag"].startswith("no news from Adyen after 30 min: no status lookup for Hosted Checkout")
    assert "Customer Area" in payment["flag"] and "HMAC key" in payment["flag"]
    assert reconcile(shop, utcnow() + timedelta(minutes=45)).flagged == 0  # once

    pay(buyer, page_url)  # the webhook comes after all
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "paid"
    reconcile(shop, utcnow() + timedelta(minutes=50))
    assert shop.payments(ref)[0]["flag"] is None


def test_a_capture_adyen_never_confirmed_is_flagged_and_counted_in_the_health_box(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    sim.notifier.paused = True  # the CAPTURE webhook is lost for now
    assert psp_capture(shop, ref) == "authorized"
    assert health(shop) == 0
    assert reconcile(shop, utcnow() + timedelta(hours=23)).flagged == 0
    assert reconcile(shop, utcnow() + timedelta(hours=25)).flagged == 1
    (payment,) = shop.payments(ref)
    assert payment["status"] == "authorized"
    assert "capture requested" in payment["flag"] and "not confirmed by Adyen after 24 h" in payment["flag"]
    with shop.app.app_context():
        session = current_state().db.session
        assert dashboard(session, awaiting_after_seconds=60)["awaiting_psp_overdue"] == 0  # not a minute yet…
        later = dashboard(session, awaiting_after_seconds=0.001)
        assert later["awaiting_psp_overdue"] == 1

    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "paid"
    reconcile(shop, utcnow() + timedelta(hours=26))
    assert shop.payments(ref)[0]["flag"] is None

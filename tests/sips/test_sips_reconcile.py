"""Sips' automatic response can be lost, and the buyer may close the tab before the browser's
response: the reconcile job asks Sips Office ``diagnostic/getTransactionData`` (worldline/sips-sdk-php
``Diagnostic/TransactionDataRequest``, ``DR_WS_2.23``) and applies what its sealed answer proves."""

from __future__ import annotations

from datetime import timedelta

from flask_psp.extension import current_state
from flask_psp.models import utcnow

from .conftest import CARD_REFUSED, go_to_sips, only_payment, pay_on_sips, sips_settings


def run(shop, job, minutes):
    with shop.app.app_context():
        (report,) = current_state().jobs().run([job], now=utcnow() + timedelta(minutes=minutes))
        return report


def lookups(sim):
    return [r["body"] for r in sim.office_requests if r["operation"] == "getTransactionData"]


def test_a_payment_whose_responses_were_both_lost_is_found_paid(make_shop, sim, heard):
    shop = make_shop(psp_providers=sips_settings(sim))
    sim.notifier.paused = True  # the automatic response does not come; the buyer closes the tab
    ref, page, _fields = go_to_sips(shop, shop.buyer())
    pay_on_sips(shop.buyer(), page)
    payment = only_payment(shop, ref)
    assert payment["status"] == "pending"
    assert run(shop, "reconcile", 10).claimed == 0
    report = run(shop, "reconcile", 31)
    assert (report.claimed, report.done) == (1, 1)
    found = only_payment(shop, ref)
    assert (found["status"], found["captured_amount"]) == ("paid", payment["amount"])
    assert shop.order(ref)["status"] == "paid" and heard == [ref]
    (asked,) = lookups(sim)
    assert asked["interfaceVersion"] == "DR_WS_2.23" and asked["transactionReference"] == payment["psp_reference"]
    sim.notifier.paused = False  # the automatic response at last: nothing more happens
    assert sim.notifier.wait_idle(timeout=10)
    assert only_payment(shop, ref)["status"] == "paid" and heard == [ref]


def test_a_refused_payment_is_found_failed_and_one_sips_never_saw_expires(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim))
    sim.notifier.paused = True
    refused, page, _fields = go_to_sips(shop, shop.buyer())
    pay_on_sips(shop.buyer(), page, card=CARD_REFUSED)
    never, _page, _fields = go_to_sips(shop, shop.buyer())  # the buyer stops on Sips' page
    run(shop, "reconcile", 31)
    assert only_payment(shop, refused)["status"] == "failed"
    assert only_payment(shop, never)["status"] == "pending"  # on the payment page: nothing to apply
    assert run(shop, "expire", 25 * 60).done == 1
    assert only_payment(shop, never)["status"] == "expired"
    sim.notifier.paused = False

"""HiPay's maintenance answers "capture requested" (117), "refund requested" (124) or "cancellation
requested" (175): the payment shows the request as awaiting HiPay until the notification with the
outcome — or the refusal, 173 for a capture, 165 for a refund — arrives, and what may still be
captured or refunded counts it as made."""

from __future__ import annotations

import pytest

from tests.operations import act, awaiting, flashes, form_amount, merchant, payment_page

from .conftest import all_delivered, go_to_hipay, hipay_settings, only_payment, pay_on_hipay


def paid_with_hipay(shop, sim, sku="MUG-01"):
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer, sku=sku)
    pay_on_hipay(buyer, page_url)
    assert all_delivered(sim)
    return ref, only_payment(shop, ref)


def test_a_capture_awaits_hipay_until_the_captured_notification(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    ref, payment = paid_with_hipay(shop, sim)
    manager = merchant(shop)
    sim.notifier.paused = True
    page = act(manager, payment["id"], "capture")
    assert flashes(page) == ["Capture requested; HiPay Enterprise confirms it by notification."]
    assert awaiting(page) == ["capture of €14.50 requested — awaiting HiPay Enterprise"]
    assert 'data-action="capture"' not in page.text and 'data-status="authorized"' in page.text
    sim.notifier.paused = False
    assert all_delivered(sim)
    page = payment_page(manager, payment)
    assert 'data-status="paid"' in page.text and awaiting(page) == []
    assert only_payment(shop, ref)["captured_amount"] == 1450


def test_two_partial_refunds_awaiting_hipay_add_up(make_shop, sim):
    from example_shop import psp

    shop = make_shop(psp_providers=hipay_settings(sim))
    ref, payment = paid_with_hipay(shop, sim, sku="PEN-04")  # 85.00 EUR
    sim.notifier.paused = True
    with shop.app.app_context():
        psp.refund(psp.payment(payment["token"]), 1000)
        psp.refund(psp.payment(payment["token"]), 2000)
        with pytest.raises(ValueError, match="a refund of 20.00 EUR is already awaiting HiPay Enterprise's"):
            psp.refund(psp.payment(payment["token"]), 2000)  # the second click: not sent again
        assert psp.payment(payment["token"]).refundable_amount == 5500
    maintenance = [c["form"] for c in sim.requests if c["path"].startswith("/v1/maintenance/")]
    assert maintenance == [{"operation": "refund", "amount": "10.00"}, {"operation": "refund", "amount": "20.00"}]
    page = payment_page(merchant(shop), payment)
    assert awaiting(page) == ["refund of €10.00 requested — awaiting HiPay Enterprise",
                              "refund of €20.00 requested — awaiting HiPay Enterprise"]
    assert form_amount(page, "refund") == "55.00"
    sim.notifier.paused = False
    assert all_delivered(sim)
    after = only_payment(shop, ref)
    assert (after["status"], after["refunded_amount"]) == ("partially_refunded", 3000)
    assert awaiting(payment_page(merchant(shop), payment)) == []


def test_a_refund_hipay_refuses_is_flagged_and_may_be_asked_again(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    ref, payment = paid_with_hipay(shop, sim)
    manager = merchant(shop)
    sim.refused_operations.add("refund")
    page = act(manager, payment["id"], "refund", "5.00")
    assert flashes(page) == ["Refund requested; HiPay Enterprise confirms it by notification."]
    assert all_delivered(sim)
    after = only_payment(shop, ref)
    assert (after["status"], after["refunded_amount"]) == ("paid", 0)
    assert after["flag"].startswith("refund_failed: HiPay status 165 (refund refused)")
    assert after["flag"].endswith("the refund of 5.00 EUR was not made")
    page = payment_page(manager, payment)
    assert awaiting(page) == [] and form_amount(page, "refund") == "14.50"

    sim.refused_operations.clear()
    act(manager, payment["id"], "refund", "5.00")
    assert all_delivered(sim)
    after = only_payment(shop, ref)
    assert (after["status"], after["refunded_amount"]) == ("partially_refunded", 500)


def test_a_capture_hipay_refuses_is_flagged_and_the_authorization_stays(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    ref, payment = paid_with_hipay(shop, sim)
    manager = merchant(shop)
    sim.refused_operations.add("capture")
    act(manager, payment["id"], "capture")
    assert all_delivered(sim)
    after = only_payment(shop, ref)
    assert (after["status"], after["captured_amount"]) == ("authorized", 0)
    assert after["flag"].startswith("capture_failed: HiPay status 173 (capture refused)")
    page = payment_page(manager, payment)
    assert awaiting(page) == [] and form_amount(page, "capture") == "14.50"
    sim.refused_operations.clear()
    act(manager, payment["id"], "capture")
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "paid"


def test_a_cancellation_awaits_hipay(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    ref, payment = paid_with_hipay(shop, sim)
    manager = merchant(shop)
    sim.notifier.paused = True
    page = act(manager, payment["id"], "cancel")
    assert flashes(page) == ["Cancellation requested; HiPay Enterprise confirms it by notification."]
    assert awaiting(page) == ["cancellation requested — awaiting HiPay Enterprise"]
    sim.notifier.paused = False
    assert all_delivered(sim)
    page = payment_page(manager, payment)
    assert 'data-status="cancelled"' in page.text and awaiting(page) == []

"""HiPay captures, refunds and cancellations through ``/v1/maintenance/transaction/{reference}``: the
answer says "requested", the notifications that follow carry the outcome."""

from __future__ import annotations

import pytest

from flask_psp.providers.base import ProviderConfig, ProviderError
from flask_psp.providers.hipay import HiPayProvider

from .conftest import PASSPHRASE, PASSWORD, USER, all_delivered, go_to_hipay, hipay_settings, only_payment, pay_on_hipay


def paid_with_hipay(shop, sim, **order):
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer, **order)
    pay_on_hipay(buyer, page_url)
    assert all_delivered(sim)
    return ref, only_payment(shop, ref)


def merchant(shop, verb, token, *args):
    from example_shop import psp

    with shop.app.app_context():
        getattr(psp, verb)(psp.payment(token), *args)


def maintenance_calls(sim):
    return [c for c in sim.requests if c["path"].startswith("/v1/maintenance/")]


def test_manual_capture_waits_for_the_captured_notification(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    ref, payment = paid_with_hipay(shop, sim)
    assert sim.requests[0]["form"]["operation"] == "Authorization"
    assert payment["status"] == "authorized" and payment["authorized_amount"] == 1450
    assert shop.order(ref)["status"] == "paid"

    sim.notifier.paused = True
    merchant(shop, "capture", payment["token"])
    (call,) = maintenance_calls(sim)
    assert call["path"] == f"/v1/maintenance/transaction/{payment['psp_reference']}"
    assert call["form"] == {"operation": "capture"}  # the whole amount: no amount sent
    assert only_payment(shop, ref)["status"] == "authorized"  # 117 "capture requested" is no capture yet
    sim.notifier.paused = False
    assert all_delivered(sim)
    payment = only_payment(shop, ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450


def test_partial_capture(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    ref, payment = paid_with_hipay(shop, sim, sku="PEN-04")
    merchant(shop, "capture", payment["token"], 5000)
    assert maintenance_calls(sim)[-1]["form"] == {"operation": "capture", "amount": "50.00"}
    assert all_delivered(sim)
    payment = only_payment(shop, ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 5000


def test_partial_then_full_refund(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    ref, payment = paid_with_hipay(shop, sim, sku="PEN-04")
    merchant(shop, "refund", payment["token"], 1999)
    assert maintenance_calls(sim)[-1]["form"] == {"operation": "refund", "amount": "19.99"}
    assert all_delivered(sim)
    payment = only_payment(shop, ref)
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == 1999
    merchant(shop, "refund", payment["token"])
    assert maintenance_calls(sim)[-1]["form"] == {"operation": "refund", "amount": "65.01"}
    assert all_delivered(sim)
    payment = only_payment(shop, ref)
    assert payment["status"] == "refunded" and payment["refunded_amount"] == 8500
    assert shop.order(ref)["status"] == "paid"


def test_merchant_cancels_an_authorization(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    ref, payment = paid_with_hipay(shop, sim)
    merchant(shop, "cancel", payment["token"])
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "cancelled"
    assert sim.transactions[payment["psp_reference"]]["status"] == 115


def test_refused_maintenance_is_explained_and_changes_nothing(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, capture="manual"))
    ref, payment = paid_with_hipay(shop, sim)
    sim.transactions[payment["psp_reference"]]["status"] = 114  # expired on HiPay's side
    with pytest.raises(ProviderError) as refused:
        merchant(shop, "capture", payment["token"])
    assert "Wrong transaction status" in refused.value.message and PASSWORD not in refused.value.message
    assert only_payment(shop, ref)["status"] == "authorized"


def provider(sim, **credentials):
    block = {"api_username": USER, "api_password": PASSWORD, "secret_passphrase": PASSPHRASE, **credentials}
    return HiPayProvider(ProviderConfig(name="hipay", mode="test", credentials=block, endpoint=sim.url))


def test_connection_test(sim):
    ok, message = provider(sim).test_connection()
    assert ok and "test mode" in message
    ok, message = provider(sim, api_password="nope").test_connection()
    assert not ok and "password" in message and "nope" not in message

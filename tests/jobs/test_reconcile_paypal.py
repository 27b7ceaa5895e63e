"""Reconciliation with PayPal's read API (``GET /v2/checkout/orders/{id}``): an authorization the
merchant captured on PayPal's side, whose webhook never came, ends paid in the shop."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from flask_psp.extension import current_state
from flask_psp.models import Payment
from tests.jobs.support import later
from tests.paypal import conftest as paypal


@pytest.fixture
def sim():
    simulator = paypal.PayPalSimulator(retry_delays=(30, 60, 120))
    server = simulator.serve()
    yield simulator
    simulator.notifier.close()
    server.stop()


def test_a_capture_made_at_paypal_whose_webhook_was_lost_is_seen(make_shop, sim):
    shop = make_shop(psp_providers=paypal.paypal_settings(sim, capture="manual"))
    sim.webhook_url = shop.notify_url("paypal")
    buyer = shop.buyer()
    ref, approval = paypal.start(buyer)
    paypal.approve(buyer, approval)
    assert sim.notifier.wait_until(lambda: all(d.done for d in sim.notifier.deliveries), timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "authorized"

    sim.notifier.paused = True  # from here on PayPal's webhooks are lost
    token = requests.post(f"{sim.url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(paypal.DEFAULT_CLIENT_ID, paypal.DEFAULT_CLIENT_SECRET), timeout=10).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    order = requests.get(f"{sim.url}/v2/checkout/orders/{payment['psp_reference']}", headers=bearer, timeout=10).json()
    (authorization,) = order["purchase_units"][0]["payments"]["authorizations"]
    captured = requests.post(f"{sim.url}/v2/payments/authorizations/{authorization['id']}/capture", json={},
                             headers=bearer, timeout=10)
    assert captured.status_code in (200, 201), captured.text
    assert shop.payments(ref)[0]["status"] == "authorized"

    with shop.app.app_context():
        (report,) = current_state().jobs().run(["reconcile"], now=later(minutes=31))
    assert (report.claimed, report.done) == (1, 1)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == payment["amount"]
    from example_shop import db

    with shop.app.app_context():
        sources = db.session.scalars(sa.text("SELECT source FROM psp_payment_event WHERE payment_id = :p"),
                                     {"p": payment["id"]}).all()
        assert "fetch" in sources
        assert db.session.get(Payment, payment["id"]).held_until is not None  # checked: not again for an hour


@pytest.mark.parametrize("capture, status", [("auto", "paid"), ("manual", "authorized")])
def test_an_approved_order_whose_payer_closed_the_tab_and_whose_webhook_was_lost_is_completed(
        make_shop, sim, capture, status):
    shop = make_shop(psp_providers=paypal.paypal_settings(sim, capture=capture))
    sim.webhook_url = shop.notify_url("paypal")
    buyer = shop.buyer()
    ref, approval = paypal.start(buyer)
    sim.notifier.paused = True  # CHECKOUT.ORDER.APPROVED will be lost…
    paypal.approve(buyer, approval, follow=False)  # …and the payer never comes back
    (payment,) = shop.payments(ref)
    assert payment["status"] == "pending" and sim.orders[payment["psp_reference"]]["status"] == "APPROVED"

    with shop.app.app_context():
        (report,) = current_state().jobs().run(["reconcile"], now=later(minutes=31))
    assert (report.claimed, report.done) == (1, 1)
    (payment,) = shop.payments(ref)
    assert payment["status"] == status and shop.order(ref)["status"] == "paid"
    verb = "authorize" if capture == "manual" else "capture"
    (completion,) = [r for r in sim.requests if r["path"].endswith(f"/{verb}")]
    assert completion["request_id"] == f"{payment['psp_reference']}-{verb}"  # as the return and the webhook send it

    # the payer's late return and the webhook, delivered at last, find it done: nothing twice
    back = buyer.http.get(f"{shop.url}/psp/return/{payment['token']}", timeout=10)
    assert f'data-status="{status}"' in back.text
    sim.notifier.paused = False
    assert sim.notifier.wait_until(lambda: all(d.done for d in sim.notifier.deliveries), timeout=10)
    assert all(d.delivered for d in sim.notifier.deliveries)
    (payment,) = shop.payments(ref)
    assert payment["status"] == status and payment["flag"] is None
    if capture == "auto":
        assert len(sim.captures) == 1 and payment["captured_amount"] == payment["amount"]
    else:
        assert sim.captures == {} and payment["authorized_amount"] == payment["amount"]

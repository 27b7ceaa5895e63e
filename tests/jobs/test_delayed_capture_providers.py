"""Delayed capture on every provider, through the example shop and each PSP's simulator: the buyer
pays, the PSP holds an authorization, the order is paid; when the capture falls due the job takes
the money through the PSP's own capture call and the payment ends paid."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from flask_psp.extension import current_state
from flask_psp.models import Payment
from tests.adyen import conftest as adyen
from tests.hipay import conftest as hipay
from tests.paypal import conftest as paypal
from tests.sips import conftest as sips

DAYS = 3


def _payplug_sim():
    from flask_psp.simulator import create_simulator

    return create_simulator("payplug", retry_delays=(30, 60, 120))


SIMULATORS = {
    "adyen": lambda: adyen.AdyenSimulator(retry_delays=(30, 60, 120)),
    "paypal": lambda: paypal.PayPalSimulator(retry_delays=(30, 60, 120)),
    "payplug": _payplug_sim,
    "sips": lambda: sips.SipsSimulator(retry_delays=(30, 60, 120)),
    "hipay": lambda: hipay.HiPaySimulator(retry_delays=(30, 60, 120)),
}


@pytest.fixture(params=sorted(SIMULATORS))
def sim(request):
    """This provider's simulator (it stands in for the PayPlug one ``make_shop`` uses)."""
    simulator = SIMULATORS[request.param]()
    simulator.provider_name = request.param
    server = simulator.serve()
    yield simulator
    simulator.notifier.paused = False
    assert simulator.notifier.wait_until(lambda: all(d.done or d.attempts for d in simulator.notifier.deliveries), timeout=10)
    server.stop()
    simulator.notifier.close()


def delayed_settings(sim) -> dict:
    name = sim.provider_name
    if name == "payplug":
        settings = {"payplug": {"enabled": True, "mode": "test", "test": {"secret_key": "sk_test_simulator",
                                                                          "endpoint": sim.url}}}
    else:
        settings = {"adyen": adyen.adyen_settings, "paypal": paypal.paypal_settings, "sips": sips.sips_settings,
                    "hipay": hipay.hipay_settings}[name](sim)
    settings[name].update(capture="auto", capture_delay_days=DAYS)
    return settings


def buyer_pays(shop, sim) -> str:
    """The buyer's whole way through the PSP's page; returns the order reference."""
    buyer = shop.buyer()
    name = sim.provider_name
    if name == "payplug":
        ref = buyer.place_order()
        answer = buyer.choose(ref, "payplug")
        buyer.pay_on_payplug(answer.headers["Location"])
    elif name == "adyen":
        ref, page = adyen.start(buyer)
        assert adyen.session_of(sim, page)["request"]["additionalData"] == {"manualCapture": "true"}
        adyen.pay(buyer, page)
    elif name == "paypal":
        ref, page = paypal.start(buyer)
        assert sim.orders[paypal.order_id(page)]["intent"] == "AUTHORIZE"
        paypal.approve(buyer, page)
    elif name == "sips":
        ref, page, _ = sips.go_to_sips(shop, buyer)
        sent = sim.init_requests[-1]["fields"]
        # validation window one day longer than the plugin waits
        assert (sent["captureMode"], sent["captureDay"]) == ("VALIDATION", str(DAYS + 1))
        sips.back_to_shop(sips.pay_on_sips(buyer, page).text)
    else:
        ref, page = hipay.go_to_hipay(shop, buyer)
        assert sim.requests[0]["form"]["operation"] == "Authorization"
        hipay.pay_on_hipay(buyer, page)
    assert sim.notifier.wait_until(lambda: all(d.done for d in sim.notifier.deliveries), timeout=10)
    return ref


def the_payment(shop, ref) -> Payment:
    from example_shop import db

    with shop.app.app_context():
        payment = db.session.scalars(sa.select(Payment).where(Payment.order_ref == ref)).one()
        db.session.expunge(payment)
        return payment


def test_delayed_capture_on_every_provider(make_shop, sim):
    sim.webhook_url = None
    shop = make_shop(psp_providers=delayed_settings(sim))
    if sim.provider_name in ("adyen", "paypal"):
        sim.webhook_url = shop.notify_url(sim.provider_name)
    ref = buyer_pays(shop, sim)

    payment = the_payment(shop, ref)
    assert (payment.status, payment.capture, payment.captured_amount) == ("authorized", "delayed", 0)
    assert shop.order(ref)["status"] == "paid"  # the money is reserved: the shop may ship
    assert payment.capture_due_at is not None

    with shop.app.app_context():
        early = current_state().jobs().run(["capture"], now=payment.capture_due_at - timedelta(minutes=5))
    assert early[0].claimed == 0 and the_payment(shop, ref).status == "authorized"

    with shop.app.app_context():
        (report,) = current_state().jobs().run(["capture"], now=payment.capture_due_at + timedelta(minutes=1))
    assert (report.claimed, report.done) == (1, 1)
    # Adyen and HiPay confirm a capture by notification: let it arrive
    assert sim.notifier.wait_until(lambda: all(d.done for d in sim.notifier.deliveries), timeout=10)
    captured = the_payment(shop, ref)
    assert (captured.status, captured.captured_amount) == ("paid", payment.amount)
    assert captured.capture_due_at is None and captured.flag is None
    assert shop.order(ref)["status"] == "paid"

"""Captures, refunds and cancellations through the Sips Office JSON cash-management interface, against
the simulator, from the merchant's side (the shop's ``psp`` object)."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from flask_psp.providers.base import ProviderConfig, ProviderError
from flask_psp.providers.sips import SipsProvider

from .conftest import MERCHANT, SECRET, back_to_shop, go_to_sips, only_payment, pay_on_sips, sips_settings


def paid_with_sips(shop, sim, **order):
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer, **order)
    receipt = pay_on_sips(buyer, sips_page)
    back_to_shop(receipt.text)
    assert sim.notifier.wait_idle(timeout=10)
    return ref, only_payment(shop, ref)


def merchant(shop, verb, token, *args):
    from example_shop import psp

    with shop.app.app_context():
        payment = psp.payment(token)
        getattr(psp, verb)(payment, *args)


def test_manual_capture_then_capture(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, capture="manual"))
    ref, payment = paid_with_sips(shop, sim)
    sent = sim.init_requests[-1]["fields"]
    assert (sent["captureMode"], sent["captureDay"]) == ("VALIDATION", "6")
    assert payment["status"] == "authorized" and payment["authorized_amount"] == 1450
    assert shop.order(ref)["status"] == "paid"  # an authorized payment with manual capture pays the order
    assert sim.transaction(payment["psp_reference"])["status"] == "TO_VALIDATE"

    merchant(shop, "capture", payment["token"])
    payment = only_payment(shop, ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 1450
    tx = sim.transaction(payment["psp_reference"])
    assert tx["status"] == "TO_CAPTURE" and tx["operations"] == [("validate", 1450)]
    request = sim.office_requests[-1]["body"]
    assert request["interfaceVersion"].startswith("CR_WS_") and request["operationAmount"] == 1450
    assert request["currencyCode"] == "978" and request["merchantId"] == MERCHANT


def test_capture_delay_setting_becomes_the_validation_deadline(make_shop, sim):
    settings = sips_settings(sim, capture="manual")
    settings["sips"]["capture_delay_days"] = 3
    shop = make_shop(psp_providers=settings)
    go_to_sips(shop, shop.buyer())
    assert sim.init_requests[-1]["fields"]["captureDay"] == "3"


def test_refund_before_remittance_is_a_cancellation_and_after_it_a_refund(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim))
    ref, payment = paid_with_sips(shop, sim, sku="PEN-04")
    merchant(shop, "refund", payment["token"], 2000)  # same day: not yet remitted to the bank
    payment = only_payment(shop, ref)
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == 2000
    tx = sim.transaction(payment["psp_reference"])
    assert tx["operations"] == [("cancel", 2000)] and tx["current_amount"] == 6500

    assert sim.end_of_day() == 1  # the nightly remittance captures the rest
    merchant(shop, "refund", payment["token"])
    payment = only_payment(shop, ref)
    assert payment["status"] == "refunded" and payment["refunded_amount"] == 8500
    assert tx["operations"] == [("cancel", 2000), ("refund", 6500)] and tx["refunded_amount"] == 6500
    assert shop.order(ref)["status"] == "paid"


def test_merchant_cancels_an_authorized_payment(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, capture="manual"))
    ref, payment = paid_with_sips(shop, sim)
    merchant(shop, "cancel", payment["token"])
    payment = only_payment(shop, ref)
    assert payment["status"] == "cancelled"
    assert sim.transaction(payment["psp_reference"])["status"] == "CANCELLED"


def test_a_refused_operation_is_explained_and_changes_nothing(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, capture="manual"))
    ref, payment = paid_with_sips(shop, sim)
    sim.transaction(payment["psp_reference"])["status"] = "CANCELLED"  # cancelled in the Sips back office
    with pytest.raises(ProviderError) as refused:
        merchant(shop, "capture", payment["token"])
    assert "responseCode 24" in refused.value.message and SECRET not in refused.value.message
    payment = only_payment(shop, ref)
    assert payment["status"] == "authorized" and payment["captured_amount"] == 0
    assert [e["outcome"] for e in shop.events()].count("applied") == 1


def provider(sim, **credentials):
    block = {"merchant_id": MERCHANT, "secret_key": SECRET, "key_version": "1", **credentials}
    return SipsProvider(ProviderConfig(name="sips", mode="test", credentials=block, endpoint=sim.url))


def test_connection_test_reports_a_wrong_key(sim):
    ok, message = provider(sim).test_connection()
    assert ok and MERCHANT in message
    ok, message = provider(sim, secret_key="wrong").test_connection()
    assert not ok and "key_version" in message and "wrong" not in message
    ok, message = provider(sim, key_version="7").test_connection()
    assert not ok and "key_version" in message


def test_office_refuses_a_request_sealed_with_a_key_it_no_longer_has(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, capture="manual"))
    ref, payment = paid_with_sips(shop, sim)
    sim.accounts[MERCHANT] = {**sim.accounts[MERCHANT], "secret_key": "rotated-on-the-sips-side"}
    with pytest.raises(ProviderError) as refused:
        merchant(shop, "capture", payment["token"])
    assert "responseCode 34" in refused.value.message and "secret_key" in refused.value.message
    assert only_payment(shop, ref)["status"] == "authorized"
    assert sim.transaction(payment["psp_reference"])["status"] == "TO_VALIDATE"


class ManInTheMiddle:
    """A loopback proxy in front of the simulator that lets a test rewrite the Office's JSON answers."""

    def __init__(self, target):
        self.target = target
        self.rewrite = None
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def __call__(self, environ, start_response):
        incoming = Request(environ)
        upstream = requests.request(
            incoming.method, self.target + incoming.full_path.rstrip("?"), data=incoming.get_data(),
            headers={k: v for k, v in incoming.headers.items() if k.lower() not in ("host", "content-length")},
            allow_redirects=False, timeout=10,
        )
        body, kind = upstream.content, upstream.headers.get("Content-Type", "")
        if self.rewrite is not None and kind.startswith("application/json"):
            body = json.dumps(self.rewrite(upstream.json())).encode()
        return Response(body, status=upstream.status_code, content_type=kind)(environ, start_response)


@pytest.fixture
def mitm(sim):
    proxy = ManInTheMiddle(sim.url)
    yield proxy
    proxy.server.shutdown()


#: a merchant of its own for live mode: the simulation merchant's published key is refused there
LIVE = {"merchant_id": "211000021310001", "secret_key": "live-merchant-secret-key-0123456789", "key_version": "2"}


def authorized_through(make_shop, sim, mitm, mode="test"):
    settings = sips_settings(sim, capture="manual", endpoint=mitm.url)
    if mode == "live":
        sim.accounts[LIVE["merchant_id"]] = {"secret_key": LIVE["secret_key"], "key_version": "2", "name": "Live shop"}
        settings["sips"]["mode"], settings["sips"]["live"] = "live", {**settings["sips"].pop("test"), **LIVE}
    shop = make_shop(psp_providers=settings)
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer, endpoint=mitm.url)
    back_to_shop(pay_on_sips(buyer, sips_page).text)
    assert sim.notifier.wait_idle(timeout=10)
    payment = only_payment(shop, ref)
    assert payment["status"] == "authorized" and payment["mode"] == mode
    return shop, ref, payment


def through(mitm, mode="test"):
    block = {"merchant_id": MERCHANT, "secret_key": SECRET, "key_version": "1"} if mode == "test" else dict(LIVE)
    return SipsProvider(ProviderConfig(name="sips", mode=mode, credentials=block, endpoint=mitm.url))


def test_an_office_answer_altered_on_the_way_is_not_believed(make_shop, sim, mitm):
    shop, ref, payment = authorized_through(make_shop, sim, mitm)
    assert through(mitm).test_connection()[0]  # untouched, the sealed answers pass the proxy
    mitm.rewrite = lambda answer: {**answer, "newAmount": 1}  # the seal no longer matches
    with pytest.raises(ProviderError) as refused:
        merchant(shop, "capture", payment["token"])
    assert "seal check" in refused.value.message and "back office" in refused.value.message
    assert only_payment(shop, ref)["status"] == "authorized"
    assert [e["outcome"] for e in shop.events()].count("applied") == 1


def test_an_unsealed_acceptance_is_not_believed_in_live_mode(make_shop, sim, mitm):
    shop, ref, payment = authorized_through(make_shop, sim, mitm, mode="live")
    assert through(mitm, "live").test_connection()[0]
    mitm.rewrite = lambda answer: {k: v for k, v in answer.items() if k != "seal"}
    with pytest.raises(ProviderError) as refused:
        merchant(shop, "capture", payment["token"])
    assert "no seal" in refused.value.message
    assert only_payment(shop, ref)["status"] == "authorized"

"""Adyen's modifications only acknowledge a request: the payment shows it as awaiting Adyen until
the CAPTURE / REFUND / CANCELLATION webhook (or its failure) arrives, the amounts the merchant may
still capture or refund count it as made, and a refund Adyen reports failed after reporting it
done is taken back. Also: the AUTHORISATION webhook is read with the payment's own capture policy,
whatever the settings say when it arrives, and a forged item inside a genuine batch is kept in the
inbox as refused. The admin panel, the shop and the Adyen simulator run on loopback."""

from __future__ import annotations

import json

import pytest
import requests
import sqlalchemy as sa

from tests.adyen.conftest import pay, start
from tests.operations import act, awaiting, flashes, form_amount, merchant, payment_page

OTHER_KEY = "0F" * 32


def paid(shop, sim, sku="MUG-01"):
    buyer = shop.buyer()
    ref, page_url = start(buyer, sku=sku)
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    return ref, payment


def deliver_body(shop, body):
    return requests.post(shop.notify_url("adyen"), data=body, headers={"Content-Type": "application/json"}, timeout=10)


# ---------------------------------------------------------------------------- requests awaiting Adyen
def test_a_capture_from_the_panel_awaits_adyen_until_its_webhook(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    ref, payment = paid(shop, sim, sku="TEE-02")  # 29.00 EUR, authorized
    manager = merchant(shop)
    sim.notifier.paused = True
    page = act(manager, payment["id"], "capture", "10.00")
    assert flashes(page) == ["Capture requested; Adyen confirms it by notification."]
    assert 'data-status="authorized"' in page.text
    assert awaiting(page) == ["capture of €10.00 requested — awaiting Adyen"]
    assert form_amount(page, "capture") == "19.00"  # what is left beside the capture awaiting Adyen
    (after,) = shop.payments(ref)
    assert (after["status"], after["captured_amount"]) == ("authorized", 0)

    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    page = payment_page(manager, payment)
    assert 'data-status="paid"' in page.text and awaiting(page) == [] and 'id="awaiting-provider"' not in page.text
    (after,) = shop.payments(ref)
    assert (after["status"], after["captured_amount"]) == ("paid", 1000)
    from flask_psp.models import AuditEntry

    with shop.app.app_context():
        entry = shop.app.extensions["psp"].db.session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "payment.capture"))
        assert entry.details["awaiting_provider"] is True and entry.details["amount"] == 1000


def test_a_pending_refund_counts_so_two_clicks_cannot_refund_twice(adyen_shop, sim):
    shop = adyen_shop()
    ref, payment = paid(shop, sim, sku="MAP-03")  # 39.90 EUR, paid
    manager = merchant(shop)
    sim.notifier.paused = True
    page = act(manager, payment["id"], "refund")  # the whole of it
    assert flashes(page) == ["Refund requested; Adyen confirms it by notification."]
    assert awaiting(page) == ["refund of €39.90 requested — awaiting Adyen"]
    assert 'data-action="refund"' not in page.text  # nothing left to refund meanwhile
    assert 'data-status="paid"' in page.text

    # the merchant clicks again before Adyen's webhook (the old page still offers 39.90)
    again = manager.post(f"/payments/{payment['id']}/refund", {"amount": "39.90", "confirmed": "1"})
    assert again.status_code == 303  # refused on the form, said by the payment's page
    said = flashes(manager.get(again.headers["Location"].removeprefix("/psp/admin")))
    assert said == ["Nothing is left to refund: €39.90 asked earlier awaits Adyen&#39;s confirmation."]
    other = manager.post(f"/payments/{payment['id']}/refund", {"amount": "1.00", "confirmed": "1"})
    assert flashes(manager.get(other.headers["Location"].removeprefix("/psp/admin"))) == said
    assert len([r for r in sim.requests if r["path"].endswith("/refunds")]) == 1
    (sim_payment,) = sim.payments.values()
    assert sim_payment["refunded"] == 3990

    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (after,) = shop.payments(ref)
    assert (after["status"], after["refunded_amount"]) == ("refunded", 3990)
    assert awaiting(payment_page(manager, payment)) == []


def test_partial_refunds_awaiting_adyen_add_up(adyen_shop, sim):
    from example_shop import psp

    shop = adyen_shop()
    ref, payment = paid(shop, sim, sku="MAP-03")  # 3990
    sim.notifier.paused = True
    with shop.app.app_context():
        psp.refund(psp.payment(payment["token"]), 1000)
        with pytest.raises(ValueError, match=r"refund amount must be between 1 and 2990 \(10.00 EUR asked earlier"):
            psp.refund(psp.payment(payment["token"]), 3000)
        psp.refund(psp.payment(payment["token"]), 2990)  # the rest
        waiting = psp.payment(payment["token"])
        assert [(op["operation"], op["amount"]) for op in waiting.pending_operations] == [("refund", 1000),
                                                                                          ("refund", 2990)]
        assert waiting.refundable_amount == 0 and waiting.refunded_amount == 0
    manager = merchant(shop)
    assert awaiting(payment_page(manager, payment)) == ["refund of €10.00 requested — awaiting Adyen",
                                                        "refund of €29.90 requested — awaiting Adyen"]
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (after,) = shop.payments(ref)
    assert (after["status"], after["refunded_amount"]) == ("refunded", 3990)
    assert awaiting(payment_page(manager, payment)) == []


def test_a_cancellation_awaits_adyen_and_blocks_a_capture_meanwhile(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    ref, payment = paid(shop, sim)
    manager = merchant(shop)
    sim.notifier.paused = True
    page = act(manager, payment["id"], "cancel")
    assert flashes(page) == ["Cancellation requested; Adyen confirms it by notification."]
    assert awaiting(page) == ["cancellation requested — awaiting Adyen"]
    assert 'data-action="capture"' not in page.text and 'data-status="authorized"' in page.text
    capture = manager.post(f"/payments/{payment['id']}/capture", {"amount": "14.50", "confirmed": "1"})
    assert capture.status_code == 303
    assert flashes(manager.get(capture.headers["Location"].removeprefix("/psp/admin"))) == [
        "A cancellation awaits Adyen&#39;s confirmation: nothing can be captured."]
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    page = payment_page(manager, payment)
    assert 'data-status="cancelled"' in page.text and awaiting(page) == []


def test_a_capture_adyen_refuses_is_no_longer_awaited_and_may_be_asked_again(adyen_shop, sim):
    from example_shop import psp

    shop = adyen_shop(capture="manual")
    ref, payment = paid(shop, sim)
    sim.webhook_url = None  # Adyen's own CAPTURE webhook is held back: a refusal is delivered instead
    with shop.app.app_context():
        psp.capture(psp.payment(payment["token"]))
    (modification,) = next(iter(sim.payments.values()))["modifications"]
    refused = sim.item("CAPTURE", modification["pspReference"], merchant_reference=payment["token"], value=1450,
                       original_reference=payment["psp_reference"], success=False,
                       reason="Insufficient balance on payment")
    assert deliver_body(shop, sim.body([refused])).status_code == 200
    (after,) = shop.payments(ref)
    assert after["status"] == "authorized" and after["captured_amount"] == 0
    assert after["flag"] == "capture_failed: Insufficient balance on payment; the capture of 14.50 EUR was not made"
    page = payment_page(merchant(shop), payment)
    assert awaiting(page) == [] and form_amount(page, "capture") == "14.50"


# ---------------------------------------------------------------------------- a refund failing after it was done
def test_refund_failed_after_refund_gives_the_money_back_to_the_merchant(adyen_shop, sim):
    from example_shop import psp

    shop = adyen_shop()
    ref, payment = paid(shop, sim, sku="MAP-03")  # 3990
    with shop.app.app_context():
        psp.refund(psp.payment(payment["token"]), 1000)
    assert sim.notifier.wait_idle(timeout=10)
    with shop.app.app_context():
        psp.refund(psp.payment(payment["token"]), 2990)
    assert sim.notifier.wait_idle(timeout=10)
    (after,) = shop.payments(ref)
    assert (after["status"], after["refunded_amount"]) == ("refunded", 3990)

    first, second = next(iter(sim.payments.values()))["modifications"]
    sim.report("REFUND_FAILED", second["pspReference"], reason="Refund refused by the scheme")
    assert sim.notifier.wait_idle(timeout=10)
    (after,) = shop.payments(ref)
    assert (after["status"], after["refunded_amount"]) == ("partially_refunded", 1000)
    assert after["flag"].startswith("refund_failed: Refund refused by the scheme; the refund of 29.90 EUR did not go "
                                    "through (refunded now 10.00 EUR)")
    manager = merchant(shop)
    page = payment_page(manager, payment)
    assert 'data-status="partially_refunded"' in page.text and form_amount(page, "refund") == "29.90"
    assert "refund_failed" in page.text  # the flag, for the merchant's eyes

    sim.report("REFUND_FAILED", first["pspReference"], reason="Refund refused by the scheme")
    assert sim.notifier.wait_idle(timeout=10)
    (after,) = shop.payments(ref)
    assert (after["status"], after["refunded_amount"]) == ("paid", 0)
    # the same failure delivered again changes nothing more
    assert requests.post(shop.notify_url("adyen"), data=sim.sent[-1]["body"], headers=sim.sent[-1]["headers"],
                         timeout=10).status_code == 200
    assert shop.payments(ref)[0]["refunded_amount"] == 0
    assert shop.order(ref)["status"] == "paid"


def test_a_refund_failed_before_its_success_arrives_never_counts(adyen_shop, sim):
    shop = adyen_shop()
    ref, payment = paid(shop, sim)
    sim.webhook_url = None  # hold Adyen's webhooks, deliver them by hand in another order
    from example_shop import psp

    with shop.app.app_context():
        psp.refund(psp.payment(payment["token"]), 500)
    refund = sim.sent[-1]
    (modification,) = next(iter(sim.payments.values()))["modifications"]
    failed = sim.report("REFUND_FAILED", modification["pspReference"], reason="Refund refused by the scheme")
    assert deliver_body(shop, sim.body([failed])).status_code == 200
    assert requests.post(shop.notify_url("adyen"), data=refund["body"], headers=refund["headers"],
                         timeout=10).status_code == 200
    (after,) = shop.payments(ref)
    assert (after["status"], after["refunded_amount"]) == ("paid", 0)
    assert "reported done after it was reported failed" in after["flag"]


# ---------------------------------------------------------------------------- the payment's own capture policy
def configure_adyen(owner, sim, capture):
    form = {"enabled": "on", "mode": "test", "capture": capture, "three_ds": "when_required", "position": "0",
            "cred-test-api_key": "AQE_test_simulator_key", "cred-test-merchant_account": sim.merchant_account,
            "cred-test-hmac_key": sim.hmac_key, "cred-test-endpoint": sim.url}
    answer = owner.post("/providers/adyen", form)
    assert answer.status_code == 303, answer.text


@pytest.mark.parametrize("started, switched, status", [("auto", "manual", "paid"), ("manual", "auto", "authorized")])
def test_the_authorisation_is_read_with_the_capture_the_payment_asked_for(make_shop, sim, started, switched, status):
    shop = make_shop(psp_providers={})
    sim.webhook_url = shop.notify_url("adyen")
    owner = merchant(shop, "owner")
    configure_adyen(owner, sim, started)
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    sim.notifier.paused = True  # the AUTHORISATION webhook is on its way…
    pay(buyer, page_url)
    configure_adyen(owner, sim, switched)  # …while the merchant switches the capture mode
    from example_shop import psp

    with shop.app.app_context():
        config = shop.app.extensions["psp"].settings.config_for(shop.app.extensions["psp"].db.session, "adyen")
        assert config.capture == switched
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == status
    if status == "paid":
        assert payment["captured_amount"] == 1450
    else:
        assert payment["authorized_amount"] == 1450 and payment["captured_amount"] == 0
    assert shop.order(ref)["status"] == "paid"
    with shop.app.app_context():
        assert psp.payment(payment["token"]).capture == started


# ---------------------------------------------------------------------------- a forged item inside a batch
def test_a_forged_item_in_a_batch_is_kept_in_the_inbox_as_refused(adyen_shop, sim):
    shop = adyen_shop(capture="manual")
    ref, payment = paid(shop, sim, sku="PEN-04")
    psp_reference = payment["psp_reference"]
    good = sim.item("CAPTURE", "8800000000000001", merchant_reference=payment["token"], value=8500,
                    original_reference=psp_reference)
    forged = sim.item("REFUND", "8800000000000002", merchant_reference=payment["token"], value=8500,
                      original_reference=psp_reference, hmac_key=OTHER_KEY)
    answer = deliver_body(shop, sim.body([good, forged]))
    assert answer.status_code == 200 and answer.text == "[accepted]"
    (after,) = shop.payments(ref)
    assert (after["status"], after["captured_amount"], after["refunded_amount"]) == ("paid", 8500, 0)

    from flask_psp.models import PaymentEvent

    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        parent = session.scalars(sa.select(PaymentEvent).where(PaymentEvent.source == "notify")
                                 .where(PaymentEvent.parent_id.is_(None)).order_by(PaymentEvent.id.desc())).first()
        children = session.scalars(sa.select(PaymentEvent).where(PaymentEvent.parent_id == parent.id)
                                   .order_by(PaymentEvent.id)).all()
        assert parent.outcome_detail == "batch of 2 items, 1 refused"
        assert [(c.outcome, c.verified) for c in children] == [("applied", True), ("rejected", False)]
        refused = children[1]
        assert refused.verification_error == "HMAC signature missing or wrong"
        assert refused.psp_reference == "8800000000000002" and refused.event_type == "REFUND:true"
        assert json.loads(refused.body)["eventCode"] == "REFUND" and refused.payment_id is None
        refused_id = refused.id
    inbox = merchant(shop, "viewer").get("/inbox?outcome=rejected")
    assert f'data-event="{refused_id}"' in inbox.text


def test_two_refunds_asked_at_the_same_moment_make_one_request(adyen_shop, sim):
    """Two merchants (or a double click) at once: the order's payments stay locked from the check
    of what may be refunded until Adyen's answer is recorded, so the second sees the first."""
    from example_shop import psp
    from tests.jobs.support import run_at_once

    shop = adyen_shop()
    ref, payment = paid(shop, sim, sku="MAP-03")
    sim.notifier.paused = True

    def refund(_i):
        with shop.app.app_context():
            try:
                psp.refund(psp.payment(payment["token"]), 3990)
                return "requested"
            except ValueError as exc:
                return str(exc)

    results = sorted(run_at_once(2, refund))
    assert results[1] == "requested" and results[0].startswith("a refund of 39.90 EUR is already awaiting Adyen")
    assert len([r for r in sim.requests if r["path"].endswith("/refunds")]) == 1
    sim.notifier.paused = False
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["refunded_amount"] == 3990

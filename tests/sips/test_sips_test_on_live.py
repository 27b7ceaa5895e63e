"""Worldline publishes its simulation key (``002001000000001_KEY1``): anyone can seal a Sips response
with it. Once Sips is live, such a response may still tell what became of a test-mode payment, but
never pays an order: the payment moves and is flagged, ``mark_paid`` is not called, ``order_paid`` is
not sent, and the merchant is told. Switching Sips to live expires its open test-mode payments —
at once from the admin panel, and by the ``expire`` job when the switch was made in ``PSP_PROVIDERS``."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from flask_psp import signals
from flask_psp.models import AuditEntry, PaymentEvent
from flask_psp.providers.sips import compute_seal, encode_data
from flask_psp.simulator.sips import DEFAULT_ACCOUNTS, SipsSimulator
from tests.admin.test_mail import mail_config, smtp  # noqa: F401 - smtp is a fixture
from tests.conftest import serving
from tests.operations import merchant

from .conftest import MERCHANT, SECRET, go_to_sips, only_payment, pay_on_sips

LIVE_MERCHANT = "211000021310001"
LIVE_SECRET = "live-merchant-secret-key-0123456789"


@pytest.fixture
def sim():
    accounts = {**DEFAULT_ACCOUNTS, LIVE_MERCHANT: {"secret_key": LIVE_SECRET, "key_version": "2", "name": "Live shop"}}
    yield from serving(SipsSimulator(accounts=accounts, retry_delays=(30, 60, 120)))


@pytest.fixture
def told():
    """The ``test_payment_on_live`` notices sent: (provider, inbox entry)."""
    received = []

    def receive(sender, entry, **extra):
        received.append((sender, entry))

    signals.test_payment_on_live.connect(receive)
    yield received
    signals.test_payment_on_live.disconnect(receive)


def blocks(sim):
    return {
        "test": {"merchant_id": MERCHANT, "secret_key": SECRET, "key_version": "1", "endpoint": sim.url},
        "live": {"merchant_id": LIVE_MERCHANT, "secret_key": LIVE_SECRET, "key_version": "2", "endpoint": sim.url},
    }


def configured(sim, mode):
    return {"sips": {"enabled": True, "mode": mode, "capture": "auto", **blocks(sim)}}


def sealed_with_the_public_key(payment, code="00"):
    """What anyone can write: a Sips response for the payment's transactionReference, sealed with
    Worldline's published simulation key."""
    data = encode_data([("merchantId", MERCHANT), ("amount", str(payment["amount"])), ("currencyCode", "978"),
                        ("transactionReference", payment["psp_reference"]), ("responseCode", code),
                        ("keyVersion", "1")])
    return {"Data": data, "Seal": compute_seal(data, SECRET), "InterfaceVersion": "HP_2.20"}


def the_same_shop_gone_live(make_shop, sim, key):
    """The shop rebuilt with the same database and keys, Sips now live (a deploy)."""
    return make_shop(psp_providers=configured(sim, "live"), PSP_ENCRYPTION_KEY=key)


def audit(shop, action):
    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        return session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def test_a_response_sealed_with_the_public_key_does_not_pay_an_order_once_sips_is_live(make_shop, sim, heard, told):
    key = Fernet.generate_key().decode()
    shop = make_shop(psp_providers=configured(sim, "test"), PSP_ENCRYPTION_KEY=key)
    tried, _page, _fields = go_to_sips(shop, shop.buyer())  # while Sips is in test mode, the key pays test orders
    answer = requests.post(shop.notify_url("sips"), data=sealed_with_the_public_key(only_payment(shop, tried)),
                           timeout=10)
    assert answer.status_code == 200 and shop.order(tried)["status"] == "paid" and heard == [tried]
    heard.clear()
    ref, _page, _fields = go_to_sips(shop, shop.buyer())
    payment = only_payment(shop, ref)
    assert (payment["mode"], payment["status"]) == ("test", "pending")

    live = the_same_shop_gone_live(make_shop, sim, key)
    answer = requests.post(live.notify_url("sips"), data=sealed_with_the_public_key(payment), timeout=10)

    assert answer.status_code == 200  # proven, stored: Sips must not retry
    moved = only_payment(live, ref)
    assert (moved["status"], moved["captured_amount"]) == ("paid", payment["amount"])
    assert moved["flag"].startswith("test payment on a live shop")
    assert live.order(ref)["status"] == "pending" and heard == []
    row = [e for e in live.events() if e["source"] == "notify"][-1]
    assert row["outcome"] == "applied"
    ((provider, entry),) = told
    assert provider == "sips" and entry["payment_id"] == moved["id"] and entry["event_id"] == row["id"]
    assert "test payment on a live shop" in entry["detail"]

    again = sealed_with_the_public_key(payment)  # the same news again changes nothing, tells nothing
    assert requests.post(live.notify_url("sips"), data=again, timeout=10).status_code == 200
    assert live.order(ref)["status"] == "pending" and heard == [] and len(told) == 1


def test_the_expire_job_expires_open_test_payments_of_a_provider_gone_live_in_the_configuration(make_shop, sim, heard):
    key = Fernet.generate_key().decode()
    shop = make_shop(psp_providers=configured(sim, "test"), PSP_ENCRYPTION_KEY=key)
    buyer = shop.buyer()
    open_ref, _page, _fields = go_to_sips(shop, buyer)
    paid_ref, page, _fields = go_to_sips(shop, buyer)
    pay_on_sips(buyer, page)
    assert shop.sim.notifier.wait_until(lambda: all(d.delivered for d in shop.sim.notifier.deliveries), timeout=10)
    assert only_payment(shop, paid_ref)["status"] == "paid"

    live = the_same_shop_gone_live(make_shop, sim, key)
    result = live.app.test_cli_runner().invoke(args=["psp", "run-jobs", "--job", "expire"])
    assert result.exit_code == 0, result.output
    expired = only_payment(live, open_ref)
    assert expired["status"] == "expired" and "went live" in expired["failure_reason"]
    assert only_payment(live, paid_ref)["status"] == "paid"  # only open payments expire
    (entry,) = audit(live, "payments.expire_test_mode")
    assert entry.target == "sips" and entry.details["payment_ids"] == [expired["id"]]

    assert live.app.test_cli_runner().invoke(args=["psp", "run-jobs", "--job", "expire"]).exit_code == 0
    assert len(audit(live, "payments.expire_test_mode")) == 1  # nothing more to expire, nothing written

    late = requests.post(live.notify_url("sips"), data=sealed_with_the_public_key(expired), timeout=10)
    assert late.status_code == 200
    moved = only_payment(live, open_ref)
    assert moved["status"] == "paid" and moved["flag"].startswith("test payment on a live shop")
    assert "after it was expired" in moved["flag"]
    assert live.order(open_ref)["status"] == "pending" and heard == [paid_ref]


def sips_form(sim, mode, **changes):
    form = {"enabled": "on", "mode": mode, "capture": "auto", "three_ds": "when_required", "position": "0"}
    for block_mode, block in blocks(sim).items():
        for name, value in block.items():
            form[f"cred-{block_mode}-{name}"] = value
        form[f"cred-{block_mode}-seal_algorithm"] = "HMAC-SHA-256"
    form.update(changes)
    return form


def test_switching_sips_to_live_in_the_admin_panel_expires_its_open_test_payments_with_the_switch(make_shop, sim, heard):
    shop = make_shop(psp_providers={}, PSP_ALLOW_CUSTOM_ENDPOINTS=True)  # the live simulator stands in for Worldline
    owner = merchant(shop, "owner")
    assert owner.post("/providers/sips", sips_form(sim, "test")).status_code == 303
    ref, _page, _fields = go_to_sips(shop, shop.buyer())

    refused = owner.post("/providers/sips", sips_form(sim, "live", **{"cred-live-merchant_id": "not digits"}))
    assert refused.status_code != 303  # the switch is refused: nothing of it happens
    assert only_payment(shop, ref)["status"] == "pending" and audit(shop, "payments.expire_test_mode") == []

    assert owner.post("/providers/sips", sips_form(sim, "live")).status_code == 303
    payment = only_payment(shop, ref)
    assert payment["status"] == "expired"
    (entry,) = audit(shop, "payments.expire_test_mode")
    (switch,) = [e for e in audit(shop, "provider.update") if e.details["settings"].get("mode") == ["test", "live"]]
    assert entry.actor == switch.actor == "owner@example.com" and entry.details["payment_ids"] == [payment["id"]]

    answer = requests.post(shop.notify_url("sips"), data=sealed_with_the_public_key(payment), timeout=10)
    assert answer.status_code == 200
    assert only_payment(shop, ref)["status"] == "paid" and shop.order(ref)["status"] == "pending" and heard == []
    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        row = session.scalars(sa.select(PaymentEvent).where(PaymentEvent.source == "notify")).one()
        assert row.outcome == "applied" and "test payment on a live shop" in row.outcome_detail


def test_the_merchant_gets_a_mail_that_names_the_test_payment_on_a_live_shop(make_shop, sim, heard, smtp):
    """The notice comes with the mismatches the merchant chose, under a subject of its own."""
    from flask_psp.admin.notifications import save_notifications

    key = Fernet.generate_key().decode()
    shop = make_shop(psp_providers=configured(sim, "test"), PSP_ENCRYPTION_KEY=key)
    ref, _page, _fields = go_to_sips(shop, shop.buyer())
    payment = only_payment(shop, ref)
    live = make_shop(psp_providers=configured(sim, "live"), PSP_ENCRYPTION_KEY=key, **mail_config(smtp.port))
    with live.app.app_context():
        session = live.app.extensions["psp"].db.session
        assert save_notifications(session, {"addresses": "risk@example.com"}, ["amount_mismatch"], "test") == []

    answer = requests.post(live.notify_url("sips"), data=sealed_with_the_public_key(payment), timeout=10)

    assert answer.status_code == 200 and live.order(ref)["status"] == "pending" and heard == []
    assert smtp.wait_for(1)
    assert smtp.subjects() == [f"Test payment on a live shop: order {ref} was not marked paid"]
    (recipients, message), = smtp.messages
    assert recipients == ["risk@example.com"] and "test payment on a live shop" in message.get_content()

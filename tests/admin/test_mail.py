"""Notification e-mails over SMTP, against a real SMTP server on loopback (aiosmtpd); a failing or
hanging mail server never blocks, delays or undoes a payment."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from email.policy import default

import pytest
import requests
from aiosmtpd.controller import Controller

from .conftest import configure_payplug


class Inbox:
    def __init__(self):
        self.messages = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self.changed:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default)))
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, count, timeout=10):
        with self.changed:
            return self.changed.wait_for(lambda: len(self.messages) >= count, timeout)

    def subjects(self):
        return [m["Subject"] for _to, m in self.messages]


@pytest.fixture
def smtp():
    inbox = Inbox()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    inbox.port = probe.getsockname()[1]
    probe.close()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


def mail_config(port, **extra):
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_DEFAULT_SENDER": "shop@example.com",
            "PSP_MAIL_TIMEOUT": 5, **extra}


def set_notifications(panel, events, receipt=True, addresses="ops@example.com, boss@example.com"):
    manager = panel.admin("manager")
    data = {"addresses": addresses, "events": events}
    if receipt:
        data["buyer_receipt"] = "on"
    answer = manager.post("/notifications", data)
    assert answer.status_code == 303, answer.text
    return manager


def pay(panel, buyer, sku="MUG-01"):
    ref = buyer.place_order(sku, email="alice@example.com")
    result = buyer.pay_on_payplug(buyer.choose(ref).headers["Location"])
    assert result.status_code == 200
    return ref


def test_merchant_and_buyer_get_mail_when_an_order_is_paid_and_refunded(make_panel, smtp):
    panel = make_panel(**mail_config(smtp.port))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, ["paid", "refunded"])
    buyer = panel.shop.buyer("fr")
    ref = pay(panel, buyer)
    assert smtp.wait_for(2)
    by_to = {tuple(to): msg for to, msg in smtp.messages}
    merchant = by_to[("ops@example.com", "boss@example.com")]
    assert merchant["Subject"] == f"Payment received for order {ref}"
    assert merchant["From"] == "shop@example.com" and "€14.50" in merchant.get_content()
    receipt = by_to[("alice@example.com",)]
    assert ref in receipt["Subject"] and "14,50" in receipt.get_content()  # the buyer's language (fr)

    payment = panel.shop.payments(ref)[0]
    manager = panel.admin("manager")
    manager.post(f"/payments/{payment['id']}/refund", {"amount": "4.50", "confirmed": "1"})
    assert smtp.wait_for(3)
    assert smtp.messages[2][1]["Subject"] == f"Refund for order {ref}"
    assert panel.app.extensions["psp"].mailer.wait_idle(5)
    assert len(smtp.messages) == 3  # no mail for events the merchant did not choose


def test_refused_and_unmatched_notifications_are_reported(make_panel, smtp):
    panel = make_panel(**mail_config(smtp.port))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, ["notification_problem"], receipt=False, addresses="ops@example.com")
    forged = json.dumps({"id": "pay_forged000000000000", "object": "payment", "is_paid": True, "is_live": False})
    assert requests.post(panel.shop.notify_url(), data=forged, headers={"Content-Type": "application/json"},
                         timeout=10).status_code == 403
    assert smtp.wait_for(1)
    to, message = smtp.messages[0]
    assert to == ["ops@example.com"] and message["Subject"] == "A notification needs your attention"
    assert "rejected" in message.get_content() and "Inbox entry" in message.get_content()


def test_no_chosen_event_no_mail(make_panel, smtp):
    panel = make_panel(**mail_config(smtp.port))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, [], receipt=False)
    pay(panel, panel.shop.buyer())
    assert panel.sim.notifier.wait_idle(timeout=10)  # the notification's request, which may pay it, is over
    assert panel.app.extensions["psp"].mailer.wait_idle(10)
    assert smtp.messages == []


def test_a_hanging_mail_server_neither_blocks_nor_delays_nor_undoes_a_payment(make_panel):
    """The SMTP server accepts the connection and never says a word: the buyer's payment and the
    PSP's notification go through at once; the mail gives up after the timeout, logged."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # never accept(), never greet
    try:
        panel = make_panel(**mail_config(silent.getsockname()[1], PSP_MAIL_TIMEOUT=3))
        configure_payplug(panel, panel.sim.url)
        set_notifications(panel, ["paid"])
        mailer = panel.app.extensions["psp"].mailer
        buyer = panel.shop.buyer()
        ref = pay(panel, buyer)
        assert panel.sim.notifier.wait_idle(timeout=10)
        assert panel.shop.order(ref)["status"] == "paid"
        assert all(d.delivered for d in panel.sim.notifier.deliveries if ref in d.body.decode())
        assert mailer.sent == 0  # the mail is still stuck while the payment is long done
        assert mailer.wait_idle(15)
        assert mailer.failed >= 1 and mailer.sent == 0
        assert panel.shop.order(ref)["status"] == "paid" and panel.shop.payments(ref)[0]["status"] == "paid"
    finally:
        silent.close()


def test_a_refusing_mail_server_changes_nothing(make_panel, caplog):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    panel = make_panel(**mail_config(port))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, ["paid"])
    ref = pay(panel, panel.shop.buyer())
    # the order may be paid by the notification, after the buyer is back: its request has queued the mail once done
    assert panel.sim.notifier.wait_idle(timeout=10)
    mailer = panel.app.extensions["psp"].mailer
    assert mailer.wait_idle(10) and mailer.failed >= 1
    assert panel.shop.order(ref)["status"] == "paid"
    assert any("could not send" in r.getMessage() for r in caplog.records)


def test_chargebacks_and_amount_mismatches_are_reported(make_panel, smtp):
    """News a provider proved (as its module hands it to the ledger): a chargeback, then a report
    whose amount differs from the payment's."""
    from flask_psp.providers.base import Event, EventKind, VerifiedMessage

    panel = make_panel(**mail_config(smtp.port))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, ["chargeback", "amount_mismatch"], receipt=False, addresses="risk@example.com")
    ref = pay(panel, panel.shop.buyer())
    payment = panel.shop.payments(ref)[0]

    def message(key, event):
        return VerifiedMessage(provider="payplug", dedupe_key=key, events=[event], mode="test",
                               event_type="test", psp_reference=payment["psp_reference"],
                               payment_token=payment["token"])

    with panel.app.app_context():
        ledger = panel.app.extensions["psp"].service().ledger
        ledger.record_and_apply("payplug", [message("cb-1", Event(EventKind.CHARGEBACK, reason="fraud"))],
                                source="notify")
        ledger.record_and_apply("payplug", [message("mm-1", Event(EventKind.CAPTURED, amount=1, currency="EUR"))],
                                source="notify")
    assert smtp.wait_for(2)
    subjects = smtp.subjects()
    assert f"Chargeback on order {ref}" in subjects and f"Amount mismatch on order {ref}" in subjects
    assert panel.shop.payments(ref)[0]["status"] == "paid"

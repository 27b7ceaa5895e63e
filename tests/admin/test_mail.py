"""Notification e-mails over SMTP, against a real SMTP server on loopback (aiosmtpd); a failing or
hanging mail server never blocks, delays or undoes a payment."""

from __future__ import annotations

import json
import re
import socket
import threading
from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
import requests
import sqlalchemy as sa
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
    assert to == ["ops@example.com"] and message["Subject"] == "1 payplug notification needs your attention"
    body = message.get_content()
    assert "rejected" in body and "inbox entry #" in body
    assert f"{panel.url}/psp/admin/inbox?provider=payplug" in body  # absolute: PSP_PUBLIC_URL is set


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


# ---------------------------------------------------------------------------- the outbox
def free_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def smtp_on(port):
    inbox = Inbox()
    inbox.port = port
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return inbox, controller


def outbox(panel):
    from flask_psp.models import MailMessage

    return panel.query(lambda s: [{c: getattr(m, c) for c in ("id", "kind", "status", "attempts", "next_attempt_at",
                                                             "last_error", "notice_count", "subject")}
                                  for m in s.scalars(sa.select(MailMessage).order_by(MailMessage.id))])


def run_mail_job(panel, now):
    """The ``mail`` job, as cron or beat would run it, at ``now``."""
    from flask_psp.extension import current_state

    with panel.app.app_context():
        (report,) = current_state().jobs().run(["mail"], now=now)
        return report


def later(**delta):
    from flask_psp.models import utcnow

    return utcnow() + timedelta(**delta)


def notice_counts(inbox, provider):
    """How many notifications each digest mail about ``provider`` counted, in the order they came."""
    counts = []
    for _to, message in inbox.messages:
        found = re.fullmatch(rf"(\d+) {provider} notifications? needs? your attention", message["Subject"])
        if found:
            counts.append(int(found.group(1)))
    return counts


def test_a_flood_of_forged_notifications_neither_drops_nor_delays_payment_mails(make_panel, smtp):
    """The repro of issue 10: unsigned HiPay ``status=118`` notifications from many threads while
    genuine payments go through. Every "payment received" mail arrives at once; the forged ones
    make one mail per provider per PSP_NOTICE_DIGEST_MINUTES, which together count them all."""
    panel = make_panel(**mail_config(smtp.port))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, ["paid", "notification_problem"], receipt=False, addresses="ops@example.com")
    forged_total = 240
    answers = []
    flood_started = threading.Event()

    def forge(thread):
        http = requests.Session()
        for i in range(forged_total // 8):
            flood_started.set()
            body = {"status": "118", "transaction_reference": f"8{thread:03d}{i:05d}", "order[id]": f"X-{thread}-{i}",
                    "captured_amount": "14.50", "currency": "EUR"}
            answers.append(http.post(panel.shop.notify_url("hipay"), data=body, timeout=30).status_code)

    flood = [threading.Thread(target=forge, args=(n,)) for n in range(8)]
    for thread in flood:
        thread.start()
    assert flood_started.wait(10)
    refs = [pay(panel, panel.shop.buyer()) for _ in range(3)]  # during the flood
    for thread in flood:
        thread.join(timeout=120)
    assert len(answers) == forged_total and set(answers) == {403}
    assert panel.sim.notifier.wait_idle(timeout=10)
    assert all(panel.shop.order(ref)["status"] == "paid" for ref in refs)

    mailer = panel.app.extensions["psp"].mailer
    assert smtp.wait_for(len(refs) + 1, timeout=20)
    assert mailer.wait_idle(10)
    subjects = smtp.subjects()
    assert sorted(s for s in subjects if s.startswith("Payment received")) == sorted(
        f"Payment received for order {ref}" for ref in refs)
    first = notice_counts(smtp, "hipay")
    assert len(first) == 1 and len(subjects) == len(refs) + 1  # one notice mail, sent when the flood began

    # the rest waits for the window to pass: not before, once after
    assert run_mail_job(panel, later(minutes=14)).done == 0
    assert run_mail_job(panel, later(minutes=16)).done == 1
    assert smtp.wait_for(len(refs) + 2)
    counts = notice_counts(smtp, "hipay")
    assert len(counts) == 2 and sum(counts) == forged_total, outbox(panel)
    digest = smtp.messages[-1][1].get_content()
    assert f"{panel.url}/psp/admin/inbox?provider=hipay" in digest
    assert run_mail_job(panel, later(hours=1)).claimed == 0
    assert {m["status"] for m in outbox(panel)} == {"sent"}


def test_a_mail_server_that_is_down_keeps_the_mail_until_it_is_back(make_panel):
    port = free_port()  # nothing listens there yet
    panel = make_panel(**mail_config(port))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, ["paid"], receipt=False, addresses="ops@example.com")
    ref = pay(panel, panel.shop.buyer())
    assert panel.sim.notifier.wait_idle(timeout=10)
    mailer = panel.app.extensions["psp"].mailer
    assert mailer.wait_idle(10) and mailer.failed == 1 and mailer.sent == 0
    (mail,) = outbox(panel)
    assert (mail["status"], mail["attempts"]) == ("unsent", 1) and "Connection" in mail["last_error"]
    assert mail["subject"] == f"Payment received for order {ref}"
    listed = panel.admin("accountant").get("/mail")
    assert listed.status_code == 200 and f"Payment received for order {ref}" in listed.text

    inbox, controller = smtp_on(port)
    try:
        assert run_mail_job(panel, later(seconds=30)).claimed == 0  # PSP_RETRY_FIRST_DELAY (60 s) not over
        report = run_mail_job(panel, later(seconds=61))
        assert (report.claimed, report.done) == (1, 1)
        assert inbox.wait_for(1)
        assert inbox.subjects() == [f"Payment received for order {ref}"]
        (mail,) = outbox(panel)
        assert (mail["status"], mail["attempts"], mail["last_error"]) == ("sent", 2, None)
    finally:
        controller.stop()


def test_a_mail_that_keeps_failing_is_shown_failed_and_an_owner_sends_it_again(make_panel):
    port = free_port()
    panel = make_panel(**mail_config(port, PSP_RETRY_MAX_ATTEMPTS=2))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, ["paid"], receipt=False, addresses="ops@example.com")
    ref = pay(panel, panel.shop.buyer())
    assert panel.sim.notifier.wait_idle(timeout=10)
    assert panel.app.extensions["psp"].mailer.wait_idle(10)
    assert run_mail_job(panel, later(seconds=61)).left == 1
    (mail,) = outbox(panel)
    assert (mail["status"], mail["attempts"], mail["next_attempt_at"]) == ("failed", 2, None)
    assert run_mail_job(panel, later(days=1)).claimed == 0  # given up: only a person sends it again

    owner = panel.admin("owner")
    page = owner.get("/mail")
    assert page.status_code == 200 and 'data-status="failed"' in page.text and "Send again" in page.text
    assert panel.admin("viewer").post(f"/mail/{mail['id']}/retry").status_code == 403
    inbox, controller = smtp_on(port)
    try:
        answer = owner.post(f"/mail/{mail['id']}/retry")
        assert answer.status_code == 303
        assert inbox.wait_for(1) and inbox.subjects() == [f"Payment received for order {ref}"]
        assert panel.app.extensions["psp"].mailer.wait_idle(10)
        assert outbox(panel)[0]["status"] == "sent"
        assert owner.post(f"/mail/{mail['id']}/retry").status_code == 404  # sent: nothing to send again
    finally:
        controller.stop()
    audit = panel.query(lambda s: s.scalars(sa.text("SELECT action FROM psp_audit_entry")).all())
    assert "mail.retry" in audit


def test_run_jobs_sends_the_mail_that_is_due(make_panel):
    port = free_port()
    panel = make_panel(**mail_config(port))
    configure_payplug(panel, panel.sim.url)
    set_notifications(panel, ["paid"], receipt=False, addresses="ops@example.com")
    ref = pay(panel, panel.shop.buyer())
    assert panel.sim.notifier.wait_idle(timeout=10)
    assert panel.app.extensions["psp"].mailer.wait_idle(10)
    from flask_psp.models import MailMessage

    def fall_due(session):  # its retry fell due
        session.execute(sa.update(MailMessage).values(next_attempt_at=later(seconds=-1)))
        session.commit()

    panel.query(fall_due)
    inbox, controller = smtp_on(port)
    try:
        result = panel.app.test_cli_runner().invoke(args=["psp", "run-jobs", "--job", "mail"])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "mail: 1 claimed, 1 done, 0 left for later"
        assert inbox.wait_for(1) and inbox.subjects() == [f"Payment received for order {ref}"]
    finally:
        controller.stop()

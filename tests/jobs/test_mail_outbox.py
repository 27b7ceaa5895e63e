"""The mail outbox and the transaction that decides a mail: a payment's mail is written by the
transaction that moves the payment, so a move that rolled back has no mail, and the retry that
applies it has exactly one; a real SMTP server on loopback receives it."""

from __future__ import annotations

import sqlalchemy as sa

from flask_psp.models import MailMessage, PageSettings
from tests.admin.test_mail import smtp  # noqa: F401  (the fixture)
from tests.jobs.support import db, later


def mail_config(port):
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_DEFAULT_SENDER": "shop@example.com",
            "PSP_MAIL_TIMEOUT": 5}


def tell_merchant(shop, *events):
    with shop.ctx():
        db.session.add(PageSettings(messages={}, provider_look={},
                                    notifications={"addresses": ["ops@example.com"], "events": list(events)}))
        db.session.commit()


def mails(shop):
    with shop.ctx():
        return [(m.kind, m.status, m.subject) for m in db.session.scalars(sa.select(MailMessage).order_by(MailMessage.id))]


def test_a_move_that_rolled_back_has_no_mail_and_its_retry_has_one(make_jobs_shop, payplug_sim, smtp):  # noqa: F811
    shop = make_jobs_shop(**mail_config(smtp.port))
    tell_merchant(shop, "paid")
    shop.switch("refuse", True)  # the shop's mark_paid raises: the payment's move is rolled back
    payment = shop.start("M-1")
    shop.paid_at_psp(payment)
    assert payplug_sim.notifier.wait_until(lambda: all(d.attempts for d in payplug_sim.notifier.deliveries), timeout=10)
    assert shop.payment(payment["token"])["status"] == "pending"
    assert mails(shop) == []  # no "payment received" for a payment that was not received

    shop.switch("refuse", False)
    assert shop.run("retry", now=later(minutes=2))["retry"].done == 1
    assert shop.payment(payment["token"])["status"] == "paid"
    assert smtp.wait_for(1)
    assert smtp.subjects() == ["Payment received for order M-1"]
    assert shop.app.extensions["psp"].mailer.wait_idle(10)
    assert mails(shop) == [("paid", "sent", "Payment received for order M-1")]

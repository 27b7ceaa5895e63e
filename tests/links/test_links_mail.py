"""The payment-request mail and its reminder, through the mail outbox to a real SMTP server on
loopback: HTML and plain text, the buyer's language, the link that works; the reminder once."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from tests.admin.test_mail import mail_config, smtp  # noqa: F401  (the SMTP sink fixture)

from .support import link_row, make_link, new_order


def parts(message):
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def send(shop, token):
    from example_shop import psp

    with shop.app.app_context():
        psp.send_payment_link(psp.payment_link(token))


def test_the_payment_request_mail_has_the_link_in_html_and_text_in_the_buyers_language(make_shop, smtp):  # noqa: F811
    shop = make_shop(**mail_config(smtp.port))
    buyer = shop.buyer("fr")
    ref = new_order(buyer)  # ordered in French: the order's language
    token, url = make_link(shop, ref, note="Solde de la facture F-118", expires_in=timedelta(days=10))
    send(shop, token)
    assert smtp.wait_for(1)
    to, message = smtp.messages[0]
    assert to == ["alice@example.com"] and message["From"] == "shop@example.com"
    assert message["Subject"] == f"Demande de paiement pour la commande {ref} : 14,50\u00a0€"
    text, html = parts(message)
    assert url in text and "14,50" in text and "Solde de la facture F-118" in text and "valable jusqu" in text
    assert re.search(rf'<a id="pay-link" href="{re.escape(url)}"', html)
    row = link_row(shop, token)
    assert row["sent_at"] is not None and row["send_count"] == 1
    # followed from the mail, the link is the order's page
    landed = shop.buyer().http.get(re.search(r'id="pay-link" href="([^"]+)"', html).group(1), timeout=10)
    assert landed.status_code == 200 and "14,50" in landed.text


def test_the_reminder_goes_once_to_mailed_links_about_to_expire(make_shop, smtp):  # noqa: F811
    shop = make_shop(**mail_config(smtp.port), PSP_LINK_REMINDER_DAYS=3)
    buyer = shop.buyer()
    mailed_ref, printed_ref, later_ref = new_order(buyer), new_order(buyer), new_order(buyer)
    mailed, _url = make_link(shop, mailed_ref, expires_in=timedelta(days=2))
    make_link(shop, printed_ref, expires_in=timedelta(days=2))  # never mailed (an invoice on paper): no reminder
    later, _ = make_link(shop, later_ref, expires_in=timedelta(days=20))  # not due yet
    send(shop, mailed)
    send(shop, later)
    assert smtp.wait_for(2)

    runner = shop.app.test_cli_runner()
    first = runner.invoke(args=["psp", "run-jobs", "--job", "links", "--job", "mail"])
    assert first.exit_code == 0, first.output
    assert "links: 1 claimed, 1 done, 0 left for later" in first.output
    assert smtp.wait_for(3)
    reminder = smtp.messages[2][1]
    assert reminder["Subject"].startswith(f"Reminder: your payment link for order {mailed_ref} expires on ")
    assert _url in parts(reminder)[0]
    assert link_row(shop, mailed)["reminder_sent_at"] is not None

    second = runner.invoke(args=["psp", "run-jobs", "--job", "links", "--job", "mail"])
    assert "links: 0 claimed, 0 done, 0 left for later" in second.output
    assert shop.app.extensions["psp"].mailer.wait_idle(10)
    assert len(smtp.messages) == 3


def test_a_reminder_is_not_sent_for_a_link_paid_or_cancelled_meanwhile(make_shop, smtp):  # noqa: F811
    from example_shop import psp
    from flask_psp.extension import current_state

    shop = make_shop(**mail_config(smtp.port), PSP_LINK_REMINDER_DAYS=3)
    buyer = shop.buyer()
    paid_ref, cancelled_ref = new_order(buyer), new_order(buyer)
    paid, _ = make_link(shop, paid_ref, expires_in=timedelta(days=2))
    cancelled, _ = make_link(shop, cancelled_ref, expires_in=timedelta(days=2))
    send(shop, paid)
    send(shop, cancelled)
    assert smtp.wait_for(2)
    buyer.pay_on_payplug(buyer.choose(paid_ref).headers["Location"])  # paid at the checkout, not through the link
    assert shop.sim.notifier.wait_idle(timeout=10)
    with shop.app.app_context():
        psp.cancel_payment_link(psp.payment_link(cancelled))
        (report,) = current_state().jobs().run(["links"])
    assert report.claimed == 0
    assert link_row(shop, paid)["status"] == "paid"  # the order's other payment paid its link too
    assert shop.app.extensions["psp"].mailer.wait_idle(10)
    assert len(smtp.messages) == 2


def test_runs_at_the_same_moment_remind_each_link_once(make_shop, smtp):  # noqa: F811
    from flask_psp.extension import current_state
    from flask_psp.models import MailMessage
    from tests.jobs.support import run_at_once

    shop = make_shop(**mail_config(smtp.port), PSP_LINK_REMINDER_DAYS=3)
    buyer = shop.buyer()
    tokens = [make_link(shop, new_order(buyer), expires_in=timedelta(days=2))[0] for _ in range(3)]
    for token in tokens:
        send(shop, token)
    assert smtp.wait_for(3)

    def run(_i):
        with shop.app.app_context():
            try:
                (report,) = current_state().jobs().run(["links"])
                return report.done
            finally:
                shop.app.extensions["psp"].db.session.remove()

    done = run_at_once(4, run)
    assert sum(done) == 3
    assert smtp.wait_for(6)
    assert shop.app.extensions["psp"].mailer.wait_idle(10)
    reminders = [m for _to, m in smtp.messages if m["Subject"].startswith("Reminder")]
    assert len(reminders) == 3 and len(smtp.messages) == 6
    with shop.app.app_context():
        rows = shop.app.extensions["psp"].db.session.scalars(
            sa.select(MailMessage.dedupe_key).where(MailMessage.kind == "payment_link_reminder")).all()
    assert sorted(rows) == sorted(f"payment-link-reminder:{link_row(shop, t)['id']}" for t in tokens)

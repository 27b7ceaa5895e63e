"""The example shop's side of payment links: "Email me a payment link" on the order page, and the
invoice with its link and QR code."""

from __future__ import annotations

import re

from tests.admin.test_mail import mail_config, smtp  # noqa: F401  (the SMTP sink fixture)
from tests.conftest import CSRF


def test_email_me_a_payment_link_mails_the_order_its_link(make_shop, smtp):  # noqa: F811
    shop = make_shop(**mail_config(smtp.port))
    buyer = shop.buyer()
    ref = buyer.place_order(email="alice@example.com")
    page = buyer.http.get(f"{shop.url}/orders/{ref}", timeout=10)
    assert "Email me a payment link" in page.text
    sent = buyer.http.post(f"{shop.url}/orders/{ref}/payment-link", data={"csrf_token": CSRF.search(page.text).group(1)},
                           timeout=10)
    assert sent.status_code == 200 and "A payment link is on its way to alice@example.com" in sent.text
    assert smtp.wait_for(1)
    to, message = smtp.messages[0]
    assert to == ["alice@example.com"] and ref in message["Subject"]
    url = re.search(r"(http://\S+/psp/pay/\S+)", message.get_body(("plain",)).get_content()).group(1)
    assert buyer.http.get(url, timeout=10).status_code == 200


def test_without_a_mail_server_the_button_says_so(make_shop):
    shop = make_shop()
    buyer = shop.buyer()
    ref = buyer.place_order(email="alice@example.com")
    page = buyer.http.get(f"{shop.url}/orders/{ref}", timeout=10)
    answer = buyer.http.post(f"{shop.url}/orders/{ref}/payment-link",
                             data={"csrf_token": CSRF.search(page.text).group(1)}, timeout=10)
    assert answer.status_code == 400 and "No mail server is configured" in answer.text


def test_the_invoice_shows_one_link_and_its_qr_code_until_the_order_is_paid(make_shop):
    shop = make_shop()
    buyer = shop.buyer()
    ref = buyer.place_order()
    first = buyer.http.get(f"{shop.url}/orders/{ref}/invoice", timeout=10)
    url = re.search(r'id="invoice-pay-link" href="([^"]+)"', first.text).group(1)
    assert url.startswith(f"{shop.url}/psp/pay/") and "<svg" in first.text and "€14.50" in first.text
    again = buyer.http.get(f"{shop.url}/orders/{ref}/invoice", timeout=10)
    assert url in again.text  # the same link, not a new one per view

    answer = buyer.http.post(url, data={"provider": "payplug", "csrf_token": CSRF.search(
        buyer.http.get(url, timeout=10).text).group(1)}, allow_redirects=False, timeout=10)
    buyer.pay_on_payplug(answer.headers["Location"])
    assert shop.sim.notifier.wait_idle(timeout=10)
    paid = buyer.http.get(f"{shop.url}/orders/{ref}/invoice", timeout=10)
    assert 'id="invoice-pay-link"' not in paid.text and "Status: paid" in paid.text

"""A payment link in a real browser: a manager makes one in the panel and has it mailed; the buyer
opens the mail's HTML (as the SMTP server received it), clicks, pays on the PayPlug simulator and
sees the order paid; the panel then shows the link paid."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from tests.admin.test_mail import smtp  # noqa: F401 - a fixture: a real SMTP server on loopback

from .conftest import PASSWORD, ROOT, UPDATE_DOCS, LiveServer
from .test_admin_browser import buy, pay_on_simulator, sign_in

SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture
def mail_shop(tmp_path, sim, smtp):
    """The example shop with PayPlug (the simulator) in its configuration and a mail server."""
    from cryptography.fernet import Fernet

    from example_shop import create_app, db, psp

    holder = {}
    server = LiveServer(lambda environ, start_response: holder["app"](environ, start_response))
    app = create_app({
        "TESTING": True, "SECRET_KEY": "e2e-links", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'links.db'}",
        "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(), "PSP_PUBLIC_URL": server.url,
        "PSP_PROVIDERS": {"payplug": {"enabled": True, "mode": "test",
                                      "test": {"secret_key": "sk_test_simulator", "endpoint": sim.url}}},
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port, "MAIL_DEFAULT_SENDER": "shop@example.com",
        "PSP_MAIL_TIMEOUT": 5,
    })
    holder["app"] = app
    with app.app_context():
        psp.create_user("manager@example.com", PASSWORD, role="manager")
    server.start()
    app.test_url = server.url
    yield app
    server.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_mailed_link_is_paid_in_a_real_browser(mail_shop, sim, smtp, new_page, artifacts):
    shop = mail_shop
    first_visit = new_page()
    ref = buy(first_visit, shop)  # an order left unpaid at the checkout

    merchant = new_page()
    sign_in(merchant, shop, "manager")
    merchant.get_by_role("link", name="Payment links").click()
    merchant.get_by_label("Order reference").fill(ref)
    merchant.get_by_label("Note for the buyer").fill("Balance of invoice F-2026-118")
    merchant.get_by_label("send it by e-mail now").check()
    merchant.get_by_role("button", name="Create link").click()
    expect(merchant.locator(".psp-flash.psp-ok")).to_contain_text("Payment link sent to alice@example.com.")
    expect(merchant.locator("#link-status")).to_have_attribute("data-status", "active")
    expect(merchant.locator("#link-qr svg")).to_be_visible()
    merchant.screenshot(path=str(artifacts / "admin-payment-link.png"), full_page=True)

    assert smtp.wait_for(1), "the payment-request mail never reached the SMTP server"
    to, message = smtp.messages[0]
    assert to == ["alice@example.com"]
    html = message.get_body(("html",)).get_content()

    buyer = new_page()
    buyer.set_content(html)  # the mail as the buyer's mail client shows it
    buyer.get_by_role("link", name=re.compile(r"^Pay ")).click()
    expect(buyer).to_have_url(re.compile(r"/psp/pay/"))
    expect(buyer.get_by_role("heading", name=f"Pay for order {ref}")).to_be_visible()
    expect(buyer.locator(".psp-link-note")).to_have_text("Balance of invoice F-2026-118")
    buyer.screenshot(path=str(artifacts / "payment-link.png"), full_page=True)
    buyer.get_by_role("button", name=re.compile(r"^Pay ")).click()
    pay_on_simulator(buyer)
    expect(buyer.locator("#psp-status")).to_have_attribute("data-status", "paid", timeout=15_000)

    buyer.goto(f"{shop.test_url}/orders/{ref}")
    expect(buyer.locator("#order-status")).to_have_text("paid")
    merchant.reload()
    expect(merchant.locator("#link-status")).to_have_attribute("data-status", "paid")
    merchant.get_by_role("link", name="Payment links").first.click()
    expect(merchant.locator('#links tr[data-status="paid"]')).to_have_count(1)
    merchant.screenshot(path=str(artifacts / "admin-payment-links.png"), full_page=True)

    if UPDATE_DOCS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in ("payment-link.png", "admin-payment-link.png", "admin-payment-links.png"):
            shutil.copyfile(artifacts / name, SCREENSHOTS / name)

"""What a merchant and a buyer do, in a real browser."""

from __future__ import annotations

import re
import shutil

from playwright.sync_api import expect

from .conftest import PASSWORD, ROOT, UPDATE_DOCS

SCREENSHOTS = ROOT / "docs" / "screenshots"


def sign_in(page, shop, role):
    page.goto(f"{shop.test_url}/psp/admin/")
    expect(page).to_have_url(re.compile(r"/psp/admin/login"))
    page.get_by_label("Email").fill(f"{role}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".psp-admin-who")).to_contain_text(f"{role}@example.com")


def configure_payplug(page, shop, sim):
    page.get_by_role("link", name="Providers").click()
    page.get_by_role("link", name="PayPlug").click()
    test_column = page.locator('[data-mode="test"]')
    test_column.get_by_label("Secret key").fill("sk_test_simulator")
    test_column.get_by_label("API endpoint override").fill(sim.url)
    page.get_by_label(re.compile("Enabled")).check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".psp-flash.psp-ok")).to_contain_text("Settings saved.")


def buy(page, shop, product="Enamel mug"):
    page.goto(shop.test_url + "/")
    # by field names, not words: the shop speaks the buyer's language
    page.get_by_role("row", name=re.compile(product)).locator('button[type="submit"]').click()
    page.locator('input[name="email"]').fill("alice@example.com")
    page.locator('form.order button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/psp/checkout/ORD-"))
    return page.url.rstrip("/").split("/")[-1]


def pay_on_simulator(page):
    expect(page).to_have_url(re.compile(r"/pay/pay_"))
    # by field names: the page speaks the buyer's language
    page.locator('input[name="card_number"]').fill("4242424242424242")
    page.locator('input[name="expiry"]').fill("12/30")
    page.locator('input[name="cvc"]').fill("123")
    page.locator('button[name="action"][value="pay"]').click()


def test_merchant_sets_up_payplug_and_the_look_then_a_buyer_pays(shop, sim, new_page, artifacts):
    merchant = new_page(permissions=("clipboard-read", "clipboard-write"))
    sign_in(merchant, shop, "owner")
    configure_payplug(merchant, shop, sim)

    # test the connection: the simulator answers as PayPlug would
    merchant.get_by_role("button", name="Test the test credentials").click()
    expect(merchant.locator(".psp-flash.psp-ok")).to_contain_text("Connected to PayPlug in test mode")
    notify_url = f"{shop.test_url}/psp/notify/payplug"
    expect(merchant.locator("#notify-url")).to_have_value(notify_url)
    secret = merchant.locator('input[name="cred-test-secret_key"]')
    expect(secret).to_have_value("")  # never rendered back
    expect(merchant.locator('[data-mode="test"]')).to_contain_text("saved: ••••ator")
    merchant.screenshot(path=str(artifacts / "admin-providers.png"), full_page=True)
    copy = merchant.locator('[data-copy="#notify-url"]')  # the "Copy" button, whose label changes
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert merchant.evaluate("navigator.clipboard.readText()") == notify_url

    # brand colour and message, with the live preview following the typing
    merchant.get_by_role("link", name="Payment page").click()
    merchant.get_by_label("Brand name").fill("Atelier Lumière")
    expect(merchant.locator('[data-preview-target="brand"]')).to_have_text("Atelier Lumière")
    merchant.locator('input[name="primary_color"]').fill("#aa3300")
    merchant.locator('textarea[name="message-en-before"]').fill("Thanks for shopping with us <3")
    expect(merchant.locator('[data-preview-target="message-en-before"]')).to_have_text("Thanks for shopping with us <3")
    preview_colour = merchant.locator("#preview .psp-button").evaluate("e => getComputedStyle(e).backgroundColor")
    assert preview_colour == "rgb(170, 51, 0)"
    merchant.screenshot(path=str(artifacts / "admin-page.png"), full_page=True)
    merchant.get_by_role("button", name="Save").click()
    expect(merchant.locator(".psp-flash.psp-ok")).to_contain_text("The payment page is updated.")

    # a buyer sees them on checkout, pays on the simulator and lands on a paid order
    buyer = new_page()
    ref = buy(buyer, shop)
    expect(buyer.locator(".psp-brand")).to_have_text("Atelier Lumière")
    expect(buyer.locator(".psp-message")).to_have_text("Thanks for shopping with us <3")
    pay_button = buyer.get_by_role("button", name=re.compile(r"^Pay "))
    assert pay_button.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(170, 51, 0)"
    buyer.screenshot(path=str(artifacts / "checkout.png"), full_page=True)
    pay_button.click()
    pay_on_simulator(buyer)
    expect(buyer.locator("#psp-status")).to_have_attribute("data-status", "paid")
    expect(buyer.locator("#psp-status")).to_contain_text("your order is paid")
    buyer.screenshot(path=str(artifacts / "return-paid.png"), full_page=True)
    buyer.goto(f"{shop.test_url}/orders/{ref}")
    expect(buyer.locator("#order-status")).to_have_text("paid")

    # the merchant finds it in the payments list
    merchant.get_by_role("link", name="Payments", exact=True).click()
    expect(merchant.locator(f'tr:has-text("{ref}")')).to_have_attribute("data-status", "paid")
    merchant.screenshot(path=str(artifacts / "admin-payments.png"), full_page=True)

    if UPDATE_DOCS:  # the README's pictures, refreshed from this very run
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts / "admin-providers.png", SCREENSHOTS / "admin-providers.png")
        shutil.copyfile(artifacts / "checkout.png", SCREENSHOTS / "checkout.png")


def test_a_viewer_cannot_reach_the_providers_page(shop, new_page, artifacts):
    page = new_page()
    sign_in(page, shop, "viewer")
    expect(page.get_by_role("link", name="Payments", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Providers")).to_have_count(0)
    response = page.goto(f"{shop.test_url}/psp/admin/providers/payplug")
    assert response.status == 403
    expect(page.locator("[data-forbidden]")).to_contain_text("Your role does not allow this page")
    expect(page.locator("body")).not_to_contain_text("Secret key")
    page.screenshot(path=str(artifacts / "viewer-forbidden.png"), full_page=True)


def test_a_manager_refunds_part_of_a_payment(shop, sim, new_page, artifacts):
    owner = new_page()
    sign_in(owner, shop, "owner")
    configure_payplug(owner, shop, sim)
    buyer = new_page("fr-FR")
    ref = buy(buyer, shop, "Map of Lyon")
    buyer.get_by_role("button", name=re.compile(r"^Payer ")).click()
    pay_on_simulator(buyer)
    expect(buyer.locator("#psp-status")).to_have_attribute("data-status", "paid")

    manager = new_page()
    sign_in(manager, shop, "manager")
    manager.get_by_role("link", name="Payments", exact=True).click()
    manager.get_by_role("link", name=ref).click()
    expect(manager.locator("#payment-status")).to_have_text("paid")
    manager.locator("#refund-amount").fill("5.00")
    manager.get_by_role("button", name="Refund…").click()
    expect(manager.locator(".psp-confirm")).to_contain_text("Refund €5.00")
    manager.screenshot(path=str(artifacts / "refund-confirm.png"), full_page=True)
    manager.get_by_role("button", name="Yes, do it").click()
    expect(manager.locator(".psp-flash.psp-ok")).to_contain_text("Refund done.")
    expect(manager.locator("#payment-status")).to_have_text("partially refunded")
    expect(manager.locator("#refunded")).to_have_attribute("data-amount", "500")
    manager.screenshot(path=str(artifacts / "refund-done.png"), full_page=True)
    payment_id = next(iter(p for p, data in sim.payments.items() if data["metadata"].get("order_ref") == ref))
    assert sim.payments[payment_id]["amount_refunded"] == 500

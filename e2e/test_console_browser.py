"""The merchant's console in a real browser: the overview of a seeded week, a payment's page in
French with a refund refused on the form, and a refresh after a capture that captures nothing more."""

from __future__ import annotations

import re
import shutil
from datetime import date, datetime, time, timedelta

from playwright.sync_api import expect

from .conftest import ROOT, UPDATE_DOCS
from .test_admin_browser import buy, configure_payplug, pay_on_simulator, sign_in

SCREENSHOTS = ROOT / "docs" / "screenshots"


def keep(page, artifacts, name):
    """A full-page screenshot into test-artifacts/ (and the docs' pictures with UPDATE_SCREENSHOTS=1)."""
    path = artifacts / name
    page.screenshot(path=str(path), full_page=True)
    if UPDATE_DOCS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)


def seed_week(shop, today):
    """Live Adyen payments of 10, 20 … 70 € and PayPlug payments of 5 € each day of the last week, a
    PayPlug refund of 1 €, and test-mode payments that must not count."""
    from example_shop import db
    from flask_psp.models import Payment

    with shop.app_context():
        for n in range(7):
            at = datetime.combine(today - timedelta(days=6 - n), time(12, 0))
            for provider, amount, mode, refunded in (("adyen", 1000 * (n + 1), "live", 0),
                                                     ("payplug", 500, "live", 100 if n == 3 else 0),
                                                     ("payplug", 77700, "test", 0)):
                db.session.add(Payment(
                    order_ref=f"WEEK-{provider}-{mode}-{n}", provider=provider, mode=mode, amount=amount,
                    currency="EUR", status="partially_refunded" if refunded else "paid", authorized_amount=amount,
                    captured_amount=amount, refunded_amount=refunded, created_at=at, paid_at=at,
                    email="week@example.com"))
        db.session.add(Payment(order_ref="WEEK-failed", provider="adyen", mode="live", amount=900, currency="EUR",
                               status="failed", failure_reason="3D Not Authenticated",
                               created_at=datetime.combine(today, time(9, 0))))
        db.session.commit()


def test_the_overview_of_a_seeded_week_shows_money_and_charts(shop, new_page, artifacts):
    today = date.today()
    seed_week(shop, today)
    page = new_page()
    sign_in(page, shop, "viewer")
    start = today - timedelta(days=6)
    page.goto(f"{shop.test_url}/psp/admin/?date_from={start.isoformat()}&date_to={today.isoformat()}")
    week = page.locator('table[data-period="7d"]')
    expect(week.locator('tr[data-provider="adyen"] td').first).to_have_text("€280.00")
    expect(week.locator('tr[data-provider="payplug"] td').first).to_have_text("€35.00")
    total = week.locator("tr.psp-total td")
    expect(total.nth(0)).to_have_text("€315.00")
    expect(total.nth(1)).to_have_text("€1.00")
    expect(total.nth(2)).to_have_text("€314.00")
    expect(page.locator('table[data-period="today"] tr.psp-total td').first).to_have_text("€75.00")
    # the chart: one stacked column per day, as tall as the day's money; its table says the same
    chart = page.locator('svg[data-chart="captured"]')
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(14)
    values = chart.locator("rect").evaluate_all("rs => rs.map(r => Number(r.dataset.value))")
    assert sum(values) == 31500
    heights = {r["day"]: r["h"] for r in chart.locator("rect").evaluate_all(
        "rs => rs.filter(r => r.getAttribute('fill') === '#0abf53')"
        ".map(r => ({day: r.dataset.day, h: r.getBoundingClientRect().height}))")}
    assert heights[today.isoformat()] > heights[start.isoformat()] * 6  # 70 € against 10 €
    expect(page.locator('svg[data-chart="conversion"]')).to_be_visible()
    page.get_by_text("The figures as a table").first.click()
    expect(page.locator('table[data-table="captured"] tbody tr')).to_have_count(7)
    expect(page.locator('#failures tr[data-provider="adyen"] td[data-kind="3ds_failed"]')).to_have_text("1")
    # test money is on its own page, never added to live money
    page.get_by_label("test", exact=True).check()
    page.get_by_role("button", name="Show").click()
    expect(page.locator('table[data-period="7d"] tr.psp-total td').first).to_have_text("€5,439.00")
    page.get_by_label("live", exact=True).check()
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".psp-mode-note")).to_have_attribute("data-mode", "live")
    keep(page, artifacts, "admin-overview.png")


def test_a_payment_page_in_french_refuses_a_refund_above_what_is_left(shop, sim, new_page, artifacts):
    owner = new_page()
    sign_in(owner, shop, "owner")
    configure_payplug(owner, shop, sim)
    buyer = new_page()
    ref = buy(buyer, shop)  # Enamel mug, €14.50
    buyer.get_by_role("button", name=re.compile(r"^Pay ")).click()
    pay_on_simulator(buyer)
    expect(buyer.locator("#psp-status")).to_have_attribute("data-status", "paid")

    manager = new_page("fr-FR")
    manager.goto(f"{shop.test_url}/psp/admin/")
    manager.locator('input[name="email"]').fill("manager@example.com")
    manager.locator('input[name="password"]').fill("correct-horse-battery")
    manager.locator('button[type="submit"]').click()
    expect(manager.locator(".psp-admin-who")).to_contain_text("manager@example.com")
    manager.goto(f"{shop.test_url}/psp/admin/payments?status=paid")
    manager.get_by_role("link", name=ref).click()
    expect(manager.locator("#payment-status")).to_have_text("payé")
    expect(manager.locator("#card")).to_contain_text("4242")
    expect(manager.locator("#three-ds")).to_have_attribute("data-three-ds", re.compile(r"authenticated"))
    expect(manager.locator("#timeline")).to_contain_text("appliquée")
    expect(manager.locator("#timeline")).to_contain_text("statut payé")
    refund = manager.locator("#refund-amount")
    expect(refund).to_have_value("14,50")
    refund.fill("20,00")
    manager.locator('button[data-action="refund"]').click()
    expect(manager.locator(".psp-flash.psp-error")).to_have_text("Vous pouvez rembourser au plus 14,50\u00a0€.")
    expect(manager.locator(".psp-confirm")).to_have_count(0)
    expect(manager).to_have_url(re.compile(r"/psp/admin/payments/\d+\?back="))
    keep(manager, artifacts, "admin-payment-fr.png")
    # the way back keeps the list's filter
    manager.locator("#back-to-list").click()
    expect(manager).to_have_url(re.compile(r"/psp/admin/payments\?status=paid$"))
    from example_shop import psp

    with shop.app_context():
        assert psp.payments_for(ref)[0].refunded_amount == 0


def test_a_refresh_after_a_capture_captures_nothing_more(shop, sim, new_page, artifacts):
    owner = new_page()
    sign_in(owner, shop, "owner")
    owner.get_by_role("link", name="Providers").click()
    owner.get_by_role("link", name="PayPlug").click()
    owner.locator('[data-mode="test"]').get_by_label("Secret key").fill("sk_test_simulator")
    owner.locator('[data-mode="test"]').get_by_label("API endpoint override").fill(sim.url)
    owner.get_by_label(re.compile("Enabled")).check()
    owner.locator('input[name="capture"][value="manual"]').check()
    owner.get_by_role("button", name="Save").click()
    expect(owner.locator(".psp-flash.psp-ok")).to_contain_text("Settings saved.")
    buyer = new_page()
    ref = buy(buyer, shop)
    buyer.get_by_role("button", name=re.compile(r"^Pay ")).click()
    pay_on_simulator(buyer)
    expect(buyer.locator("#psp-status")).to_have_attribute("data-status", "authorized")

    owner.get_by_role("link", name="Payments", exact=True).click()
    owner.get_by_role("link", name=ref).click()
    expect(owner.locator("#capture-amount")).to_have_count(0)  # PayPlug captures the whole amount
    expect(owner.locator("#capture-whole")).to_contain_text("€14.50")
    owner.locator('button[data-action="capture"]').click()
    expect(owner.locator(".psp-confirm")).to_contain_text("Capture €14.50")
    owner.get_by_role("button", name="Yes, do it").click()
    expect(owner.locator(".psp-flash.psp-ok")).to_have_text("Payment captured.")
    expect(owner.locator("#payment-status")).to_have_attribute("data-status", "paid")
    address = owner.url
    owner.reload()  # the page after a POST is a GET: a refresh sends nothing again
    expect(owner).to_have_url(address)
    expect(owner.locator(".psp-flash")).to_have_count(0)
    expect(owner.locator("#captured")).to_have_text("€14.50")
    keep(owner, artifacts, "admin-payment-captured.png")
    from example_shop import psp
    from flask_psp.models import PaymentEvent

    with shop.app_context():
        payment = psp.payments_for(ref)[0]
        assert payment.captured_amount == 1450
        from example_shop import db

        assert db.session.query(PaymentEvent).filter_by(payment_id=payment.id, source="api").count() == 1

"""A payment link paid through each provider's simulator marks its order paid once: the buyer
opens the link, chooses the provider, pays on the PSP's page; the PSP's proof pays the order, the
link and nothing twice."""

from __future__ import annotations

from tests.adyen import conftest as adyen
from tests.hipay import conftest as hipay
# each provider's simulator in turn (a fixture), as the delayed-capture tests serve them
from tests.jobs.test_delayed_capture_providers import sim  # noqa: F401
from tests.paypal import conftest as paypal
from tests.sips import conftest as sips

from .support import choose_on_link, link_row, make_link, new_order


def settings_for(sim) -> dict:
    name = sim.provider_name
    if name == "payplug":
        return {"payplug": {"enabled": True, "mode": "test", "test": {"secret_key": "sk_test_simulator",
                                                                      "endpoint": sim.url}}}
    return {"adyen": adyen.adyen_settings, "paypal": paypal.paypal_settings, "sips": sips.sips_settings,
            "hipay": hipay.hipay_settings}[name](sim)


def pay_through_link(buyer, sim, url):
    """From the link's page to the PSP's page, paid, and back to the shop."""
    name = sim.provider_name
    answer = choose_on_link(buyer, url, name)
    if name == "sips":
        assert answer.status_code == 200, answer.text
        (form,) = [f for f in sips.forms(answer.text) if f["id"] == "psp-redirect"]
        page = buyer.http.post(form["action"], data=form["fields"], timeout=10)
        sips.back_to_shop(sips.pay_on_sips(buyer, page).text)
        return
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    if name == "payplug":
        buyer.pay_on_payplug(location)
    elif name == "adyen":
        adyen.pay(buyer, location)
    elif name == "paypal":
        paypal.approve(buyer, location)
    else:
        buyer.http.get(hipay.pay_on_hipay(buyer, location), timeout=10)


def test_a_link_paid_through_each_provider_marks_the_order_paid_once(make_shop, sim, heard):
    from flask_psp import signals

    sim.webhook_url = None
    shop = make_shop(psp_providers=settings_for(sim))
    if sim.provider_name in ("adyen", "paypal"):
        sim.webhook_url = shop.notify_url(sim.provider_name)
    links_paid = []

    def on_link_paid(sender, link, payment, **extra):
        links_paid.append((link.token, payment.provider))

    signals.payment_link_paid.connect(on_link_paid)
    try:
        buyer = shop.buyer()
        ref = new_order(buyer)
        token, url = make_link(shop, ref)
        pay_through_link(buyer, sim, url)
        assert sim.notifier.wait_until(lambda: all(d.done for d in sim.notifier.deliveries), timeout=10)
    finally:
        signals.payment_link_paid.disconnect(on_link_paid)

    assert shop.order(ref)["status"] == "paid"
    assert heard == [ref]  # once, though the return and the notification both prove it
    (payment,) = shop.payments(ref)
    assert (payment["status"], payment["captured_amount"]) == ("paid", 1450)
    row = link_row(shop, token)
    assert (row["status"], row["payment_id"]) == ("paid", payment["id"])
    assert links_paid == [(token, sim.provider_name)]
    assert "already been paid" in shop.buyer().http.get(url, timeout=10).text

"""The admin panel's "Payment links" page: managers create, send again and cancel; accountants and
viewers read; filters; the QR code; the payment and the link point to each other; audit entries."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from sqlalchemy import select

from tests.admin.conftest import configure_payplug, make_panel  # noqa: F401  (the panel fixture)
from tests.admin.test_mail import mail_config, smtp  # noqa: F401  (the SMTP sink fixture)

from .support import choose_on_link, link_row, make_link


def link_id_from(answer):
    assert answer.status_code == 303, answer.text
    return int(re.search(r"/links/(\d+)$", answer.headers["Location"]).group(1))


def test_a_manager_creates_sends_and_cancels_and_the_audit_log_says_so(make_panel, smtp):  # noqa: F811
    from flask_psp.models import AuditEntry

    panel = make_panel(**mail_config(smtp.port))
    configure_payplug(panel, panel.sim.url)
    ref = panel.shop.buyer().place_order(email="alice@example.com")
    manager = panel.admin("manager")
    created = manager.post("/links", {"order_ref": ref, "email": "accounts@buyer.example", "days": "14",
                                      "note": "Invoice F-9", "send": "1"})
    link_id = link_id_from(created)
    assert smtp.wait_for(1) and smtp.messages[0][0] == ["accounts@buyer.example"]

    detail = manager.get(f"/links/{link_id}")
    assert detail.status_code == 200
    url = re.search(r'id="link-url" readonly value="([^"]+)"', detail.text).group(1)
    assert url.startswith(f"{panel.url}/psp/pay/") and 'data-copy="#link-url"' in detail.text
    assert "Invoice F-9" in detail.text and "€14.50" in detail.text
    assert "<svg" in detail.text  # the QR code, inline

    again = manager.post(f"/links/{link_id}/send")
    assert again.status_code == 303
    assert smtp.wait_for(2)
    assert link_row(panel.shop, url.rsplit("/", 1)[-1])["send_count"] == 2

    assert manager.post(f"/links/{link_id}/cancel").status_code == 303
    assert panel.shop.buyer().http.get(url, timeout=10).status_code == 410
    refused = manager.get(manager.post(f"/links/{link_id}/send").headers["Location"].removeprefix("/psp/admin"))
    assert "cannot be sent" in refused.text
    assert len(smtp.messages) == 2

    actions = panel.query(lambda s: [(a.actor, a.action, a.target) for a in
                                     s.scalars(select(AuditEntry).where(AuditEntry.action.like("payment_link.%"))
                                               .order_by(AuditEntry.id))])
    assert actions == [("manager@example.com", "payment_link.create", ref),
                       ("manager@example.com", "payment_link.send", ref),
                       ("manager@example.com", "payment_link.send", ref),
                       ("manager@example.com", "payment_link.cancel", ref)]


def test_accountants_and_viewers_read_links_but_cannot_change_them(make_panel):  # noqa: F811
    panel = make_panel()
    ref = panel.shop.buyer().place_order()
    token, _url = make_link(panel.shop, ref)
    link_id = link_row(panel.shop, token)["id"]
    for role in ("accountant", "viewer"):
        reader = panel.admin(role)
        listing = reader.get("/links")
        assert listing.status_code == 200 and ref in listing.text and 'action="/psp/admin/links"' not in listing.text
        detail = reader.get(f"/links/{link_id}")
        assert detail.status_code == 200 and "/cancel" not in detail.text
        assert reader.post(f"/links/{link_id}/cancel").status_code == 403
        assert reader.post("/links", {"order_ref": ref}).status_code == 403
    assert link_row(panel.shop, token)["status"] == "active"


def test_the_list_filters_by_status_order_and_address(make_panel):  # noqa: F811
    from example_shop import psp

    panel = make_panel()
    buyer = panel.shop.buyer()
    first, second = buyer.place_order(), buyer.place_order()
    kept, _ = make_link(panel.shop, first, email="a@buyer.example")
    dropped, _ = make_link(panel.shop, second, email="b@buyer.example")
    with panel.app.app_context():
        psp.cancel_payment_link(psp.payment_link(dropped))
    owner = panel.admin("owner")

    def shown(query):
        page = owner.get(f"/links{query}")
        assert page.status_code == 200, page.text
        return re.findall(r'<tr data-link="\d+" data-status="(\w+)">', page.text)

    assert sorted(shown("")) == ["active", "cancelled"]
    assert shown("?status=cancelled") == ["cancelled"]
    assert shown("?status=active") == ["active"]
    assert shown("?status=expired") == []
    assert shown(f"?order_ref={first}") == ["active"]
    assert shown("?email=B@BUYER.example") == ["cancelled"]
    assert owner.get("/links?status=bogus").status_code == 400


def test_a_manager_cannot_make_a_link_for_an_unknown_order_or_bad_days(make_panel):  # noqa: F811
    panel = make_panel()
    manager = panel.admin("manager")
    unknown = manager.post("/links", {"order_ref": "ORD-NOPE", "days": "30"})
    assert unknown.status_code == 400 and "knows no order ORD-NOPE" in unknown.text
    ref = panel.shop.buyer().place_order()
    for days in ("0", "400", "²", "3.5"):
        bad = manager.post("/links", {"order_ref": ref, "days": days})
        assert bad.status_code == 400 and "1 to 366 days" in bad.text, days
    assert "No payment link matches." in manager.get("/links").text


def test_the_qr_code_is_an_svg_of_the_links_url(make_panel):  # noqa: F811
    panel = make_panel()
    ref = panel.shop.buyer().place_order()
    token, url = make_link(panel.shop, ref)
    viewer = panel.admin("viewer")
    answer = viewer.get(f"/links/{link_row(panel.shop, token)['id']}/qr.svg")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("image/svg+xml")
    assert f'filename="payment-link-{ref}.svg"' in answer.headers["Content-Disposition"]
    svg = ElementTree.fromstring(answer.content)
    assert svg.tag.endswith("svg") and svg.find("{http://www.w3.org/2000/svg}title").text == url


def test_the_payment_and_its_link_point_to_each_other(make_panel):  # noqa: F811
    panel = make_panel()
    configure_payplug(panel, panel.sim.url)
    buyer = panel.shop.buyer()
    ref = buyer.place_order()
    token, url = make_link(panel.shop, ref)
    buyer.pay_on_payplug(choose_on_link(buyer, url).headers["Location"])
    assert panel.sim.notifier.wait_idle(timeout=10)
    (payment,) = panel.shop.payments(ref)
    link_id = link_row(panel.shop, token)["id"]
    viewer = panel.admin("viewer")
    payment_page = viewer.get(f"/payments/{payment['id']}")
    assert f'id="payment-link" href="/psp/admin/links/{link_id}"' in payment_page.text
    link_page = viewer.get(f"/links/{link_id}")
    assert f'href="/psp/admin/payments/{payment["id"]}"' in link_page.text
    assert 'data-status="paid"' in link_page.text

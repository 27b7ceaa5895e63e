"""The merchant's console, a payment's page and the list: words in the merchant's language, what
support needs (card, 3-D Secure, the buyer's other payments, the order in the shop), limits checked
on the form, POST/redirect/GET, the CSV export."""

from __future__ import annotations

import csv
import io
import re

from hypothesis import given, settings, strategies as st

from flask_psp.admin.payments import amount_field, parse_amount

from .conftest import configure_payplug
from .test_payments import confirm, pay, refused


def test_a_payment_page_in_french_says_statuses_outcomes_and_notes_in_french(panel):
    configure_payplug(panel, panel.sim.url)
    _ref, payment = pay(panel, "MAP-03")  # 39.90 EUR
    manager = panel.admin("manager")
    manager.http.headers["Accept-Language"] = "fr"
    page = manager.get(f"/payments/{payment['id']}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    manager.token = token
    # the field shows the French decimal comma, and a refund typed either way is understood
    assert 'id="refund-amount"' in page.text and 'value="39,90"' in page.text
    _confirm_page, done = confirm(manager, payment["id"], "refund", "5,00")
    assert done.status_code == 303
    page = manager.get(f"/payments/{payment['id']}").text
    assert 'data-status="partially_refunded">partiellement remboursé<' in page
    assert "partially_refunded<" not in page
    assert ">appliquée<" in page and ">applied<" not in page
    assert "statut payé" in page  # the ledger's note "status paid", in French
    assert "status paid" not in page


def test_the_timeline_note_of_a_request_awaiting_the_psp_reads_in_french():
    from flask_babel import force_locale

    from example_shop import create_app
    from flask_psp.admin.payments import timeline_detail
    from flask_psp.views.admin.labels import label

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x",
                      "PSP_ENCRYPTION_KEY": "x" * 43 + "=", "PSP_PROVIDERS": {}})
    with app.test_request_context(), force_locale("fr"):
        said = timeline_detail("status paid; awaiting the PSP: refund of 5.00 EUR, cancellation", label, "fr")
        assert said == "statut payé; en attente du PSP : remboursement de 5,00\u00a0€, annulation"
        assert timeline_detail("status paid (no change)", label, "fr") == "statut payé (aucun changement)"
        assert timeline_detail("same as event #3", label, "fr") == "identique à l'événement n°3"
        assert timeline_detail("HiPay status 113 (refused)", label, "fr") == "HiPay status 113 (refused)"  # the PSP's words


def test_support_sees_the_card_the_3ds_outcome_the_buyer_s_other_payments_and_the_order(make_panel):
    panel = make_panel(PSP_ORDER_URL="https://shop.example/admin/orders/{order_ref}")
    configure_payplug(panel, panel.sim.url, three_ds="always")
    ref, payment = pay(panel)  # the simulator's page asks for the 3-D Secure code
    pay(panel, "TEE-02")  # the same buyer's second payment
    page = panel.admin("viewer").get(f"/payments/{payment['id']}").text
    assert re.search(r'id="card" data-brand="Visa" data-last4="4242">VISA •••• 4242<', page)
    assert 'data-three-ds="authenticated">authenticated<' in page
    assert 'id="liability-shift"' not in page  # PayPlug does not say
    assert f'href="https://shop.example/admin/orders/{ref}"' in page
    assert re.search(r'id="buyer">buyer@example.com · <a href="/psp/admin/payments\?q=buyer@example.com" '
                     r'id="buyer-payments">1 other payment</a>', page)


def test_back_to_the_list_keeps_its_filters_and_goes_nowhere_else(panel):
    configure_payplug(panel, panel.sim.url)
    _ref, payment = pay(panel)
    viewer = panel.admin("viewer")
    listing = viewer.get("/payments?status=paid&provider=payplug&q=buyer%40example.com").text
    link = re.search(rf'href="(/psp/admin/payments/{payment["id"]}\?back=[^"]+)"', listing).group(1)
    page = viewer.http.get(panel.url + link.replace("&amp;", "&"), timeout=15).text
    back = re.search(r'href="([^"]+)" id="back-to-list"', page).group(1).replace("&amp;", "&")
    assert back.startswith("/psp/admin/payments?")
    assert set(back.split("?")[1].split("&")) == {"status=paid", "provider=payplug", "q=buyer@example.com"}
    hostile = viewer.get(f"/payments/{payment['id']}?back=//evil.example/x%3Fstatus%3Dpaid").text
    assert re.search(r'href="/psp/admin/payments" id="back-to-list"', hostile)


def test_a_refund_above_what_is_left_is_refused_on_the_form_with_the_limit_in_money(panel):
    configure_payplug(panel, panel.sim.url)
    ref, payment = pay(panel, "MAP-03")
    manager = panel.admin("manager")
    confirm(manager, payment["id"], "refund", "27.40")
    page = refused(manager, manager.post(f"/payments/{payment['id']}/refund", {"amount": "12,51"}))
    assert "You can refund at most €12.50." in page
    assert 'data-confirm="refund"' not in page
    assert panel.shop.payments(ref)[0]["refunded_amount"] == 2740
    # the confirmation page, reached by its address, checks again
    address = refused(manager, manager.http.get(f"{panel.url}/psp/admin/payments/{payment['id']}/refund/confirm?amount=13",
                                                allow_redirects=False, timeout=15))
    assert "You can refund at most €12.50." in address


def test_a_capture_sent_again_by_a_refresh_captures_nothing_more(panel):
    configure_payplug(panel, panel.sim.url, capture="manual")
    ref, payment = pay(panel)
    owner = panel.admin("owner")
    _page, done = confirm(owner, payment["id"], "capture")
    assert done.status_code == 303  # the answer is a redirect: a refresh shows the page again
    after = owner.http.get(panel.url + done.headers["Location"], timeout=15).text
    assert "Payment captured." in after
    again = refused(owner, owner.post(f"/payments/{payment['id']}/capture", {"amount": "", "confirmed": "1"}))
    assert "Nothing is left to capture." in again
    assert panel.shop.payments(ref)[0]["captured_amount"] == 1450
    assert sum(1 for e in panel.shop.events() if e["source"] == "api") == 1


def test_the_list_shows_emails_and_brand_names_and_exports_the_filtered_list(panel):
    from .test_payments import insert_payments

    insert_payments(panel, 30)
    viewer = panel.admin("viewer")
    listing = viewer.get("/payments?provider=adyen&status=paid").text
    assert '<td class="psp-email">b4@example.com</td>' in listing
    assert re.search(r'<td data-provider="adyen">Adyen', listing)
    assert 'href="/psp/admin/payments.csv?status=paid&amp;provider=adyen"' in listing
    export = viewer.get("/payments.csv?provider=adyen&status=paid")
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    expected = panel.query(lambda s: sorted(
        p.order_ref for p in s.scalars(__import__("sqlalchemy").select(__import__("flask_psp.models").models.Payment))
        if p.provider == "adyen" and p.status == "paid"))
    assert sorted(r["order_ref"] for r in rows) == expected and expected
    assert all(r["provider"] == "adyen" and r["status"] == "paid" and re.fullmatch(r"\d+\.\d\d", r["amount"])
               for r in rows)
    assert viewer.get("/payments.csv?date_from=yesterday").status_code == 400


def test_the_export_streams_every_page_of_a_long_list(panel):
    from flask_psp.admin.payments import PaymentFilters, payments_csv
    from .test_payments import insert_payments

    insert_payments(panel, 25)
    lines = panel.query(lambda s: list(payments_csv(s, PaymentFilters(), batch=4)))
    assert len(lines) == 26 and lines[0].startswith("created_at,order_ref")
    refs = [line.split(",")[1] for line in lines[1:]]
    assert len(set(refs)) == 25 and refs == sorted(refs, reverse=True)


def test_a_buyer_s_email_cannot_start_a_spreadsheet_formula(panel):
    from flask_psp.models import Payment

    panel.query(lambda s: (s.add(Payment(order_ref="=HYPERLINK(1)", provider="payplug", mode="test", amount=100,
                                         currency="EUR", status="paid", email="@SUM(A1)")), s.commit()))
    export = panel.admin("viewer").get("/payments.csv").text
    assert "'=HYPERLINK(1)" in export and "'@SUM(A1)" in export


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(min_value=1, max_value=10**15), currency=st.sampled_from(["EUR", "JPY", "KWD"]),
       locale=st.sampled_from(["en", "fr"]))
def test_an_amount_shown_in_a_field_in_either_language_reads_back_the_same(amount, currency, locale):
    assert parse_amount(amount_field(amount, currency, locale), currency) == amount


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_whatever_is_typed_as_an_amount_is_an_amount_or_a_message(text):
    try:
        amount = parse_amount(text, "EUR")
    except ValueError as exc:
        assert str(exc)
    else:
        assert amount is None or (isinstance(amount, int) and amount > 0)


def test_grouped_amounts_read_with_either_separator():
    assert parse_amount("1 234,50", "EUR") == 123450
    assert parse_amount("1\u202f234,50", "EUR") == 123450
    assert parse_amount("1,234.50", "EUR") == 123450
    assert parse_amount("1.234,50", "EUR") == 123450
    assert parse_amount("12,5", "EUR") == 1250


def test_formatted_amounts_are_remembered_but_a_float_is_still_refused():
    import pytest

    from flask_psp.money import format_amount

    assert format_amount(100, "EUR", "fr") == format_amount(100, "EUR", "fr") == "1,00\u00a0€"
    for not_minor_units in (100.0, True):
        with pytest.raises(TypeError):
            format_amount(not_minor_units, "EUR", "fr")

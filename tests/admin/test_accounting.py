"""Accounting settings per provider (French chart-of-accounts defaults) and the journal export."""

from __future__ import annotations

import csv
import io
from datetime import date

from .conftest import configure_payplug


def test_defaults_follow_the_french_chart_and_the_accountant_changes_them(panel):
    accountant = panel.admin("accountant")
    page = accountant.get("/accounting")
    assert page.status_code == 200
    for default in ('value="PPG"', 'value="511530"', 'value="627800"', 'value="411000"'):
        assert default in page.text
    bad = accountant.post("/accounting/payplug", {"journal_code": "PP G", "clearing_account": "511-3",
                                                  "fee_account": "627800", "customer_account": "411000"})
    assert bad.status_code == 400 and "journal code has 1 to 8" in bad.text and "Account numbers" in bad.text
    ok = accountant.post("/accounting/payplug", {"journal_code": "bq2", "clearing_account": "5115",
                                                 "fee_account": "6278", "customer_account": "411PAY"})
    assert ok.status_code == 303
    page = accountant.get("/accounting").text
    assert 'value="BQ2"' in page and 'value="411PAY"' in page
    assert panel.admin("manager").post("/accounting/payplug", {"journal_code": "X"}).status_code == 403


def test_journal_export_balances_payments_and_refunds(panel):
    configure_payplug(panel, panel.sim.url)
    buyer = panel.shop.buyer()
    ref = buyer.place_order("MAP-03")
    buyer.pay_on_payplug(buyer.choose(ref).headers["Location"])
    payment = panel.shop.payments(ref)[0]
    manager = panel.admin("manager")
    assert manager.post(f"/payments/{payment['id']}/refund", {"amount": "9.90", "confirmed": "1"}).status_code == 303
    accountant = panel.admin("accountant")
    today = date.today().isoformat()
    live = accountant.get(f"/accounting/export.csv?start={today}&end={today}")
    assert live.status_code == 200 and live.text.count("\r\n") == 1  # the header: these were test payments
    answer = accountant.get(f"/accounting/export.csv?start={today}&end={today}&mode=test")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text), delimiter=";"))
    assert [(r["CompteNum"], r["Debit"], r["Credit"]) for r in rows] == [
        ("511530", "39.90", ""), ("411000", "", "39.90"), ("411000", "9.90", ""), ("511530", "", "9.90"),
    ]
    assert {r["JournalCode"] for r in rows} == {"PPG"} and {r["PieceRef"] for r in rows} == {payment["psp_reference"]}
    assert panel.admin("viewer").get("/accounting/export.csv").status_code == 403
    assert "accounting.export" in accountant.get("/audit").text


def test_the_accountant_downloads_the_fec_of_live_payments(make_panel, sim):
    from datetime import datetime

    from flask_psp.models import Payment
    from flask_psp.movements import record_movement

    from accounting.fec_checker import check

    panel = make_panel(PSP_SIREN="732829320")

    def live_sale(session):
        payment = Payment(order_ref="LIVE-1", provider="adyen", mode="live", amount=12000, currency="EUR",
                          status="paid", psp_reference="ADY123", captured_amount=12000)
        session.add(payment)
        session.flush()
        record_movement(session, kind="capture", amount=12000, currency="EUR", provider="adyen", mode="live",
                        occurred_at=datetime(2026, 6, 30, 21, 0), payment_id=payment.id, psp_reference="ADY123")
        record_movement(session, kind="capture", amount=500, currency="EUR", provider="adyen", mode="test",
                        occurred_at=datetime(2026, 6, 30, 21, 0), psp_reference="TEST1")
        session.commit()

    panel.query(live_sale)
    accountant = panel.admin("accountant")
    page = accountant.get("/accounting")
    assert "Download FEC" in page.text and 'value="512000"' in page.text
    answer = accountant.get("/accounting/export.fec?start=2026-01-01&end=2026-12-31")
    assert answer.status_code == 200
    assert 'filename="732829320FEC20261231.txt"' in answer.headers["Content-Disposition"]
    entries = check("732829320FEC20261231.txt", answer.content)
    assert [(line["JournalCode"], line["CompteNum"], line["Debit"], line["Credit"], line["PieceRef"])
            for lines in entries.values() for line in lines] == [
        ("ADY", "511510", "120,00", "0,00", "ADY123"), ("ADY", "411000", "0,00", "120,00", "ADY123")]
    assert panel.admin("viewer").get("/accounting/export.fec?start=2026-01-01&end=2026-12-31").status_code == 403
    assert panel.admin("manager").get("/accounting/export.fec?start=2026-01-01&end=2026-12-31").status_code == 403
    assert "accounting.export" in accountant.get("/audit").text


def test_a_fec_without_a_siren_is_a_400_that_says_so(panel):
    answer = panel.admin("owner").get("/accounting/export.fec?start=2026-01-01&end=2026-12-31")
    assert answer.status_code == 400 and "PSP_SIREN" in answer.text


def test_the_bank_account_is_an_accounting_setting(panel):
    accountant = panel.admin("accountant")
    answer = accountant.post("/accounting/payplug", {"journal_code": "PPG", "clearing_account": "511530",
                                                     "fee_account": "627800", "customer_account": "411000",
                                                     "bank_account": "512100"})
    assert answer.status_code == 303
    assert 'value="512100"' in accountant.get("/accounting").text

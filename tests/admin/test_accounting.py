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
    answer = accountant.get(f"/accounting/export.csv?start={today}&end={today}")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text), delimiter=";"))
    assert [(r["CompteNum"], r["Debit"], r["Credit"]) for r in rows] == [
        ("511530", "39.90", ""), ("411000", "", "39.90"), ("411000", "9.90", ""), ("511530", "", "9.90"),
    ]
    assert {r["JournalCode"] for r in rows} == {"PPG"} and {r["PieceRef"] for r in rows} == {payment["psp_reference"]}
    assert panel.admin("viewer").get("/accounting/export.csv").status_code == 403
    assert "accounting.export" in accountant.get("/audit").text

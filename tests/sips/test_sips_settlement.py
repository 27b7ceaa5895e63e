"""Worldline Sips: the acquirer's reconciliation report of a remittance, imported from its file,
reconciles with the journal; a line of another amount is flagged."""

from __future__ import annotations

from tests.settlements.support import assert_reconciled, import_file, movements, problems, replace_once

from .conftest import only_payment, sips_settings
from .test_sips_office import merchant, paid_with_sips


def test_the_remittance_report_reconciles_to_zero_differences(make_shop, sim, tmp_path):
    shop = make_shop(psp_providers=sips_settings(sim))
    ref, payment = paid_with_sips(shop, sim, sku="PEN-04")
    assert sim.end_of_day() == 1  # remitted to the bank: later refunds are refunds, not cancellations
    merchant(shop, "refund", payment["token"], 1000)
    merchant(shop, "refund", payment["token"], 990)
    assert only_payment(shop, ref)["refunded_amount"] == 1990
    report = sim.reconciliation_report()

    code, output = import_file(shop, "sips", report, tmp_path, "JRB.csv")
    assert code == 0 and "4 new line(s) (3 matched, 1 booked, 0 difference, 0 unmatched)" in output, output
    assert_reconciled(shop)
    assert [m["amount"] for m in movements(shop, "fee")] == [sim.fee_of(8500)]
    assert [m["amount"] for m in movements(shop, "payout")] == [8500 - sim.fee_of(8500) - 1990]
    code, output = import_file(shop, "sips", report, tmp_path, "JRB.csv")
    assert code == 0 and "imported already" in output


def test_a_remitted_amount_other_than_the_payments_is_flagged(make_shop, sim, tmp_path):
    shop = make_shop(psp_providers=sips_settings(sim))
    ref, payment = paid_with_sips(shop, sim, sku="PEN-04")
    sim.end_of_day()
    report = replace_once(sim.reconciliation_report(), ";DEBIT;1;8500;", ";DEBIT;1;8400;")
    code, output = import_file(shop, "sips", report, tmp_path)
    assert code == 1 and "1 difference" in output, output
    (line,) = problems(shop)
    assert (line["kind"], line["gross"], line["payment_id"]) == ("capture", 8400, payment["id"])
    assert only_payment(shop, ref)["flag"].startswith("settlement report line")

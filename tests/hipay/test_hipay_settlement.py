"""HiPay Enterprise: a settlement file (one transfer to the bank) imported from its file reconciles
with the journal; a line of another amount is flagged."""

from __future__ import annotations

from tests.settlements.support import assert_reconciled, import_file, movements, problems, replace_once

from .conftest import all_delivered, hipay_settings, only_payment
from .test_hipay_maintenance import merchant, paid_with_hipay


def test_the_settlement_file_reconciles_to_zero_differences(make_shop, sim, tmp_path):
    shop = make_shop(psp_providers=hipay_settings(sim))
    ref, payment = paid_with_hipay(shop, sim, sku="PEN-04")
    merchant(shop, "refund", payment["token"], 1000)
    assert all_delivered(sim)
    merchant(shop, "refund", payment["token"], 990)
    assert all_delivered(sim)
    assert only_payment(shop, ref)["refunded_amount"] == 1990
    settlement_id, data = sim.settle()

    code, output = import_file(shop, "hipay", data, tmp_path, f"settlement-{settlement_id}.csv")
    assert code == 0 and "4 new line(s) (3 matched, 1 booked, 0 difference, 0 unmatched)" in output, output
    assert_reconciled(shop)
    assert [m["amount"] for m in movements(shop, "fee")] == [sim.fee_of(8500)]
    assert [m["amount"] for m in movements(shop, "payout")] == [8500 - sim.fee_of(8500) - 1990]
    code, output = import_file(shop, "hipay", data, tmp_path, f"settlement-{settlement_id}.csv")
    assert code == 0 and "imported already" in output


def test_a_settled_amount_other_than_the_payments_is_flagged(make_shop, sim, tmp_path):
    shop = make_shop(psp_providers=hipay_settings(sim))
    ref, payment = paid_with_hipay(shop, sim, sku="PEN-04")
    _, data = sim.settle()
    data = replace_once(data, ";85.00;EUR;", ";58.00;EUR;")
    code, output = import_file(shop, "hipay", data, tmp_path)
    assert code == 1 and "1 difference" in output, output
    (line,) = problems(shop)
    assert (line["kind"], line["gross"], line["payment_id"]) == ("capture", 5800, payment["id"])
    assert only_payment(shop, ref)["flag"].startswith("settlement report line")

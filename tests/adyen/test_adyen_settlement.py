"""Adyen's Settlement details report: announced by REPORT_AVAILABLE, downloaded by the report user,
reconciled with the journal; a report that says another amount than the shop recorded is flagged."""

from __future__ import annotations

from flask_psp.simulator.adyen import DEFAULT_REPORT_PASSWORD, DEFAULT_REPORT_USER
from tests.adyen.conftest import pay, start
from tests.adyen.test_adyen_flow import psp_refund
from tests.settlements.support import assert_reconciled, import_file, lines, movements, problems, replace_once, run_cli

REPORT_USER = {"report_username": DEFAULT_REPORT_USER, "report_password": DEFAULT_REPORT_PASSWORD}


def paid_and_refunded_twice(shop, sim):
    buyer = shop.buyer()
    ref, page_url = start(buyer, sku="MAP-03")
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    psp_refund(shop, ref, 1000)
    assert sim.notifier.wait_idle(timeout=10)
    psp_refund(shop, ref, 990)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == 1990
    return ref, payment


def test_the_announced_report_is_downloaded_by_the_job_and_reconciles_to_zero_differences(adyen_shop, sim):
    shop = adyen_shop(**REPORT_USER)
    ref, payment = paid_and_refunded_twice(shop, sim)
    sim.publish_settlement_report(fee_line=120)
    assert sim.notifier.wait_idle(timeout=10)

    code, output = run_cli(shop, "run-jobs", "--job", "settlements")
    assert code == 0 and "settlements: 1 claimed, 1 done, 0 left for later" in output, output
    found = assert_reconciled(shop)
    assert sorted((line["kind"], line["status"]) for line in found) == [
        ("capture", "matched"), ("fee", "booked"), ("payout", "booked"), ("refund", "matched"), ("refund", "matched")]
    commission = sim.fee_of(3990)
    fees = movements(shop, "fee")
    assert sorted(m["amount"] for m in fees) == sorted([commission, 120])
    (payout,) = movements(shop, "payout")
    assert payout["amount"] == 3990 - commission - 1990 - 120 and payout["payment_id"] is None
    assert all(m["settlement_line_id"] for m in fees + [payout])
    assert shop.payments(ref)[0]["flag"] is None

    # the next runs find nothing new; the same report given by hand changes nothing either
    code, output = run_cli(shop, "run-jobs", "--job", "settlements")
    assert "settlements: 0 claimed" in output, output
    (name, data), = sim.reports.items()
    assert sim.requests is not None and name.startswith("settlement_detail_report_batch_")


def test_a_report_line_of_another_amount_than_the_shop_recorded_is_flagged(adyen_shop, sim, tmp_path):
    shop = adyen_shop(**REPORT_USER)
    ref = start_and_pay(shop, sim)
    name, data = sim.close_settlement_batch()
    net = 3990 - sim.fee_of(3990)
    tampered = replace_once(data, ",39.90,", ",49.90,")
    code, output = import_file(shop, "adyen", tampered, tmp_path)
    assert code == 1 and "1 difference" in output and "Settlements page" in output, output
    (difference,) = problems(shop)
    assert difference["kind"] == "capture" and difference["status"] == "difference" and difference["gross"] == 4990
    assert "the shop recorded 3990 EUR" in difference["detail"]
    (payment,) = shop.payments(ref)
    assert payment["flag"].startswith("settlement report line") and difference["payment_id"] == payment["id"]
    assert [line["net"] for line in lines(shop) if line["kind"] == "capture"] == [net]

    # importing the same file again: one import, nothing new
    code, output = import_file(shop, "adyen", tampered, tmp_path)
    assert code == 0 and "imported already" in output
    assert len(lines(shop)) == 2


def start_and_pay(shop, sim):
    buyer = shop.buyer()
    ref, page_url = start(buyer, sku="MAP-03")
    pay(buyer, page_url)
    assert sim.notifier.wait_idle(timeout=10)
    return ref


def test_the_report_credentials_go_to_adyen_s_report_hosts_only(adyen_shop, sim):
    """A REPORT_AVAILABLE item whose URL names another host (a genuine item, but a URL the report
    user's password must not be sent to) is not downloaded."""
    shop = adyen_shop(**REPORT_USER)
    start_and_pay(shop, sim)
    name, _ = sim.close_settlement_batch()
    item = sim.item("REPORT_AVAILABLE", name, value=0, reason=f"https://evil.example/reports/download/x/{name}")
    sim.send_items([item])
    assert sim.notifier.wait_idle(timeout=10)
    code, output = run_cli(shop, "run-jobs", "--job", "settlements")
    assert "settlements: 1 claimed, 0 done, 1 left for later" in output, output
    assert lines(shop) == []
    downloads = [r for r in sim.requests if r["path"].startswith("/reports/")]
    assert downloads == []

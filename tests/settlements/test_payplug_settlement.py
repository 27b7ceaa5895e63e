"""PayPlug's accounting report fetched by the ``settlements`` job, reconciled with the journal;
what an accountant then sees on the admin panel's Settlements page: lines to check, payments paid
but in no report, filters, the CSV, and who may see them."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from tests.admin.conftest import PASSWORD, Admin
from tests.settlements.support import (
    assert_reconciled,
    import_file,
    lines,
    movements,
    problems,
    refund,
    run_cli,
)
from tests.test_payplug_flow import sim_id, start_payment

YESTERDAY_NOON = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)


def paid(shop, sim, sku="MAP-03"):
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer, sku=sku)
    assert sim.pay(sim_id(payment_url)) == "paid"
    assert sim.notifier.wait_idle(timeout=10)
    assert shop.payments(ref)[0]["status"] == "paid"
    return ref


def accountant(shop, role="accountant"):
    from example_shop import psp

    email = f"{role}@example.com"
    with shop.app.app_context():
        from flask_psp.models import AdminUser

        if not shop.app.extensions["psp"].db.session.scalar(sa.select(AdminUser).where(AdminUser.email == email)):
            psp.create_user(email, PASSWORD, role=role)
    admin = Admin(shop, email)
    assert admin.login().status_code == 303
    return admin


def test_the_job_fetches_yesterdays_accounting_report_once_and_it_reconciles(make_shop, sim):
    sim.clock = lambda: int(YESTERDAY_NOON.timestamp())  # the day's payments, refunds and payout were yesterday
    shop = make_shop(PSP_SETTLEMENT_PROVIDERS=("payplug",))
    ref = paid(shop, sim)
    refund(shop, ref, 1000)
    refund(shop, ref, 990)
    assert sim.notifier.wait_idle(timeout=10)
    payout = sim.payout()

    code, output = run_cli(shop, "run-jobs", "--job", "settlements")
    assert code == 0 and "settlements: 1 claimed, 1 done, 0 left for later" in output, output
    found = assert_reconciled(shop)
    assert sorted((line["kind"], line["status"]) for line in found) == [
        ("capture", "matched"), ("payout", "booked"), ("refund", "matched"), ("refund", "matched")]
    assert [m["amount"] for m in movements(shop, "fee")] == [sim.fee_of(3990)]
    assert [m["amount"] for m in movements(shop, "payout")] == [payout["amount"]] == [3990 - sim.fee_of(3990) - 1990]
    reports = [r for r in sim.requests if r["path"] == "/v1/accounting_reports"]
    assert len(reports) == 1 and reports[0]["body"]["start_date"] == YESTERDAY_NOON.date().isoformat()

    code, output = run_cli(shop, "run-jobs", "--job", "settlements")
    assert "settlements: 0 claimed" in output, output  # yesterday is imported: PayPlug is not asked again
    assert len([r for r in sim.requests if r["path"] == "/v1/accounting_reports"]) == 1


def report_of_today(shop, sim) -> bytes:
    from example_shop import psp

    with shop.app.app_context():
        client = psp.service().provider("payplug", "test")
        day = datetime.now(timezone.utc).date().isoformat()
        made = client.create_accounting_report(day, day)
        return client.download_accounting_report(made["temporary_url"])


def test_the_settlements_page_lists_what_to_check_and_the_csv_says_the_same(make_shop, sim, tmp_path):
    shop = make_shop()
    settled, tampered = paid(shop, sim), paid(shop, sim, sku="MUG-01")
    report = report_of_today(shop, sim)
    (tampered_payment,) = shop.payments(tampered)
    # the line of one payment says one euro more than the shop recorded, and a line names a payment
    # the shop never made
    rows = list(csv.reader(io.StringIO(report.decode())))
    header = rows[0]
    (mug,) = [row for row in rows if row[header.index("Payment ID")] == tampered_payment["psp_reference"]]
    stranger = list(mug)
    stranger[header.index("Payment ID")] = "pay_NotOneOfOurs000"
    mug[header.index("Amount")] = "15.50"
    mug[header.index("Net")] = str(1550 - sim.fee_of(1450))[:-2] + "." + str(1550 - sim.fee_of(1450))[-2:]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows + [stranger])
    report = out.getvalue().encode()
    code, output = import_file(shop, "payplug", report, tmp_path)
    assert code == 1 and "1 matched, 0 booked, 1 difference, 1 unmatched" in output, output
    assert {line["status"] for line in lines(shop) if line["kind"] == "capture"} == {"matched", "difference", "unmatched"}
    never = paid(shop, sim, sku="PEN-04")
    with shop.app.app_context():
        from flask_psp.models import Payment

        db = shop.app.extensions["psp"].db
        (payment,) = shop.payments(never)
        db.session.execute(sa.update(Payment).where(Payment.id == payment["id"]).values(
            paid_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=8)))
        db.session.commit()

    admin = accountant(shop)
    page = admin.get("/settlements")
    assert page.status_code == 200
    assert page.text.count('data-status="difference"') == 1 and page.text.count('data-status="unmatched"') == 1
    assert 'data-status="matched"' not in page.text  # by default: what needs the accountant's eyes
    assert "pay_NotOneOfOurs000" in page.text and "15.50" in page.text
    assert f'data-payment="{shop.payments(never)[0]["id"]}"' in page.text  # paid 8 days ago, in no report
    assert f'data-payment="{shop.payments(settled)[0]["id"]}"' not in page.text
    assert admin.get("/settlements?status=matched").text.count('data-status="matched"') == 1
    assert 'data-status=' not in admin.get("/settlements?provider=adyen").text.split('id="unsettled"')[0].split("<tbody>")[1]

    exported = admin.get("/settlements/export.csv")
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text), delimiter=";"))
    assert sorted(row["status"] for row in rows) == ["difference", "not_settled", "unmatched"]
    (difference,) = [row for row in rows if row["status"] == "difference"]
    assert difference["gross"] == "15.50" and difference["currency"] == "EUR"

    # who may look: the accountant and the owner (the export permission); not a manager or a viewer
    assert accountant(shop, "owner").get("/settlements").status_code == 200
    for role in ("manager", "viewer"):
        other = accountant(shop, role)
        assert other.get("/settlements").status_code == 403
        assert other.get("/settlements/export.csv").status_code == 403
        assert "/psp/admin/settlements" not in other.get("/").text


def test_a_file_that_is_not_a_report_is_refused_and_nothing_is_stored(make_shop, sim, tmp_path):
    shop = make_shop()
    code, output = import_file(shop, "payplug", b"Date,Operation\n2026-01-01,payment\n", tmp_path)
    assert code == 1 and "not a payplug settlement report" in output and "missing column" in output, output
    code, output = import_file(shop, "sips", "\u00e9t\u00e9".encode("latin-1"), tmp_path)
    assert code == 1 and "sips is not configured: say which mode" in output, output
    code, output = import_file(shop, "sips", "\u00e9t\u00e9".encode("latin-1"), tmp_path, "r.csv", "--mode", "live")
    assert code == 1 and "not UTF-8" in output, output
    assert lines(shop) == [] and movements(shop, "fee", "payout") == []
    assert problems(shop) == []


def test_providers_without_a_report_api_say_to_import_the_file(make_shop, sim, tmp_path):
    from tests.sips.conftest import sips_settings

    shop = make_shop(psp_providers=sips_settings(sim))
    code, output = run_cli(shop, "settlements", "import", "sips", "--fetch")
    assert code == 1 and "Worldline Sips has no API for its settlement report: import the file (--file)" in output, output
    code, output = run_cli(shop, "settlements", "import", "sips")
    assert code == 2 and "give either --file FILE or --fetch" in output, output


def test_a_live_reports_fee_and_payout_are_entries_of_the_days_fec(make_shop, sim, tmp_path):
    """What the import books is accounting like the rest: the day's FEC holds the capture, the
    provider's fee and the payout to the bank, balanced, and passes the checker."""
    from tests.accounting.fec_checker import check
    from tests.conftest import LIVE_KEY, payplug_settings

    siren = "732829320"
    shop = make_shop(psp_providers=payplug_settings(sim, mode="live", live={"secret_key": LIVE_KEY, "endpoint": sim.url}),
                     PSP_SIREN=siren)
    paid(shop, sim)
    payout = sim.payout(is_live=True)
    from example_shop import psp

    today = datetime.now(timezone.utc).date()
    with shop.app.app_context():
        client = psp.service().provider("payplug", "live")
        report = client.download_accounting_report(
            client.create_accounting_report(today.isoformat(), today.isoformat())["temporary_url"])
    code, output = import_file(shop, "payplug", report, tmp_path)
    assert code == 0 and "1 matched, 1 booked" in output, output
    assert {m["mode"] for m in movements(shop)} == {"live"}

    result = shop.app.test_cli_runner().invoke(args=["psp", "accounting", "export", "--start", today.isoformat(),
                                                     "--end", today.isoformat(), "--format", "fec", "--output", "-"])
    assert result.exit_code == 0, result.output
    entries = check(f"{siren}FEC{today:%Y%m%d}.txt", result.stdout_bytes)
    amounts = sorted(line["Debit"] for lines in entries.values() for line in lines if line["Debit"] not in ("", "0,00"))
    fee = sim.fee_of(3990)
    assert amounts == sorted(["39,90", f"{fee // 100},{fee % 100:02d}",
                              f"{payout['amount'] // 100},{payout['amount'] % 100:02d}"])


def test_two_imports_of_one_report_at_once_book_it_once(make_shop, sim):
    """Two workers (cron on two machines) import the same report at the same moment: one import,
    each line once, one fee and one payout movement."""
    import threading

    from flask_psp.settlements.imports import import_file as import_data

    shop = make_shop()
    paid(shop, sim)
    sim.payout()
    report = report_of_today(shop, sim)
    start, results, errors = threading.Barrier(2), [], []

    def worker():
        from example_shop import psp

        with shop.app.app_context():
            start.wait(timeout=10)
            try:
                results.append(import_data(psp.service(), "payplug", report, name="report.csv"))
            except Exception as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads) and errors == []
    assert sorted(result.already_imported for result in results) == [False, True]
    assert_reconciled(shop)
    assert len(lines(shop)) == 2 and len(movements(shop, "fee")) == 1 and len(movements(shop, "payout")) == 1

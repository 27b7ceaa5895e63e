"""Reconciliation and expiry with HiPay's transaction information service
(``GET /v1/transaction?orderid=<token>``): a HiPay payment whose notifications were all lost is
found paid, or failed, by the scheduled jobs; HiPay unreachable, or refusing the credentials, leaves
it for the next run; the expire job's last check asks HiPay before expiring anything."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests

from flask_psp.simulator.hipay import HiPaySimulator
from tests.hipay.conftest import CARD_OK, CARD_REFUSED, USER, hipay_settings, pay_on_hipay
from tests.jobs.support import later


@pytest.fixture
def hipay_sim():
    simulator = HiPaySimulator(retry_delays=(30, 60, 120))
    simulator.serve()
    yield simulator
    notifier = simulator.notifier
    notifier.paused = False
    assert notifier.wait_until(lambda: all(d.done or d.attempts for d in notifier.deliveries), timeout=10)
    simulator.server.stop()  # the one serving now: a test may have stopped it and served it again
    notifier.close()


@pytest.fixture
def hipay_shop(make_jobs_shop, hipay_sim):
    return make_jobs_shop(hipay_settings(hipay_sim))


def paid_at_hipay(shop, sim, ref, card=CARD_OK) -> dict:
    """The buyer pays on HiPay's page and closes the tab before HiPay's redirect reaches the shop."""
    payment, page = shop.start_with("hipay", ref)
    pay_on_hipay(SimpleNamespace(http=requests.Session()), page, card=card)
    return payment


def lookups(sim, payment) -> list[dict]:
    return [c for c in sim.requests if c["method"] == "GET" and c["path"] == "/v1/transaction"
            and c["args"] == {"orderid": payment["token"]}]


def test_a_sale_whose_notifications_were_all_lost_is_found_paid_by_run_jobs(hipay_shop, hipay_sim):
    hipay_sim.notifier.paused = True  # none of HiPay's notifications reaches the shop
    payment = paid_at_hipay(hipay_shop, hipay_sim, "H-1")
    assert hipay_shop.payment(payment["token"])["status"] == "pending"
    hipay_shop.update_payment(payment["token"], created_at=later(minutes=-5))

    run = hipay_shop.run_jobs_process("--job", "reconcile", PSP_RECONCILE_AFTER=60)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "reconcile: 1 claimed, 1 done, 0 left for later" in out
    fixed = hipay_shop.payment(payment["token"])
    assert (fixed["status"], fixed["captured_amount"], fixed["flag"]) == ("paid", 2500, None)
    assert fixed["psp_reference"] == hipay_sim.order_by_orderid(payment["token"])["reference"]
    assert hipay_shop.marked("H-1") == 1 and hipay_shop.heard("H-1") == 1
    (lookup,) = lookups(hipay_sim, payment)
    assert lookup["status"] == 200

    # the notifications, delivered at last, bring nothing new: 118 is the very news the lookup gave
    hipay_sim.notifier.paused = False
    assert hipay_sim.notifier.wait_until(lambda: all(d.delivered for d in hipay_sim.notifier.deliveries), timeout=10)
    rows = hipay_shop.events(payment_id=fixed["id"])
    (fetched,) = [r for r in rows if r["source"] == "fetch"]
    assert fetched["outcome"] == "applied"
    captured = [r for r in rows if r["verified_message"]["event_type"] == "notification 118"]
    assert [r["outcome"] for r in captured] == ["duplicate", "duplicate"]
    assert {r["verified_message"]["dedupe_key"] for r in captured} == {fetched["verified_message"]["dedupe_key"]}
    after = hipay_shop.payment(payment["token"])
    assert (after["status"], after["flag"]) == ("paid", None)
    assert hipay_shop.marked("H-1") == 1 and hipay_shop.heard("H-1") == 1


def test_a_declined_payment_whose_redirect_and_notifications_were_lost_becomes_failed(hipay_shop, hipay_sim):
    hipay_sim.notifier.paused = True
    payment = paid_at_hipay(hipay_shop, hipay_sim, "H-2", card=CARD_REFUSED)
    assert hipay_shop.payment(payment["token"])["status"] == "pending"
    report = hipay_shop.run("reconcile", now=later(minutes=31))["reconcile"]
    assert (report.claimed, report.done, report.left) == (1, 1, 0)
    failed = hipay_shop.payment(payment["token"])
    assert failed["status"] == "failed" and failed["flag"] is None
    assert hipay_shop.marked("H-2") == 0 and hipay_shop.heard("H-2", "payment_failed") == 1
    # not stuck any more: the next runs leave it alone
    assert hipay_shop.run("reconcile", now=later(hours=3))["reconcile"].claimed == 0


def test_an_authorization_is_seen_and_checking_it_again_changes_nothing(make_jobs_shop, hipay_sim):
    shop = make_jobs_shop(hipay_settings(hipay_sim, capture="manual"))
    hipay_sim.notifier.paused = True
    payment = paid_at_hipay(shop, hipay_sim, "H-3")
    now = later(minutes=31)
    report = shop.run("reconcile", now=now)["reconcile"]
    assert (report.claimed, report.done) == (1, 1)
    seen = shop.payment(payment["token"])
    assert (seen["status"], seen["authorized_amount"], seen["captured_amount"]) == ("authorized", 2500, 0)
    assert shop.marked("H-3") == 1  # the money is reserved: the order is paid

    # still authorized an hour later: HiPay is asked again, and its same answer is a duplicate
    report = shop.run("reconcile", now=now + timedelta(minutes=61))["reconcile"]
    assert (report.claimed, report.done) == (1, 0)
    assert len(lookups(hipay_sim, payment)) == 2
    first, second = [r for r in shop.events(payment_id=seen["id"]) if r["source"] == "fetch"]
    assert (first["outcome"], second["outcome"]) == ("applied", "duplicate")
    assert shop.payment(payment["token"])["status"] == "authorized"
    assert shop.marked("H-3") == 1 and shop.heard("H-3") == 1


def test_hipay_unreachable_leaves_the_payment_for_the_next_run(hipay_shop, hipay_sim):
    hipay_sim.notifier.paused = True
    payment = paid_at_hipay(hipay_shop, hipay_sim, "H-4")
    port = hipay_sim.server.port
    hipay_sim.server.stop()  # HiPay is down
    report = hipay_shop.run("reconcile", now=later(minutes=31))["reconcile"]
    assert (report.claimed, report.done, report.left) == (1, 0, 1)
    still = hipay_shop.payment(payment["token"])
    assert still["status"] == "pending" and still["held_until"] is None
    assert hipay_shop.events(source="fetch") == []
    hipay_sim.serve(port=port)  # back up
    report = hipay_shop.run("reconcile", now=later(minutes=32))["reconcile"]
    assert (report.claimed, report.done) == (1, 1)
    assert hipay_shop.payment(payment["token"])["status"] == "paid" and hipay_shop.marked("H-4") == 1


def test_credentials_hipay_refuses_leave_the_payment_for_the_next_run(hipay_shop, hipay_sim):
    hipay_sim.notifier.paused = True
    payment = paid_at_hipay(hipay_shop, hipay_sim, "H-5")
    password = hipay_sim.accounts[USER]["password"]
    hipay_sim.accounts[USER] = {**hipay_sim.accounts[USER], "password": "revoked in the HiPay Console"}
    report = hipay_shop.run("reconcile", now=later(minutes=31))["reconcile"]
    assert (report.claimed, report.left) == (1, 1)
    assert [c["status"] for c in lookups(hipay_sim, payment)] == [401]
    # nor does the expire job take HiPay's refusal for "no such payment"
    report = hipay_shop.run("expire", now=later(hours=25))["expire"]
    assert (report.claimed, report.left) == (1, 1)
    assert hipay_shop.payment(payment["token"])["status"] == "pending"
    assert hipay_shop.events(source="fetch") == [] and hipay_shop.events(source="job") == []

    hipay_sim.accounts[USER] = {**hipay_sim.accounts[USER], "password": password}
    assert hipay_shop.run("reconcile", now=later(minutes=32))["reconcile"].done == 1
    assert hipay_shop.payment(payment["token"])["status"] == "paid"


def test_the_expire_jobs_last_check_finds_a_payment_hipay_took(hipay_shop, hipay_sim):
    hipay_sim.notifier.paused = True
    payment = paid_at_hipay(hipay_shop, hipay_sim, "H-6")
    report = hipay_shop.run("expire", now=later(hours=25))["expire"]
    assert (report.claimed, report.done) == (1, 1)
    assert hipay_shop.payment(payment["token"])["status"] == "paid"
    assert hipay_shop.marked("H-6") == 1 and hipay_shop.events(source="job") == []


def test_an_abandoned_payment_expires_once_hipay_says_it_holds_no_transaction(hipay_shop, hipay_sim):
    payment, _ = hipay_shop.start_with("hipay", "H-7")  # the buyer closed HiPay's page unpaid
    report = hipay_shop.run("expire", now=later(hours=25))["expire"]
    assert (report.claimed, report.done, report.left) == (1, 1, 0)
    expired = hipay_shop.payment(payment["token"])
    assert expired["status"] == "expired" and hipay_shop.heard("H-7", "payment_failed") == 1
    (lookup,) = lookups(hipay_sim, payment)  # HiPay was asked first
    assert lookup["status"] == 200
    (job_row,) = hipay_shop.events(source="job")
    assert job_row["outcome"] == "applied"


def test_nothing_expires_while_hipay_cannot_be_reached(hipay_shop, hipay_sim):
    payment, _ = hipay_shop.start_with("hipay", "H-8")
    hipay_sim.server.stop()
    report = hipay_shop.run("expire", now=later(hours=25))["expire"]
    assert (report.claimed, report.left) == (1, 1)
    assert hipay_shop.payment(payment["token"])["status"] == "pending"

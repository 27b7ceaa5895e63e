"""Expiry of abandoned payments: created or pending for longer than ``PSP_EXPIRE_AFTER``, asked one
last time when the PSP can be asked, then expired through the ledger; a later proof of payment
still wins."""

from __future__ import annotations

from datetime import timedelta

from flask_psp.models import Payment, utcnow
from tests.jobs.support import db, later, run_at_once, shared_out


def delivered(sim):
    return sim.notifier.wait_until(lambda: all(d.delivered for d in sim.notifier.deliveries), timeout=10)


def test_an_abandoned_payment_expires_after_a_last_check(jobs_shop, payplug_sim):
    payment = jobs_shop.start("E-1")  # the buyer closed the tab on PayPlug's page
    assert jobs_shop.run("expire", now=later(hours=23))["expire"].claimed == 0
    report = jobs_shop.run("expire", now=later(hours=25))["expire"]
    assert (report.claimed, report.done, report.left) == (1, 1, 0)
    expired = jobs_shop.payment(payment["token"])
    assert expired["status"] == "expired" and expired["held_until"] is None
    assert jobs_shop.marked("E-1") == 0 and jobs_shop.heard("E-1") == 0
    assert jobs_shop.heard("E-1", "payment_failed") == 1
    gets = [r for r in payplug_sim.requests if r["method"] == "GET" and r["path"].endswith(payment["psp_reference"])]
    assert len(gets) == 1  # PayPlug was asked first
    (job_row,) = jobs_shop.events(source="job")
    assert job_row["outcome"] == "applied" and job_row["payment_id"] == expired["id"]
    assert jobs_shop.run("expire", now=later(hours=30))["expire"].claimed == 0


def test_a_payment_the_psp_says_was_paid_is_not_expired(jobs_shop, payplug_sim):
    payplug_sim.notifier.paused = True
    payment = jobs_shop.start("E-2")
    jobs_shop.paid_at_psp(payment)  # paid, but the shop never heard
    report = jobs_shop.run("expire", now=later(hours=25))["expire"]
    assert (report.claimed, report.done) == (1, 1)
    assert jobs_shop.payment(payment["token"])["status"] == "paid"
    assert jobs_shop.marked("E-2") == 1 and jobs_shop.heard("E-2") == 1
    assert jobs_shop.events(source="job") == []


def test_nothing_expires_while_the_psp_cannot_be_reached(jobs_shop, payplug_sim):
    payment = jobs_shop.start("E-3")
    payplug_sim.server.stop()
    report = jobs_shop.run("expire", now=later(hours=25))["expire"]
    assert (report.claimed, report.left) == (1, 1)
    assert jobs_shop.payment(payment["token"])["status"] == "pending"


def test_a_payment_at_a_psp_that_cannot_be_asked_expires_on_age_alone(jobs_shop):
    with jobs_shop.ctx():
        db.session.add(Payment(order_ref="E-4", provider="sips", mode="test", capture="auto", amount=1000,
                               currency="EUR", status="created", token="sips-abandoned-payment-token-0001",
                               created_at=utcnow() - timedelta(hours=30)))
        db.session.commit()
    report = jobs_shop.run("expire", now=later(minutes=1))["expire"]
    assert (report.claimed, report.done) == (1, 1)
    assert jobs_shop.payment("sips-abandoned-payment-token-0001")["status"] == "expired"


def test_proof_of_payment_after_expiry_still_wins(jobs_shop, payplug_sim):
    payplug_sim.notifier.paused = True
    payment = jobs_shop.start("E-5")
    jobs_shop.run("expire", now=later(hours=25))
    assert jobs_shop.payment(payment["token"])["status"] == "expired"
    jobs_shop.paid_at_psp(payment)  # the buyer came back to the open page after all
    payplug_sim.notifier.paused = False
    assert delivered(payplug_sim)
    late = jobs_shop.payment(payment["token"])
    assert late["status"] == "paid" and "after it was expired" in late["flag"]
    assert jobs_shop.marked("E-5") == 1 and jobs_shop.heard("E-5") == 1


def test_two_runs_at_once_expire_each_payment_once(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(PSP_JOBS_BATCH=3)
    payments = [shop.start(f"EC-{i}") for i in range(12)]
    now = later(hours=25)
    reports = run_at_once(2, lambda i: shop.run("expire", now=now)["expire"])
    assert sum(r.claimed for r in reports) == 12 and sum(r.done for r in reports) == 12
    assert shared_out([r.claimed for r in reports])
    assert all(shop.payment(p["token"])["status"] == "expired" for p in payments)
    assert len(shop.events(source="job")) == 12
    assert shop.heard(signal="payment_failed") == 12


def test_two_processes_at_once_expire_each_payment_once(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(PSP_JOBS_BATCH=2)
    payments = [shop.start(f"EP-{i}") for i in range(16)]
    for payment in payments:
        shop.update_payment(payment["token"], created_at=later(hours=-25))
    runs = shop.run_jobs_processes(2, "--job", "expire")
    for run in runs:
        assert run.returncode == 0, run.stderr
    claimed = [int(run.stdout.split("expire: ")[1].split(" claimed")[0]) for run in runs]
    assert sum(claimed) == 16 and shared_out(claimed)
    assert all(shop.payment(p["token"])["status"] == "expired" for p in payments)
    assert len(shop.events(source="job")) == 16
    assert shop.heard(signal="payment_failed") == 16

"""Reconciliation: payments stuck pending or authorized are checked with the PSP (a notification was
lost) and corrected through the ledger; a PSP that cannot be reached leaves them for next time."""

from __future__ import annotations

from datetime import timedelta

import requests
import sqlalchemy as sa

from flask_psp.models import Payment, utcnow
from tests.jobs.support import TEST_KEY, later, payplug_providers, run_at_once, shared_out


def test_a_payment_whose_notification_was_lost_is_corrected(jobs_shop, payplug_sim):
    payplug_sim.notifier.paused = True  # PayPlug's notifications never reach the shop
    payment = jobs_shop.start("R-1")
    assert jobs_shop.paid_at_psp(payment) == "paid"
    assert jobs_shop.payment(payment["token"])["status"] == "pending"

    # too young to be called stuck
    assert jobs_shop.run("reconcile", now=later(minutes=10))["reconcile"].claimed == 0
    report = jobs_shop.run("reconcile", now=later(minutes=31))["reconcile"]
    assert (report.claimed, report.done, report.left) == (1, 1, 0)
    fixed = jobs_shop.payment(payment["token"])
    assert fixed["status"] == "paid" and fixed["captured_amount"] == 2500
    assert jobs_shop.marked("R-1") == 1 and jobs_shop.heard("R-1") == 1
    (fetched,) = [e for e in jobs_shop.events(payment_id=fixed["id"]) if e["source"] == "fetch"]
    assert fetched["outcome"] == "applied"

    # checked lately: left alone for PSP_RECONCILE_EVERY; and now paid, not stuck at all
    assert jobs_shop.run("reconcile", now=later(hours=3))["reconcile"].claimed == 0
    assert jobs_shop.marked("R-1") == 1


def test_a_payment_still_pending_at_the_psp_is_checked_again_later_not_at_every_run(jobs_shop, payplug_sim):
    payment = jobs_shop.start("R-2")  # the buyer is still on PayPlug's page
    now = later(minutes=31)
    report = jobs_shop.run("reconcile", now=now)["reconcile"]
    assert (report.claimed, report.done) == (1, 0)
    checked = jobs_shop.payment(payment["token"])
    assert checked["held_until"] == now + timedelta(hours=1)
    assert checked["updated_at"] == payment["updated_at"]  # asked, not changed
    assert jobs_shop.run("reconcile", now=now + timedelta(minutes=30))["reconcile"].claimed == 0
    assert jobs_shop.run("reconcile", now=now + timedelta(minutes=61))["reconcile"].claimed == 1
    gets = [r for r in payplug_sim.requests if r["method"] == "GET" and r["path"].endswith(payment["psp_reference"])]
    assert len(gets) == 2


def test_an_authorization_captured_in_the_psps_portal_is_seen(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(payplug_providers(payplug_sim.url, capture="manual"))
    payment = shop.start("R-3")
    shop.paid_at_psp(payment)
    assert payplug_sim.notifier.wait_until(lambda: all(d.delivered for d in payplug_sim.notifier.deliveries), 10)
    assert shop.payment(payment["token"])["status"] == "authorized" and shop.marked("R-3") == 1
    payplug_sim.notifier.paused = True  # …and the capture's notification is lost
    answer = requests.patch(f"{payplug_sim.url}/v1/payments/{payment['psp_reference']}", json={"captured": True},
                            headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=10)
    assert answer.status_code == 200
    assert shop.run("reconcile", now=later(minutes=31))["reconcile"].done == 1
    assert shop.payment(payment["token"])["status"] == "paid"
    assert shop.marked("R-3") == 1 and shop.heard("R-3") == 1


def test_an_unreachable_psp_leaves_payments_for_the_next_run(jobs_shop, payplug_sim):
    payplug_sim.notifier.paused = True
    first, second = jobs_shop.start("R-4"), jobs_shop.start("R-5")
    for payment in (first, second):
        jobs_shop.paid_at_psp(payment)
    port = int(payplug_sim.url.rsplit(":", 1)[1])
    payplug_sim.server.stop()  # PayPlug is down
    report = jobs_shop.run("reconcile", now=later(minutes=31))["reconcile"]
    assert (report.claimed, report.done, report.left) == (2, 0, 2)
    for payment in (first, second):
        still = jobs_shop.payment(payment["token"])
        assert still["status"] == "pending" and still["held_until"] is None
    payplug_sim.serve(port=port)  # back up
    report = jobs_shop.run("reconcile", now=later(minutes=32))["reconcile"]
    assert (report.claimed, report.done) == (2, 2)
    assert all(jobs_shop.payment(p["token"])["status"] == "paid" for p in (first, second))
    assert len([r for r in payplug_sim.requests if r["method"] == "GET"]) == 2


def test_psps_that_cannot_be_asked_are_not_claimed(jobs_shop):
    with jobs_shop.ctx():
        from tests.jobs.support import db

        db.session.add(Payment(order_ref="R-6", provider="adyen", mode="test", capture="auto", amount=1000,
                               currency="EUR", status="pending", created_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
    assert jobs_shop.run("reconcile", now=later(minutes=1))["reconcile"].claimed == 0
    with jobs_shop.ctx():
        held = db.session.scalar(sa.select(Payment.held_until).where(Payment.order_ref == "R-6"))
    assert held is None


def test_two_runs_at_once_correct_each_payment_once(make_jobs_shop, payplug_sim):
    jobs_shop = make_jobs_shop(PSP_JOBS_BATCH=3)
    payplug_sim.notifier.paused = True
    payments = [jobs_shop.start(f"RC-{i}") for i in range(12)]
    for payment in payments:
        jobs_shop.paid_at_psp(payment)
    now = later(minutes=31)
    reports = run_at_once(2, lambda i: jobs_shop.run("reconcile", now=now)["reconcile"])
    assert sum(r.claimed for r in reports) == 12 and sum(r.done for r in reports) == 12
    assert shared_out([r.claimed for r in reports])
    for payment in payments:
        assert jobs_shop.payment(payment["token"])["status"] == "paid"
        assert jobs_shop.marked(payment["order_ref"]) == 1 and jobs_shop.heard(payment["order_ref"]) == 1


def test_two_processes_at_once_correct_each_payment_once(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(PSP_JOBS_BATCH=2, PSP_RECONCILE_AFTER=1)
    payplug_sim.notifier.paused = True
    payments = [shop.start(f"RP-{i}") for i in range(16)]
    for payment in payments:
        shop.paid_at_psp(payment)
    for payment in payments:  # created a while ago
        shop.update_payment(payment["token"], created_at=later(minutes=-5))
    runs = shop.run_jobs_processes(2, "--job", "reconcile")
    for run in runs:
        assert run.returncode == 0, run.stderr
    claimed = [int(run.stdout.split("reconcile: ")[1].split(" claimed")[0]) for run in runs]
    assert sum(claimed) == 16 and shared_out(claimed)
    for payment in payments:
        assert shop.payment(payment["token"])["status"] == "paid"
        assert shop.marked(payment["order_ref"]) == 1 and shop.heard(payment["order_ref"]) == 1

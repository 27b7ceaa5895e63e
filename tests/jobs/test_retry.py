"""Retry with backoff of post-processing that failed: the shop's ``mark_paid`` raised, the inbox row
says ``error`` and keeps the proven news; the retry job applies it again, doubling the wait each
time, and gives up after ``PSP_RETRY_MAX_ATTEMPTS``, flagging the payment for the merchant."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from flask_psp.models import PaymentEvent
from tests.jobs.support import db, later, run_at_once, shared_out


def attempted(sim, count=1):
    return sim.notifier.wait_until(lambda: all(len(d.attempts) >= count for d in sim.notifier.deliveries), timeout=10)


def failed_notification(shop, ref):
    """A payment paid at PayPlug whose notification reached a shop with a broken mark_paid."""
    shop.switch("refuse", True)
    payment = shop.start(ref)
    shop.paid_at_psp(payment)
    assert attempted(shop.sim)
    return payment



def test_failed_post_processing_is_applied_again_by_the_retry_job(jobs_shop, payplug_sim):
    payment = failed_notification(jobs_shop, "T-1")
    assert payplug_sim.notifier.deliveries[0].attempts[0][0] == 500  # inline: PayPlug will retry too
    assert jobs_shop.payment(payment["token"])["status"] == "pending" and jobs_shop.marked("T-1") == 0
    (row,) = jobs_shop.events(outcome="error")
    assert row["attempts"] == 1 and row["verified_message"]["psp_reference"] == payment["psp_reference"]
    assert abs(row["next_attempt_at"] - later(minutes=1)) < timedelta(seconds=30)

    assert jobs_shop.run("retry", now=later(seconds=20))["retry"].claimed == 0  # not due yet
    jobs_shop.switch("refuse", False)  # the shop fixed its warehouse
    report = jobs_shop.run("retry", now=later(minutes=2))["retry"]
    assert (report.claimed, report.done, report.left) == (1, 1, 0)
    assert jobs_shop.payment(payment["token"])["status"] == "paid"
    assert jobs_shop.marked("T-1") == 1 and jobs_shop.heard("T-1") == 1
    (row,) = jobs_shop.events(id=row["id"])
    assert row["outcome"] == "applied" and row["next_attempt_at"] is None
    assert jobs_shop.run("retry", now=later(hours=1))["retry"].claimed == 0


def test_the_psps_own_retry_and_the_retry_job_apply_it_once(jobs_shop, payplug_sim):
    payment = failed_notification(jobs_shop, "T-2")
    jobs_shop.switch("refuse", False)
    payplug_sim.notifier.retry_now()  # PayPlug retries first
    assert payplug_sim.notifier.wait_until(lambda: payplug_sim.notifier.deliveries[0].delivered, timeout=10)
    assert jobs_shop.run("retry", now=later(minutes=2))["retry"].claimed == 1
    assert jobs_shop.marked("T-2") == 1 and jobs_shop.heard("T-2") == 1
    assert jobs_shop.payment(payment["token"])["status"] == "paid"
    outcomes = sorted(e["outcome"] for e in jobs_shop.events(source="notify"))
    assert outcomes == ["applied", "duplicate"]


def test_the_wait_doubles_and_the_job_gives_up_and_flags_the_payment(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(PSP_RETRY_MAX_ATTEMPTS=3, PSP_RETRY_FIRST_DELAY=60)
    payment = failed_notification(shop, "T-3")
    (row,) = shop.events(outcome="error")

    shop.run("retry", now=later(minutes=2))
    (row,) = shop.events(id=row["id"])
    assert row["outcome"] == "error" and row["attempts"] == 2
    assert abs(row["next_attempt_at"] - later(minutes=2)) < timedelta(seconds=30)  # 60 s, then 120 s
    assert shop.run("retry", now=later(minutes=1))["retry"].claimed == 0

    shop.run("retry", now=later(minutes=5))
    (row,) = shop.events(id=row["id"])
    assert row["attempts"] == 3 and row["next_attempt_at"] is None
    assert row["outcome_detail"].startswith("gave up after 3 attempts") and "warehouse is closed" in row["outcome_detail"]
    flagged = shop.payment(payment["token"])
    assert flagged["status"] == "pending" and flagged["flag"].startswith("processing failed 3 times")
    assert row["payment_id"] == flagged["id"]  # each failed attempt shows in the payment's timeline
    assert shop.run("retry", now=later(days=2))["retry"].claimed == 0
    assert shop.marked("T-3") == 0


def past_due(shop):
    with shop.ctx():
        db.session.execute(sa.update(PaymentEvent).where(PaymentEvent.outcome == "error")
                           .values(next_attempt_at=later(minutes=-1)))
        db.session.commit()


def test_two_runs_at_once_apply_each_failed_row_once(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(PSP_JOBS_BATCH=3)
    shop.switch("refuse", True)
    payments = [shop.start(f"TC-{i}") for i in range(12)]
    for payment in payments:
        shop.paid_at_psp(payment)
    assert attempted(payplug_sim)
    assert len(shop.events(outcome="error")) == 12
    shop.switch("refuse", False)
    past_due(shop)
    reports = run_at_once(2, lambda i: shop.run("retry")["retry"])
    assert sum(r.claimed for r in reports) == 12 and sum(r.done for r in reports) == 12
    assert shared_out([r.claimed for r in reports])
    for payment in payments:
        assert shop.payment(payment["token"])["status"] == "paid"
        assert shop.marked(payment["order_ref"]) == 1 and shop.heard(payment["order_ref"]) == 1


def test_two_processes_at_once_apply_each_failed_row_once(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(PSP_JOBS_BATCH=2)
    shop.switch("refuse", True)
    payments = [shop.start(f"TP-{i}") for i in range(16)]
    for payment in payments:
        shop.paid_at_psp(payment)
    assert attempted(payplug_sim)
    shop.switch("refuse", False)
    past_due(shop)
    runs = shop.run_jobs_processes(2, "--job", "retry")
    for run in runs:
        assert run.returncode == 0, run.stderr
    claimed = [int(run.stdout.split("retry: ")[1].split(" claimed")[0]) for run in runs]
    assert sum(claimed) == 16 and shared_out(claimed)
    for payment in payments:
        assert shop.payment(payment["token"])["status"] == "paid"
        assert shop.marked(payment["order_ref"]) == 1 and shop.heard(payment["order_ref"]) == 1


def test_the_buyers_return_and_the_panels_process_again_follow_the_configured_retry_policy(
        make_jobs_shop, payplug_sim):
    """Not only notifications and the jobs: news brought by the buyer's return, and news the
    merchant processes again from the inbox, are retried and given up on as configured."""
    import requests

    from tests.admin.conftest import PASSWORD, Admin
    from tests.jobs.support import psp

    shop = make_jobs_shop(PSP_RETRY_FIRST_DELAY=600, PSP_RETRY_MAX_ATTEMPTS=2)
    shop.switch("refuse", True)
    payment = shop.start("T-9")
    payplug_sim.notifier.paused = True  # the buyer is back before PayPlug's notification
    shop.paid_at_psp(payment)
    back = requests.get(f"{shop.url}/psp/return/{payment['token']}", timeout=10)
    assert back.status_code == 200
    (returned,) = shop.events(source="return")
    assert returned["outcome"] == "error" and returned["attempts"] == 1
    assert abs(returned["next_attempt_at"] - later(minutes=10)) < timedelta(minutes=1)  # PSP_RETRY_FIRST_DELAY

    payplug_sim.notifier.paused = False
    assert attempted(payplug_sim)
    (notified,) = shop.events(source="notify")
    assert notified["outcome"] == "error" and notified["attempts"] == 1
    with shop.ctx():
        psp.create_user("owner@example.com", PASSWORD, role="owner")
    owner = Admin(shop, "owner@example.com")
    assert owner.login().status_code == 303
    again = owner.post(f"/inbox/{notified['id']}/process", allow_redirects=True)
    assert "Processing failed" in again.text
    (notified,) = shop.events(id=notified["id"])
    assert notified["attempts"] == 2 and notified["next_attempt_at"] is None  # PSP_RETRY_MAX_ATTEMPTS reached
    assert notified["outcome_detail"].startswith("gave up after 2 attempts")
    assert shop.payment(payment["token"])["flag"].startswith("processing failed 2 times")
    assert shop.marked("T-9") == 0

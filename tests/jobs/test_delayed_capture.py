"""Delayed capture ("capture after N days"): an authorization at the PSP, the order paid at once, and
the capture job taking the money when it falls due — on every provider, through its simulator."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from flask_psp.models import Payment, ProviderSettings
from flask_psp.providers.base import ProviderConfig
from flask_psp.provider_settings import as_sent_to_psp, capture_policy
from tests.conftest import ON_POSTGRES
from tests.jobs.support import later, payplug_providers, run_at_once, shared_out


def delivered(sim, timeout=10):
    return sim.notifier.wait_until(lambda: all(d.delivered for d in sim.notifier.deliveries), timeout=timeout)


def delayed(sim, days=3):
    return payplug_providers(sim.url, capture="auto", capture_delay_days=days)


def test_capture_after_n_days_is_an_authorization_taken_by_the_job_when_due(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(delayed(payplug_sim, days=3))
    payment = shop.start("D-1")
    assert (payment["capture"], payment["capture_delay_days"]) == ("delayed", 3)
    # PayPlug is asked for a deferred payment: an authorization, no capture yet
    sent = payplug_sim.created_with[payment["psp_reference"]]
    assert sent["authorized_amount"] == 2500 and "amount" not in sent

    assert shop.paid_at_psp(payment) == "authorized"
    assert delivered(payplug_sim)
    payment = shop.payment(payment["token"])
    assert payment["status"] == "authorized" and payment["captured_amount"] == 0
    # the order is paid at the authorization, as under manual capture
    assert shop.marked("D-1") == 1 and shop.heard("D-1") == 1
    due = payment["capture_due_at"]
    assert abs(due - later(days=3)) < timedelta(minutes=1)

    assert shop.run("capture", now=due - timedelta(hours=1))["capture"].claimed == 0
    assert shop.psp_captures() == []

    report = shop.run("capture", now=due + timedelta(minutes=1))["capture"]
    assert (report.claimed, report.done, report.left) == (1, 1, 0)
    assert shop.psp_captures() == [payment["psp_reference"]]
    payment = shop.payment(payment["token"])
    assert payment["status"] == "paid" and payment["captured_amount"] == 2500
    assert payment["capture_due_at"] is None and payment["held_until"] is None
    assert shop.marked("D-1") == 1 and shop.heard("D-1") == 1
    assert shop.heard("D-1", "payment_paid") == 1

    assert shop.run("capture", now=due + timedelta(days=1))["capture"].claimed == 0
    assert shop.psp_captures() == [payment["psp_reference"]]


def test_a_payment_cancelled_or_captured_before_it_is_due_is_left_alone(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(delayed(payplug_sim, days=2))
    early, cancelled = shop.start("D-2"), shop.start("D-3")
    for payment in (early, cancelled):
        shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    from flask_psp.extension import current_state

    with shop.ctx():
        service = current_state().service()
        service.capture(service.by_token(early["token"]))
        service.cancel(service.by_token(cancelled["token"]))  # the merchant changed their mind about this one
    assert payplug_sim.payments[cancelled["psp_reference"]]["failure"]["code"] == "aborted"
    assert shop.psp_captures() == [early["psp_reference"]]
    assert shop.payment(early["token"])["capture_due_at"] is None
    assert shop.payment(cancelled["token"])["status"] == "cancelled"

    assert shop.run("capture", now=later(days=3))["capture"].claimed == 0
    assert shop.psp_captures() == [early["psp_reference"]]


def test_a_refused_capture_is_retried_with_backoff_then_flagged(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(delayed(payplug_sim, days=1), PSP_RETRY_MAX_ATTEMPTS=3, PSP_RETRY_FIRST_DELAY=600)
    payment = shop.start("D-4")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    due = shop.payment(payment["token"])["capture_due_at"]

    real_clock = payplug_sim.clock
    payplug_sim.clock = lambda: real_clock() + 8 * 24 * 3600  # PayPlug: the authorization has expired
    now = due + timedelta(minutes=1)
    assert shop.run("capture", now=now)["capture"].left == 1
    first = shop.payment(payment["token"])
    assert first["status"] == "authorized" and first["extra"]["capture_attempts"] == 1
    assert "delayed capture failed (attempt 1)" in first["flag"] and "expired" in first["extra"]["capture_error"]
    assert first["capture_due_at"] == now + timedelta(minutes=10)
    assert shop.run("capture", now=now + timedelta(minutes=5))["capture"].claimed == 0  # not yet

    now += timedelta(minutes=10)
    assert shop.run("capture", now=now)["capture"].left == 1
    second = shop.payment(payment["token"])
    assert second["extra"]["capture_attempts"] == 2 and second["capture_due_at"] == now + timedelta(minutes=20)

    now += timedelta(minutes=20)
    shop.run("capture", now=now)
    gave_up = shop.payment(payment["token"])
    assert gave_up["capture_due_at"] is None and gave_up["flag"].startswith("delayed capture failed 3 times")
    assert shop.run("capture", now=now + timedelta(days=30))["capture"].claimed == 0
    assert shop.psp_captures() == []


def test_a_capture_that_succeeds_on_retry_clears_the_flag(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(delayed(payplug_sim, days=1))
    payment = shop.start("D-5")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    now = shop.payment(payment["token"])["capture_due_at"] + timedelta(minutes=1)
    real_clock = payplug_sim.clock
    payplug_sim.clock = lambda: real_clock() + 8 * 24 * 3600
    shop.run("capture", now=now)
    assert shop.payment(payment["token"])["flag"]
    payplug_sim.clock = real_clock
    assert shop.run("capture", now=now + timedelta(minutes=2))["capture"].done == 1
    captured = shop.payment(payment["token"])
    assert captured["status"] == "paid" and captured["flag"] is None


def test_the_admin_panels_delayed_setting_is_a_delayed_capture(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(providers={})
    from flask_psp.extension import current_state

    with shop.ctx():
        box = current_state().box
        session = current_state().db.session
        session.add(ProviderSettings(name="payplug", enabled=True, mode="test", capture="delayed",
                                     capture_delay_days=5,
                                     credentials=box.encrypt({"test": {"secret_key": "sk_test_simulator",
                                                                       "endpoint": payplug_sim.url}})))
        session.commit()
        config = current_state().settings.config_for(session, "payplug")
        assert capture_policy(config) == ("delayed", 5)
    payment = shop.start("D-6")
    assert (payment["capture"], payment["capture_delay_days"]) == ("delayed", 5)
    assert payplug_sim.created_with[payment["psp_reference"]]["authorized_amount"] == 2500


def test_what_the_provider_modules_are_told():
    auto = ProviderConfig("sips", "test", {}, capture="auto")
    manual = ProviderConfig("sips", "test", {}, capture="manual", capture_delay_days=4)
    later_on = ProviderConfig("sips", "test", {}, capture="auto", capture_delay_days=3)
    assert as_sent_to_psp(auto) is auto and as_sent_to_psp(manual) is manual
    # an authorization at the PSP, valid a day longer than the plugin waits
    assert (as_sent_to_psp(later_on).capture, as_sent_to_psp(later_on).capture_delay_days) == ("manual", 4)
    assert capture_policy(manual) == ("manual", None) and capture_policy(auto) == ("auto", None)


def test_two_runs_at_once_capture_each_payment_once(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(delayed(payplug_sim, days=1), PSP_JOBS_BATCH=3)
    payments = [shop.start(f"DC-{i}") for i in range(12)]
    for payment in payments:
        shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    now = later(days=1, minutes=5)

    reports = run_at_once(2, lambda i: shop.run("capture", now=now)["capture"])
    assert sum(r.claimed for r in reports) == 12 and sum(r.done for r in reports) == 12
    assert shared_out([r.claimed for r in reports])
    assert sorted(shop.psp_captures()) == sorted(p["psp_reference"] for p in payments)
    for payment in payments:
        assert shop.payment(payment["token"])["status"] == "paid"
        assert shop.marked(payment["order_ref"]) == 1 and shop.heard(payment["order_ref"]) == 1


def test_two_processes_at_once_capture_each_payment_once(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(delayed(payplug_sim, days=1), PSP_JOBS_BATCH=2)
    payments = [shop.start(f"DP-{i}") for i in range(16)]
    for payment in payments:
        shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    for payment in payments:  # the day went by: the subprocesses run at the present
        shop.update_payment(payment["token"], capture_due_at=later(minutes=-1))
    runs = shop.run_jobs_processes(2, "--job", "capture")
    for run in runs:
        assert run.returncode == 0, run.stderr
    claimed = [int(run.stdout.split("capture: ")[1].split(" claimed")[0]) for run in runs]
    assert sum(claimed) == 16 and shared_out(claimed)  # on different payments
    assert sorted(shop.psp_captures()) == sorted(p["psp_reference"] for p in payments)
    for payment in payments:
        assert shop.payment(payment["token"])["status"] == "paid"
        assert shop.marked(payment["order_ref"]) == 1


def test_what_another_run_holds_or_locks_is_skipped_not_waited_for(make_jobs_shop, payplug_sim):
    shop = make_jobs_shop(delayed(payplug_sim, days=1), PSP_JOBS_HOLD=600)
    payment = shop.start("DL-1")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    now = later(days=1, minutes=1)
    # a run that claimed it and died: the hold keeps others off until it ends
    shop.update_payment(payment["token"], held_until=now + timedelta(minutes=5))
    assert shop.run("capture", now=now)["capture"].claimed == 0
    if ON_POSTGRES:
        # a transaction that has the row locked right now: skipped at once (SKIP LOCKED)
        shop.update_payment(payment["token"], held_until=None)
        engine = sa.create_engine(shop.config["SQLALCHEMY_DATABASE_URI"])
        with engine.connect() as other:
            other.execute(sa.select(Payment).where(Payment.token == payment["token"]).with_for_update())
            assert shop.run("capture", now=now)["capture"].claimed == 0
        engine.dispose()
    assert shop.run("capture", now=now + timedelta(minutes=6))["capture"].done == 1
    assert shop.psp_captures() == [payment["psp_reference"]]

"""Background processing on Celery, against the real Redis (``PSP_TEST_REDIS_URL``, default database 7
of 127.0.0.1:6379) and real worker processes: notifications are proven, stored and acknowledged at
once, then applied by a worker with the same guarantees as inline; a worker killed mid-task loses
nothing, because the inbox is the source of truth and the sweeper queues the row again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
import redis
import requests
import sqlalchemy as sa
from celery import Celery

from flask_psp.celery_tasks import APPLY_TASK, JOB_TASK, init_celery
from flask_psp.jobs import JOB_NAMES
from flask_psp.models import PaymentEvent
from tests.admin.test_mail import smtp  # noqa: F401  (the fixture)
from tests.jobs.support import REDIS_URL, ROOT, Heard, db, later, make_jobs_shop, payplug_sim  # noqa: F401


CELERY = os.path.join(os.path.dirname(sys.executable), "celery")


def delivered(sim):
    return sim.notifier.wait_until(lambda: all(d.done for d in sim.notifier.deliveries), timeout=10)


class CeleryShop:
    """The test shop with PSP_TASK_QUEUE = "celery", its Celery app (producer side) and its workers."""

    def __init__(self, shop, prefix, queue, workdir):
        self.shop = shop
        self.prefix = prefix
        self.queue = queue
        self.workdir = workdir
        # the BLPOP waits below last up to 60 s; redis-py 8 reads with a 5 s socket timeout by default
        self.redis = redis.Redis.from_url(REDIS_URL, socket_timeout=75)
        self.celery_app = Celery("psp-test-shop", broker=REDIS_URL, backend=REDIS_URL)
        self.celery_app.conf.update(task_default_queue=queue, broker_connection_retry_on_startup=True,
                                    result_expires=300)
        self.psp_queue = init_celery(self.celery_app, shop.app)
        self.workers: list[subprocess.Popen] = []

    def start_worker(self) -> subprocess.Popen:
        env = self.shop.subprocess_env()
        env["JOBS_CELERY"] = json.dumps({"broker": REDIS_URL, "queue": self.queue, "prefix": self.prefix})
        number = len(self.workers) + 1
        log = open(self.workdir / f"worker-{number}.log", "w")
        worker = subprocess.Popen(
            [CELERY, "-A", "tests.celery.worker_app:celery_app", "worker", "--pool", "solo", "-Q", self.queue,
             "-n", f"psp-test-{number}-{self.prefix[-8:]}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.workers.append(worker)
        ready = self.redis.blpop(f"{self.prefix}:ready", timeout=60)
        assert ready is not None, (self.workdir / f"worker-{number}.log").read_text()
        assert int(ready[1]) == worker.pid
        return worker

    def wait_for(self, what: str, timeout: int = 60) -> str:
        """Block until a worker says ``what`` (inside | order_paid | …) on Redis; returns what it said."""
        said = self.redis.blpop(f"{self.prefix}:{what}", timeout=timeout)
        assert said is not None, f"no {what} within {timeout} s; worker logs: " + " | ".join(
            p.read_text() for p in sorted(self.workdir.glob("worker-*.log")))
        return said[1].decode()

    def queued_messages(self) -> int:
        return self.redis.llen(self.queue)

    def stop(self):
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


@pytest.fixture
def celery_shop(make_jobs_shop, tmp_path):  # noqa: F811
    prefix = f"psp-test:{uuid.uuid4().hex}"
    config = {"PSP_TASK_QUEUE": "celery", "JOBS_REDIS_URL": REDIS_URL, "JOBS_REDIS_PREFIX": prefix}

    def build(**extra) -> CeleryShop:
        return CeleryShop(make_jobs_shop(**{**config, **extra}), prefix, f"{prefix}:tasks", tmp_path)

    built = []
    yield lambda **extra: built.append(build(**extra)) or built[-1]
    for each in built:
        each.stop()
        keys = list(each.redis.scan_iter(f"*{prefix}*"))  # its queue, barrier lists and kombu's bindings
        if keys:
            each.redis.delete(*keys)


def test_a_notification_is_acknowledged_at_once_and_applied_by_a_worker(celery_shop, payplug_sim):  # noqa: F811
    cs = celery_shop()
    shop = cs.shop
    payment = shop.start("C-1")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    assert payplug_sim.notifier.deliveries[0].attempts == [(200, None)]
    # proven (PayPlug's copy was fetched back) and stored, not applied yet: no worker is running
    (row,) = shop.events(source="notify")
    assert row["outcome"] == "queued" and row["verified_message"]["psp_reference"] == payment["psp_reference"]
    assert shop.payment(payment["token"])["status"] == "pending" and shop.marked("C-1") == 0
    assert cs.queued_messages() == 1

    worker = cs.start_worker()
    assert cs.wait_for("order_paid") == "C-1"
    assert shop.payment(payment["token"])["status"] == "paid"
    assert shop.marked("C-1") == 1 and shop.heard("C-1") == 1
    (row,) = shop.events(source="notify")
    assert row["outcome"] == "applied" and row["next_attempt_at"] is None
    with shop.ctx():
        assert {h.pid for h in db.session.query(Heard).filter_by(order_ref="C-1")} == {worker.pid}


def test_a_worker_killed_mid_task_loses_nothing(celery_shop, payplug_sim):  # noqa: F811
    cs = celery_shop()
    shop = cs.shop
    shop.switch("block", True)  # the worker will hang inside mark_paid
    first = cs.start_worker()
    payment = shop.start("C-2")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    assert int(cs.wait_for("inside")) == first.pid
    os.kill(first.pid, signal.SIGKILL)  # mid-task, inside the transaction that marks the order paid
    first.wait(timeout=20)

    (row,) = shop.events(source="notify")
    assert row["outcome"] == "queued"  # the inbox still has it
    assert shop.payment(payment["token"])["status"] == "pending" and shop.marked("C-2") == 0
    assert shop.heard("C-2") == 0

    shop.switch("block", False)
    cs.start_worker()
    assert shop.run("sweep", now=later(minutes=1))["sweep"].claimed == 0  # not given up on yet
    report = shop.run("sweep", now=later(minutes=6), enqueue=cs.psp_queue.enqueue)["sweep"]
    assert (report.claimed, report.done) == (1, 1)
    assert cs.wait_for("order_paid") == "C-2"
    assert shop.payment(payment["token"])["status"] == "paid"
    assert shop.marked("C-2") == 1 and shop.heard("C-2") == 1
    (row,) = shop.events(source="notify")
    assert row["outcome"] == "applied"
    assert shop.run("sweep", now=later(minutes=30))["sweep"].claimed == 0


def test_a_failing_mark_paid_in_a_worker_is_retried_by_the_beat_task(celery_shop, payplug_sim):  # noqa: F811
    cs = celery_shop()
    shop = cs.shop
    shop.switch("refuse", True)
    cs.start_worker()
    payment = shop.start("C-3")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    assert payplug_sim.notifier.deliveries[0].attempts == [(200, None)]  # acknowledged: the failure is ours
    result = cs.celery_app.send_task(APPLY_TASK, args=([shop.events(source="notify")[0]["id"]],))
    assert result.get(timeout=60) == []  # a second delivery of the task finds it in error, leaves it to retry
    (row,) = shop.events(source="notify")
    assert row["outcome"] == "error" and row["next_attempt_at"] is not None
    assert row["payment_id"] == shop.payment(payment["token"])["id"]  # queued unlinked; failed, in the timeline
    assert shop.marked("C-3") == 0

    shop.switch("refuse", False)
    with shop.ctx():  # its first retry fell due
        db.session.execute(sa.update(PaymentEvent).values(next_attempt_at=later(seconds=-1)))
        db.session.commit()
    ran = cs.celery_app.send_task(JOB_TASK, args=("retry",)).get(timeout=60)
    assert ran == {"claimed": 1, "done": 1, "left": 0}
    assert shop.payment(payment["token"])["status"] == "paid"
    assert shop.marked("C-3") == 1 and shop.heard("C-3") == 1


def test_the_scheduled_jobs_run_as_beat_tasks(celery_shop, payplug_sim):  # noqa: F811
    from tests.jobs.support import payplug_providers

    cs = celery_shop(PSP_PROVIDERS=payplug_providers(payplug_sim.url, capture="auto", capture_delay_days=2))
    schedule = cs.celery_app.conf.beat_schedule
    assert {entry["args"][0] for entry in schedule.values()} == set(JOB_NAMES)
    assert all(e["task"] == JOB_TASK and e["schedule"] == timedelta(seconds=60) for e in schedule.values())

    shop = cs.shop
    cs.start_worker()
    payment = shop.start("C-4")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    assert cs.wait_for("order_paid") == "C-4"  # authorized: the order is paid, the capture waits
    shop.update_payment(payment["token"], capture_due_at=later(minutes=-1))
    assert cs.celery_app.send_task(JOB_TASK, args=("capture",)).get(timeout=60) == {"claimed": 1, "done": 1, "left": 0}
    assert shop.payment(payment["token"])["status"] == "paid"
    assert shop.psp_captures() == [payment["psp_reference"]]
    assert shop.marked("C-4") == 1 and shop.heard("C-4") == 1


def test_without_a_broker_the_notification_is_applied_inline(make_jobs_shop, payplug_sim):  # noqa: F811
    shop = make_jobs_shop(PSP_TASK_QUEUE="celery")
    nowhere = Celery("psp-test-no-broker", broker="redis://127.0.0.1:1/0")
    init_celery(nowhere, shop.app)
    payment = shop.start("C-5")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    assert payplug_sim.notifier.deliveries[0].attempts == [(200, None)]
    assert shop.payment(payment["token"])["status"] == "paid"
    assert shop.marked("C-5") == 1 and shop.heard("C-5") == 1
    (row,) = shop.events(source="notify")
    assert row["outcome"] == "applied"


def test_proof_stays_inline_refused_or_unprovable_notifications_are_not_queued(celery_shop, payplug_sim):  # noqa: F811
    cs = celery_shop()
    shop = cs.shop
    forged = requests.post(shop.url + "/psp/notify/payplug", json={"id": "pay_doesnotexist000000000", "object": "payment",
                                                                   "is_paid": True}, timeout=10)
    assert forged.status_code == 403
    payment = shop.start("C-6")
    payplug_sim.notifier.paused = True
    shop.paid_at_psp(payment)
    body = payplug_sim.notifier.deliveries[-1].body
    payplug_sim.server.stop()  # the re-fetch that proves it cannot be made now
    unprovable = requests.post(shop.url + "/psp/notify/payplug", data=body,
                               headers={"Content-Type": "application/json"}, timeout=30)
    assert unprovable.status_code == 503
    assert sorted(e["outcome"] for e in shop.events(source="notify")) == ["error", "rejected"]
    assert cs.queued_messages() == 0
    assert shop.payment(payment["token"])["status"] == "pending"


def test_a_worker_sends_the_payment_mail(celery_shop, payplug_sim, smtp):  # noqa: F811
    """With PSP_TASK_QUEUE = "celery" the worker that applies the notification writes the mail and
    a worker sends it: the shop's own process sends nothing."""
    from flask_psp.models import MailMessage, PageSettings

    cs = celery_shop(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_DEFAULT_SENDER="shop@example.com")
    shop = cs.shop
    with shop.ctx():
        db.session.add(PageSettings(messages={}, provider_look={},
                                    notifications={"addresses": ["ops@example.com"], "events": ["paid"]}))
        db.session.commit()
    cs.start_worker()
    payment = shop.start("C-7")
    shop.paid_at_psp(payment)
    assert delivered(payplug_sim)
    assert cs.wait_for("order_paid") == "C-7"
    assert smtp.wait_for(1, timeout=60)
    assert smtp.subjects() == ["Payment received for order C-7"]
    assert shop.app.extensions["psp"].mailer.sent == 0  # sent by the worker

    def recorded():
        with shop.ctx():
            return [(m.status, m.attempts) for m in db.session.scalars(sa.select(MailMessage))]

    # the server said OK before the worker wrote it down: wait for the worker's record
    pause = threading.Event()
    for _ in range(600):
        if recorded() == [("sent", 1)]:
            break
        pause.wait(0.05)
    assert recorded() == [("sent", 1)]

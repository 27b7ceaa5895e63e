"""A small shop for the scheduled-jobs and Celery tests, and the fixtures that run it.

The shop counts what a merchant would notice: how many times its ``mark_paid`` committed
(``jobs_order.marked``) and which signals it heard (``jobs_heard``, written after commit from
whichever process heard them). Switches in ``jobs_switch`` make ``mark_paid`` refuse (the
warehouse is down) or block forever (a worker to kill mid-task). The same ``create_app`` serves the
test process, ``flask psp run-jobs`` subprocesses (``FLASK_APP=tests.jobs.support:create_app``,
configuration in ``JOBS_SHOP_CONFIG``) and Celery worker subprocesses.

Import it as ``tests.jobs.support`` only, so that one copy of its models and signal receivers exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy

from flask_psp import PSP, OrderInfo, signals
from flask_psp.models import Payment, PaymentEvent, utcnow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_KEY = "sk_test_simulator"
REDIS_URL = os.environ.get("PSP_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")

db = SQLAlchemy()
psp = PSP()


class ShopOrder(db.Model):
    __tablename__ = "jobs_order"
    reference = db.Column(db.String(32), primary_key=True)
    amount = db.Column(db.BigInteger, nullable=False)
    currency = db.Column(db.String(3), nullable=False, default="EUR")
    status = db.Column(db.String(16), nullable=False, default="pending")
    #: how many mark_paid calls committed: exactly one per paid order
    marked = db.Column(db.Integer, nullable=False, default=0)


class Switch(db.Model):
    __tablename__ = "jobs_switch"
    name = db.Column(db.String(16), primary_key=True)  # refuse | block
    on = db.Column(db.Boolean, nullable=False, default=False)


class Heard(db.Model):
    __tablename__ = "jobs_heard"
    id = db.Column(db.Integer, primary_key=True)
    signal = db.Column(db.String(32), nullable=False)
    order_ref = db.Column(db.String(32), nullable=False)
    pid = db.Column(db.Integer, nullable=False)


def _switch(name: str) -> bool:
    return bool(db.session.execute(sa.select(Switch.on).where(Switch.name == name)).scalar())


def _redis():
    import redis

    return redis.Redis.from_url(current_app.config["JOBS_REDIS_URL"])


BARRIER_WAIT = 60  # seconds a side of the start barrier waits for the other


def barrier_redis(url: str):
    """A Redis client for the start barrier's BLPOP waits. redis-py 8 reads with a 5 s socket timeout by
    default, shorter than the wait: a process slow to start (a loaded machine) ended the test with a
    TimeoutError instead of being waited for."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=BARRIER_WAIT + 15)


class Orders:
    def get(self, ref):
        order = db.session.get(ShopOrder, ref)
        return order and OrderInfo(order.reference, order.amount, order.currency, email="buyer@example.com")

    def mark_paid(self, ref, payment):
        if _switch("refuse"):
            raise RuntimeError("the warehouse is closed")
        if _switch("block"):
            # tell the test this worker is inside mark_paid, then hang until killed
            _redis().rpush(f"{current_app.config['JOBS_REDIS_PREFIX']}:inside", os.getpid())
            threading.Event().wait()
        order = db.session.get(ShopOrder, ref)
        order.marked += 1
        order.status = "paid"


def _hear(name):
    def receive(sender, payment, **extra):
        if "jobs_shop" not in current_app.extensions:
            return  # another test app in this process
        # after the ledger's commit, on its own session: one connection per request, as a shop would
        db.session.add(Heard(signal=name, order_ref=payment.order_ref, pid=os.getpid()))
        db.session.commit()
        if current_app.config.get("JOBS_REDIS_URL"):
            _redis().rpush(f"{current_app.config['JOBS_REDIS_PREFIX']}:{name}", payment.order_ref)

    return receive


_RECEIVERS = {name: _hear(name) for name in signals.BY_NAME}
for _name, _receiver in _RECEIVERS.items():
    signals.BY_NAME[_name].connect(_receiver)


def create_app(config: dict | None = None) -> Flask:
    settings = json.loads(os.environ.get("JOBS_SHOP_CONFIG") or "{}")
    settings.update(config or {})
    app = Flask("jobs_shop")
    app.config.update(TESTING=True, SECRET_KEY="jobs-shop")
    app.config.update(settings)
    db.init_app(app)
    psp.init_app(app, db=db, orders=Orders())
    app.extensions["jobs_shop"] = True
    if not settings.get("JOBS_SKIP_SCHEMA"):
        with app.app_context():
            psp.upgrade_database()
            db.create_all()
    if settings.get("JOBS_BARRIER"):
        # several processes started by one test: each says it is ready, then waits for the word
        connection = barrier_redis(settings["JOBS_REDIS_URL"])
        connection.rpush(f"{settings['JOBS_BARRIER']}:ready", os.getpid())
        if connection.blpop(f"{settings['JOBS_BARRIER']}:go", timeout=BARRIER_WAIT) is None:
            raise RuntimeError("the test never said go")
    return app


def payplug_providers(sim_url: str, **entry) -> dict:
    return {"payplug": {"enabled": True, "mode": "test", "test": {"secret_key": TEST_KEY, "endpoint": sim_url}, **entry}}


# ---------------------------------------------------------------------------------------------- test side
class Shop:
    """The running test shop: its app, its URL (notifications reach it), its PayPlug simulator."""

    def __init__(self, app, url, sim, config):
        self.app = app
        self.url = url
        self.sim = sim
        self.config = config  # JSON-able, for subprocesses

    def ctx(self):
        return self.app.app_context()

    def new_order(self, ref: str, amount: int = 2500) -> str:
        with self.ctx():
            db.session.add(ShopOrder(reference=ref, amount=amount, currency="EUR"))
            db.session.commit()
        return ref

    def start(self, ref: str, amount: int = 2500) -> dict:
        """An order and its PayPlug payment, the buyer sent to the hosted page: a snapshot."""
        return self.start_with("payplug", ref, amount)[0]

    def start_with(self, provider: str, ref: str, amount: int = 2500) -> tuple[dict, str]:
        """An order and its payment with ``provider``, the buyer sent to the hosted page: a snapshot
        of the payment, and the page's address."""
        from flask_psp.extension import current_state
        from flask_psp.payments import Urls

        self.new_order(ref, amount)
        base = f"{self.url}/psp"
        with self.ctx():
            service = current_state().service()
            payment, _ = service.start(
                Orders().get(ref), provider, "en",
                lambda token: Urls(f"{base}/return/{token}", f"{base}/cancel/{token}", f"{base}/notify/{provider}"),
            )
            return snapshot(payment), payment.redirect_url

    def payment(self, token: str) -> dict:
        with self.ctx():
            return snapshot(db.session.scalar(sa.select(Payment).where(Payment.token == token)))

    def update_payment(self, token: str, **values) -> None:
        with self.ctx():
            db.session.execute(sa.update(Payment).where(Payment.token == token).values(**values))
            db.session.commit()

    def events(self, **where) -> list[dict]:
        with self.ctx():
            query = sa.select(PaymentEvent).filter_by(**where).order_by(PaymentEvent.id)
            return [{c: getattr(r, c) for c in ("id", "source", "outcome", "attempts", "next_attempt_at", "payment_id",
                                                 "verified_message", "outcome_detail", "parent_id")}
                    for r in db.session.scalars(query)]

    def marked(self, ref: str) -> int:
        with self.ctx():
            return db.session.get(ShopOrder, ref).marked

    def heard(self, ref: str | None = None, signal: str = "order_paid") -> int:
        with self.ctx():
            query = sa.select(sa.func.count()).select_from(Heard).where(Heard.signal == signal)
            if ref is not None:
                query = query.where(Heard.order_ref == ref)
            return db.session.scalar(query)

    def switch(self, name: str, on: bool) -> None:
        with self.ctx():
            row = db.session.get(Switch, name) or Switch(name=name)
            row.on = on
            db.session.add(row)
            db.session.commit()

    def run(self, *names, now=None, enqueue=None):
        """Run jobs once, as ``flask psp run-jobs`` does, at ``now`` (default: the present)."""
        from flask_psp.extension import current_state
        from flask_psp.jobs import JOB_NAMES

        with self.ctx():
            return {r.job: r for r in current_state().jobs(enqueue).run(names or JOB_NAMES, now=now)}

    def paid_at_psp(self, payment: dict) -> str:
        """The buyer pays on PayPlug's page (without HTTP): ``paid`` or ``authorized``."""
        return self.sim.pay(payment["psp_reference"])

    def psp_captures(self) -> list[str]:
        return [r["path"].rsplit("/", 1)[-1] for r in self.sim.requests
                if r["method"] == "PATCH" and r["body"] == {"captured": True} and r["status"] == 200]

    def subprocess_env(self, **extra_config) -> dict:
        env = dict(os.environ)
        env.update(
            FLASK_APP="tests.jobs.support:create_app",
            PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""),
            JOBS_SHOP_CONFIG=json.dumps({**self.config, "JOBS_SKIP_SCHEMA": True, **extra_config}),
        )
        return env

    def run_jobs_processes(self, count: int, *args, **extra_config) -> list[subprocess.CompletedProcess]:
        """``count`` processes of ``flask psp run-jobs ARGS`` released at the same moment (a Redis
        barrier: each says it is ready, the test says go once all are)."""
        import uuid

        barrier = f"psp-test:{uuid.uuid4().hex}"
        connection = barrier_redis(REDIS_URL)
        processes = [self.run_jobs_process(*args, JOBS_BARRIER=barrier, JOBS_REDIS_URL=REDIS_URL, **extra_config)
                     for _ in range(count)]
        try:
            for _ in range(count):
                assert connection.blpop(f"{barrier}:ready", timeout=BARRIER_WAIT) is not None, \
                    "a run-jobs process did not start"
            connection.rpush(f"{barrier}:go", *["go"] * count)
            finished = []
            for process in processes:
                out, err = process.communicate(timeout=120)
                finished.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
            return finished
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
            connection.delete(f"{barrier}:ready", f"{barrier}:go")

    def run_jobs_process(self, *args, **extra_config) -> subprocess.Popen:
        """``flask psp run-jobs ARGS`` in its own process, on the same database and simulator."""
        return subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "flask"), "psp", "run-jobs", *args],
            cwd=ROOT, env=self.subprocess_env(**extra_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )


def snapshot(payment: Payment) -> dict:
    return {c: getattr(payment, c) for c in (
        "id", "token", "order_ref", "status", "psp_reference", "capture", "capture_delay_days", "capture_due_at",
        "authorized_amount", "captured_amount", "flag", "held_until", "created_at", "updated_at", "extra",
        "order_marked_at")}


def later(**delta) -> datetime:
    return utcnow() + timedelta(**delta)


@pytest.fixture
def payplug_sim():
    from flask_psp.simulator import create_simulator

    simulator = create_simulator("payplug", retry_delays=(30, 60, 120))
    server = simulator.serve()
    yield simulator
    notifier = simulator.notifier
    if not notifier.paused:
        assert notifier.wait_until(lambda: all(d.done or d.attempts for d in notifier.deliveries), timeout=10)
    notifier.close()
    (simulator.server or server).stop()  # a test may have stopped it and served it again


@pytest.fixture
def make_jobs_shop(database_url, payplug_sim):
    """``make_jobs_shop(**config)`` → a running :class:`Shop` on the test database."""
    from cryptography.fernet import Fernet

    from tests.conftest import LiveServer

    built = []

    def build(providers: dict | None = None, **config) -> Shop:
        holder = {}
        server = LiveServer(lambda environ, start_response: holder["app"](environ, start_response))
        settings = {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PSP_PUBLIC_URL": server.url,
            "PSP_PROVIDERS": providers if providers is not None else payplug_providers(payplug_sim.url),
            **config,
        }
        app = create_app(settings)
        holder["app"] = app
        server.start()
        built.append((server, app))
        return Shop(app, server.url, payplug_sim, settings)

    yield build
    for server, app in built:
        server.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def jobs_shop(make_jobs_shop):
    return make_jobs_shop()


def run_at_once(count: int, work) -> list:
    """``work(i)`` in ``count`` threads released together; returns their results (re-raises)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def body(i):
        barrier.wait(timeout=30)
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread did not finish in 120 s"
    if errors:
        raise errors[0]
    return results


def shared_out(claimed: list[int]) -> bool:
    """Did every one of the runs started together get some of the work? On PostgreSQL they must
    (rows another run holds are skipped, not waited for); SQLite has one writer at a time and may
    let one run take everything, which is still correct."""
    from tests.conftest import ON_POSTGRES

    return min(claimed) > 0 or not ON_POSTGRES

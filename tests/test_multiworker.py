"""Many workers, one database: the example shop under gunicorn with several worker processes, on the
suite's database (SQLite file or PostgreSQL), receiving the same PayPlug and Adyen notifications from
several delivering processes at once while the simulators deliver them too. Nothing may be applied
twice: one "applied" inbox row per distinct notification, every other copy a "duplicate", one
mark_paid per order."""

from __future__ import annotations

import multiprocessing
import os
import random
import socket
import subprocess
import sys
from collections import Counter

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from flask_psp.simulator.adyen import CARD_SUCCESS as ADYEN_CARD
from flask_psp.simulator.adyen import DEFAULT_TEST_KEY, AdyenSimulator
from tests.conftest import TEST_KEY, Shop

WORKERS = 3
DELIVERERS = 4
ORDERS_PER_PROVIDER = 5
MAX_ATTEMPTS = 30  # a PSP retries a notification answered with a 5xx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, port: int, timeout: float = 60.0) -> None:
    """Poll the port until gunicorn accepts connections (failing at once if it exits)."""
    for _ in range(int(timeout / 0.05)):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                return
        except OSError:
            pass
        try:
            process.wait(timeout=0.05)  # the poll interval, and a check that gunicorn is still there
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"gunicorn exited with {process.returncode} before listening")
    raise AssertionError(f"gunicorn is not listening on {port} after {timeout} s")


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in (e for e in os.listdir("/proc") if e.isdigit()):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == master:
            pids.append(int(entry))
    return pids


@pytest.fixture
def adyen_sim():
    simulator = AdyenSimulator(retry_delays=(0.2, 0.5, 1, 2, 5, 10))
    simulator.serve()
    yield simulator
    simulator.close()


@pytest.fixture
def gunicorn_shop(database_url, sim, adyen_sim):
    """The example shop served by gunicorn (``WORKERS`` processes, 2 threads each) on the suite's database."""
    from example_shop import create_app, db

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "SECRET_KEY": "multiworker-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "PSP_PUBLIC_URL": url,
        "PSP_PROVIDERS": {
            "payplug": {"enabled": True, "mode": "test", "test": {"secret_key": TEST_KEY, "endpoint": sim.url}},
            "adyen": {"enabled": True, "mode": "test", "test": {
                "api_key": DEFAULT_TEST_KEY, "merchant_account": adyen_sim.merchant_account,
                "hmac_key": adyen_sim.hmac_key, "endpoint": adyen_sim.url}},
        },
    }
    # the schema is migrated once, before the workers start (as a deployment runs `flask psp db upgrade`)
    app = create_app(config)
    with app.app_context():
        db.engine.dispose()
    adyen_sim.webhook_url = f"{url}/psp/notify/adyen"
    command = [sys.executable, "-m", "gunicorn", f"example_shop:create_app({config!r})",
               "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS), "--worker-class", "gthread",
               "--threads", "2", "--log-level", "warning", "--graceful-timeout", "5"]
    process = subprocess.Popen(command)
    try:
        wait_until_listening(process, port)
        yield Shop(app, url, sim), process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def settled(notifier) -> bool:
    """Every delivery of the simulator done; one waiting for a retry (after a 5xx) is made due now."""
    if all(d.done for d in notifier.deliveries):
        return True
    notifier.retry_now()
    return False


def _deliver(notifications: list[dict], seed: int, start, results) -> None:
    """One delivering process: every notification, in its own order, retried while answered non-2xx."""
    order = list(range(len(notifications)))
    random.Random(seed).shuffle(order)
    http = requests.Session()
    http.trust_env = False
    answers = []
    start.wait(timeout=60)  # every deliverer is up: they all begin at once
    for index in order:
        note = notifications[index]
        statuses = []
        for _ in range(MAX_ATTEMPTS):
            try:
                status = http.post(note["url"], data=note["body"], headers=note["headers"], timeout=30).status_code
            except requests.RequestException as exc:
                status = f"{type(exc).__name__}"
            statuses.append(status)
            if isinstance(status, int) and 200 <= status < 300:
                break
        answers.append((index, statuses))
    results.put(answers)


def test_same_notifications_from_several_processes_apply_once(gunicorn_shop, database_url, sim, adyen_sim):
    shop, master = gunicorn_shop
    sim.notifier.paused = adyen_sim.notifier.paused = True
    buyer = shop.buyer()
    orders = {}
    for provider in ("payplug", "adyen"):
        for _ in range(ORDERS_PER_PROVIDER):
            ref = buyer.place_order()
            answer = buyer.choose(ref, provider)
            assert answer.status_code == 303, answer.text
            page = answer.headers["Location"]
            if provider == "payplug":
                assert sim.pay(page.rstrip("/").split("/")[-1]) == "paid"
            else:  # the buyer pays on Adyen's hosted page and never comes back: only the webhook tells
                assert buyer.http.get(page, timeout=10).status_code == 200
                paid = buyer.http.post(page, data={"card_number": ADYEN_CARD, "expiry": "03/30", "cvc": "737",
                                                   "action": "pay"}, allow_redirects=False, timeout=10)
                assert paid.status_code == 303
            orders[ref] = provider
    assert len(worker_pids(master.pid)) == WORKERS
    assert all(shop.order(ref)["status"] == "pending" for ref in orders)

    deliveries = list(sim.notifier.deliveries) + list(adyen_sim.notifier.deliveries)
    assert len(deliveries) == len(orders)  # one notification per payment, held back so far
    notifications = [{"url": d.url, "body": d.body, "headers": d.headers} for d in deliveries]

    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(DELIVERERS + 1), context.Queue()
    deliverers = [context.Process(target=_deliver, args=(notifications, seed, start, results), daemon=True)
                  for seed in range(DELIVERERS)]
    for process in deliverers:
        process.start()
    start.wait(timeout=60)
    sim.notifier.paused = adyen_sim.notifier.paused = False  # the simulators deliver them as well, meanwhile
    answers = [results.get(timeout=120) for _ in deliverers]
    for process in deliverers:
        process.join(timeout=30)
    for notifier in (sim.notifier, adyen_sim.notifier):
        assert notifier.wait_until(lambda n=notifier: settled(n), timeout=60)
        assert all(d.delivered for d in notifier.deliveries)

    final = [statuses[-1] for per_process in answers for _, statuses in per_process]
    assert all(isinstance(s, int) and 200 <= s < 300 for s in final), Counter(map(str, final))
    accepted = len(final) + len(deliveries)  # every copy was acknowledged once, by a 2xx

    for ref in orders:
        assert shop.order(ref)["status"] == "paid"
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            payments = connection.execute(sa.text(
                "SELECT id, order_ref, status, order_marked_at FROM psp_payment")).all()
            events = connection.execute(sa.text(
                "SELECT payment_id, provider, outcome FROM psp_payment_event WHERE source = 'notify'")).all()
    finally:
        engine.dispose()
    assert sorted(p.order_ref for p in payments) == sorted(orders)
    assert all(p.status == "paid" and p.order_marked_at is not None for p in payments)  # mark_paid once per order
    outcomes = Counter(e.outcome for e in events)
    applied = Counter(e.payment_id for e in events if e.outcome == "applied")
    assert applied == {p.id: 1 for p in payments}, applied  # one "applied" per distinct notification
    assert outcomes["applied"] + outcomes["duplicate"] == accepted, outcomes  # the other copies: duplicates
    # a copy answered 5xx (SQLite busy with another writer) is stored as "error" and delivered again; nothing else
    assert set(outcomes) <= {"applied", "duplicate", "error"}, outcomes
    by_provider = Counter((e.provider, e.outcome) for e in events if e.outcome == "applied")
    assert by_provider == {("payplug", "applied"): ORDERS_PER_PROVIDER, ("adyen", "applied"): ORDERS_PER_PROVIDER}

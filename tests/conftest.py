"""Shared fixtures. Every test runs on SQLite by default and on PostgreSQL when
``PSP_TEST_DATABASE_URL`` is set (``make test DB=postgres``); the simulators and the shop are
real servers on loopback."""

from __future__ import annotations

import os
import re
import threading

import pytest
import requests
import sqlalchemy as sa
from hypothesis import settings
from werkzeug.serving import make_server

# no per-example deadline: a property fails on what it finds, never on how busy the machine is
# (.ci/run runs the SQLite and PostgreSQL suites side by side on two cores)
settings.register_profile("flask-psp", deadline=None)
settings.load_profile("flask-psp")

PG_URL = os.environ.get("PSP_TEST_DATABASE_URL")
ON_POSTGRES = bool(PG_URL)
TEST_KEY = "sk_test_simulator"
LIVE_KEY = "sk_live_simulator"


def pytest_report_header(config):
    return f"database: {'PostgreSQL ' + PG_URL if ON_POSTGRES else 'SQLite (set PSP_TEST_DATABASE_URL for PostgreSQL)'}"


@pytest.fixture
def database_url(tmp_path):
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    yield PG_URL


@pytest.fixture
def shop_in_context(database_url):
    """``(app, db, Order)``: the example shop with no provider, inside its app context (for the
    ledger's tests, which drive the core directly)."""
    from cryptography.fernet import Fernet

    from example_shop import Order, create_app, db

    app = create_app({
        "TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": database_url,
        "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(), "PSP_PROVIDERS": {},
    })
    with app.app_context():
        yield app, db, Order
        db.session.remove()
        db.engine.dispose()


def serving(simulator):
    """Serve ``simulator`` for one test (a fixture body: ``yield from serving(...)``). At the end,
    first attempts of its notifications finish (the shop must not stop mid-request); retries are
    abandoned, so nothing of one test waits on into the next."""
    server = simulator.serve()
    yield simulator
    notifier = simulator.notifier
    notifier.paused = False
    assert notifier.wait_until(lambda: all(d.done or d.attempts for d in notifier.deliveries), timeout=10)
    server.stop()
    notifier.close()


@pytest.fixture
def sim():
    """A fresh PayPlug simulator per test."""
    from flask_psp.simulator import create_simulator

    yield from serving(create_simulator("payplug", retry_delays=(30, 60, 120)))


@pytest.fixture
def heard():
    """The order references ``order_paid`` was sent for, in order."""
    from flask_psp import signals

    received = []

    def receiver(sender, payment, **extra):
        received.append(payment.order_ref)

    signals.order_paid.connect(receiver)
    yield received
    signals.order_paid.disconnect(receiver)


def payplug_settings(sim, **overrides):
    entry = {"enabled": True, "mode": "test", "test": {"secret_key": TEST_KEY, "endpoint": sim.url}}
    entry.update(overrides)
    return {"payplug": entry}


class LiveServer:
    def __init__(self, app):
        self.wsgi = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()


@pytest.fixture
def make_shop(database_url, sim):
    """``make_shop(**config)`` → a running example shop (``.app``, ``.url``, ``.buyer()``)."""
    from example_shop import create_app

    servers = []

    def build(psp_providers=None, **config):
        from cryptography.fernet import Fernet

        # bind first, so PSP_PUBLIC_URL can name the real port
        holder = {}

        def late_app(environ, start_response):
            return holder["app"](environ, start_response)

        server = LiveServer(late_app)
        settings = {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PSP_PUBLIC_URL": server.url,
            "PSP_PROVIDERS": psp_providers if psp_providers is not None else payplug_settings(sim),
        }
        settings.update(config)
        app = create_app(settings)
        holder["app"] = app
        server.app = app
        server.start()
        servers.append(server)
        return Shop(app, server.url, sim)

    yield build
    from example_shop import db

    for server in servers:
        server.stop()
        with server.app.app_context():
            db.session.remove()
            db.engine.dispose()


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Shop:
    def __init__(self, app, url, sim):
        self.app = app
        self.url = url
        self.sim = sim

    def buyer(self, accept_language="en"):
        session = requests.Session()
        session.headers["Accept-Language"] = accept_language
        return Buyer(self, session)

    def order(self, reference):
        return requests.get(f"{self.url}/orders/{reference}.json", timeout=10).json()

    def payments(self, order_ref):
        from example_shop import psp

        with self.app.app_context():
            payments = psp.payments_for(order_ref)
            return [
                {c: getattr(p, c) for c in ("id", "token", "status", "psp_reference", "amount", "captured_amount",
                                            "refunded_amount", "authorized_amount", "flag", "mode", "failure_reason")}
                for p in payments
            ]

    def events(self):
        from flask_psp.models import PaymentEvent
        from example_shop import db

        with self.app.app_context():
            rows = db.session.scalars(sa.select(PaymentEvent).order_by(PaymentEvent.id)).all()
            return [{c: getattr(r, c) for c in ("id", "source", "outcome", "verified", "dedupe_key", "payment_id", "body", "provider")} for r in rows]

    def notify_url(self, provider="payplug"):
        return f"{self.url}/psp/notify/{provider}"


class Buyer:
    def __init__(self, shop, session):
        self.shop = shop
        self.http = session

    def csrf(self, html):
        match = CSRF.search(html)
        assert match, "page has no CSRF token"
        return match.group(1)

    def place_order(self, sku="MUG-01", quantity=1, email="buyer@example.com", **form):
        """``form``: more fields of the order form (billing-city=…, delivery_type=…)."""
        home = self.http.get(self.shop.url + "/", timeout=10)
        token = self.csrf(home.text)
        for _ in range(quantity):
            self.http.post(f"{self.shop.url}/cart/add/{sku}", data={"csrf_token": token}, timeout=10)
        cart = self.http.get(self.shop.url + "/cart", timeout=10)
        placed = self.http.post(
            self.shop.url + "/orders", data={"email": email, "csrf_token": self.csrf(cart.text), **form},
            allow_redirects=False, timeout=10,
        )
        assert placed.status_code == 303, placed.text
        checkout_url = placed.headers["Location"]
        return checkout_url.rstrip("/").split("/")[-1]

    def choose(self, order_ref, provider="payplug"):
        """Checkout page → POST provider → the PSP's page URL (or the response when not a redirect)."""
        page = self.http.get(f"{self.shop.url}/psp/checkout/{order_ref}", timeout=10)
        assert page.status_code == 200, page.text
        answer = self.http.post(
            f"{self.shop.url}/psp/checkout/{order_ref}",
            data={"provider": provider, "csrf_token": self.csrf(page.text)},
            allow_redirects=False, timeout=10,
        )
        return answer

    def pay_on_payplug(self, payment_url, card="4242424242424242", action="pay", code=None):
        """Fill the simulator's hosted page like a buyer; returns the final response back at the shop."""
        page = self.http.get(payment_url, timeout=10)
        assert page.status_code == 200
        answer = self.http.post(
            payment_url, data={"card_number": card, "expiry": "12/30", "cvc": "123", "action": action},
            allow_redirects=False, timeout=10,
        )
        assert answer.status_code == 303, answer.text
        location = answer.headers["Location"]
        if location.endswith("/3ds"):
            if location.startswith("/"):
                location = self.shop.sim.url + location
            challenge = self.http.get(location, timeout=10)
            assert 'name="code"' in challenge.text
            answer = self.http.post(location, data={"code": code or "1234"}, allow_redirects=False, timeout=10)
            assert answer.status_code == 303
            location = answer.headers["Location"]
        return self.http.get(location, timeout=10)

"""``make demo`` as a new user meets it: the demo process (shop + five simulators) is started for real,
then a buyer pays with PayPlug's test card and the merchant signs in with the printed login."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import CSRF

ROOT = Path(__file__).resolve().parents[1]


def _free_port_run(count: int) -> int:
    """A base port such that ``count`` consecutive ports are free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count >= 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no run of free ports")


@pytest.fixture
def demo(tmp_path):
    shop_port = _free_port_run(1)
    sim_port = _free_port_run(5)
    env = dict(os.environ, DEMO_PORT=str(shop_port), DEMO_SIMULATOR_PORT=str(sim_port),
               DEMO_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "example_shop.demo"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner = []
    try:
        for line in process.stdout:  # the banner is printed once everything is set up
            banner.append(line)
            if "Ctrl-C stops" in line:
                break
        assert process.poll() is None, "".join(banner)
        url = f"http://127.0.0.1:{shop_port}"
        deadline = time.monotonic() + 20
        while True:  # the banner comes just before the shop binds its port
            try:
                requests.get(url + "/products.json", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the demo shop never answered"
        yield url, "".join(banner)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_make_demo_sells_a_product_through_every_simulated_provider(demo):
    url, banner = demo
    login = re.search(r"login (\S+) / (\S+)", banner)
    assert login and "4242424242424242" in banner

    buyer = requests.Session()
    token = CSRF.search(buyer.get(url + "/").text).group(1)
    buyer.post(url + "/cart/add/MUG-01", data={"csrf_token": token}, timeout=10)
    cart = buyer.get(url + "/cart", timeout=10).text
    placed = buyer.post(url + "/orders", data={"email": "buyer@example.com", "csrf_token": CSRF.search(cart).group(1)},
                        allow_redirects=False, timeout=10)
    assert placed.status_code == 303
    checkout_url = url + placed.headers["Location"]
    checkout = buyer.get(checkout_url, timeout=10)
    ref = checkout_url.rstrip("/").split("/")[-1]
    offered = set(re.findall(r'name="provider" value="([a-z]+)"', checkout.text))
    assert offered == {"payplug", "adyen", "paypal", "sips", "hipay"}

    chosen = buyer.post(checkout_url, data={"provider": "payplug",
                                                          "csrf_token": CSRF.search(checkout.text).group(1)},
                        allow_redirects=False, timeout=10)
    assert chosen.status_code == 303
    paid = buyer.post(chosen.headers["Location"], data={"card_number": "4242 4242 4242 4242", "expiry": "12/30",
                                                       "cvc": "123", "action": "pay"}, timeout=10)
    assert paid.status_code == 200 and 'data-status="paid"' in paid.text
    assert buyer.get(f"{url}/orders/{ref}.json", timeout=10).json()["status"] == "paid"

    merchant = requests.Session()
    page = merchant.get(url + "/psp/admin/login", timeout=10).text
    signed_in = merchant.post(url + "/psp/admin/login", data={"email": login.group(1), "password": login.group(2),
                                                             "csrf_token": CSRF.search(page).group(1)}, timeout=10)
    assert signed_in.status_code == 200
    cookie = signed_in.history[0].headers["Set-Cookie"]  # the sign-in's own answer (a 303)
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and "Secure" not in cookie  # served over http
    payments = merchant.get(url + "/psp/admin/payments", timeout=10)
    assert ref in payments.text


def simulator_credentials_of(name, simulators):
    from example_shop.demo import simulator_credentials

    form = simulator_credentials(name, simulators[name])
    return {k.removeprefix("cred-test-"): v for k, v in form.items() if k != "cred-test-endpoint"}


def test_a_demo_started_again_on_other_ports_points_its_providers_at_the_new_simulators(tmp_path):
    """The providers the first start saved keep the merchant's settings and credentials; their test
    endpoints follow the simulators to their new ports (else checkout says the PSP cannot be reached)."""
    from cryptography.fernet import Fernet

    from example_shop import create_app
    from example_shop.demo import PROVIDERS, seed_providers
    from flask_psp.simulator import create_simulator

    def start():
        simulators = {name: create_simulator(name) for name in PROVIDERS}
        for simulator in simulators.values():
            simulator.serve()
        return simulators

    config = {"TESTING": True, "SECRET_KEY": "demo", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}",
              "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(), "PSP_PROVIDERS": {}}
    first, second = start(), start()
    try:
        app = create_app(config)
        with app.app_context():
            seed_providers(app, first)
            state = app.extensions["psp"]
            state.db.session.execute(sa.text("UPDATE psp_provider_settings SET position = 7 WHERE name = 'hipay'"))
            state.db.session.commit()
        app = create_app(config)  # the second start, its simulators elsewhere
        with app.app_context():
            seed_providers(app, second)
            state = app.extensions["psp"]
            for name in PROVIDERS:
                now = state.settings.config_for(state.db.session, name)
                assert now.endpoint == second[name].url != first[name].url
                assert now.credentials == {k: v for k, v in simulator_credentials_of(name, second).items()}
            assert state.db.session.execute(sa.text(
                "SELECT position FROM psp_provider_settings WHERE name = 'hipay'")).scalar() == 7
            from flask_psp.admin.providers import test_connection

            ok, message = test_connection(state.db.session, state.settings, state.http, "payplug", "test")
            assert ok, message  # the new simulator answers
    finally:
        for simulator in [*first.values(), *second.values()]:
            simulator.server.stop()
            simulator.notifier.close()

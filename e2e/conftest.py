"""Real-browser suite: Playwright (Python) driving Debian's Chromium against the example shop and
the PayPlug simulator, both real servers on loopback. Run with ``make e2e``; screenshots go to
``test-artifacts/`` (and to ``docs/screenshots/`` with ``PSP_E2E_UPDATE_SCREENSHOTS=1``).

Nothing here is optional: a missing Playwright or Chromium, a skipped test or an empty run fails the
suite loudly instead of letting it pass without having driven a browser."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("PSP_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
PASSWORD = "correct-horse-battery"
UPDATE_DOCS = os.environ.get("PSP_E2E_UPDATE_SCREENSHOTS", "") not in ("", "0")


def pytest_sessionstart(session):
    problems = []
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or set PSP_E2E_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("Playwright is not installed: `pip install -e '.[test,e2e]'` (never `playwright install`)")
    if problems:
        pytest.exit("the browser suite cannot run: " + "; ".join(problems), returncode=1)


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0 and (_skipped or session.testscollected == 0):
        reason = f"skipped: {', '.join(_skipped)}" if _skipped else "no test ran"
        session.config.get_terminal_writer().line(f"the browser suite must run whole ({reason})", red=True)
        session.exitstatus = 1


class LiveServer:
    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def sim():
    from flask_psp.simulator import create_simulator

    simulator = create_simulator("payplug", retry_delays=(5, 30))
    server = simulator.serve()
    yield simulator
    server.stop()
    simulator.notifier.close()


@pytest.fixture
def shop(tmp_path, sim):
    """The example shop, no provider in the configuration (the merchant sets them in the panel), and
    one built-in account per role."""
    from cryptography.fernet import Fernet

    from example_shop import create_app, db, psp

    holder = {}
    server = LiveServer(lambda environ, start_response: holder["app"](environ, start_response))
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "e2e-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'e2e.db'}",
        "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "PSP_PUBLIC_URL": server.url,
        "PSP_PROVIDERS": {},
    })
    holder["app"] = app
    with app.app_context():
        for role in ("owner", "manager", "accountant", "viewer"):
            psp.create_user(f"{role}@example.com", PASSWORD, role=role)
    server.start()
    app.test_url = server.url
    yield app
    server.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(locale="en-GB", permissions=()):
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900},
                                      permissions=list(permissions))
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()

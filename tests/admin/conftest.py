"""Fixtures for the admin panel: the example shop with panel-managed providers and one built-in
account per role, and an ``Admin`` helper that signs in and posts forms like a browser."""

from __future__ import annotations

import re

import pytest
import requests

PASSWORD = "correct-horse-battery"
ROLES = ("owner", "manager", "accountant", "viewer")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Admin:
    def __init__(self, shop, email=None):
        self.shop = shop
        self.email = email
        self.http = requests.Session()
        self.http.headers["Accept-Language"] = "en"
        self.token = None

    def url(self, path):
        return f"{self.shop.url}/psp/admin{path}"

    def get(self, path, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        answer = self.http.get(self.url(path), timeout=15, **kwargs)
        match = CSRF.search(answer.text)
        if match:
            self.token = match.group(1)
        return answer

    def csrf(self):
        if self.token is None:
            page = self.http.get(self.url("/login"), timeout=15)
            self.token = CSRF.search(page.text).group(1)
        return self.token

    def post(self, path, data=None, files=None, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf())
        answer = self.http.post(self.url(path), data=data, files=files, timeout=30, **kwargs)
        match = CSRF.search(answer.text)
        if match:
            self.token = match.group(1)
        return answer

    def login(self, email=None, password=PASSWORD):
        email = email or self.email
        answer = self.post("/login", {"email": email, "password": password})
        return answer


class Panel:
    """The shop plus helpers: ``panel.admin(role)`` is a signed-in Admin."""

    def __init__(self, shop):
        self.shop = shop
        self.app = shop.app
        self.url = shop.url
        self.sim = shop.sim

    def admin(self, role="owner"):
        admin = Admin(self.shop, f"{role}@example.com")
        answer = admin.login()
        assert answer.status_code == 303, answer.text
        return admin

    def db(self):
        return self.app.extensions["psp"].db

    def query(self, fn):
        with self.app.app_context():
            return fn(self.db().session)


@pytest.fixture
def make_panel(make_shop):
    def build(psp_providers=None, **config):
        shop = make_shop(psp_providers={} if psp_providers is None else psp_providers, **config)
        from example_shop import psp

        with shop.app.app_context():
            for role in ROLES:
                psp.create_user(f"{role}@example.com", PASSWORD, role=role)
        return Panel(shop)

    return build


@pytest.fixture
def panel(make_panel):
    return make_panel()


def configure_payplug(panel, sim_url, key="sk_test_simulator", **extra):
    """The owner enters PayPlug test credentials with the simulator as endpoint and enables it."""
    owner = panel.admin("owner")
    form = {"enabled": "on", "mode": "test", "capture": "auto", "three_ds": "when_required", "position": "0",
            "cred-test-secret_key": key, "cred-test-endpoint": sim_url, "cred-live-secret_key": "",
            "cred-live-endpoint": ""}
    form.update(extra)
    answer = owner.post("/providers/payplug", form)
    assert answer.status_code == 303, answer.text
    return owner

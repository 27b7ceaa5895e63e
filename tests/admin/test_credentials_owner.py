"""Credentials stay with the owner (issue 10, point 5): an endpoint decides where a mode's secrets
are sent, so only the owner changes it, only to the provider's own hosts (loopback simulators in
test mode; anything with PSP_ALLOW_CUSTOM_ENDPOINTS), a change forgets the secrets typed for the old
host, and "Test connection" never hands a secret to a host it was not typed for. A real HTTP
listener on loopback stands for the stranger's host: it records every request it gets."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from flask_psp.simulator import create_simulator

from .conftest import configure_payplug
from .test_provider_forms import BASE, CONNECTIONS, creds, flash


class Listener:
    """An HTTP server on 127.0.0.1 that records each request (method, path, headers, body) before
    answering 401, so a request is recorded before its sender gets any answer."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received.append((self.command, self.path, dict(self.headers), body))
                payload = b'{"message": "who are you?"}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def stored(panel, name="payplug"):
    from flask_psp.models import ProviderSettings

    row = panel.query(lambda s: s.scalar(select(ProviderSettings).where(ProviderSettings.name == name)))
    return panel.app.extensions["psp"].box.decrypt(row.credentials)


def audit_entries(panel, action):
    from flask_psp.models import AuditEntry

    return panel.query(lambda s: [(a.actor, a.details) for a in s.scalars(
        select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))])


def payplug_form(**fields):
    form = {"enabled": "on", "mode": "test", "capture": "auto", "three_ds": "when_required", "position": "0",
            "cred-test-secret_key": "", "cred-live-secret_key": ""}
    form.update(fields)
    return form


# ---------------------------------------------------------------------------- the repro
def test_a_manager_cannot_send_the_live_key_to_another_host(make_panel, listener):
    panel = make_panel(PSP_ALLOW_CUSTOM_ENDPOINTS=True)  # the simulator stands in for PayPlug's live API
    sim = panel.sim
    owner = configure_payplug(panel, sim.url, **{"cred-live-secret_key": "sk_live_simulator",
                                                 "cred-live-endpoint": sim.url})
    manager = panel.admin("manager")

    # the repro: the live endpoint pointed at a stranger's host, the secret left blank
    answer = manager.post("/providers/payplug", payplug_form(**{"cred-test-endpoint": sim.url,
                                                                "cred-live-endpoint": listener.url}))
    assert answer.status_code == 400
    assert "Only the owner can change the live endpoint" in answer.text
    assert stored(panel)["live"] == {"secret_key": "sk_live_simulator", "endpoint": sim.url}  # nothing changed

    tested = manager.post("/providers/payplug/test", {"mode": "live"}, allow_redirects=True)
    kind, message = flash(tested)
    assert kind == "psp-ok" and "Connected to PayPlug in live mode" in message, message
    assert listener.received == []  # the key went to the host it was typed for, and only there

    # the refused attempt is on record, with where it wanted the secrets to go
    ((who, details),) = audit_entries(panel, "provider.endpoint_refused")
    assert who == "manager@example.com"
    assert details["endpoints"] == {"live": {"old": sim.url, "new": listener.url}}
    assert "sk_live_simulator" not in json.dumps(details)
    # the form says so; the manager can still do the rest of it: secrets, limits, mode
    assert 'data-owner-only="1"' not in owner.get("/providers/payplug").text
    page = manager.get("/providers/payplug").text
    assert 'data-owner-only="1"' in page and "Only the owner can change the endpoint" in page
    assert manager.post("/providers/payplug", payplug_form(**{"cred-test-endpoint": sim.url,
                                                              "cred-live-endpoint": sim.url,
                                                              "max_amount": "500"})).status_code == 303


# ---------------------------------------------------------------------------- an endpoint change forgets secrets
@pytest.mark.parametrize("name", sorted(CONNECTIONS))
def test_an_endpoint_change_forgets_the_secrets_typed_for_the_old_host(panel, listener, name):
    good, _wrongs = CONNECTIONS[name]
    sim = create_simulator(name)
    server = sim.serve()
    try:
        owner = panel.admin("owner")
        values = good(sim)
        assert owner.post(f"/providers/{name}", {**BASE, **creds("test", values, sim.url)}).status_code == 303
        kind, message = flash(owner.post(f"/providers/{name}/test", {"mode": "test"}, allow_redirects=True))
        assert kind == "psp-ok", message

        # the owner moves the test endpoint and leaves the secrets blank
        form = {**BASE, **creds("test", {k: v for k, v in values.items() if k not in SECRETS[name]}, listener.url)}
        for secret in SECRETS[name]:
            form[f"cred-test-{secret}"] = ""
        moved = owner.post(f"/providers/{name}", form, allow_redirects=True)
        assert moved.status_code == 200
        kind, message = flash(owner.post(f"/providers/{name}/test", {"mode": "test"}, allow_redirects=True))
        assert listener.received == []  # no secret of the old host reached the new one
        assert kind == "psp-error" and ("incomplete" in message or "no test credentials" in message), message

        assert "the saved test secrets were forgotten: type them again for the new host" in moved.text
        kept = stored(panel, name)["test"]
        assert kept["endpoint"] == listener.url and not set(SECRETS[name]) & set(kept)

        first, moving = [details for _who, details in audit_entries(panel, "provider.update")]
        assert first["endpoints"] == {"test": {"old": None, "new": sim.url}} and "secrets_cleared" not in first
        details = moving
        assert details["endpoints"] == {"test": {"old": sim.url, "new": listener.url}}
        assert details["secrets_cleared"] == {"test": sorted(SECRETS[name])}
        assert not any(str(values[s]) in json.dumps(details) for s in SECRETS[name])
    finally:
        server.stop()
        sim.notifier.close()


#: the secret fields each provider's connection test could send (its CredentialField(secret=True))
SECRETS = {"payplug": ["secret_key"], "adyen": ["api_key", "hmac_key"], "paypal": ["client_secret"],
           "sips": ["secret_key"], "hipay": ["api_password", "secret_passphrase"]}


def test_secrets_typed_with_the_new_endpoint_are_kept_and_an_enabled_mode_needs_them(panel, listener):
    owner = configure_payplug(panel, panel.sim.url)  # enabled in test mode
    refused = owner.post("/providers/payplug", payplug_form(**{"cred-test-endpoint": listener.url}))
    assert refused.status_code == 400
    assert "type its test secrets again for the new endpoint" in refused.text
    assert stored(panel)["test"] == {"secret_key": "sk_test_simulator", "endpoint": panel.sim.url}

    typed = owner.post("/providers/payplug", payplug_form(**{"cred-test-endpoint": listener.url,
                                                             "cred-test-secret_key": "sk_test_for_the_new_host"}),
                       allow_redirects=True)
    assert typed.status_code == 200 and "were forgotten" not in typed.text
    assert stored(panel)["test"] == {"secret_key": "sk_test_for_the_new_host", "endpoint": listener.url}
    owner.post("/providers/payplug/test", {"mode": "test"})
    ((_method, _path, headers, _body),) = listener.received
    assert headers["Authorization"] == "Bearer sk_test_for_the_new_host"  # the key typed for this host, only


# ---------------------------------------------------------------------------- the provider's own hosts
def test_live_endpoints_are_the_providers_own_hosts(panel, listener):
    owner = configure_payplug(panel, panel.sim.url)
    for endpoint in (listener.url, "https://api.payplug.com.evil.example", "https://api.payplug.com:8443",
                     "http://api.payplug.com", "https://user:pw@api.payplug.com"):
        answer = owner.post("/providers/payplug", payplug_form(**{"cred-live-endpoint": endpoint,
                                                                  "cred-live-secret_key": "sk_live_simulator"}))
        assert answer.status_code == 400, endpoint
        assert "live" not in stored(panel), endpoint
    assert "without user" in answer.text
    refused = owner.post("/providers/payplug", payplug_form(**{"cred-live-endpoint": listener.url,
                                                               "cred-live-secret_key": "sk_live_simulator"}))
    assert "own hosts over https (api.payplug.com)" in refused.text
    assert "PSP_ALLOW_CUSTOM_ENDPOINTS = True" in refused.text

    accepted = owner.post("/providers/payplug", payplug_form(**{"cred-live-endpoint": "https://api.payplug.com/",
                                                                "cred-live-secret_key": "sk_live_simulator"}))
    assert accepted.status_code == 303
    assert stored(panel)["live"] == {"secret_key": "sk_live_simulator", "endpoint": "https://api.payplug.com"}

    # test mode: the provider's test hosts or a simulator on this machine
    stranger = owner.post("/providers/payplug", payplug_form(**{"cred-test-endpoint": "https://payplug.evil.example",
                                                                "cred-test-secret_key": "sk_test_simulator"}))
    assert stranger.status_code == 400 and "a simulator on this machine" in stranger.text
    assert owner.post("/providers/payplug", payplug_form(**{"cred-test-endpoint": "http://localhost:8101",
                                                            "cred-test-secret_key": "sk_test_simulator"})).status_code == 303


def test_adyen_live_hosts_carry_the_merchants_prefix(panel):
    owner = panel.admin("owner")
    live = {"api_key": "AQE_live_key", "merchant_account": "ShopECOM", "hmac_key": "44782DEF547AAA06",
            "live_endpoint_prefix": "1797a841fbb37ca7-ShopCom"}
    own = "https://1797a841fbb37ca7-shopcom-checkout-live.adyenpayments.com/checkout"
    for endpoint, status in (("https://someoneelse-checkout-live.adyenpayments.com/checkout", 400),
                             ("https://checkout-live.adyenpayments.com.evil.example", 400), (own, 303)):
        answer = owner.post("/providers/adyen", {**BASE, **creds("live", live, endpoint)})
        assert answer.status_code == status, (endpoint, answer.text)
    from flask_psp.models import ProviderSettings

    row = panel.query(lambda s: s.scalar(select(ProviderSettings).where(ProviderSettings.name == "adyen")))
    assert panel.app.extensions["psp"].box.decrypt(row.credentials)["live"]["endpoint"] == own


def test_custom_endpoints_are_the_applications_choice(make_panel, listener):
    panel = make_panel(PSP_ALLOW_CUSTOM_ENDPOINTS=True)
    owner = configure_payplug(panel, panel.sim.url)
    assert "Any host is accepted (PSP_ALLOW_CUSTOM_ENDPOINTS)" in owner.get("/providers/payplug").text
    for endpoint, status in ((listener.url, 303), ("https://psp-proxy.internal.example", 303),
                             ("http://psp-proxy.internal.example", 400)):  # live secrets never cross a network in clear
        answer = owner.post("/providers/payplug", payplug_form(**{"cred-live-endpoint": endpoint,
                                                                  "cred-live-secret_key": "sk_live_simulator"}))
        assert answer.status_code == status, (endpoint, answer.text)


def test_configured_endpoints_are_trusted_but_must_be_urls():
    from flask_psp.config import ConfigurationError, validate_providers

    entry = {"enabled": True, "mode": "live", "live": {"secret_key": "sk_live_x", "endpoint": "http://127.0.0.1:8101"}}
    assert validate_providers({"payplug": entry}, has_encryption_key=True)["payplug"]["live"]["endpoint"] \
        == "http://127.0.0.1:8101"  # simulators and proxies: any host, by configuration
    for endpoint in ("ftp://127.0.0.1", "127.0.0.1:8101", "https://u:p@proxy.example", "https://proxy.example/?x=1"):
        broken = {**entry, "live": {**entry["live"], "endpoint": endpoint}}
        with pytest.raises(ConfigurationError, match=r"\['endpoint'\] must be a base URL"):
            validate_providers({"payplug": broken}, has_encryption_key=True)


# ---------------------------------------------------------------------------- the check, against another URL parser
HOST_PIECES = ["https://", "http://", "api.payplug.com", "api-m.paypal.com", "127.0.0.1", "localhost", "[::1]",
               "evil.example", ".", "@", ":", ":443", ":8443", "/", "\\", "%2e", "%40", "?", "#", "\t", "\n", " ",
               "user:pw@", "abc-shop-checkout-live.adyenpayments.com", "api.hipay.com", "x"]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(HOST_PIECES), min_size=1, max_size=7).map("".join),
                 st.text(max_size=60)),
       st.sampled_from(["adyen", "paypal", "payplug", "sips", "hipay"]), st.sampled_from(["test", "live"]))
def test_an_accepted_endpoint_reaches_the_providers_own_host_as_requests_reads_it(url, name, mode):
    """Whatever is typed, an endpoint the check accepts is, as urllib3 (under requests) parses it, a
    provider's own host over https, or a loopback simulator in test mode."""
    from urllib3.util import parse_url

    from flask_psp.providers import get_provider_class
    from flask_psp.providers.base import endpoint_problem, is_loopback_host

    cls = get_provider_class(name)
    credentials = {"live_endpoint_prefix": "abc-shop"}
    if endpoint_problem(cls, mode, url, credentials) is not None:
        return
    parsed = parse_url(url)
    host = (parsed.host or "").strip("[]").lower()
    if mode == "test" and is_loopback_host(host):
        assert parsed.scheme in ("http", "https")
        return
    assert parsed.scheme == "https" and parsed.port in (None, 443) and parsed.auth is None, url
    assert host in cls.own_api_hosts(mode, credentials), url

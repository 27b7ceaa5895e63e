"""The session of the calls to the PSPs reads the environment once (issue 15): what a shop's
operator notices is that a proxy they configure is still used, and that ``~/.netrc`` credentials
never reach a PSP."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flask_psp.providers.base import http_session


@pytest.fixture
def recorder():
    """A loopback HTTP server that answers 200 and keeps each request's target and headers."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append((self.path, dict(self.headers)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_a_configured_proxy_carries_the_calls(recorder, monkeypatch):
    address, seen = recorder
    monkeypatch.setenv("HTTP_PROXY", f"http://{address}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = http_session((2, 2))
    answer = session.get("http://psp.example.invalid/v1/payments/pay_1", timeout=session.psp_timeout)
    assert answer.status_code == 200
    assert seen[0][0] == "http://psp.example.invalid/v1/payments/pay_1"  # an absolute target: through the proxy


def test_without_a_proxy_netrc_credentials_are_not_sent(recorder, monkeypatch, tmp_path):
    address, seen = recorder
    host = address.split(":")[0]
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine {host} login someone password not-for-a-psp\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    session = http_session((2, 2))
    assert session.get(f"http://{address}/v1/payments/pay_1", timeout=session.psp_timeout).status_code == 200
    path, headers = seen[0]
    assert path == "/v1/payments/pay_1" and "Authorization" not in headers


def test_the_ca_bundle_named_in_the_environment_is_the_one_used(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    assert http_session(environ={"REQUESTS_CA_BUNDLE": str(bundle)}).verify == str(bundle)
    assert http_session(environ={"CURL_CA_BUNDLE": str(bundle)}).verify == str(bundle)
    assert http_session(environ={}).verify is True
    # with a proxy, requests reads all of it on each call, as by default
    assert http_session(environ={"https_proxy": "http://proxy:3128"}).trust_env is True

"""Worldline Sips has three environments — SIMU (the public simulation merchant), TEST (a merchant's
own test keys) and PROD — each with a payment page host and a *different* Sips Office host
(worldline/sips-sdk-php ``SipsEnvironment``, develop branch). Test mode picks SIMU or TEST with the
``environment`` setting; ``endpoint`` overrides the payment page and ``office_endpoint`` the Office.
SIMU's merchant and key are published: live mode refuses them, in ``PSP_PROVIDERS`` and in the panel."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import pytest

from flask_psp.config import ConfigurationError, validate_providers
from flask_psp.providers.base import ProviderConfig
from flask_psp.providers.sips import SipsProvider
from tests.operations import merchant

from .conftest import (
    MERCHANT, SECRET, SIMULATION_MERCHANT, back_to_shop, go_to_sips, only_payment, pay_on_sips, sips_settings,
)
from .test_sips_office import ManInTheMiddle
from .test_sips_office import merchant as merchant_does

LIVE = {"merchant_id": "211000021310001", "secret_key": "live-merchant-secret-key-0123456789", "key_version": "2"}


def sips(mode="test", endpoint=None, office_endpoint=None, **credentials):
    block = {"merchant_id": MERCHANT, "secret_key": SECRET, "key_version": "1"} if mode == "test" else dict(LIVE)
    block.update(credentials)
    extra = {"office_endpoint": office_endpoint} if office_endpoint else {}
    return SipsProvider(ProviderConfig(name="sips", mode=mode, credentials=block, endpoint=endpoint,
                                       extra_endpoints=extra))


def hosts(provider):
    return urlsplit(provider.paypage_url).netloc, urlsplit(provider.office_url).netloc


@pytest.mark.parametrize(("mode", "environment", "expected"), [
    ("test", None, ("payment-webinit.simu.sips-services.com", "office-server.simu.sips-services.com")),
    ("test", "simu", ("payment-webinit.simu.sips-services.com", "office-server.simu.sips-services.com")),
    ("test", "test", ("payment-webinit.test.sips-services.com", "office-server.test.sips-services.com")),
    ("live", None, ("payment-webinit.sips-services.com", "office-server.sips-services.com")),
])
def test_each_environment_has_its_payment_page_host_and_its_office_host(mode, environment, expected):
    provider = sips(mode, **({"environment": environment} if environment else {}))
    assert hosts(provider) == expected
    assert provider.paypage_url.endswith("/paymentInit") and provider.office_url.endswith("/rs-services/v2")


def test_an_endpoint_naming_a_worldline_payment_page_host_does_not_send_captures_there():
    provider = sips(endpoint="https://payment-webinit.test.sips-services.com")
    assert hosts(provider) == ("payment-webinit.test.sips-services.com", "office-server.test.sips-services.com")


def test_office_endpoint_overrides_the_office_alone():
    provider = sips(endpoint="http://127.0.0.1:9001", office_endpoint="http://127.0.0.1:9002/")
    assert provider.paypage_url == "http://127.0.0.1:9001/paymentInit"
    assert provider.office_url == "http://127.0.0.1:9002/rs-services/v2"
    alone = sips(endpoint="http://127.0.0.1:9001")  # a simulator serves both roles on one port (make demo)
    assert alone.office_url == "http://127.0.0.1:9001/rs-services/v2"


def test_captures_go_to_the_office_endpoint(make_shop, sim):
    office = ManInTheMiddle(sim.url)
    seen = []
    office.rewrite = lambda answer: seen.append(answer) or answer
    try:
        settings = sips_settings(sim, capture="manual", office_endpoint=office.url)
        shop = make_shop(psp_providers=settings)
        buyer = shop.buyer()
        ref, page, _fields = go_to_sips(shop, buyer)  # the payment page stays on the simulator
        back_to_shop(pay_on_sips(buyer, page).text)
        assert sim.notifier.wait_idle(timeout=10)
        payment = only_payment(shop, ref)
        merchant_does(shop, "capture", payment["token"])
        assert only_payment(shop, ref)["status"] == "paid"
        assert len(seen) == 1 and seen[0]["responseCode"] == "00"  # the capture went through the Office host
        assert sim.office_requests[-1]["operation"] == "validate"
    finally:
        office.server.shutdown()


@pytest.mark.parametrize("credentials", [
    {"merchant_id": "002001000000001"},
    {"secret_key": "002001000000001_KEY1"},
    {"merchant_id": "002001000000003", "secret_key": "002001000000003_KEY1"},
])
def test_init_app_refuses_the_simulation_merchant_or_key_in_live_mode(credentials):
    providers = {"sips": {"mode": "live", "live": {**LIVE, **credentials}}}
    with pytest.raises(ConfigurationError) as refused:
        validate_providers(providers, has_encryption_key=True)
    assert "simulation" in str(refused.value)
    test_mode = {"sips": {"mode": "test", "test": {**LIVE, **credentials, "environment": "simu"}}}
    assert validate_providers(test_mode, has_encryption_key=True)["sips"]["test"]["environment"] == "simu"


def test_init_app_takes_office_endpoint_and_checks_its_shape():
    good = {"sips": {"mode": "test", "test": {**LIVE, "environment": "test", "endpoint": "http://127.0.0.1:1",
                                              "office_endpoint": "http://127.0.0.1:2"}}}
    assert validate_providers(good, has_encryption_key=True)["sips"]["test"]["office_endpoint"] == "http://127.0.0.1:2"
    bad = {"sips": {"mode": "test", "test": {**LIVE, "office_endpoint": "ftp://x"}}}
    with pytest.raises(ConfigurationError, match="office_endpoint"):
        validate_providers(bad, has_encryption_key=True)


def panel_form(**changes):
    form = {"enabled": "on", "mode": "test", "capture": "auto", "three_ds": "when_required", "position": "0",
            "cred-test-merchant_id": MERCHANT, "cred-test-secret_key": SECRET, "cred-test-key_version": "1",
            "cred-test-seal_algorithm": "HMAC-SHA-256"}
    form.update(changes)
    return form


def test_the_panel_shows_and_saves_the_environment_and_the_office_endpoint(make_shop):
    shop = make_shop(psp_providers={})
    owner = merchant(shop, "owner")
    page = owner.get("/providers/sips")
    assert 'name="cred-test-environment"' in page.text and 'name="cred-live-environment"' not in page.text
    assert 'name="cred-test-office_endpoint"' in page.text and 'name="cred-live-office_endpoint"' in page.text
    saved = owner.post("/providers/sips", panel_form(**{
        "cred-test-environment": "test", "cred-test-office_endpoint": "https://office-server.test.sips-services.com"}))
    assert saved.status_code == 303, saved.text
    with shop.app.app_context():
        from flask_psp.extension import current_state

        state = current_state()
        config = state.settings.config_for(state.db.session, "sips")
    provider = SipsProvider(config)
    assert provider.environment == "test"
    assert hosts(provider) == ("payment-webinit.test.sips-services.com", "office-server.test.sips-services.com")
    shown = owner.get("/providers/sips").text
    assert 'value="https://office-server.test.sips-services.com"' in shown


def test_the_panel_refuses_an_office_endpoint_on_another_host(make_shop):
    shop = make_shop(psp_providers={})
    owner = merchant(shop, "owner")
    refused = owner.post("/providers/sips", panel_form(**{"cred-test-office_endpoint": "https://evil.example"}))
    assert refused.status_code == 400 and "office-server.test.sips-services.com" in html.unescape(refused.text)


def test_the_panel_refuses_the_simulation_key_in_live_mode(make_shop):
    shop = make_shop(psp_providers={})
    owner = merchant(shop, "owner")
    refused = owner.post("/providers/sips", panel_form(**{
        "cred-live-merchant_id": "002001000000001", "cred-live-secret_key": SECRET, "cred-live-key_version": "1"}))
    assert refused.status_code == 400
    assert "public simulation merchant" in html.unescape(refused.text)


def test_the_connection_test_says_which_environment_and_office_host_it_reached(sim):
    ok, said = sips(endpoint=sim.url, environment="test").test_connection()
    assert ok and "(TEST environment, 127.0.0.1:" in said and SIMULATION_MERCHANT in said
    assert sim.office_requests[-1]["operation"] == "getTransactionData"

"""The hosted payment page must be on one of the PSP's own hosts: a tampered API answer must not send
buyers elsewhere. ``PSP_EXTRA_REDIRECT_HOSTS`` extends the lists (a PSP's new region before a
release knows it), and a refusal is logged with the host's name, so the merchant knows what to add."""

from __future__ import annotations

import logging

import pytest

from flask_psp.config import ConfigurationError, extra_redirect_hosts
from flask_psp.providers.adyen import AdyenProvider
from flask_psp.providers.base import ProviderConfig
from flask_psp.providers.sips import SipsProvider
from tests.conftest import TEST_KEY
from tests.sips.test_sips_office import ManInTheMiddle

ELSEWHERE = "pay.elsewhere.example"


@pytest.fixture
def mitm(sim):
    """PayPlug's API answering a payment page on another host."""
    proxy = ManInTheMiddle(sim.url)

    def elsewhere(answer):
        if isinstance(answer.get("hosted_payment"), dict):
            answer["hosted_payment"]["payment_url"] = f"https://{ELSEWHERE}/pay/{answer['id']}"
        return answer

    proxy.rewrite = elsewhere
    yield proxy
    proxy.server.shutdown()


def through(mitm):
    return {"payplug": {"enabled": True, "mode": "test", "test": {"secret_key": TEST_KEY, "endpoint": mitm.url}}}


def test_an_unlisted_host_stops_the_checkout_and_is_named_in_the_log(make_shop, mitm, caplog):
    shop = make_shop(psp_providers=through(mitm))
    buyer = shop.buyer()
    ref = buyer.place_order()
    with caplog.at_level(logging.WARNING, logger="flask_psp"):
        answer = buyer.choose(ref)
    assert answer.status_code != 303
    (line,) = [r.getMessage() for r in caplog.records if "PSP_EXTRA_REDIRECT_HOSTS" in r.getMessage()]
    assert f"https://{ELSEWHERE}, a host not in its allow-list" in line
    assert shop.payments(ref)[0]["status"] == "failed"


@pytest.mark.parametrize("extra", [[ELSEWHERE], {"payplug": [ELSEWHERE.upper()]}])
def test_psp_extra_redirect_hosts_extends_the_list(make_shop, mitm, extra):
    shop = make_shop(psp_providers=through(mitm), PSP_EXTRA_REDIRECT_HOSTS=extra)
    buyer = shop.buyer()
    answer = buyer.choose(buyer.place_order())
    assert answer.status_code == 303 and answer.headers["Location"].startswith(f"https://{ELSEWHERE}/pay/")


def test_another_providers_extra_host_does_not_count(make_shop, mitm):
    shop = make_shop(psp_providers=through(mitm), PSP_EXTRA_REDIRECT_HOSTS={"adyen": [ELSEWHERE]})
    buyer = shop.buyer()
    assert buyer.choose(buyer.place_order()).status_code != 303


@pytest.mark.parametrize("value", ["pay.example.com", ["not a host"], ["localhost"], {"nope": ["a.example"]},
                                   {"adyen": "a.example"}])
def test_a_malformed_setting_is_refused_at_start_up(value):
    with pytest.raises(ConfigurationError, match="PSP_EXTRA_REDIRECT_HOSTS"):
        extra_redirect_hosts({"PSP_EXTRA_REDIRECT_HOSTS": value})


def test_the_lists_hold_each_psps_documented_hosts():
    adyen = AdyenProvider(ProviderConfig(name="adyen", mode="live", credentials={}))
    # Adyen's SDKs' Environment lists: test, and live per region
    assert {"checkoutshopper-test.adyen.com", "checkoutshopper-live.adyen.com", "checkoutshopper-live-us.adyen.com",
            "checkoutshopper-live-au.adyen.com", "checkoutshopper-live-apse.adyen.com",
            "checkoutshopper-live-in.adyen.com", "checkoutshopper-live-nea.adyen.com"} <= adyen.allowed_redirect_hosts()
    sips = SipsProvider(ProviderConfig(name="sips", mode="test", credentials={}))
    # worldline/sips-sdk-php SipsEnvironment: SIMU, TEST, PROD
    assert {"payment-webinit.simu.sips-services.com", "payment-webinit.test.sips-services.com",
            "payment-webinit.sips-services.com"} <= sips.allowed_redirect_hosts()

"""HiPay signs notifications with the account's hash algorithm (SHA-1, SHA-256 or SHA-512, a back
office setting). HiPay's PHP SDK defaults to SHA-1, other integrations to SHA-256: a mismatch makes
every notification fail. Such a notification is still refused (the setting is the proof's rule),
but the inbox and the merchant's notice say which algorithm signed it and what to set; the
connection test reads the account's security settings (``GET /v2/security-settings``,
``hashingAlgorithm``: hipay-fullservice-sdk-php ``GatewayClient::requestSecuritySettings``) and
compares. The legacy ``cdata1`` gives way to ``custom_data``, a JSON object."""

from __future__ import annotations

import json

import pytest
import requests
import sqlalchemy as sa

from flask_psp.models import PaymentEvent
from flask_psp.providers.base import NotAuthentic, ProviderConfig
from flask_psp.providers.hipay import HiPayProvider, body_signature
from flask_psp.simulator.hipay import DEFAULT_ACCOUNTS, HiPaySimulator
from tests.admin.conftest import make_panel  # noqa: F401 - a fixture
from tests.admin.test_mail import mail_config, set_notifications, smtp  # noqa: F401 - smtp is a fixture
from tests.conftest import serving

from .conftest import PASSPHRASE, PASSWORD, USER, go_to_hipay, hipay_settings, only_payment
from .test_hipay_wire import checkout, notification


def provider(url=None, **credentials):
    block = {"api_username": USER, "api_password": PASSWORD, "secret_passphrase": PASSPHRASE, **credentials}
    return HiPayProvider(ProviderConfig(name="hipay", mode="test", credentials=block, endpoint=url))


@pytest.mark.parametrize(("configured", "signed", "named"), [
    ("sha256", "sha1", "SHA-1"), ("sha1", "sha256", "SHA-256"), ("sha256", "sha512", "SHA-512"),
])
def test_a_notification_signed_with_another_algorithm_is_refused_with_what_to_set(configured, signed, named):
    inbound = notification(118, signed_with=PASSPHRASE, algorithm=signed)
    with pytest.raises(NotAuthentic) as refused:
        provider(hash_algorithm=configured).verify_notification(inbound)
    said = str(refused.value)
    assert said.startswith(f"signed with {named}, not ") and f"set the hash algorithm to {signed} in the panel" in said
    assert "HiPay's back office" in said


def test_a_wrong_passphrase_says_nothing_of_algorithms():
    with pytest.raises(NotAuthentic) as refused:
        provider().verify_notification(notification(118, signed_with="guessed", algorithm="sha1"))
    assert "signed with" not in str(refused.value)


@pytest.fixture
def sha1_sim():
    """HiPay's account signs with SHA-1 (the PHP SDK's default), while the shop says SHA-256."""
    accounts = {user: {**account, "hash_algorithm": "sha1"} for user, account in DEFAULT_ACCOUNTS.items()}
    yield from serving(HiPaySimulator(accounts=accounts, retry_delays=(30, 60, 120)))


def test_the_inbox_and_the_merchants_notice_say_which_algorithm_signed(make_panel, sha1_sim, smtp):
    panel = make_panel(psp_providers=hipay_settings(sha1_sim), **mail_config(smtp.port))
    set_notifications(panel, ["notification_problem"], receipt=False, addresses="ops@example.com")
    shop = panel.shop
    ref, _page_url = go_to_hipay(shop, shop.buyer())
    token = only_payment(shop, ref)["token"]
    body = f"state=completed&status=118&transaction_reference=800000000009&test=true&order%5Bid%5D={token}".encode()
    signature = body_signature(body, PASSPHRASE, "sha1")
    answer = requests.post(shop.notify_url("hipay"), data=body, timeout=10,
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "X-ALLOPASS-SIGNATURE": signature})
    assert answer.status_code == 403
    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        row = session.scalars(sa.select(PaymentEvent).where(PaymentEvent.source == "notify")).one()
        assert row.outcome == "rejected" and row.outcome_detail.startswith("signed with SHA-1, not SHA-256")
    assert smtp.wait_for(1)
    notice = smtp.messages[0][1].get_content()
    assert "signed with SHA-1" in notice and "set the hash algorithm to sha1" in notice


def test_the_connection_test_compares_the_accounts_hash_algorithm(sha1_sim):
    ok, said = provider(sha1_sim.url, hash_algorithm="sha256").test_connection()
    assert not ok and "HiPay signs with SHA-1 and the panel says SHA-256" in said
    assert "Set the hash algorithm to sha1" in said
    ok, said = provider(sha1_sim.url, hash_algorithm="sha1").test_connection()
    assert ok and "signs with SHA-1, as configured" in said


def test_the_security_settings_are_read_where_the_sdk_reads_them(sha1_sim):
    answer = requests.get(sha1_sim.url + "/v2/security-settings", auth=(USER, PASSWORD), timeout=10)
    assert answer.status_code == 200 and answer.json() == {"hashingAlgorithm": "SHA1"}
    assert requests.get(sha1_sim.url + "/v2/security-settings", auth=(USER, "wrong"), timeout=10).status_code == 401
    assert provider(sha1_sim.url).account_hash_algorithm() == "sha1"


def test_custom_data_replaces_cdata1_and_is_a_json_object(sim):
    fields = provider(sim.url).build_hpayment(checkout())
    assert not any(name.startswith("cdata") for name in fields)
    assert json.loads(fields["custom_data"]) == {"order_ref": "ORD-7"}
    started = provider(sim.url).start_checkout(checkout(), "test")
    assert started.redirect_url.startswith(sim.url)
    refused = requests.post(sim.url + "/v1/hpayment", auth=(USER, PASSWORD), timeout=10,
                            data={**fields, "custom_data": "not json"})
    assert refused.status_code == 400 and "custom_data" in refused.text

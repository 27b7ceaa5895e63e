"""Each of the five providers from the panel: its own field validation, and "Test connection" against
its simulator, saying in plain words what is wrong."""

from __future__ import annotations

import re

import pytest

from flask_psp.simulator import create_simulator

BASE = {"mode": "test", "capture": "auto", "three_ds": "when_required", "position": "0"}

#: name → (credentials the simulator accepts, {field: wrong value} → words the merchant reads)
CONNECTIONS = {
    "payplug": (
        lambda sim: {"secret_key": "sk_test_simulator"},
        [({"secret_key": "sk_test_unknown"}, "PayPlug refused the secret key")],
    ),
    "adyen": (
        lambda sim: {"api_key": "AQE_test_simulator_key", "merchant_account": sim.merchant_account,
                     "hmac_key": sim.hmac_key},
        [({"api_key": "AQE_wrong"}, "Adyen refused the API key"),
         ({"merchant_account": "SomeoneElseECOM"}, "may not use this merchant account")],
    ),
    "paypal": (
        lambda sim: {"client_id": "sim-client-id", "client_secret": "sim-client-secret",
                     "webhook_id": "8PT597110X687430LKGECATA"},
        [({"client_secret": "not-the-secret"}, "PayPal refused the client ID / secret"),
         ({"webhook_id": "WH0000000000UNKNOWN"}, "this app has no webhook with that ID")],
    ),
    "sips": (
        lambda sim: {"merchant_id": "002001000000001", "secret_key": "002001000000001_KEY1", "key_version": "1",
                     "seal_algorithm": "HMAC-SHA-256"},
        [({"secret_key": "002001000000001_KEY2"}, "check key_version and secret_key")],
    ),
    "hipay": (
        lambda sim: {"api_username": "hipay_sim_api_user", "api_password": "hipay_sim_api_password",
                     "secret_passphrase": "hipay-sim-passphrase", "hash_algorithm": "sha256"},
        [({"api_password": "wrong-password"}, "HiPay refused the API username or password")],
    ),
}

#: name → (test credentials with one field wrong, words naming what is wrong)
INVALID = {
    "payplug": [({"secret_key": "sk_live_0123456789"}, "must start with sk_test_ (this one looks like a live key)"),
                ({"secret_key": "0123456789"}, "must start with sk_test_")],
    "adyen": [({"api_key": "AQE_key", "merchant_account": "ShopECOM", "hmac_key": "not-hex"},
               "the HMAC key must be the hexadecimal key"),
              ({"api_key": "AQE_key", "hmac_key": "44782DEF"}, "Merchant account (merchant_account) is missing")],
    "paypal": [({"client_id": "id", "client_secret": "secret", "webhook_id": "not a webhook id!"},
                "the webhook ID is the ID PayPal shows")],
    "sips": [({"merchant_id": "002001000000001", "secret_key": "k", "key_version": "v1"},
              "the key version (keyVersion) is a number"),
             ({"merchant_id": "shop-42", "secret_key": "k", "key_version": "1"}, "merchant ID (merchantId) is made of digits")],
    "hipay": [({"api_username": "u", "api_password": "p", "secret_passphrase": "s", "hash_algorithm": "md5"},
               "Hash algorithm must be one of sha256, sha1, sha512"),
              ({"api_username": "u", "secret_passphrase": "s"}, "API password (api_password) is missing")],
}


def creds(mode, values, endpoint=None):
    form = {f"cred-{mode}-{k}": v for k, v in values.items()}
    if endpoint is not None:
        form[f"cred-{mode}-endpoint"] = endpoint
    return form


def flash(page):
    """The last message the page flashed (an earlier save's "Settings saved." may come first)."""
    found = re.findall(r'<p class="psp-flash (psp-ok|psp-error)"[^>]*>(.*?)</p>', page.text, re.S)
    assert found, page.text
    return found[-1]


def test_the_five_providers_are_in_the_panel(panel):
    listing = panel.admin("accountant").get("/providers").text
    for name in CONNECTIONS:
        assert f'data-provider="{name}"' in listing, name


@pytest.mark.parametrize("name", sorted(CONNECTIONS))
def test_connection_against_the_simulator_in_plain_words(panel, name):
    good, wrongs = CONNECTIONS[name]
    sim = create_simulator(name)
    server = sim.serve()
    try:
        manager = panel.admin("owner")  # the endpoints below are the owner's to change
        saved = manager.post(f"/providers/{name}", {**BASE, "enabled": "on", **creds("test", good(sim), sim.url)})
        assert saved.status_code == 303, saved.text
        kind, message = flash(manager.post(f"/providers/{name}/test", {"mode": "test"}, allow_redirects=True))
        assert kind == "psp-ok" and "Connected to" in message, message
        assert re.search(r"\b(test|sandbox) mode", message), message

        for wrong, words in wrongs:
            assert manager.post(f"/providers/{name}", {**BASE, **creds("test", {**good(sim), **wrong})}).status_code == 303
            kind, message = flash(manager.post(f"/providers/{name}/test", {"mode": "test"}, allow_redirects=True))
            assert kind == "psp-error" and words in message, (name, wrong, message)
            for secret in wrong.values():
                assert secret not in message  # the merchant is told what is wrong, never shown the secret

        manager.post(f"/providers/{name}", {**BASE, **creds("test", good(sim), "http://127.0.0.1:9")})
        kind, message = flash(manager.post(f"/providers/{name}/test", {"mode": "test"}, allow_redirects=True))
        assert kind == "psp-error" and "could not be reached" in message, message

        kind, message = flash(manager.post(f"/providers/{name}/test", {"mode": "live"}, allow_redirects=True))
        assert kind == "psp-error" and "no live credentials to test yet" in message
    finally:
        server.stop()
        sim.notifier.close()


@pytest.mark.parametrize("name", sorted(INVALID))
def test_each_provider_validates_its_own_fields(panel, name):
    from sqlalchemy import select

    from flask_psp.models import ProviderSettings

    manager = panel.admin("manager")
    for values, words in INVALID[name]:
        answer = manager.post(f"/providers/{name}", {**BASE, **creds("test", values)})
        assert answer.status_code == 400, (name, values)
        assert words in answer.text, (name, words, re.findall(r"<li>(.*?)</li>", answer.text))
        assert "In the test credentials" in answer.text
        for field, value in values.items():
            if field in ("secret_key", "api_password", "client_secret", "hmac_key", "secret_passphrase"):
                assert f'value="{value}"' not in answer.text  # typed secrets are not echoed back
    assert panel.query(lambda s: s.scalar(select(ProviderSettings).where(ProviderSettings.name == name))) is None


def test_secrets_of_every_provider_are_masked_to_their_last_four_characters(panel):
    from flask_psp.admin.providers import provider_class

    manager = panel.admin("manager")
    sims = {}
    for name, (good, _wrongs) in CONNECTIONS.items():
        sims[name] = sim = create_simulator(name)
        sim.url = "http://127.0.0.1:9"  # never called here
        values = good(sim)
        assert manager.post(f"/providers/{name}", {**BASE, **creds("test", values)}).status_code == 303
        page = manager.get(f"/providers/{name}").text
        for field in provider_class(name).credential_fields:
            value = values.get(field.name)
            if not value:
                continue
            if field.secret:
                assert value not in page, (name, field.name)
                assert f"••••{value[-4:]}" in page, (name, field.name)
                assert re.search(rf'name="cred-test-{field.name}" value=""', page), (name, field.name)
            else:
                assert value in page, (name, field.name)
    for sim in sims.values():
        sim.notifier.close()


def test_every_credential_label_is_marked_for_translation(panel):
    from flask_psp.admin.page import look_fields
    from flask_psp.admin.providers import available_provider_classes, credential_labels

    with panel.app.test_request_context(headers={"Accept-Language": "en"}):
        marked = set(credential_labels())
    for name, cls in available_provider_classes():
        for field in cls.credential_fields:
            assert field.label in marked, f"add _({field.label!r}) to admin.providers.credential_labels ({name})"
    for key, label in look_fields().values():
        assert label in marked, f"add _({label!r}) to admin.providers.credential_labels"

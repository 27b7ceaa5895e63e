"""Provider settings from the panel: credentials per mode, secrets masked and encrypted, validation,
connection test against the simulator, notify URL, capture / 3-D Secure / limits reaching checkout."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from .conftest import configure_payplug


def stored_row(panel, name="payplug"):
    from flask_psp.models import ProviderSettings

    def read(session):
        row = session.scalar(select(ProviderSettings).where(ProviderSettings.name == name))
        session.expunge(row)
        return row

    return panel.query(read)


def test_credentials_are_encrypted_masked_and_blank_keeps_them(panel):
    owner = configure_payplug(panel, panel.sim.url, key="sk_test_simulator")
    row = stored_row(panel)
    assert "sk_test_simulator" not in (row.credentials or "")
    box = panel.app.extensions["psp"].box
    assert box.decrypt(row.credentials)["test"]["secret_key"] == "sk_test_simulator"

    page = owner.get("/providers/payplug")
    assert page.status_code == 200
    assert "sk_test_simulator" not in page.text and "••••ator" in page.text
    # saving again with the secret left blank keeps it
    answer = owner.post("/providers/payplug", {"enabled": "on", "mode": "test", "capture": "auto",
                                               "three_ds": "when_required", "cred-test-secret_key": "",
                                               "cred-test-endpoint": panel.sim.url})
    assert answer.status_code == 303
    assert box.decrypt(stored_row(panel).credentials)["test"]["secret_key"] == "sk_test_simulator"
    # and buyers can pay with it
    buyer = panel.shop.buyer()
    ref = buyer.place_order()
    result = buyer.pay_on_payplug(buyer.choose(ref).headers["Location"])
    assert result.status_code == 200 and panel.shop.order(ref)["status"] == "paid"


def test_field_validation_and_no_enabling_with_incomplete_credentials(panel):
    owner = panel.admin("manager")
    base = {"mode": "test", "capture": "auto", "three_ds": "when_required"}
    wrong_prefix = owner.post("/providers/payplug", {**base, "cred-test-secret_key": "sk_live_oops"})
    assert wrong_prefix.status_code == 400 and "must start with sk_test_" in wrong_prefix.text
    assert "sk_live_oops" not in wrong_prefix.text  # a secret is never rendered back, even refused
    empty_enabled = owner.post("/providers/payplug", {**base, "enabled": "on", "mode": "live"})
    assert empty_enabled.status_code == 400 and "cannot be enabled in live mode" in empty_enabled.text
    bad = owner.post("/providers/payplug", {**base, "capture": "delayed", "capture_delay_days": "90",
                                            "min_amount": "ten", "currencies": "EUR,XYZ",
                                            "cred-test-endpoint": "ftp://x"})
    assert bad.status_code == 400
    for words in ("between 1 and 29", "Minimum amount must be an amount", "XYZ is not an ISO 4217",
                  "Only the owner can change the test endpoint"):
        assert words in bad.text, words
    not_accepted = owner.post("/providers/payplug", {**base, "currencies": "USD"})
    assert "does not accept USD" in not_accepted.text
    assert panel.query(lambda s: s.scalar(select(__import__("flask_psp.models").models.ProviderSettings))) is None


def test_connection_test_says_what_is_wrong(panel):
    owner = configure_payplug(panel, panel.sim.url)
    answer = owner.post("/providers/payplug/test", {"mode": "test"}, allow_redirects=True)
    assert "Connected to PayPlug in test mode" in answer.text
    # a key PayPlug does not know
    owner.post("/providers/payplug", {"enabled": "on", "mode": "test", "capture": "auto", "three_ds": "when_required",
                                      "cred-test-secret_key": "sk_test_unknown", "cred-test-endpoint": panel.sim.url})
    refused = owner.post("/providers/payplug/test", {"mode": "test"}, allow_redirects=True)
    assert "PayPlug refused the secret key" in refused.text
    # nothing listening there
    owner.post("/providers/payplug", {"enabled": "on", "mode": "test", "capture": "auto", "three_ds": "when_required",
                                      "cred-test-secret_key": "sk_test_simulator", "cred-test-endpoint": "http://127.0.0.1:9"})
    down = owner.post("/providers/payplug/test", {"mode": "test"}, allow_redirects=True)
    assert "could not be reached" in down.text
    # no live credentials yet
    live = owner.post("/providers/payplug/test", {"mode": "live"}, allow_redirects=True)
    assert "no live credentials to test" in live.text


def test_provider_page_shows_notify_url_with_copy_button(panel):
    page = panel.admin("accountant").get("/providers/payplug")
    assert f'value="{panel.url}/psp/notify/payplug"' in page.text
    assert 'data-copy="#notify-url"' in page.text
    assert "fieldset disabled" in page.text.replace("<fieldset disabled", "fieldset disabled")  # read-only for accountants
    assert "Test the test credentials" not in page.text


def test_config_managed_providers_are_read_only(make_panel, sim):
    panel = make_panel(psp_providers={"payplug": {"enabled": True, "mode": "test",
                                                  "test": {"secret_key": "sk_test_simulator", "endpoint": sim.url}}})
    owner = panel.admin("owner")
    page = owner.get("/providers/payplug")
    assert 'data-managed="1"' in page.text and "sk_test_simulator" not in page.text
    answer = owner.post("/providers/payplug", {"enabled": "on", "mode": "test", "capture": "manual",
                                               "three_ds": "always"})
    assert answer.status_code == 400 and "managed by the application" in answer.text
    assert "managed by the application" in owner.get("/providers/payplug").text


def test_manual_capture_3ds_and_limits_reach_checkout(panel):
    configure_payplug(panel, panel.sim.url, capture="manual", three_ds="always", min_amount="20.00",
                      currencies="EUR")
    buyer = panel.shop.buyer()
    small = buyer.place_order("MUG-01")  # 14.50 EUR: below the minimum
    page = buyer.http.get(f"{panel.url}/psp/checkout/{small}", timeout=10)
    assert "No payment method is available" in page.text
    big = buyer.place_order("MAP-03")  # 39.90 EUR
    answer = buyer.choose(big)
    assert answer.status_code == 303
    payment_id = answer.headers["Location"].rstrip("/").split("/")[-1]
    # the test card 4242… is frictionless, but "always challenge" makes PayPlug ask (force_3ds)
    result = buyer.pay_on_payplug(answer.headers["Location"], code="1234")
    assert result.status_code == 200
    payment = panel.shop.payments(big)[0]
    assert payment["status"] == "authorized" and payment["captured_amount"] == 0
    assert panel.shop.order(big)["status"] == "paid"  # manual capture: the order is paid when authorized
    assert panel.sim.payments[payment_id]["is_3ds"] is True


def test_delayed_capture_is_saved_with_its_days(panel):
    owner = configure_payplug(panel, panel.sim.url, capture="delayed", capture_delay_days="3")
    row = stored_row(panel)
    assert (row.capture, row.capture_delay_days) == ("delayed", 3)
    config = panel.query(lambda s: panel.app.extensions["psp"].settings.config_for(s, "payplug"))
    assert (config.capture, config.capture_delay_days) == ("auto", 3)
    assert 'value="delayed" checked' in owner.get("/providers/payplug").text


def test_a_capture_delay_in_digits_other_than_ascii_is_a_400_with_the_delay_message(panel):
    # "²".isdigit() is true but int("²") fails: the form answered a 500 and saved nothing
    owner = panel.admin("owner")
    base = {"mode": "test", "capture": "delayed", "three_ds": "when_required", "position": "0"}
    for days in ("²", "3\u00b2", "\u2462"):
        answer = owner.post("/providers/payplug", {**base, "capture_delay_days": days})
        assert answer.status_code == 400, (days, answer.status_code)
        assert "The capture delay is a number of days between 1 and 29." in answer.text
    assert owner.post("/providers/payplug", {**base, "capture_delay_days": "\u0663"}).status_code == 303  # Arabic-Indic 3
    assert stored_row(panel).capture_delay_days == 3


def test_the_saved_settings_are_shown_back_on_the_provider_page(panel):
    owner = configure_payplug(panel, panel.sim.url, position="3", capture="delayed", capture_delay_days="5",
                              min_amount="1.50", max_amount="900", currencies="EUR")
    page = owner.get("/providers/payplug").text
    for name, value in (("position", "3"), ("capture_delay_days", "5"), ("min_amount", "1.50"),
                        ("max_amount", "900.00"), ("currencies", "EUR")):
        assert re.search(rf'<input[^>]*name="{name}"[^>]*value="{re.escape(value)}"', page), name
    assert 'name="enabled" checked' in page and 'value="delayed" checked' in page


def test_audit_records_credential_changes_without_values(panel):
    owner = configure_payplug(panel, panel.sim.url, key="sk_test_simulator")
    owner.post("/providers/payplug/test", {"mode": "test"})
    from flask_psp.models import AuditEntry

    entries = panel.query(lambda s: [(a.actor, a.action, a.target, json.dumps(a.details)) for a in s.scalars(select(AuditEntry))])
    update = [e for e in entries if e[1] == "provider.update"]
    assert update and update[0][0] == "owner@example.com" and "test.secret_key" in update[0][3]
    assert all("sk_test_simulator" not in e[3] for e in entries)
    assert any(e[1] == "provider.test_connection" for e in entries)
    page = owner.get("/audit")
    assert "provider.update" in page.text and "sk_test_simulator" not in page.text


def test_every_provider_gets_a_page_built_from_its_credential_fields(panel):
    from flask_psp.admin.providers import available_provider_classes

    owner = panel.admin("owner")
    listing = owner.get("/providers").text
    for name, cls in available_provider_classes():
        assert f'data-provider="{name}"' in listing
        page = owner.get(f"/providers/{name}")
        assert page.status_code == 200, name
        for field in cls.credential_fields:
            for mode in field.modes:
                assert f'name="cred-{mode}-{field.name}"' in page.text, (name, field.name)
            for mode in {"test", "live"} - set(field.modes):
                assert f'name="cred-{mode}-{field.name}"' not in page.text, (name, field.name)
        # an untouched form saves (choices left on their defaults count as nothing typed)
        empty = {f"cred-{m}-{f.name}": (f.default or "") for f in cls.credential_fields for m in f.modes}
        saved = owner.post(f"/providers/{name}", {"mode": "test", "capture": "auto", "three_ds": "when_required", **empty})
        assert saved.status_code == 303, (name, saved.text)
        refused = owner.post(f"/providers/{name}", {"enabled": "on", "mode": "test", "capture": "auto",
                                                    "three_ds": "when_required", **empty})
        assert refused.status_code == 400 and "cannot be enabled in test mode" in refused.text, name

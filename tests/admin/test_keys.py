"""Secrets at rest under key rotation: stored credentials re-encrypted with the new first key."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import select

from .conftest import configure_payplug


def test_rotation_re_encrypts_stored_credentials_with_the_new_key(panel):
    from flask_psp.admin.providers import rotate_credentials
    from flask_psp.models import ProviderSettings
    from flask_psp.secret_box import SecretBox, SecretsError

    configure_payplug(panel, panel.sim.url)
    old_key = panel.app.config["PSP_ENCRYPTION_KEY"]
    new_key = Fernet.generate_key().decode()

    def rotate(session):
        return rotate_credentials(session, SecretBox([new_key, old_key]))

    assert panel.query(rotate) == 1
    token = panel.query(lambda s: s.scalar(select(ProviderSettings.credentials)))
    assert SecretBox([new_key]).decrypt(token)["test"]["secret_key"] == "sk_test_simulator"
    try:
        SecretBox([old_key]).decrypt(token)
    except SecretsError:
        pass
    else:
        raise AssertionError("the old key still decrypts the rotated credentials")


def test_flask_psp_rotate_key_moves_stored_secrets_to_the_new_key(make_panel, make_shop):
    """The documented procedure: new key first, old key after, `flask psp rotate-key`, drop the old
    key; the shop still pays with the credentials the merchant entered in the panel."""
    from flask_psp.models import AuditEntry, ProviderSettings
    from flask_psp.secret_box import SecretBox

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    panel = make_panel(PSP_ENCRYPTION_KEY=old_key)
    configure_payplug(panel, panel.sim.url)

    both = make_shop(psp_providers={}, PSP_ENCRYPTION_KEY=[new_key, old_key])
    result = both.app.test_cli_runner().invoke(args=["psp", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 provider credential set(s)" in result.output
    assert "remove them from PSP_ENCRYPTION_KEY" in result.output

    token = panel.query(lambda s: s.scalar(select(ProviderSettings.credentials)))
    assert SecretBox([new_key]).decrypt(token)["test"]["secret_key"] == "sk_test_simulator"
    assert "sk_test_simulator" not in token
    audit = panel.query(lambda s: [(a.actor, a.action, a.details) for a in s.scalars(select(AuditEntry))])
    assert ("flask psp rotate-key", "keys.rotate", {"rows": 1}) in audit

    only_new = make_shop(psp_providers={}, PSP_ENCRYPTION_KEY=new_key)
    buyer = only_new.buyer()
    ref = buyer.place_order()
    assert buyer.pay_on_payplug(buyer.choose(ref).headers["Location"]).status_code == 200
    assert only_new.order(ref)["status"] == "paid"


def test_rotate_key_without_the_old_key_changes_nothing_and_says_why(make_panel, make_shop):
    from flask_psp.models import ProviderSettings

    old_key = Fernet.generate_key().decode()
    panel = make_panel(PSP_ENCRYPTION_KEY=old_key)
    configure_payplug(panel, panel.sim.url)
    before = panel.query(lambda s: s.scalar(select(ProviderSettings.credentials)))

    forgot = make_shop(psp_providers={}, PSP_ENCRYPTION_KEY=[Fernet.generate_key().decode()])
    result = forgot.app.test_cli_runner().invoke(args=["psp", "rotate-key"])
    assert result.exit_code != 0
    assert "payplug credentials cannot be decrypted" in result.output
    assert panel.query(lambda s: s.scalar(select(ProviderSettings.credentials))) == before

"""Secrets at rest under key rotation: stored credentials re-encrypted with the new first key."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import select

from .conftest import configure_payplug


def test_rotation_re_encrypts_stored_credentials_with_the_new_key(panel):
    from flask_psp.admin_core import rotate_credentials
    from flask_psp.models import ProviderSettings
    from flask_psp.secrets import SecretBox, SecretsError

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

"""Secrets at rest: Fernet encryption with key rotation, and masking for forms, logs and the inbox
(the one place that decides what is shown of a secret)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretsError(Exception):
    pass


def derive_dev_key(secret_key: str) -> str:
    """A stable key for debug/testing apps that set no ``PSP_ENCRYPTION_KEY`` (never for live)."""
    digest = hashlib.sha256(b"flask-psp dev key\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypts JSON-able values. ``keys[0]`` encrypts; every key decrypts (rotation)."""

    def __init__(self, keys: Iterable[str]):
        keys = [k for k in keys if k]
        if not keys:
            raise SecretsError("no encryption key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise SecretsError(
                "PSP_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes); "
                "make one with `flask psp generate-key`"
            ) from exc

    def encrypt(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretsError("stored secrets cannot be decrypted with PSP_ENCRYPTION_KEY") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt with the first key."""
        return self._fernet.rotate(token.encode()).decode()


def mask(value: str | None, keep: int = 4) -> str:
    """``mask("sk_test_abcdef1234") == "••••1234"``: enough to recognise, never enough to use."""
    if not value:
        return ""
    if len(value) <= keep * 2:
        return "••••"
    return "••••" + value[-keep:]


#: keys whose values are secrets wherever a stored body names them (JSON keys, form fields)
SECRET_KEY_NAMES = re.compile(r"secret|passw|passphrase|api_?key|authori[sz]ation|hmac|signature|cvc|cvv|card_?number|iban",
                              re.IGNORECASE)


def is_secret_name(key: str) -> bool:
    """``is_secret_name("client_secret")`` → True: its value is masked when shown."""
    return bool(SECRET_KEY_NAMES.search(key))


def mask_secrets(value: Any) -> Any:
    """``value`` (parsed JSON) with the values of secret-looking keys masked, at any depth:
    ``mask_secrets({"a": {"api_key": "k_1234567890"}}) == {"a": {"api_key": "••••7890"}}``."""
    if isinstance(value, dict):
        return {k: (mask(str(v)) if is_secret_name(str(k)) and v not in (None, "") else mask_secrets(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


SECRET_HEADER_NAMES = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})


def safe_headers(headers) -> dict[str, str]:
    """Headers worth keeping in the inbox, with credentials masked."""
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in SECRET_HEADER_NAMES:
            kept[name] = mask(value)
        elif lower.startswith(("content-", "user-agent", "x-", "paypal-")):
            kept[name] = value
    return kept

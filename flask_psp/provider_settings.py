"""Which providers are in force and with which credentials.

Providers in ``PSP_PROVIDERS`` are managed by configuration (read-only in the admin panel); the
others come from the ``psp_provider_settings`` table, their credentials encrypted at rest.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .models import ProviderSettings, execute_plain
from .providers import get_provider_class, provider_names
from .providers.base import ProviderConfig
from .secret_box import SecretBox


def capture_policy(config: ProviderConfig) -> tuple[str, int | None]:
    """How the plugin takes the money under these settings: ``("auto", None)``, ``("manual", None)``
    or ``("delayed", days)``. "Capture after N days" is stored as ``capture="auto"`` with
    ``capture_delay_days=N`` (``PSP_PROVIDERS``) or as ``"delayed"`` (the admin panel); both read
    back here as auto + N, and that is a delayed capture."""
    if config.capture == "auto" and config.capture_delay_days:
        return "delayed", int(config.capture_delay_days)
    return config.capture, None


def as_sent_to_psp(config: ProviderConfig) -> ProviderConfig:
    """The settings a provider module works with. A delayed capture is an authorization at the PSP
    that the plugin captures when it falls due (the scheduled job), the same on every PSP: the
    provider sees manual capture, with one spare day in ``capture_delay_days`` where a PSP wants
    an authorization's validity (Sips' ``captureDay`` under ``VALIDATION``), so the capture job
    has the whole due day to run."""
    policy, days = capture_policy(config)
    if policy != "delayed":
        return config
    return dataclasses.replace(config, capture="manual", capture_delay_days=days + 1)


_SETTINGS = ProviderSettings.__table__
#: the admin panel's rows as plain columns, not ORM objects: every notification and checkout for a
#: provider the panel manages reads one (choosing the credentials cost 40 % less so, reading the mode
#: half: ``make bench``, part 1d); every column but ``id``, ``accounting`` and ``updated_at``, which
#: nothing here reads
_ROWS = select(*(column for column in _SETTINGS.c if column.key not in ("id", "accounting", "updated_at")))
_ROW_NAMED = _ROWS.where(_SETTINGS.c.name == bindparam("name"))
_MODE_NAMED = select(_SETTINGS.c.mode).where(_SETTINGS.c.name == bindparam("name"))


class ProviderSettingsSource:
    def __init__(self, configured: dict[str, dict], box: SecretBox):
        self.configured = configured
        self.box = box

    def is_config_managed(self, name: str) -> bool:
        return name in self.configured

    def config_for(self, session: Session, name: str, mode: str | None = None) -> ProviderConfig | None:
        """The settings of ``name`` with the credentials of ``mode`` (default: the mode in force)."""
        if name in self.configured:
            return self._from_configuration(name, mode)
        if name not in provider_names():
            return None
        return self._from_row(execute_plain(session, _ROW_NAMED, {"name": name}).first(), mode)

    def mode_in_force(self, session: Session, name: str) -> str | None:
        """The mode ``name`` is in now ("test" | "live"; None: not configured), read without
        decrypting anything: the configuration's, else the admin panel's row."""
        if name in self.configured:
            return self.configured[name]["mode"]
        return execute_plain(session, _MODE_NAMED, {"name": name}).scalar()

    def _from_configuration(self, name: str, mode: str | None) -> ProviderConfig:
        entry = self.configured[name]
        mode = mode or entry["mode"]
        block = dict(entry.get(mode) or {})
        endpoint, extra_endpoints = _endpoints(name, block)
        return ProviderConfig(
            name=name,
            mode=mode,
            credentials=block,
            capture=entry["capture"],
            capture_delay_days=entry["capture_delay_days"],
            three_ds=entry["three_ds"],
            endpoint=endpoint,
            enabled=entry["enabled"],
            extra_endpoints=extra_endpoints,
        )

    def _from_row(self, row: Any, mode: str | None) -> ProviderConfig | None:
        """``row``: a settings row, as the ORM object or as plain columns of the same names."""
        if row is None:
            return None
        mode = mode or row.mode
        block = dict(self.stored_credentials(row).get(mode) or {})
        endpoint, extra_endpoints = _endpoints(row.name, block)
        return ProviderConfig(
            name=row.name,
            mode=mode,
            credentials=block,
            capture="manual" if row.capture == "manual" else "auto",
            capture_delay_days=row.capture_delay_days or 0,
            three_ds=row.three_ds,
            endpoint=endpoint,
            enabled=row.enabled,
            extra_endpoints=extra_endpoints,
        )

    def stored_credentials(self, row: Any) -> dict[str, dict[str, Any]]:
        return self.box.decrypt(row.credentials) if row.credentials else {}

    def offered(self, session: Session, only: str | None = None) -> list[tuple[ProviderConfig, "Limits"]]:
        """Enabled providers whose credentials for the mode in force are complete, in display order,
        each with the merchant's limits (amount bounds, accepted currencies), read in one query.
        ``only``: that provider alone (the buyer's choice at checkout), its row read only when the
        admin panel manages it."""
        if only is not None:
            if only not in provider_names():
                return []
            rows = {} if only in self.configured else {
                r.name: r for r in execute_plain(session, _ROW_NAMED, {"name": only})}
            ordered = [only]
        else:
            rows = {r.name: r for r in execute_plain(session, _ROWS)}
            ordered = sorted(
                provider_names(),
                key=lambda n: (rows[n].position if n in rows and n not in self.configured else 0, n),
            )
        result = []
        for name in ordered:
            managed = name in self.configured
            config = self._from_configuration(name, None) if managed else self._from_row(rows.get(name), None)
            if config is None or not config.enabled:
                continue
            if get_provider_class(name).validate_credentials(config.credentials, config.mode):
                continue
            result.append((config, _NO_LIMITS if managed else _limits_of(rows[name])))
        return result


def _endpoints(name: str, block: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """Take the endpoint overrides out of a credential set: ``endpoint``, and the others the
    provider has (:attr:`~flask_psp.providers.base.Provider.endpoint_fields`) by name."""
    endpoint = block.pop("endpoint", None)
    extra = {}
    for field_name in get_provider_class(name).endpoint_fields:
        value = block.pop(field_name, None) if field_name != "endpoint" else None
        if value:
            extra[field_name] = value
    return endpoint, extra


Limits = tuple  # (min amount | None, max amount | None, accepted currencies | None)
_NO_LIMITS: Limits = (None, None, None)


def _limits_of(row: Any) -> Limits:
    currencies = {c.strip().upper() for c in (row.currencies or "").split(",") if c.strip()} or None
    return row.min_amount, row.max_amount, currencies

"""What the admin panel does, without Flask: provider settings, page look, notifications, payments
and inbox queries, money operations, "process again", users and the audit log.

Functions take a SQLAlchemy session (and what else they need) plus plain dicts of the strings a
form sent; they return data or lists of problems in words a merchant understands. The views only
parse requests, call these, and render.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.orm import Session, defer

from .i18n import gettext as _
from .models import AdminUser, Asset, AuditEntry, PageSettings, Payment, PaymentEvent, ProviderSettings
from .money import from_decimal_string, is_currency, to_decimal_string
from .payments import expire_test_payments
from .providers import get_provider_class, provider_names
from .providers.base import (
    InboundRequest,
    MalformedNotification,
    parse_json,
    NotAuthentic,
    ProofUnavailable,
    Provider,
    ProviderConfig,
    ProviderError,
    endpoint_problem,
)
from cryptography.fernet import InvalidToken

from .secrets import SecretBox, SecretsError, mask
from .states import PaymentStatus

log = logging.getLogger("flask_psp.admin")
S = PaymentStatus
MODES = ("test", "live")
CAPTURE_CHOICES = ("auto", "manual", "delayed")
THREE_DS_CHOICES = ("always", "when_required", "frictionless")
MAX_DELAY_DAYS = 29

#: how the one 3-D Secure policy reaches each provider (docs/PROVIDERS.md)
THREE_DS_MAPPING: dict[str, dict[str, str]] = {
    "adyen": {"always": "attemptAuthentication: always", "when_required": "(Adyen decides)", "frictionless": "(Adyen decides)"},
    "paypal": {"always": "SCA_ALWAYS", "when_required": "SCA_WHEN_REQUIRED", "frictionless": "SCA_WHEN_REQUIRED"},
    "payplug": {"always": "force_3ds: true", "when_required": "(PayPlug decides)", "frictionless": "(PayPlug decides)"},
    "sips": {"always": "challengeMode3DS=CHALLENGE", "when_required": "challengeMode3DS=NO_PREFERENCE",
             "frictionless": "challengeMode3DS=NO_CHALLENGE"},
    "hipay": {"always": "authentication_indicator=2", "when_required": "authentication_indicator=1",
              "frictionless": "authentication_indicator=1"},
}

#: where each provider's page look is set: a field passed by the plugin, or the provider's portal
PROVIDER_LOOK_FIELDS = {
    "adyen": ("adyen_theme_id", "Adyen theme id (themeId)"),
    "sips": ("sips_template_name", "Sips template name (templateName)"),
    "hipay": ("hipay_theme_code", "HiPay theme code (theme_code)"),
}


def credential_labels() -> tuple[str, ...]:
    """The providers' credential field labels, marked here for translation (provider modules stay
    free of gettext); the provider page shows ``_(field.label)``. A test keeps this list complete."""
    return (
        _("API key"), _("Merchant account"), _("HMAC key (hex)"), _("Live endpoint URL prefix"),
        _("Hosted Checkout theme id"), _("Previous HMAC key, during a rotation (hex)"),
        _("Accept the previous HMAC key until (YYYY-MM-DD)"), _("API username"), _("API password"),
        _("Secret passphrase"), _("Hash algorithm"), _("Client ID"), _("Secret"), _("Webhook ID"),
        _("Secret key"), _("Merchant ID (merchantId)"), _("Key version (keyVersion)"), _("Seal algorithm"),
        # PROVIDER_LOOK_FIELDS
        _("Adyen theme id (themeId)"), _("Sips template name (templateName)"), _("HiPay theme code (theme_code)"),
    )


# ============================================================================ query strings
#: ids and amounts are stored as 64-bit integers (PostgreSQL's bigint): nothing beyond is looked for
LARGEST_STORED_INTEGER = 2**63 - 1


def parse_before(value: str | None) -> int | None:
    """The ``before`` id of a keyset-paginated list: ``parse_before("120") == 120``; blank → None.
    Raises ValueError with a message for anything but a whole number within what ids can be."""
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{1,19}", value) or int(value) > LARGEST_STORED_INTEGER:
        raise ValueError(_("The page link is broken (before=%(value)s): go back to the first page.", value=value[:40]))
    return int(value)


def _bounded_amount(value: str, currency: str) -> int:
    """``value`` in minor units of ``currency`` (see :func:`money.from_decimal_string`), refused
    (ValueError) unless it is a finite number that a 64-bit integer can hold — before any large
    number is built (``1e999999999`` would be a billion digits)."""
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not number.is_finite() or number.adjusted() > 20:
        raise ValueError(f"not an amount that can be paid: {value!r}")
    amount = from_decimal_string(value, currency)
    if abs(amount) > LARGEST_STORED_INTEGER:
        raise ValueError(f"not an amount that can be paid: {value!r}")
    return amount


# ============================================================================ audit
def audit(session: Session, actor: str, action: str, target: str | None = None, details: dict | None = None,
          *, commit: bool = True) -> AuditEntry:
    """Record who did what. ``details`` must never hold a secret: callers pass field names, not values."""
    entry = AuditEntry(actor=actor[:255], action=action[:64], target=(target or "")[:255] or None,
                       details=details or {})
    session.add(entry)
    if commit:
        session.commit()
    return entry


def audit_page(session: Session, before_id: int | None = None, limit: int = 50, actor: str | None = None,
               action: str | None = None) -> tuple[list[AuditEntry], int | None]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


# ============================================================================ providers
def available_provider_classes() -> list[tuple[str, type[Provider]]]:
    """Providers whose module can be imported (others are being written, or broken: skipped)."""
    found = []
    for name in provider_names():
        try:
            found.append((name, get_provider_class(name)))
        except Exception:  # noqa: BLE001 - a missing or broken module must not take the panel down
            log.info("provider %s cannot be imported; left out of the admin panel", name)
    return found


def provider_class(name: str) -> type[Provider] | None:
    return dict(available_provider_classes()).get(name)


def _row(session: Session, name: str) -> ProviderSettings | None:
    return session.scalar(select(ProviderSettings).where(ProviderSettings.name == name))


@dataclass
class ProviderPanel:
    """One provider as the panel shows it. Secrets appear masked only."""

    name: str
    display_name: str
    cls: type[Provider]
    managed: bool  # by PSP_PROVIDERS: read-only
    enabled: bool = False
    mode: str = "test"
    capture: str = "auto"
    capture_delay_days: int = 0
    three_ds: str = "when_required"
    min_amount: str = ""
    max_amount: str = ""
    limit_currency: str = "EUR"
    currencies: str = ""
    position: int = 0
    #: {mode: {field: shown value}}; secret fields show "••••1234" or ""
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    #: {mode: problems with that mode's credentials} ([] = complete)
    problems: dict[str, list[str]] = field(default_factory=dict)
    configured: dict[str, bool] = field(default_factory=dict)

    @property
    def fields(self):
        return self.cls.credential_fields

    @property
    def three_ds_mapping(self) -> dict[str, str]:
        return THREE_DS_MAPPING.get(self.name, {})


def limit_currency(cls: type[Provider], currencies: str | None) -> str:
    """The currency merchant-typed min/max amounts are read in: the single accepted currency if there
    is one, else EUR."""
    codes = [c.strip().upper() for c in (currencies or "").split(",") if c.strip()]
    if len(codes) == 1:
        return codes[0]
    if cls.currencies is not None and len(cls.currencies) == 1:
        return next(iter(cls.currencies))
    return "EUR"


def provider_panel(session: Session, settings, name: str) -> ProviderPanel | None:
    cls = provider_class(name)
    if cls is None:
        return None
    panel = ProviderPanel(name=name, display_name=cls.display_name, cls=cls, managed=settings.is_config_managed(name))
    if panel.managed:
        entry = settings.configured[name]
        panel.enabled, panel.mode = entry["enabled"], entry["mode"]
        panel.capture = entry["capture"]
        if entry["capture"] == "auto" and entry.get("capture_delay_days"):
            panel.capture = "delayed"
        panel.capture_delay_days = entry.get("capture_delay_days") or 0
        panel.three_ds = entry["three_ds"]
        stored = {m: dict(entry.get(m) or {}) for m in MODES}
    else:
        row = _row(session, name)
        stored = settings.stored_credentials(row) if row is not None else {}
        if row is not None:
            panel.enabled, panel.mode = row.enabled, row.mode
            panel.capture = row.capture if row.capture in CAPTURE_CHOICES else "auto"
            panel.capture_delay_days = row.capture_delay_days or 0
            panel.three_ds = row.three_ds
            panel.currencies = row.currencies or ""
            panel.position = row.position or 0
            panel.limit_currency = limit_currency(cls, row.currencies)
            if row.min_amount is not None:
                panel.min_amount = to_decimal_string(row.min_amount, panel.limit_currency)
            if row.max_amount is not None:
                panel.max_amount = to_decimal_string(row.max_amount, panel.limit_currency)
        else:
            panel.limit_currency = limit_currency(cls, None)
    secret_names = {f.name for f in cls.credential_fields if f.secret}
    for mode in MODES:
        block = stored.get(mode) or {}
        shown = {}
        for key, value in block.items():
            shown[key] = mask(str(value)) if key in secret_names else str(value)
        panel.values[mode] = shown
        creds = {k: v for k, v in block.items() if k != "endpoint"}
        panel.configured[mode] = _filled(cls, creds)
        panel.problems[mode] = cls.validate_credentials(creds, mode)
    return panel


def provider_panels(session: Session, settings) -> list[ProviderPanel]:
    panels = [provider_panel(session, settings, name) for name, _cls in available_provider_classes()]
    return sorted([p for p in panels if p], key=lambda p: (p.position, p.name))


def _endpoint_message(cls: type[Provider], mode: str, credentials: Mapping[str, str], problem: str) -> str:
    """Why an endpoint typed in the panel is refused, for the merchant (``problem`` comes from
    :func:`~flask_psp.providers.base.endpoint_problem`)."""
    if problem in ("not https", "not one of the provider's own hosts"):
        hosts = ", ".join(sorted(cls.own_api_hosts(mode, credentials))) or ", ".join(
            t.replace("{", "<").replace("}", ">") for t in cls.own_hosts.get(mode, ()))
        if mode == "live":
            return _("The live endpoint must be one of %(provider)s's own hosts over https (%(hosts)s). A proxy "
                     "needs PSP_ALLOW_CUSTOM_ENDPOINTS = True in the application's configuration.",
                     provider=cls.display_name, hosts=hosts)
        return _("The test endpoint must be one of %(provider)s's test hosts over https (%(hosts)s) or a simulator "
                 "on this machine (127.0.0.1, localhost). Another host needs PSP_ALLOW_CUSTOM_ENDPOINTS = True in "
                 "the application's configuration.", provider=cls.display_name, hosts=hosts)
    return _("The %(mode)s endpoint must be an http(s) URL without user, query string or fragment (%(problem)s).",
             mode=_mode_label(mode), problem=problem)


def _parse_limit(value: str, currency: str, label: str, problems: list[str]) -> int | None:
    value = (value or "").strip().replace(",", ".")
    if not value:
        return None
    try:
        amount = _bounded_amount(value, currency)
    except ValueError:
        problems.append(_("%(label)s must be an amount such as 10.00", label=label))
        return None
    if amount < 0:
        problems.append(_("%(label)s cannot be negative", label=label))
        return None
    return amount


def save_provider(session: Session, settings, box: SecretBox, name: str, form: Mapping[str, str],
                  actor: str, *, may_change_endpoints: bool = False, allow_custom_endpoints: bool = False,
                  notices: list[str] | None = None) -> list[str]:
    """Apply the provider form. Returns problems (nothing is saved then) or [] once saved and audited.

    Form keys: ``enabled`` ("on"), ``mode``, ``capture`` (auto|manual|delayed), ``capture_delay_days``,
    ``three_ds``, ``min_amount``/``max_amount`` (decimal strings), ``currencies`` ("EUR,USD"),
    ``position``, ``cred-<mode>-<field>`` (a blank secret keeps the stored one), ``cred-<mode>-endpoint``,
    ``clear-<mode>`` ("on": forget that mode's credentials).

    Endpoints decide where that mode's secrets are sent, so they stay with the owner:

    * changing one needs ``may_change_endpoints`` (the owner's ``Permission.EDIT_ENDPOINTS``);
      anyone else's attempt is refused (and audited) and nothing is saved;
    * the new endpoint must be the provider's own host, or a simulator on loopback in test mode,
      unless ``allow_custom_endpoints`` (``PSP_ALLOW_CUSTOM_ENDPOINTS``): see
      :func:`~flask_psp.providers.base.endpoint_problem`;
    * the change forgets that mode's stored secrets, except those typed in the same save: they
      were given for the old host. ``notices`` (when given) receives a sentence saying so;
    * the audit entry carries the old and the new endpoint (never a secret).

    >>> save_provider(db.session, state.settings, state.box, "payplug",
    ...               {"mode": "test", "cred-test-secret_key": "sk_test_…", "cred-test-endpoint": sim.url},
    ...               "owner@example.com", may_change_endpoints=True)
    []
    """
    cls = provider_class(name)
    if cls is None:
        return [_("Unknown provider.")]
    if settings.is_config_managed(name):
        return [_("This provider is managed by the application's configuration (PSP_PROVIDERS) and cannot be changed here.")]
    problems: list[str] = []
    row = _row(session, name)
    stored = settings.stored_credentials(row) if row is not None else {}

    enabled = form.get("enabled") in ("on", "1", "true", "y")
    mode = form.get("mode", "test")
    if mode not in MODES:
        problems.append(_("Mode must be test or live."))
        mode = "test"
    capture = form.get("capture", "auto")
    if capture not in CAPTURE_CHOICES:
        problems.append(_("Choose automatic, manual or delayed capture."))
        capture = "auto"
    delay = 0
    if capture == "delayed":
        raw = (form.get("capture_delay_days") or "").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_DELAY_DAYS:
            problems.append(_("The capture delay is a number of days between 1 and %(max)s.", max=MAX_DELAY_DAYS))
        else:
            delay = int(raw)
    three_ds = form.get("three_ds", "when_required")
    if three_ds not in THREE_DS_CHOICES:
        problems.append(_("Choose a 3-D Secure preference."))
        three_ds = "when_required"
    currencies = [c.strip().upper() for c in (form.get("currencies") or "").split(",") if c.strip()]
    for code in currencies:
        if not is_currency(code):
            problems.append(_("%(code)s is not an ISO 4217 currency code.", code=code))
        elif cls.currencies is not None and code not in cls.currencies:
            problems.append(_("%(provider)s does not accept %(code)s.", provider=cls.display_name, code=code))
    currency = limit_currency(cls, ",".join(currencies))
    low = _parse_limit(form.get("min_amount", ""), currency, _("Minimum amount"), problems)
    high = _parse_limit(form.get("max_amount", ""), currency, _("Maximum amount"), problems)
    if low is not None and high is not None and low > high:
        problems.append(_("The minimum amount is above the maximum amount."))
    position_raw = (form.get("position") or "0").strip()
    if not re.fullmatch(r"-?\d{1,4}", position_raw):
        problems.append(_("Display order is a whole number."))
        position_raw = "0"

    secret_names = {f.name for f in cls.credential_fields if f.secret}
    known = {f.name for f in cls.credential_fields}
    new_creds: dict[str, dict[str, str]] = {}
    changed_fields: list[str] = []
    endpoint_changes: dict[str, dict[str, str | None]] = {}  # mode -> {"old": …, "new": …}
    secrets_cleared: dict[str, list[str]] = {}  # mode -> secret field names forgotten with the old endpoint
    refused_endpoints: dict[str, dict[str, str | None]] = {}
    for block_mode in MODES:
        old = dict(stored.get(block_mode) or {})
        if form.get(f"clear-{block_mode}") in ("on", "1"):
            if old:
                changed_fields.append(f"{block_mode}: cleared")
            if old.get("endpoint"):
                endpoint_changes[block_mode] = {"old": old["endpoint"], "new": None}
            new_creds[block_mode] = {}
            continue
        block = dict(old)
        typed_secrets = {n for n in secret_names if (form.get(f"cred-{block_mode}-{n}") or "").strip()}
        for f in cls.credential_fields:
            key = f"cred-{block_mode}-{f.name}"
            if key not in form:
                continue
            value = (form.get(key) or "").strip()
            if f.name in secret_names and not value:
                continue  # blank secret: keep the stored one
            if value != (old.get(f.name) or ""):
                changed_fields.append(f"{block_mode}.{f.name}")
            if value:
                block[f.name] = value
            else:
                block.pop(f.name, None)
        forgotten: dict[str, str] = {}  # secrets dropped with the old endpoint: still checked as if kept
        endpoint_key = f"cred-{block_mode}-endpoint"
        endpoint = (form.get(endpoint_key) or "").strip().rstrip("/") if endpoint_key in form else None
        if endpoint is not None and endpoint != (old.get("endpoint") or ""):
            change = {"old": old.get("endpoint") or None, "new": endpoint or None}
            problem = endpoint_problem(cls, block_mode, endpoint, block, allow_custom=allow_custom_endpoints) \
                if endpoint else None
            if not may_change_endpoints:
                refused_endpoints[block_mode] = change
                problems.append(_("Only the owner can change the %(mode)s endpoint: it decides where the %(mode)s "
                                  "secrets are sent.", mode=_mode_label(block_mode)))
            elif problem:
                problems.append(_endpoint_message(cls, block_mode, block, problem))
            else:
                changed_fields.append(f"{block_mode}.endpoint")
                endpoint_changes[block_mode] = change
                if endpoint:
                    block["endpoint"] = endpoint
                else:
                    block.pop("endpoint", None)
                forgotten = {n: block.pop(n) for n in sorted(secret_names - typed_secrets) if n in block}
                if forgotten:
                    secrets_cleared[block_mode] = sorted(forgotten)
        block = {k: v for k, v in block.items() if k in known or k == "endpoint"}
        creds = {k: v for k, v in block.items() if k != "endpoint"}
        if _filled(cls, creds):
            for problem in cls.validate_credentials({**creds, **forgotten}, block_mode):
                problems.append(_("In the %(mode)s credentials: %(problem)s", mode=_mode_label(block_mode), problem=problem))
        new_creds[block_mode] = block
    if refused_endpoints:
        audit(session, actor, "provider.endpoint_refused", name, {"endpoints": refused_endpoints})
    if enabled:
        active = {k: v for k, v in new_creds.get(mode, {}).items() if k != "endpoint"}
        if mode in secrets_cleared and (not _filled(cls, active) or cls.validate_credentials(active, mode)):
            problems.append(
                _("%(provider)s is enabled in %(mode)s mode: type its %(mode)s secrets again for the new endpoint "
                  "(changing the endpoint forgets them).", provider=cls.display_name, mode=_mode_label(mode))
            )
        elif not _filled(cls, active) or cls.validate_credentials(active, mode):
            problems.append(
                _("%(provider)s cannot be enabled in %(mode)s mode: its %(mode)s credentials are incomplete.",
                  provider=cls.display_name, mode=_mode_label(mode))
            )
    if problems:
        return problems

    if row is None:
        row = ProviderSettings(name=name, accounting={})
        session.add(row)
    before = {
        "enabled": row.enabled, "mode": row.mode, "capture": row.capture, "capture_delay_days": row.capture_delay_days,
        "three_ds": row.three_ds, "min_amount": row.min_amount, "max_amount": row.max_amount,
        "currencies": row.currencies, "position": row.position,
    }
    row.enabled, row.mode, row.capture, row.capture_delay_days = enabled, mode, capture, delay
    row.three_ds, row.min_amount, row.max_amount = three_ds, low, high
    row.currencies = ",".join(currencies) or None
    row.position = int(position_raw)
    kept = {m: b for m, b in new_creds.items() if _filled(cls, {k: v for k, v in b.items() if k != "endpoint"})
            or b.get("endpoint")}
    row.credentials = box.encrypt(kept) if kept else None
    after = {
        "enabled": row.enabled, "mode": row.mode, "capture": row.capture, "capture_delay_days": row.capture_delay_days,
        "three_ds": row.three_ds, "min_amount": row.min_amount, "max_amount": row.max_amount,
        "currencies": row.currencies, "position": row.position,
    }
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    # names of credential fields only, never their values
    details: dict[str, Any] = {"settings": changes, "credentials_changed": sorted(set(changed_fields))}
    if endpoint_changes:
        details["endpoints"] = endpoint_changes  # endpoints are not secrets: the log says where secrets go
    if secrets_cleared:
        details["secrets_cleared"] = secrets_cleared  # field names only
    audit(session, actor, "provider.update", name, details, commit=False)
    if mode == "live":  # open test-mode payments can no longer pay orders: expired with the switch
        expire_test_payments(session, name, actor)
    session.commit()
    if notices is not None:
        for cleared_mode in secrets_cleared:
            notices.append(_("The %(mode)s endpoint changed, so the saved %(mode)s secrets were forgotten: type them "
                             "again for the new host.", mode=_mode_label(cleared_mode)))
    return []


def _filled(cls: type[Provider], creds: Mapping[str, str]) -> bool:
    """Did the merchant type anything in this set? A choice left on its default does not count."""
    defaults = {f.name: f.default for f in cls.credential_fields if f.choices}
    return any(str(v).strip() and v != defaults.get(k) for k, v in creds.items())


def _mode_label(mode: str) -> str:
    return _("live") if mode == "live" else _("test")


def test_connection(session: Session, settings, http, name: str, mode: str) -> tuple[bool, str]:
    """Call the provider with the saved credentials of ``mode`` and say in plain words how it went."""
    cls = provider_class(name)
    if cls is None or mode not in MODES:
        return False, _("Unknown provider or mode.")
    config = settings.config_for(session, name, mode)
    creds = dict(config.credentials) if config is not None else {}
    if not _filled(cls, creds):
        return False, _("There are no %(mode)s credentials to test yet: enter them and save first.", mode=_mode_label(mode))
    problems = cls.validate_credentials(creds, mode)
    if problems:
        return False, _("The %(mode)s credentials are incomplete: %(problems)s", mode=_mode_label(mode),
                        problems="; ".join(problems))
    config = ProviderConfig(name=name, mode=mode, credentials=creds, capture=config.capture,
                            capture_delay_days=config.capture_delay_days, three_ds=config.three_ds,
                            endpoint=config.endpoint, enabled=config.enabled)
    try:
        ok, message = cls(config, http).test_connection()
    except ProviderError as exc:
        return False, exc.message
    except NotImplementedError:
        return False, _("%(provider)s offers no connection test.", provider=cls.display_name)
    except Exception as exc:  # noqa: BLE001 - a provider bug must read as a failed test, not a 500
        log.exception("connection test of %s failed", name)
        return False, _("The test could not be run (%(error)s).", error=type(exc).__name__)
    return bool(ok), message


def rotate_credentials(session: Session, box: SecretBox, actor: str = "flask psp rotate-key") -> int:
    """Re-encrypt every stored credential set with the first key of ``PSP_ENCRYPTION_KEY``
    (for ``flask psp rotate-key``). Returns how many rows were rewritten. All or nothing: when one
    row cannot be decrypted with any of the keys, nothing is changed and SecretsError names it."""
    rows = list(session.scalars(select(ProviderSettings).where(ProviderSettings.credentials.is_not(None))
                                .order_by(ProviderSettings.name).with_for_update()))
    for row in rows:
        try:
            row.credentials = box.rotate(row.credentials)
        except InvalidToken:
            session.rollback()
            raise SecretsError(
                f"the stored {row.name} credentials cannot be decrypted with any key of PSP_ENCRYPTION_KEY: "
                "keep the key they were saved with in the list (after the new one) and run it again"
            ) from None
    audit(session, actor, "keys.rotate", "provider credentials", {"rows": len(rows)}, commit=False)
    session.commit()
    return len(rows)


# ============================================================================ page customization
_HEX = re.compile(r"#[0-9a-fA-F]{6}")
MESSAGE_KEYS = ("before", "pending", "success", "cancel")
MAX_MESSAGE = 500
IMAGE_TYPES = {  # magic bytes → content type; SVG is refused (it can carry script)
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def page_row(session: Session) -> PageSettings:
    row = session.scalar(select(PageSettings).order_by(PageSettings.id).limit(1))
    if row is None:
        row = PageSettings(messages={}, provider_look={}, notifications={})
        session.add(row)
        session.flush()
    return row


def sniff_image(data: bytes) -> str | None:
    for magic, content_type in IMAGE_TYPES.items():
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def store_asset(session: Session, data: bytes, content_type: str) -> Asset:
    key = hashlib.sha256(data).hexdigest()
    asset = session.scalar(select(Asset).where(Asset.key == key))
    if asset is None:
        asset = Asset(key=key, content_type=content_type, size=len(data), data=data)
        session.add(asset)
        session.flush()
    return asset


_ASSET_KEY = re.compile(r"[0-9a-f]{64}")


def own_asset_url(url: str, assets_prefix: str) -> str | None:
    """``url`` as the path of one logo stored in the panel (``{assets_prefix}<sha256>``), read the
    way a browser and the server read it — ``\\`` as ``/``, percent-escapes decoded (``%2e``),
    dot segments resolved — or None when it names anything else (another page of this site).

    >>> own_asset_url("/psp/admin/assets/%2e%2e/users", "/psp/admin/assets/") is None
    True
    """
    unified = url.replace("\\", "/")
    parts = urlsplit(unified)
    if parts.scheme or parts.netloc or "?" in unified or "#" in unified:
        return None
    path = unquote(parts.path)
    if not path.startswith("/"):
        return None
    segments: list[str] = []
    given = path.split("/")[1:]
    for index, segment in enumerate(given):
        if segment in (".", ".."):
            if segment == ".." and segments:
                segments.pop()
            if index == len(given) - 1:
                segments.append("")  # RFC 3986: a final dot segment leaves a trailing slash
        else:
            segments.append(segment)
    normalised = "/" + "/".join(segments)
    if not normalised.startswith(assets_prefix) or not _ASSET_KEY.fullmatch(normalised[len(assets_prefix):]):
        return None
    return normalised


def save_page(session: Session, form: Mapping[str, str], actor: str, locales: Iterable[str],
              logo: tuple[bytes, str] | None = None, logo_url_for=None, max_logo_bytes: int = 512 * 1024) -> list[str]:
    """Apply the page form. ``logo`` is an uploaded file's (bytes, filename); ``logo_url_for(key)``
    turns a stored asset into the URL buyers load it from."""
    problems: list[str] = []
    brand = (form.get("brand_name") or "").strip()
    if len(brand) > 128:
        problems.append(_("The brand name has at most 128 characters."))
    colors = {}
    for key, label in (("primary_color", _("Main colour")), ("accent_color", _("Accent colour"))):
        value = (form.get(key) or "").strip()
        if value and not _HEX.fullmatch(value):
            problems.append(_("%(label)s must be a colour such as #1f5f99.", label=label))
        colors[key] = value.lower() or None
    logo_url = (form.get("logo_url") or "").strip()
    new_asset = None
    if logo is not None and logo[0]:
        data = logo[0]
        if len(data) > max_logo_bytes:
            problems.append(_("The logo is too large (at most %(kb)s KB).", kb=max_logo_bytes // 1024))
        else:
            content_type = sniff_image(data)
            if content_type is None:
                problems.append(_("The logo must be a PNG, JPEG, GIF or WebP image."))
            else:
                new_asset = (data, content_type)
    elif logo_url:
        parts = urlsplit(logo_url)
        own = own_asset_url(logo_url, logo_url_for("")) if logo_url_for is not None else None
        if own:
            logo_url = own
        elif parts.scheme != "https" or not parts.hostname:
            problems.append(_("The logo address must start with https://, or be a logo uploaded here."))
        if len(logo_url) > 512:
            problems.append(_("The logo address is too long."))
    messages: dict[str, dict[str, str]] = {}
    for locale in locales:
        block = {}
        for key in MESSAGE_KEYS:
            value = (form.get(f"message-{locale}-{key}") or "").strip()
            if len(value) > MAX_MESSAGE:
                problems.append(_("Messages have at most %(n)s characters.", n=MAX_MESSAGE))
            if value:
                block[key] = value
        messages[locale] = block
    look = {}
    for _provider, (key, _label) in PROVIDER_LOOK_FIELDS.items():
        value = (form.get(key) or "").strip()
        if value and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", value):
            problems.append(_("%(field)s may only hold letters, digits, dots, dashes and underscores.", field=_(_label)))
        if value:
            look[key] = value
    if problems:
        return problems
    row = page_row(session)
    if new_asset is not None:
        asset = store_asset(session, *new_asset)
        logo_url = logo_url_for(asset.key)
    if form.get("remove_logo") in ("on", "1"):
        logo_url = ""
    before = {"brand_name": row.brand_name, "logo_url": row.logo_url, "primary_color": row.primary_color,
              "accent_color": row.accent_color, "messages": row.messages or {}, "provider_look": row.provider_look or {}}
    row.brand_name = brand or None
    row.logo_url = logo_url or None
    row.primary_color, row.accent_color = colors["primary_color"], colors["accent_color"]
    row.messages = messages
    row.provider_look = look
    after = {"brand_name": row.brand_name, "logo_url": row.logo_url, "primary_color": row.primary_color,
             "accent_color": row.accent_color, "messages": messages, "provider_look": look}
    audit(session, actor, "page.update", "payment page",
          {"changed": sorted(k for k in after if before[k] != after[k])}, commit=False)
    session.commit()
    return []


# ============================================================================ notifications (settings)
NOTIFY_EVENTS = ("paid", "failed", "refunded", "chargeback", "notification_problem", "amount_mismatch")
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")


def notification_settings(row: PageSettings | None) -> dict[str, Any]:
    data = dict((row.notifications if row is not None else None) or {})
    return {
        "addresses": list(data.get("addresses") or []),
        "events": [e for e in data.get("events", ["paid", "chargeback", "notification_problem", "amount_mismatch"])
                   if e in NOTIFY_EVENTS],
        "buyer_receipt": bool(data.get("buyer_receipt", False)),
    }


def save_notifications(session: Session, form: Mapping[str, str], events: Iterable[str], actor: str) -> list[str]:
    raw = (form.get("addresses") or "").replace(";", ",").replace("\n", ",")
    addresses = [a.strip() for a in raw.split(",") if a.strip()]
    problems = [_("%(address)s is not an email address.", address=a) for a in addresses if not _EMAIL.fullmatch(a)]
    chosen = [e for e in events if e in NOTIFY_EVENTS]
    if len(addresses) > 20:
        problems.append(_("At most 20 addresses."))
    if problems:
        return problems
    row = page_row(session)
    row.notifications = {"addresses": addresses, "events": chosen,
                         "buyer_receipt": form.get("buyer_receipt") in ("on", "1")}
    audit(session, actor, "notifications.update", "notifications",
          {"addresses": len(addresses), "events": chosen, "buyer_receipt": row.notifications["buyer_receipt"]},
          commit=False)
    session.commit()
    return []


# ============================================================================ payments list
PAGE_SIZE = 50


@dataclass
class PaymentFilters:
    status: str = ""
    provider: str = ""
    mode: str = ""
    date_from: str = ""
    date_to: str = ""
    order_ref: str = ""
    amount: str = ""
    currency: str = ""
    q: str = ""
    flagged: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "PaymentFilters":
        return cls(**{k: (args.get(k) or "").strip() for k in
                      ("status", "provider", "mode", "date_from", "date_to", "order_ref", "amount", "currency", "q")},
                   flagged=args.get("flagged") in ("1", "on"))

    def as_args(self) -> dict[str, str]:
        args = {k: v for k, v in self.__dict__.items() if v and k != "flagged"}
        if self.flagged:
            args["flagged"] = "1"
        return args


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def payments_page(session: Session, filters: PaymentFilters, before_id: int | None = None,
                  limit: int = PAGE_SIZE) -> tuple[list[Payment], int | None, list[str]]:
    """Newest first, keyset-paginated on the primary key (``before_id``): each page is an index walk,
    as fast on page 20 000 as on page 1. Returns (rows, next before_id or None, problems)."""
    problems: list[str] = []
    query = select(Payment)
    dated = False  # a date filter: page along (created_at, id), which its index walks in order
    if filters.status:
        if filters.status in {s.value for s in S}:
            query = query.where(Payment.status == filters.status)
        else:
            problems.append(_("Unknown status."))
    if filters.provider:
        query = query.where(Payment.provider == filters.provider)
    if filters.mode in MODES:
        query = query.where(Payment.mode == filters.mode)
    if filters.currency:
        query = query.where(Payment.currency == filters.currency.upper())
    if filters.date_from:
        day = _parse_day(filters.date_from)
        if day is None:
            problems.append(_("Dates are written YYYY-MM-DD."))
        else:
            query = query.where(Payment.created_at >= datetime.combine(day, datetime.min.time()))
            dated = True
    if filters.date_to:
        day = _parse_day(filters.date_to)
        if day is None:
            problems.append(_("Dates are written YYYY-MM-DD."))
        elif day < date.max:  # up to 9999-12-31: every payment
            query = query.where(Payment.created_at < datetime.combine(day + timedelta(days=1), datetime.min.time()))
            dated = True
    if filters.order_ref:
        query = query.where(Payment.order_ref == filters.order_ref)
    if filters.amount:
        try:
            amount = _bounded_amount(filters.amount.replace(",", "."), filters.currency or "EUR")
        except ValueError:
            problems.append(_("The amount must be written like 12.50."))
        else:
            query = query.where(Payment.amount == amount)
    if filters.q:
        term = filters.q
        # each branch is an index probe; psp_reference is indexed behind provider, hence the IN
        query = query.where(or_(Payment.order_ref == term,
                                and_(Payment.provider.in_(provider_names()), Payment.psp_reference == term),
                                Payment.token == term, Payment.email.in_({term, term.lower()})))
    if filters.flagged:
        query = query.where(Payment.flag.is_not(None))
    order = (Payment.created_at.desc(), Payment.id.desc()) if dated else (Payment.id.desc(),)
    if before_id:
        anchor = session.scalar(select(Payment.created_at).where(Payment.id == before_id)) if dated else None
        if anchor is not None:
            query = query.where(tuple_(Payment.created_at, Payment.id) < tuple_(anchor, before_id))
        else:
            query = query.where(Payment.id < before_id)
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    next_before = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_before, problems


def payment_timeline(session: Session, payment: Payment) -> list[PaymentEvent]:
    return list(session.scalars(
        select(PaymentEvent).options(defer(PaymentEvent.body))
        .where(PaymentEvent.payment_id == payment.id).order_by(PaymentEvent.id)
    ))


def parse_amount(value: str, currency: str) -> int | None:
    """A merchant-typed amount ("12.50", "12,50") in minor units; blank → None (the whole amount).
    Raises ValueError with a message for the merchant."""
    value = (value or "").strip().replace(",", ".").replace(" ", "")
    if not value:
        return None
    try:
        amount = _bounded_amount(value, currency)
    except ValueError:
        raise ValueError(_("%(value)s is not an amount in %(currency)s.", value=value[:40], currency=currency)) from None
    if amount <= 0:
        raise ValueError(_("The amount must be positive."))
    return amount


def operate(service, session: Session, payment: Payment, verb: str, amount_text: str, actor: str) -> str:
    """Capture, refund or cancel through the provider. Returns a message for the merchant — what
    was done, or, for providers that only acknowledge such requests (Adyen, HiPay), that it was
    requested and awaits their notification. Raises ValueError (bad amount, wrong state) or
    ProviderError (the PSP refused), both with a message."""
    amount = None
    if verb in ("capture", "refund"):
        amount = parse_amount(amount_text, payment.currency)
    details = {"amount": amount, "currency": payment.currency, "status_before": payment.status}
    if verb not in ("capture", "refund", "cancel"):
        raise ValueError(_("Unknown action."))
    try:
        done = service.operate(payment, verb, amount)
    except ProviderError as exc:
        session.rollback()
        audit(session, actor, f"payment.{verb}.refused", payment.token, {**details, "error": exc.message})
        raise
    session.refresh(payment)
    audit(session, actor, f"payment.{verb}", payment.token,
          {**details, "status_after": payment.status, "awaiting_provider": done.awaiting_provider})
    if done.awaiting_provider:
        provider = provider_display_name(payment.provider)
        return {
            "capture": _("Capture requested; %(provider)s confirms it by notification.", provider=provider),
            "refund": _("Refund requested; %(provider)s confirms it by notification.", provider=provider),
            "cancel": _("Cancellation requested; %(provider)s confirms it by notification.", provider=provider),
        }[verb]
    return {"capture": _("Payment captured."), "refund": _("Refund done."), "cancel": _("Payment cancelled.")}[verb]


def provider_display_name(name: str) -> str:
    cls = provider_class(name)
    return cls.display_name if cls is not None else name


# ============================================================================ inbox
OUTCOMES = ("received", "queued", "applied", "duplicate", "rejected", "unmatched", "mismatch", "invalid", "error")
_SECRET_KEY = re.compile(r"secret|passw|passphrase|api_?key|authori[sz]ation|hmac|signature|cvc|cvv|card_?number|iban",
                         re.IGNORECASE)


def events_page(session: Session, outcome: str = "", provider: str = "", before_id: int | None = None,
                payment_id: int | None = None, limit: int = PAGE_SIZE) -> tuple[list[PaymentEvent], int | None]:
    query = select(PaymentEvent).options(defer(PaymentEvent.body))  # the list shows no body
    if outcome in OUTCOMES:
        query = query.where(PaymentEvent.outcome == outcome)
    if provider:
        query = query.where(PaymentEvent.provider == provider)
    if payment_id:
        query = query.where(PaymentEvent.payment_id == payment_id)
    if before_id:
        query = query.where(PaymentEvent.id < before_id)
    rows = list(session.scalars(query.order_by(PaymentEvent.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def _mask_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (mask(str(v)) if _SECRET_KEY.search(str(k)) and v not in (None, "") else _mask_tree(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_tree(v) for v in value]
    return value


#: bodies the event page reads and masks (the notify route keeps them under PSP_MAX_NOTIFICATION_BYTES;
#: older rows may be larger), and how much of one it shows
BODY_READ_LIMIT = 4 * 1024 * 1024
BODY_SHOWN_LIMIT = 512 * 1024


def masked_body(row: PaymentEvent) -> str:
    """The raw body for display, with values of secret-looking keys masked: JSON pretty-printed,
    forms one field a line, anything else (JSON nested too deep included) as it is. Cut at
    :data:`BODY_SHOWN_LIMIT` characters; a body over :data:`BODY_READ_LIMIT` is not shown."""
    body = row.body or ""
    if len(body) > BODY_READ_LIMIT:
        return _("(a body of %(size)s characters: too large to show)", size=len(body))
    ctype = (row.content_type or "").lower()
    shown = body
    if "json" in ctype or body.lstrip().startswith(("{", "[")):
        try:
            # bounded depth: what is deeper is shown as received, and masking cannot recurse without bound
            shown = json.dumps(_mask_tree(parse_json(body)), indent=2, ensure_ascii=False, sort_keys=True)
        except MalformedNotification:
            shown = body
    elif "x-www-form-urlencoded" in ctype:
        pairs = parse_qsl(body, keep_blank_values=True)
        shown = "\n".join(f"{k}={mask(v) if _SECRET_KEY.search(k) and v else v}" for k, v in pairs)
    if len(shown) > BODY_SHOWN_LIMIT:
        return shown[:BODY_SHOWN_LIMIT] + "\n" + _("… (%(count)s more characters not shown)",
                                                     count=len(shown) - BODY_SHOWN_LIMIT)
    return shown


def can_process_again(row: PaymentEvent) -> bool:
    """A notification as received from the PSP (not our own API answers, not a batch's child)."""
    return row.source == "notify" and bool(row.body) and row.parent_id is None


def process_again(service, session: Session, row: PaymentEvent, actor: str) -> tuple[bool, str]:
    """Run a stored notification through its provider's proof and the ledger once more. The proof is
    checked again (a forged body stays refused) and the dedupe keys make it idempotent."""
    if not can_process_again(row):
        return False, _("Only notifications received from a provider can be processed again.")
    cls = provider_class(row.provider)
    if cls is None:
        return False, _("The %(provider)s module is not available.", provider=row.provider)
    ctype = row.content_type or ""
    form = dict(parse_qsl(row.body, keep_blank_values=True)) if "x-www-form-urlencoded" in ctype.lower() else {}
    inbound = InboundRequest(body=row.body.encode("utf-8"), headers=dict(row.headers or {}), form=form,
                             content_type=row.content_type)
    try:
        provider = service.notification_provider(row.provider, inbound)
        messages = provider.verify_notification(inbound)
    except (NotAuthentic, MalformedNotification) as exc:
        audit(session, actor, "inbox.process_again", f"event {row.id}", {"result": "refused"})
        return False, _("Still refused: %(reason)s", reason=str(exc))
    except ProofUnavailable as exc:
        audit(session, actor, "inbox.process_again", f"event {row.id}", {"result": "proof unavailable"})
        return False, _("The provider cannot confirm it right now (%(reason)s). Try again later.", reason=str(exc))
    except ProviderError as exc:
        return False, exc.message
    try:
        outcomes = service.ledger.apply_all(row, messages)
    except Exception as exc:  # noqa: BLE001 - PostProcessingError and friends: the row says why
        audit(session, actor, "inbox.process_again", f"event {row.id}", {"result": "error"})
        return False, _("Processing failed: %(reason)s", reason=str(exc))
    summary = ", ".join(o.outcome + (f" ({o.detail})" if o.detail else "") for o in outcomes) or "-"
    audit(session, actor, "inbox.process_again", f"event {row.id}", {"result": [o.outcome for o in outcomes]})
    return True, _("Processed again: %(summary)s", summary=summary)


# ============================================================================ dashboard
def dashboard(session: Session) -> dict[str, Any]:
    by_status = dict(session.execute(select(Payment.status, func.count()).group_by(Payment.status)).all())
    flagged = session.scalar(select(func.count()).select_from(Payment).where(Payment.flag.is_not(None))) or 0
    problems = session.scalar(
        select(func.count()).select_from(PaymentEvent).where(
            PaymentEvent.outcome.in_(("rejected", "unmatched", "mismatch", "error", "invalid")))
    ) or 0
    return {"by_status": by_status, "flagged": flagged, "inbox_problems": problems}


# ============================================================================ users
def list_users(session: Session) -> list[AdminUser]:
    return list(session.scalars(select(AdminUser).order_by(AdminUser.email)))


def update_user(session: Session, user: AdminUser, form: Mapping[str, str], actor: str) -> list[str]:
    from .access import ROLES, owners_left

    role = form.get("role", user.role)
    active = form.get("active") in ("on", "1")
    if role not in ROLES:
        return [_("Unknown role.")]
    if user.role == "owner" and (role != "owner" or not active) and owners_left(session, excluding=user.id) == 0:
        return [_("There must remain at least one active owner.")]
    changes = {}
    if role != user.role:
        changes["role"] = [user.role, role]
        user.role = role
    if active != user.active:
        changes["active"] = [user.active, active]
        user.active = active
    if form.get("unlock") in ("on", "1") and (user.locked_until or user.failed_logins):
        user.locked_until, user.failed_logins, user.lockouts = None, 0, 0
        changes["unlocked"] = True
    if changes:
        audit(session, actor, "user.update", user.email, changes, commit=False)
    session.commit()
    return []

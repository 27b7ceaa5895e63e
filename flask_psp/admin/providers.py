"""Provider settings as the panel shows and saves them: credentials per mode (secrets masked,
endpoints the owner's), mode, capture, 3-D Secure, limits; the connection test; key rotation."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from wtforms import StringField
from wtforms.validators import ValidationError

from ..i18n import gettext as _
from ..i18n import lazy_gettext
from ..models import ProviderSettings
from ..money import is_currency, to_decimal_string
from ..payments import expire_test_payments
from ..providers import get_provider_class, provider_names
from ..providers.base import Provider, ProviderConfig, ProviderError, endpoint_problem
from ..secret_box import SecretBox, SecretsError, mask
from .audit import audit
from .forms import AdminForm, Checkbox, stripped
from .forms import problems as form_problems
from .inputs import bounded_amount

log = logging.getLogger("flask_psp.admin")
MODES = ("test", "live")
CAPTURE_CHOICES = ("auto", "manual", "delayed")
THREE_DS_CHOICES = ("always", "when_required", "frictionless")
MAX_DELAY_DAYS = 29


def credential_labels() -> tuple[str, ...]:
    """The providers' credential field labels, marked here for translation (provider modules stay
    free of gettext); the provider page shows ``_(field.label)``. A test keeps this list complete."""
    return (
        _("API key"), _("Merchant account"), _("HMAC key (hex)"), _("Live endpoint URL prefix"),
        _("Hosted Checkout theme id"), _("Previous HMAC key, during a rotation (hex)"),
        _("Accept the previous HMAC key until (YYYY-MM-DD)"), _("API username"), _("API password"),
        _("Secret passphrase"), _("Hash algorithm"), _("Client ID"), _("Secret"), _("Webhook ID"),
        _("Secret key"), _("Merchant ID (merchantId)"), _("Key version (keyVersion)"), _("Seal algorithm"),
        _("Sips test environment (simu: Worldline's simulation; test: your own keys)"),
        # Provider.endpoint_labels
        _("Payment page endpoint override (paymentInit)"),
        _("Office endpoint override (captures, refunds, cancellations, lookups)"),
        # Provider.look_field
        _("Adyen theme id (themeId)"), _("Sips template name (templateName)"), _("HiPay theme code (theme_code)"),
    )


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
        return dict(self.cls.three_ds_mapping)


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
        creds = {k: v for k, v in block.items() if k not in cls.endpoint_fields}
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


def _one_of(choices: tuple[str, ...], message):
    """Validator: the value is one of ``choices``; else ``message()`` (said in the merchant's language)."""

    def check(form, field) -> None:
        if field.data not in choices:
            raise ValidationError(message())

    return check


def _capture_delay(form, field) -> None:
    if form.capture.data == "delayed" and (not field.data.isdecimal() or not 1 <= int(field.data) <= MAX_DELAY_DAYS):
        raise ValidationError(_("The capture delay is a number of days between 1 and %(max)s.", max=MAX_DELAY_DAYS))


def _currencies(form, field) -> None:
    cls = form.provider
    for code in form.currency_codes():
        if not is_currency(code):
            field.errors.append(_("%(code)s is not an ISO 4217 currency code.", code=code))
        elif cls.currencies is not None and code not in cls.currencies:
            field.errors.append(_("%(provider)s does not accept %(code)s.", provider=cls.display_name, code=code))


class LimitField(StringField):
    """A minimum or maximum amount typed in the limits' currency (:func:`limit_currency`);
    ``amount`` holds it in minor units once validated (None: no limit, or unreadable)."""

    amount: int | None = None

    def pre_validate(self, form) -> None:
        self.amount = None
        value = self.data.replace(",", ".")
        if not value:
            return
        try:
            amount = bounded_amount(value, limit_currency(form.provider, ",".join(form.currency_codes())))
        except ValueError:
            raise ValidationError(_("%(label)s must be an amount such as 10.00", label=self.label.text)) from None
        if amount < 0:
            raise ValidationError(_("%(label)s cannot be negative", label=self.label.text))
        self.amount = amount


def _above_minimum(form, field) -> None:
    low, high = form.min_amount.amount, field.amount
    if low is not None and high is not None and low > high:
        raise ValidationError(_("The minimum amount is above the maximum amount."))


def _position(form, field) -> None:
    if not re.fullmatch(r"-?\d{1,4}", field.data):
        raise ValidationError(_("Display order is a whole number."))


class ProviderForm(AdminForm):
    """The provider form's settings; :func:`provider_form` adds the provider's credential fields per
    mode (``cred-<mode>-<field>``, ``cred-<mode>-endpoint``, ``clear-<mode>``). Validating it checks
    the settings; the credentials, which depend on what is stored and on who saves, are checked by
    :func:`save_provider`."""

    provider: type[Provider]

    enabled = Checkbox(true_values=("on", "1", "true", "y"))
    mode = StringField(default="test", validators=[_one_of(MODES, lambda: _("Mode must be test or live."))])
    capture = StringField(default="auto", validators=[
        _one_of(CAPTURE_CHOICES, lambda: _("Choose automatic, manual or delayed capture."))])
    capture_delay_days = StringField(filters=[stripped], validators=[_capture_delay])
    three_ds = StringField(default="when_required", validators=[
        _one_of(THREE_DS_CHOICES, lambda: _("Choose a 3-D Secure preference."))])
    currencies = StringField(filters=[stripped], validators=[_currencies])
    min_amount = LimitField(lazy_gettext("Minimum amount"), filters=[stripped])
    max_amount = LimitField(lazy_gettext("Maximum amount"), filters=[stripped], validators=[_above_minimum])
    position = StringField(filters=[lambda value: str(value if value not in (None, "") else "0").strip()],
                           validators=[_position])

    def currency_codes(self) -> list[str]:
        return [c.strip().upper() for c in (self.currencies.data or "").split(",") if c.strip()]

    def credential(self, mode: str, name: str) -> StringField:
        """The field ``cred-<mode>-<name>`` (``name`` a credential field's, or "endpoint")."""
        return self[f"cred-{mode}-{name}"]


def provider_form(name: str, formdata: Mapping[str, str] | None = None, **data) -> ProviderForm | None:
    """The form of provider ``name`` (None if unknown), bound to ``formdata`` (the request's form
    when None) or showing ``data``::

        form = provider_form("payplug", {"mode": "test", "cred-test-secret_key": "sk_test_…"})
    """
    cls = provider_class(name)
    if cls is None:
        return None

    class OneProviderForm(ProviderForm):
        provider = cls

    for mode in MODES:
        for credential in cls.credential_fields:
            setattr(OneProviderForm, f"cred-{mode}-{credential.name}", StringField(filters=[stripped]))
        for endpoint_field in cls.endpoint_fields:
            setattr(OneProviderForm, f"cred-{mode}-{endpoint_field}",
                    StringField(filters=[stripped, lambda v: v.rstrip("/")]))
        setattr(OneProviderForm, f"clear-{mode}", Checkbox())
    return OneProviderForm.bound(formdata, data=data or None)


def panel_form_data(panel: ProviderPanel) -> dict[str, Any]:
    """What the provider form shows for a provider's settings (credentials are shown from the panel)."""
    return {"enabled": panel.enabled, "mode": panel.mode, "capture": panel.capture,
            "capture_delay_days": panel.capture_delay_days or "", "three_ds": panel.three_ds,
            "min_amount": panel.min_amount, "max_amount": panel.max_amount, "currencies": panel.currencies,
            "position": panel.position}


def save_provider(session: Session, settings, box: SecretBox, form: ProviderForm, actor: str, *,
                  may_change_endpoints: bool = False, allow_custom_endpoints: bool = False,
                  notices: list[str] | None = None) -> list[str]:
    """Validate and apply a provider's form (:func:`provider_form`). Returns problems (nothing is
    saved then) or [] once saved and audited.

    Form fields: ``enabled`` ("on"), ``mode``, ``capture`` (auto|manual|delayed), ``capture_delay_days``,
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

    >>> form = provider_form("payplug", {"mode": "test", "cred-test-secret_key": "sk_test_…",
    ...                                  "cred-test-endpoint": sim.url})
    >>> save_provider(db.session, state.settings, state.box, form, "owner@example.com", may_change_endpoints=True)
    []
    """
    cls, name = form.provider, form.provider.name
    if settings.is_config_managed(name):
        return [_("This provider is managed by the application's configuration (PSP_PROVIDERS) and cannot be changed here.")]
    form.validate()
    problems = form_problems(form)
    row = _row(session, name)
    stored = settings.stored_credentials(row) if row is not None else {}
    enabled = form.enabled.data
    mode = form.mode.data if form.mode.data in MODES else "test"
    capture = form.capture.data if form.capture.data in CAPTURE_CHOICES else "auto"
    delay = int(form.capture_delay_days.data) if capture == "delayed" and not form.capture_delay_days.errors else 0
    three_ds = form.three_ds.data if form.three_ds.data in THREE_DS_CHOICES else "when_required"
    currencies = form.currency_codes()
    low, high = form.min_amount.amount, form.max_amount.amount

    secret_names = {f.name for f in cls.credential_fields if f.secret}
    known = {f.name for f in cls.credential_fields}
    new_creds: dict[str, dict[str, str]] = {}
    changed_fields: list[str] = []
    endpoint_changes: dict[str, dict[str, str | None]] = {}  # mode -> {"old": …, "new": …}
    secrets_cleared: dict[str, list[str]] = {}  # mode -> secret field names forgotten with the old endpoint
    refused_endpoints: dict[str, dict[str, str | None]] = {}
    for block_mode in MODES:
        old = dict(stored.get(block_mode) or {})
        if form[f"clear-{block_mode}"].data:
            if old:
                changed_fields.append(f"{block_mode}: cleared")
            for endpoint_field in cls.endpoint_fields:
                if old.get(endpoint_field):
                    key = _endpoint_key(block_mode, endpoint_field)
                    endpoint_changes[key] = {"old": old[endpoint_field], "new": None}
            new_creds[block_mode] = {}
            continue
        block = dict(old)
        typed_secrets = {n for n in secret_names if form.credential(block_mode, n).data}
        for f in cls.credential_fields:
            sent = form.credential(block_mode, f.name)
            if not sent.raw_data:
                continue
            value = sent.data
            if f.name in secret_names and not value:
                continue  # blank secret: keep the stored one
            if value != (old.get(f.name) or ""):
                changed_fields.append(f"{block_mode}.{f.name}")
            if value:
                block[f.name] = value
            else:
                block.pop(f.name, None)
        forgotten: dict[str, str] = {}  # secrets dropped with the old endpoint: still checked as if kept
        for endpoint_field in cls.endpoint_fields:
            sent = form.credential(block_mode, endpoint_field)
            endpoint = sent.data if sent.raw_data else None
            if endpoint is None or endpoint == (old.get(endpoint_field) or ""):
                continue
            key = _endpoint_key(block_mode, endpoint_field)
            change = {"old": old.get(endpoint_field) or None, "new": endpoint or None}
            problem = endpoint_problem(cls, block_mode, endpoint, block, allow_custom=allow_custom_endpoints) \
                if endpoint else None
            if not may_change_endpoints:
                refused_endpoints[key] = change
                problems.append(_("Only the owner can change the %(mode)s endpoint: it decides where the %(mode)s "
                                  "secrets are sent.", mode=_mode_label(block_mode)))
            elif problem:
                problems.append(_endpoint_message(cls, block_mode, block, problem))
            else:
                changed_fields.append(f"{block_mode}.{endpoint_field}")
                endpoint_changes[key] = change
                if endpoint:
                    block[endpoint_field] = endpoint
                else:
                    block.pop(endpoint_field, None)
                forgotten.update({n: block.pop(n) for n in sorted(secret_names - typed_secrets) if n in block})
                if forgotten:
                    secrets_cleared[block_mode] = sorted(forgotten)
        block = {k: v for k, v in block.items() if k in known or k in cls.endpoint_fields}
        creds = {k: v for k, v in block.items() if k not in cls.endpoint_fields}
        if _filled(cls, creds):
            for problem in cls.validate_credentials({**creds, **forgotten}, block_mode):
                problems.append(_("In the %(mode)s credentials: %(problem)s", mode=_mode_label(block_mode), problem=problem))
        new_creds[block_mode] = block
    if refused_endpoints:
        audit(session, actor, "provider.endpoint_refused", name, {"endpoints": refused_endpoints})
    if enabled:
        active = {k: v for k, v in new_creds.get(mode, {}).items() if k not in cls.endpoint_fields}
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
    row.position = int(form.position.data)
    kept = {m: b for m, b in new_creds.items()
            if _filled(cls, {k: v for k, v in b.items() if k not in cls.endpoint_fields})
            or any(b.get(f) for f in cls.endpoint_fields)}
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


def _endpoint_key(mode: str, endpoint_field: str) -> str:
    """How the audit names an endpoint: ``test`` for a mode's ``endpoint``, ``test.office_endpoint``
    for another one."""
    return mode if endpoint_field == "endpoint" else f"{mode}.{endpoint_field}"


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
                            endpoint=config.endpoint, enabled=config.enabled,
                            extra_endpoints=dict(config.extra_endpoints))
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


def provider_display_name(name: str) -> str:
    cls = provider_class(name)
    return cls.display_name if cls is not None else name

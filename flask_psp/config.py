"""``PSP_*`` configuration keys, their defaults, and the check of ``PSP_PROVIDERS`` at start-up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

from .jobs import JobSettings
from .ledger import RetryPolicy
from .providers import get_provider_class, provider_names
from .providers.base import _HOST_LABEL, endpoint_syntax_problem

#: every key the plugin reads, with its default (documented in docs/guide/configuration.md)
DEFAULTS: dict[str, Any] = {
    "PSP_URL_PREFIX": "/psp",
    "PSP_ENCRYPTION_KEY": None,
    "PSP_PROVIDERS": {},
    "PSP_PUBLIC_URL": None,
    "PSP_LOCALES": ("en", "fr"),
    "PSP_DEFAULT_LOCALE": "en",
    "PSP_HTTP_TIMEOUT": (5, 20),
    "PSP_POLL_INTERVAL": 2,
    # POST /notify/<provider>: a body over this many bytes is answered 413 before it is read; the
    # inbox keeps a short row (size, headers), never the body. Per route: MAX_CONTENT_LENGTH does not apply
    "PSP_MAX_NOTIFICATION_BYTES": 1024 * 1024,
    # admin panel
    "PSP_ADMIN_USER_LOADER": None,  # callable -> object with .email/.role, (name, role) or None
    "PSP_ADMIN_LOGIN_URL": None,  # the host's login page, for visitors not signed in (else the built-in one)
    # built-in accounts: this many failures in a row from one client address, or on one account,
    # start a delay of PSP_ADMIN_LOCKOUT_MINUTES, doubled at each further lockout up to
    # PSP_ADMIN_LOCKOUT_MAX_MINUTES (an account's delay never holds against a client address with no failures)
    "PSP_ADMIN_MAX_FAILED_LOGINS": 5,
    "PSP_ADMIN_LOCKOUT_MINUTES": 15,
    "PSP_ADMIN_LOCKOUT_MAX_MINUTES": 24 * 60,
    "PSP_ADMIN_IDLE_MINUTES": 30,  # a built-in account's session unused this long is signed out (None: never)
    "PSP_ADMIN_LOGO_MAX_BYTES": 512 * 1024,
    # endpoints typed in the admin panel: False = the provider's own hosts only (and loopback
    # simulators in test mode); True also accepts proxies. PSP_PROVIDERS endpoints are never limited
    "PSP_ALLOW_CUSTOM_ENDPOINTS": False,
    # hosted payment page hosts accepted beyond each provider's own list (a PSP's new region or
    # domain before a release knows it): a list of host names for every provider, or
    # {provider: [hosts]}; https only. A refused host is logged by name
    "PSP_EXTRA_REDIRECT_HOSTS": (),
    # notification e-mails (no MAIL_SERVER: none are sent)
    "PSP_MAIL_TIMEOUT": 10,
    # refused/unmatched notifications: at most one mail per provider this often, saying how many
    "PSP_NOTICE_DIGEST_MINUTES": 15,
    "MAIL_SERVER": None,
    "MAIL_PORT": 25,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_DEFAULT_SENDER": None,
    # background processing (None: notifications are applied inline; "celery": by Celery workers,
    # with flask_psp.celery_tasks.init_celery(celery_app, app))
    "PSP_TASK_QUEUE": None,
    # scheduled jobs (flask psp run-jobs, Celery beat); durations in seconds (or timedelta)
    "PSP_JOBS_INTERVAL": 60,  # Celery beat: every job runs this often
    "PSP_JOBS_BATCH": 100,  # rows a job claims at a time
    "PSP_JOBS_HOLD": 600,  # a run that died leaves what it claimed to others after this
    "PSP_REQUEUE_AFTER": 300,  # queued notifications not applied after this are queued again
    "PSP_RETRY_FIRST_DELAY": 60,  # failed post-processing / delayed capture: first retry, then doubling
    "PSP_RETRY_MAX_ATTEMPTS": 10,  # then give up and flag the payment
    "PSP_RECONCILE_AFTER": 1800,  # pending/authorized payments older than this are checked with the PSP
    "PSP_RECONCILE_EVERY": 3600,  # and checked again at most this often
    "PSP_EXPIRE_AFTER": 86400,  # created/pending payments older than this are expired
    # accounting exports: the company's SIREN (9 digits) names the FEC, <SIREN>FEC<YYYYMMDD>.txt
    "PSP_SIREN": None,
    # the accounting currency (FEC Debit/Credit) and the rates to it: {"USD": "0.92"} or a callable
    # rate(currency, day) -> Decimal; a movement in a currency without a rate stops the FEC with a message
    "PSP_ACCOUNTING_CURRENCY": "EUR",
    "PSP_EXCHANGE_RATES": None,
    # the time zone whose days entries are dated by and periods cut at (an IANA name: "Europe/Paris")
    "PSP_ACCOUNTING_TIMEZONE": "UTC",
    # payment links: a reminder this many days before a mailed link expires (None: no reminder;
    # the ``links`` job sends it), and the shop's contact (an e-mail address or a URL) shown on
    # the page of a link that expired or was cancelled
    "PSP_LINK_REMINDER_DAYS": None,
    "PSP_LINK_CONTACT": None,
    # a capture, refund or cancellation the PSP took but has not confirmed after this is flagged
    # by the reconcile job and counted in the overview's health box
    "PSP_AWAITING_PSP_AFTER": 86400,
}

MODES = ("test", "live")
CAPTURES = ("auto", "manual")
THREE_DS = ("always", "when_required", "frictionless")


class ConfigurationError(ValueError):
    """``init_app`` refuses to start: the message says which key and what is wrong."""


def validate_providers(providers: Mapping[str, Any], *, has_encryption_key: bool) -> dict[str, dict]:
    """Return a normalised copy of ``PSP_PROVIDERS`` or raise :class:`ConfigurationError`."""
    if not isinstance(providers, Mapping):
        raise ConfigurationError("PSP_PROVIDERS must be a dict of provider name -> settings")
    normalised: dict[str, dict] = {}
    for name, entry in providers.items():
        where = f"PSP_PROVIDERS[{name!r}]"
        if name not in provider_names():
            raise ConfigurationError(
                f"{where}: unknown provider; known providers are {', '.join(sorted(provider_names()))}"
            )
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{where} must be a dict")
        unknown = set(entry) - {"enabled", "mode", "capture", "capture_delay_days", "three_ds", "test", "live"}
        if unknown:
            raise ConfigurationError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigurationError(f"{where}['enabled'] must be True or False")
        mode = entry.get("mode", "test")
        if mode not in MODES:
            raise ConfigurationError(f"{where}['mode'] must be 'test' or 'live', not {mode!r}")
        capture = entry.get("capture", "auto")
        if capture not in CAPTURES:
            raise ConfigurationError(f"{where}['capture'] must be 'auto' or 'manual', not {capture!r}")
        three_ds = entry.get("three_ds", "when_required")
        if three_ds not in THREE_DS:
            raise ConfigurationError(f"{where}['three_ds'] must be one of {', '.join(THREE_DS)}")
        delay = entry.get("capture_delay_days", 0)
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
            raise ConfigurationError(f"{where}['capture_delay_days'] must be a whole number of days")
        if mode == "live" and not has_encryption_key:
            raise ConfigurationError(
                f"{where} is in live mode but PSP_ENCRYPTION_KEY is not set; "
                "live payments need secrets encrypted at rest (`flask psp generate-key`)"
            )
        cls = get_provider_class(name)
        blocks = {}
        for block_mode in MODES:
            block = entry.get(block_mode)
            if block is None:
                continue
            if not isinstance(block, Mapping):
                raise ConfigurationError(f"{where}[{block_mode!r}] must be a dict of credentials")
            fields = {f.name for f in cls.credential_fields} | {"endpoint", *cls.endpoint_fields}
            extra = set(block) - fields
            if extra:
                raise ConfigurationError(
                    f"{where}[{block_mode!r}]: unknown field(s) {', '.join(sorted(extra))}; "
                    f"{name} takes {', '.join(sorted(fields))}"
                )
            # an endpoint here is trusted configuration (simulators, proxies: any host, http too);
            # only its shape is checked. The admin panel's allow-list is for what is typed there.
            for endpoint_field in cls.endpoint_fields:
                endpoint = block.get(endpoint_field)
                if endpoint is None:
                    continue
                syntax = endpoint_syntax_problem(endpoint) if isinstance(endpoint, str) else "not a string"
                if syntax:
                    raise ConfigurationError(
                        f"{where}[{block_mode!r}][{endpoint_field!r}] must be a base URL such as "
                        f"http://127.0.0.1:8101 ({syntax})"
                    )
            credentials = {k: v for k, v in block.items() if k not in cls.endpoint_fields}
            problems = cls.validate_credentials(credentials, block_mode)
            if problems:
                raise ConfigurationError(f"{where}[{block_mode!r}]: " + "; ".join(problems))
            blocks[block_mode] = dict(block)
        if enabled and mode not in blocks:
            raise ConfigurationError(f"{where} is enabled in {mode} mode but has no {mode!r} credentials")
        normalised[name] = {
            "enabled": enabled,
            "mode": mode,
            "capture": capture,
            "capture_delay_days": delay,
            "three_ds": three_ds,
            **blocks,
        }
    return normalised


def extra_redirect_hosts(config: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """``PSP_EXTRA_REDIRECT_HOSTS`` read as ``{provider: hosts}`` (``"*"``: every provider), or
    :class:`ConfigurationError` naming what is wrong."""
    value = config.get("PSP_EXTRA_REDIRECT_HOSTS") or ()
    key = "PSP_EXTRA_REDIRECT_HOSTS"
    if isinstance(value, str):
        raise ConfigurationError(f"{key} must be a list of host names or a dict of provider -> host names")
    per_provider = dict(value) if isinstance(value, Mapping) else {"*": value}
    result: dict[str, frozenset[str]] = {}
    for name, hosts in per_provider.items():
        if name != "*" and name not in provider_names():
            raise ConfigurationError(f"{key}: unknown provider {name!r}")
        if isinstance(hosts, str) or not isinstance(hosts, (list, tuple, set, frozenset)):
            raise ConfigurationError(f"{key}[{name!r}] must be a list of host names")
        checked = set()
        for host in hosts:
            labels = host.split(".") if isinstance(host, str) else []
            if len(labels) < 2 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
                raise ConfigurationError(f"{key}: {host!r} is not a host name such as pay.example.com")
            checked.add(host.lower())
        result[name] = frozenset(checked)
    return result


# ------------------------------------------------------------------ durations and counts of the jobs
def duration(config: Mapping[str, Any], key: str) -> timedelta:
    value = config[key]
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value
    else:
        raise ConfigurationError(f"{key} must be a number of seconds or a timedelta, not {value!r}")
    if seconds <= 0:
        raise ConfigurationError(f"{key} must be positive")
    return timedelta(seconds=seconds)


def whole(config: Mapping[str, Any], key: str) -> int:
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{key} must be a whole number of at least 1, not {value!r}")
    return value


def retry_policy(config: Mapping[str, Any]) -> RetryPolicy:
    return RetryPolicy(duration(config, "PSP_RETRY_FIRST_DELAY"), whole(config, "PSP_RETRY_MAX_ATTEMPTS"))


def export_options(config: Mapping[str, Any], mode: str = "live"):
    """The accounting export's settings (:class:`flask_psp.accounting.ExportOptions`) from the config."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from .accounting import ExportOptions
    from .money import is_currency

    siren = config.get("PSP_SIREN")
    if siren is not None and not (isinstance(siren, str) and len(siren) == 9 and siren.isascii() and siren.isdigit()):
        raise ConfigurationError(f"PSP_SIREN must be the company's 9-digit SIREN as a string, not {siren!r}")
    currency = config.get("PSP_ACCOUNTING_CURRENCY") or "EUR"
    if not isinstance(currency, str) or not is_currency(currency):
        raise ConfigurationError(f"PSP_ACCOUNTING_CURRENCY must be an ISO 4217 code, not {currency!r}")
    rates = config.get("PSP_EXCHANGE_RATES")
    if rates is not None and not (callable(rates) or isinstance(rates, Mapping)):
        raise ConfigurationError("PSP_EXCHANGE_RATES must be a dict {currency: rate} or a callable (currency, day)")
    try:
        zone = ZoneInfo(config.get("PSP_ACCOUNTING_TIMEZONE") or "UTC")
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigurationError(
            f"PSP_ACCOUNTING_TIMEZONE must be an IANA time zone name, not {config.get('PSP_ACCOUNTING_TIMEZONE')!r}"
        ) from None
    return ExportOptions(mode=mode, timezone=zone, currency=currency.upper(), rates=rates, siren=siren)


def link_reminder_days(config: Mapping[str, Any]) -> float | None:
    """``PSP_LINK_REMINDER_DAYS``: None (no reminder) or a positive number of days."""
    value = config.get("PSP_LINK_REMINDER_DAYS")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"PSP_LINK_REMINDER_DAYS must be a positive number of days or None, not {value!r}")
    return float(value)


def job_settings(config: Mapping[str, Any]) -> JobSettings:
    return JobSettings(
        batch_size=whole(config, "PSP_JOBS_BATCH"),
        hold=duration(config, "PSP_JOBS_HOLD"),
        requeue_after=duration(config, "PSP_REQUEUE_AFTER"),
        reconcile_after=duration(config, "PSP_RECONCILE_AFTER"),
        reconcile_every=duration(config, "PSP_RECONCILE_EVERY"),
        expire_after=duration(config, "PSP_EXPIRE_AFTER"),
        awaiting_after=duration({"PSP_AWAITING_PSP_AFTER": 86400, **config}, "PSP_AWAITING_PSP_AFTER"),
        retry=retry_policy(config),
    )

"""What every provider module implements, and the shapes they speak in besides the core's own.

A provider turns PSP traffic into :class:`~flask_psp.events.VerifiedMessage` objects — facts whose
authenticity it has proven (signature, seal, verify API, or re-fetch from the PSP) — and the ledger
applies them. That vocabulary lives in :mod:`flask_psp.events` (the core imports no provider); it is
re-exported here for the provider modules. Providers never touch the database and render no pages.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping
from urllib.parse import parse_qsl, urlsplit

import requests

# the core's vocabulary, re-exported for the provider modules
from ..events import OPERATIONS, Event, EventKind, RejectedItem, VerifiedMessage  # noqa: F401

#: seconds: (connect, read) for every outgoing call to a PSP, unless the HTTP session handed to the
#: provider says otherwise in its ``psp_timeout`` attribute (the extension sets it from PSP_HTTP_TIMEOUT)
DEFAULT_TIMEOUT = (5, 20)


def http_session(timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 environ: Mapping[str, str] | None = None) -> requests.Session:
    """The one :class:`requests.Session` of an app's calls to the PSPs (one connection pool),
    with ``timeout`` for :meth:`Provider.http_call`. A plain session reads the environment again on
    every call (proxy variables, ``~/.netrc``, ``REQUESTS_CA_BUNDLE``): with no proxy configured
    it is read once here — the CA bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` —
    and ``~/.netrc`` is never read (its credentials must not reach a PSP). With a proxy variable
    set, requests keeps reading the environment on each call, as it does by default."""
    environ = os.environ if environ is None else environ
    session = requests.Session()
    session.psp_timeout = tuple(timeout)
    proxied = any(key.lower().endswith("_proxy") and key.lower() != "no_proxy" and value
                  for key, value in environ.items())
    if not proxied:
        session.trust_env = False
        session.verify = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or True
    return session


class ProviderError(Exception):
    """The PSP could not be reached or refused a request; ``message`` is safe to show a merchant."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


class NotAuthentic(Exception):
    """The notification's authenticity could not be established: it must change nothing (401/403)."""


class ProofUnavailable(Exception):
    """Authenticity could not be checked right now (verify API or re-fetch unreachable): answer 5xx
    so the PSP retries later."""


class MalformedNotification(Exception):
    """The body cannot be parsed at all (4xx; the inbox keeps it)."""


@dataclass
class InboundRequest:
    """A request from the PSP or from the buyer's browser, as the provider needs to see it."""

    body: bytes
    headers: Mapping[str, str]
    form: Mapping[str, str] = field(default_factory=dict)
    args: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    _parsed_form: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def json(self) -> Any:
        """The body as JSON (:func:`parse_json`): raises MalformedNotification for anything else."""
        return parse_json(self.body)

    def form_fields(self) -> dict[str, str]:
        """The form fields: those the caller parsed already, else the body read as form data
        (:func:`parse_form`, once: choosing the credentials and verifying both read them). A copy."""
        if self.form:
            return dict(self.form)
        if self._parsed_form is None:
            self._parsed_form = parse_form(self.body)
        return dict(self._parsed_form)


#: PSPs' notifications nest a handful of levels; anything deeper is refused as malformed, so that
#: nothing downstream (checks, re-serialising, the admin page's masking) recurses without bound
MAX_JSON_DEPTH = 32
#: a notification's form has a few dozen fields (HiPay's about 100)
MAX_FORM_FIELDS = 1000


def parse_json(body: bytes | str) -> Any:
    """The one way a notification's JSON is read: ``parse_json(b'{"a": [1]}') == {"a": [1]}``.
    Not UTF-8, not JSON, too deep (``"[" * 100000``), numbers of thousands of digits — all raise
    :class:`MalformedNotification`, never anything else."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        data = json.loads(text)
    except RecursionError:
        raise MalformedNotification(f"body is not JSON: nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedNotification(f"body is not JSON: {exc}") from None
    if json_depth(data, MAX_JSON_DEPTH + 1) > MAX_JSON_DEPTH:
        raise MalformedNotification(f"body is not JSON: nested more than {MAX_JSON_DEPTH} levels deep")
    return data


def json_depth(value: Any, stop: int) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar: 0, ``[[1]]``: 2), counted level by
    level without recursion; counting stops at ``stop``."""
    depth, level = 0, [value]
    while depth < stop:
        containers = [node for node in level if isinstance(node, (dict, list))]
        if not containers:
            break
        depth += 1
        level = [child for node in containers for child in (node.values() if isinstance(node, dict) else node)]
    return depth


def parse_form(body: bytes | str) -> dict[str, str]:
    """The one way a notification's form body is read: ``parse_form(b"a=1&b=") == {"a": "1", "b": ""}``.
    Not UTF-8, JSON instead of a form, more than :data:`MAX_FORM_FIELDS` fields — all raise
    :class:`MalformedNotification`."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    except UnicodeDecodeError:
        raise MalformedNotification("the body is not UTF-8 form data") from None
    if text.lstrip().startswith(("{", "[")):
        raise MalformedNotification("the body is JSON, not form data")
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError:
        raise MalformedNotification(f"the form has more than {MAX_FORM_FIELDS} fields") from None


@dataclass
class CheckoutStart:
    """What starting a hosted checkout gave: where to send the buyer and the PSP's reference."""

    psp_reference: str | None
    redirect_url: str | None = None
    #: for form-POST providers (Sips): the form to auto-submit instead of a redirect
    form_action: str | None = None
    form_fields: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    messages: list[VerifiedMessage] = field(default_factory=list)


@dataclass
class CheckoutRequest:
    """Everything provider-neutral a provider needs to open a hosted payment page."""

    token: str
    order_ref: str
    amount: int
    currency: str
    email: str | None
    description: str | None
    locale: str  # "en" | "fr" …
    return_url: str
    cancel_url: str
    notify_url: str
    first_name: str | None = None
    last_name: str | None = None
    address: Mapping[str, str] | None = None
    country: str | None = None
    brand_name: str | None = None
    provider_look: Mapping[str, str] = field(default_factory=dict)
    #: PSD2 buyer data (flask_psp.orders.Address): billing (None: not known), shipping (None:
    #: shipped to the billing address, or not shipped), delivery_type (orders.DELIVERY_TYPES)
    billing: Any = None
    shipping: Any = None
    delivery_type: str | None = None

    def __post_init__(self) -> None:
        if self.billing is None:  # a request built from the flat fields alone
            from ..orders import flat_address

            address = self.address or {}
            self.billing = flat_address(self.first_name, self.last_name, address.get("line1"), address.get("line2"),
                                        address.get("postcode"), address.get("city"), self.country)

    def shipping_address(self) -> Any:
        """Where the goods go: ``shipping``, else the billing address when the order is shipped."""
        if self.shipping is not None and not self.shipping.is_empty():
            return self.shipping
        return self.billing if self.delivery_type == "shipped" else None

    def regional_locale(self) -> str:
        """The buyer's language with a region, as BCP 47 (``fr-FR``), for PSPs that want one: the
        locale as given when it names a region, else with the buyer's country, else the language's
        usual region."""
        locale = self.locale.replace("_", "-")
        if "-" in locale:
            return locale
        if self.country:
            return f"{locale}-{self.country.upper()}"
        return _USUAL_REGION.get(locale, "en-US")


_USUAL_REGION = {"en": "en-US", "fr": "fr-FR", "de": "de-DE", "es": "es-ES", "it": "it-IT", "nl": "nl-NL", "pt": "pt-PT"}


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    secret: bool = False
    required: bool = True
    #: live only / test only fields
    modes: tuple[str, ...] = ("test", "live")
    choices: tuple[str, ...] | None = None
    default: str | None = None


@dataclass
class ProviderConfig:
    """One provider's settings in force: the credentials of the active mode only."""

    name: str
    mode: str
    credentials: dict[str, str]
    capture: str = "auto"  # "auto" | "manual"
    capture_delay_days: int = 0
    three_ds: str = "when_required"  # "always" | "when_required" | "frictionless"
    endpoint: str | None = None
    enabled: bool = True
    #: overrides of the PSP's other API hosts, by field name (Sips ``office_endpoint``): see
    #: :attr:`Provider.endpoint_fields`
    extra_endpoints: dict[str, str] = field(default_factory=dict)


class Provider:
    """Base class of provider modules. Subclasses set the class attributes and implement the verbs.

    ``Provider(config, session=None)``: ``session`` is a :class:`requests.Session` (shared pool).
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    credential_fields: ClassVar[tuple[CredentialField, ...]]
    #: currencies the PSP accepts (None: any ISO 4217 currency)
    currencies: ClassVar[frozenset[str] | None] = None
    #: amounts the PSP accepts, in minor units (None: no bound)
    min_amount: ClassVar[int | None] = None
    max_amount: ClassVar[int | None] = None
    #: does the return redirect carry a proof the plugin must check? (Sips, PayPal)
    return_needs_processing: ClassVar[bool] = False
    supports_capture: ClassVar[bool] = True
    supports_refund: ClassVar[bool] = True
    supports_cancel: ClassVar[bool] = True
    #: can part of an authorization be captured? (False: the whole authorized amount only)
    supports_partial_capture: ClassVar[bool] = True
    #: the PSP's own API hosts, per mode. An endpoint typed in the admin panel must name one of
    #: them over https (:func:`endpoint_problem`); "{field}" is filled from that mode's credentials
    #: (Adyen's live hosts carry the merchant's ``live_endpoint_prefix``)
    own_hosts: ClassVar[Mapping[str, tuple[str, ...]]] = {"test": (), "live": ()}
    #: how the one 3-D Secure policy (always | when_required | frictionless) reaches this PSP, as
    #: the provider page shows it next to each choice (docs/PROVIDERS.md)
    three_ds_mapping: ClassVar[Mapping[str, str]] = {}
    #: the field of the admin panel's payment page that sets the look of this PSP's own page
    #: (key stored in ``PageSettings.provider_look``, label), or None when the PSP's portal sets it
    look_field: ClassVar[tuple[str, str] | None] = None
    #: the endpoint overrides a credential set may hold: ``endpoint`` (every URL of the PSP), and
    #: for a PSP with a second API host a field of its own (Sips ``office_endpoint``), kept with
    #: the same rules (owner only, own hosts, secrets forgotten when it changes)
    endpoint_fields: ClassVar[tuple[str, ...]] = ("endpoint",)
    #: for a PSP the plugin cannot ask about a payment (no ``fetch``): what the merchant should check
    #: when one stays pending (the reconcile job's flag)
    unanswered_hint: ClassVar[str | None] = None
    #: the panel's label of an endpoint field, when "API endpoint override" does not say enough
    endpoint_labels: ClassVar[Mapping[str, str]] = {}

    def __init__(self, config: ProviderConfig, http: requests.Session | None = None):
        self.config = config
        self.http = http or requests.Session()

    # --- checkout -------------------------------------------------------------------------
    def start_checkout(self, request: CheckoutRequest, payment_mode: str) -> CheckoutStart:
        raise NotImplementedError

    def handle_return(self, payment: Any, inbound: InboundRequest) -> list[VerifiedMessage]:
        """The buyer came back; return what can be proven from it (default: ask the PSP)."""
        return self.fetch(payment)

    def abandon(self, payment: Any) -> list[VerifiedMessage]:
        """The buyer gave up on the PSP page; default: ask the PSP what it knows."""
        return self.fetch(payment)

    # --- notifications --------------------------------------------------------------------
    def verify_notification(self, inbound: InboundRequest) -> list[VerifiedMessage | RejectedItem]:
        """Prove and parse. Raises NotAuthentic, ProofUnavailable or MalformedNotification. A batch
        whose items are signed one by one may hold :class:`RejectedItem` entries beside the proven
        messages (when none is proven, NotAuthentic is raised instead)."""
        raise NotImplementedError

    def notification_answer(self) -> tuple[str, int, dict[str, str]]:
        return "OK", 200, {"Content-Type": "text/plain"}

    # --- money operations: return messages proven by the PSP's answer ----------------------
    def capture(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        raise ProviderError(f"{self.display_name} captures are made in its back office")

    def refund(self, payment: Any, amount: int) -> list[VerifiedMessage]:
        raise ProviderError(f"{self.display_name} refunds are made in its back office")

    def cancel(self, payment: Any) -> list[VerifiedMessage]:
        raise ProviderError(f"{self.display_name} cancellations are made in its back office")

    def fetch(self, payment: Any) -> list[VerifiedMessage]:
        """The PSP's current view of a payment, as proven messages (may be empty)."""
        return []

    # --- settings ---------------------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str], mode: str) -> list[str]:
        """Problems with one mode's credentials, in words a merchant understands (empty: fine)."""
        problems = []
        for f in cls.credential_fields:
            if mode in f.modes and f.required and not (credentials.get(f.name) or "").strip():
                problems.append(f"{f.label} ({f.name}) is missing")
            if f.choices and credentials.get(f.name) and credentials[f.name] not in f.choices:
                problems.append(f"{f.label} must be one of {', '.join(f.choices)}")
        return problems

    def test_connection(self) -> tuple[bool, str]:
        raise NotImplementedError

    @classmethod
    def own_api_hosts(cls, mode: str, credentials: Mapping[str, str]) -> set[str]:
        """The hosts of :attr:`own_hosts` for ``mode``, filled from ``credentials``; a template whose
        field is missing or not a host label names no host.

        >>> sorted(AdyenProvider.own_api_hosts("live", {"live_endpoint_prefix": "abc-Shop"}))
        ['abc-shop-checkout-live.adyenpayments.com', 'abc-shop-pal-live.adyenpayments.com']
        """
        hosts = set()
        for template in cls.own_hosts.get(mode, ()):
            values = {k: str(v).strip() for k, v in credentials.items()}
            try:
                host = template.format_map(values)
            except (KeyError, ValueError):
                continue
            if all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
                hosts.add(host.lower())
        return hosts

    # --- helpers ----------------------------------------------------------------------------
    @classmethod
    def notification_mode(cls, inbound: InboundRequest) -> str | None:
        """The mode (test/live) a notification claims, to pick the credentials that verify it;
        None: the mode in force. Raise MalformedNotification if it cannot be read at all."""
        return None

    def addressed_to(self, inbound: InboundRequest) -> bool | None:
        """Does this (unverified) notification name the account of these credentials — e.g. the
        merchant id it carries? Used only to pick which mode's credentials verify it, when the
        notification does not say its mode (:meth:`notification_mode` is None); the proof itself
        is always checked with those credentials. None: cannot tell."""
        return None

    @property
    def credentials(self) -> dict[str, str]:
        return self.config.credentials

    def http_call(self, method: str, url: str, **kwargs) -> requests.Response:
        """Every outgoing call: a timeout always, and network failures as a retryable ProviderError."""
        kwargs.setdefault("timeout", getattr(self.http, "psp_timeout", DEFAULT_TIMEOUT))
        try:
            return self.http.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise ProviderError(
                f"{self.display_name} could not be reached ({type(exc).__name__})", retryable=True
            ) from None

    def allowed_redirect_hosts(self) -> set[str]:
        """Hosts the buyer may be sent to; the configured endpoint's host is always allowed."""
        hosts = set(self.hosted_page_hosts())
        if self.config.endpoint:
            hosts.add(urlsplit(self.config.endpoint).netloc)
        return hosts

    def hosted_page_hosts(self) -> set[str]:
        return set()


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_LOOPBACK_NAMES = {"localhost"}
#: RFC 3986 characters, less "?" and "#" (an endpoint is a base URL)
_NETLOC = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)(?::[0-9]{1,5})?")
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/\[\]%@!$&'()*+,;=]+")


def endpoint_syntax_problem(url: str) -> str | None:
    """What makes ``url`` unusable as an endpoint override (a base URL: http(s), a host, an
    optional port and path; no user, query or fragment), or None."""
    if not _URL_CHARACTERS.fullmatch(url):  # urlsplit drops tabs and newlines; no spaces or backslashes either
        return "characters a URL does not hold"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "a user name or password in the URL"
    if not _NETLOC.fullmatch(parts.netloc):  # one host, read alike by urlsplit and by requests
        return "not a host name or IP address"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "a query string or fragment"
    return None


def is_loopback_host(host: str | None) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost``: this machine (where the simulators listen)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_problem(cls: type[Provider], mode: str, url: str, credentials: Mapping[str, str], *,
                     allow_custom: bool = False) -> str | None:
    """Why an endpoint typed in the admin panel may not carry ``mode``'s secrets, or None.

    Live: one of the provider's own hosts (:attr:`Provider.own_hosts`) over https. Test: those, or
    a simulator on this machine (loopback, http or https). ``allow_custom`` (the application's
    ``PSP_ALLOW_CUSTOM_ENDPOINTS``, for proxies) accepts any host, over https in live mode unless it
    is on this machine. Endpoints in ``PSP_PROVIDERS`` are trusted configuration and not checked here.

    >>> endpoint_problem(PayPlugProvider, "live", "http://127.0.0.1:8499", {}) is not None
    True
    """
    syntax = endpoint_syntax_problem(url)
    if syntax:
        return syntax
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if is_loopback_host(host) and (mode == "test" or allow_custom):
        return None
    if parts.scheme != "https":
        return "not https"
    if allow_custom:
        return None
    if host in cls.own_api_hosts(mode, credentials) and parts.port in (None, 443):
        return None
    return "not one of the provider's own hosts"


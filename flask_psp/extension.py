"""The ``PSP`` extension object."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Iterable

from flask import Flask, current_app, g, request

from . import signals
from .config import (
    DEFAULTS,
    ConfigurationError,
    export_options,
    extra_redirect_hosts,
    job_settings,
    link_reminder_days,
    retry_policy,
    validate_providers,
)
from .i18n import best_locale
from .models import ALL_TABLES, Payment
from .jobs import JOB_NAMES, JobReport, Jobs
from .payments import NotificationQueue, PaymentService
from .providers.base import http_session
from .secret_box import SecretBox, SecretsError, derive_dev_key
from .provider_settings import ProviderSettingsSource

log = logging.getLogger("flask_psp")
_HERE = os.path.dirname(os.path.abspath(__file__))


def _shipped_dir(name: str) -> str:
    """``templates``/``static`` live at the repository root and are packaged inside ``flask_psp``."""
    packaged = os.path.join(_HERE, name)
    return packaged if os.path.isdir(packaged) else os.path.join(os.path.dirname(_HERE), name)


TEMPLATE_FOLDER = _shipped_dir("templates")
STATIC_FOLDER = _shipped_dir("static")
TASK_QUEUES = (None, "celery")


class _State:
    """What ``init_app`` keeps in ``app.extensions["psp"]``."""

    def __init__(self, ext: "PSP", app: Flask, db, orders, providers: dict, box: SecretBox):
        self.ext = ext
        self.db = db
        self.orders = orders
        self.box = box
        self.settings = ProviderSettingsSource(providers, box)
        self.http = http_session(app.config["PSP_HTTP_TIMEOUT"])  # one connection pool for every call to the PSPs
        self.locales = tuple(app.config["PSP_LOCALES"])
        self.default_locale = app.config["PSP_DEFAULT_LOCALE"]
        #: the host's CSRFProtect the buyer's return and the PSPs' notifications are exempt from
        self.csrf_exempted_by = None
        #: set by :func:`flask_psp.celery_tasks.init_celery` (``PSP_TASK_QUEUE = "celery"``)
        self.task_queue: NotificationQueue | None = None
        from .mailer import Mailer, MailConfig

        self.mailer = Mailer(MailConfig.from_config(app.config), app)

    def service(self) -> PaymentService:
        """A payment service for the current app, with its configured retry policy
        (``PSP_RETRY_*``): every path — notifications, buyer returns, the admin panel, the jobs —
        schedules and gives up on failed post-processing alike."""
        retry, redirect_hosts = self._service_config(current_app.config)
        service = PaymentService(
            self.db.session, self.orders, self.settings, signals.send, self.http,
            retry=retry, extra_redirect_hosts=redirect_hosts,
        )
        from .links import mark_links_paid

        # in the transaction that decides: an order's payment links are paid with it, and
        # notification e-mails are outbox rows
        writers = [mark_links_paid] + ([self.mailer.write_notices] if self.mailer.enabled else [])

        def write_notices(session, notices):
            for write in writers:
                write(session, notices)

        service.ledger.write_notices = write_notices
        return service

    _SERVICE_KEYS = ("PSP_RETRY_FIRST_DELAY", "PSP_RETRY_MAX_ATTEMPTS", "PSP_EXTRA_REDIRECT_HOSTS")
    _service_config_read: tuple = (None, None)

    def _service_config(self, config) -> tuple:
        """The retry policy and the extra redirect hosts, parsed again only when their settings
        changed (every notification and checkout asks for a service)."""
        raw = repr([config.get(key) for key in self._SERVICE_KEYS])
        read_from, parsed = self._service_config_read
        if read_from != raw:
            parsed = (retry_policy(config), extra_redirect_hosts(config))
            self._service_config_read = (raw, parsed)
        return parsed

    def links(self, service: PaymentService | None = None):
        """The payment links (:class:`flask_psp.links.PaymentLinks`) on this app's service."""
        from .links import PaymentLinks

        config = current_app.config
        return PaymentLinks(service or self.service(), self.mailer, locales=self.locales,
                            default_locale=self.default_locale, reminder_days=link_reminder_days(config),
                            batch_size=job_settings(config).batch_size)

    def notification_queue(self) -> NotificationQueue | None:
        """Where this app's notifications go once verified: None applies them inline."""
        kind = current_app.config.get("PSP_TASK_QUEUE")
        if kind not in TASK_QUEUES:
            raise ConfigurationError(f"PSP_TASK_QUEUE must be None or 'celery', not {kind!r}")
        if kind is None:
            return None
        if self.task_queue is None:
            # misconfigured, but a proven notification must not be lost: applied inline meanwhile
            log.error("PSP_TASK_QUEUE is 'celery' but flask_psp.celery_tasks.init_celery(celery_app, app) was not called")
        return self.task_queue

    def jobs(self, enqueue=None) -> Jobs:
        """The scheduled jobs on this app's service, with the ``PSP_JOBS_*`` settings."""
        service = self.service()
        return Jobs(service, job_settings(current_app.config), enqueue=enqueue, mailer=self.mailer,
                    links=self.links(service).send_reminders)

    def run_jobs(self, names: Iterable[str] = JOB_NAMES, enqueue=None) -> list[JobReport]:
        """Run the named jobs once (``flask psp run-jobs``, the beat tasks)."""
        return self.jobs(enqueue).run(names)


class PSP:
    """Payments for a Flask shop.

    ::

        from flask_psp import PSP, OrderInfo

        class Orders:
            def get(self, ref):
                order = db.session.get(Order, ref)
                return order and OrderInfo(order.ref, order.total_cents, "EUR", email=order.email)

            def mark_paid(self, ref, payment):
                db.session.get(Order, ref).status = "paid"   # same transaction as the payment

        psp = PSP(app, db=db, orders=Orders())     # or psp = PSP(); psp.init_app(app, db=db, orders=...)

    Buyers pay at ``url_for("psp.checkout", order_ref=ref)``. Configuration keys: see
    :data:`flask_psp.config.DEFAULTS` and the documentation's configuration reference.
    """

    def __init__(self, app: Flask | None = None, *, db=None, orders=None):
        self.db = db
        self.orders = orders
        if app is not None:
            self.init_app(app, db=db, orders=orders)

    def init_app(self, app: Flask, *, db=None, orders=None) -> None:
        """Set the plugin up on ``app``: the ``PSP_*`` defaults, the check of ``PSP_PROVIDERS`` and of the
        encryption key (:class:`~flask_psp.ConfigurationError` says what to fix), the plugin's tables in
        ``db.metadata``, the blueprint under ``PSP_URL_PREFIX`` and the ``flask psp`` commands."""
        db = db if db is not None else self.db
        orders = orders if orders is not None else self.orders
        if db is None:
            raise ConfigurationError("PSP needs the app's Flask-SQLAlchemy instance: PSP(app, db=db, orders=...)")
        if orders is None or not all(callable(getattr(orders, m, None)) for m in ("get", "mark_paid")):
            raise ConfigurationError("PSP needs an orders adapter with get(order_ref) and mark_paid(order_ref, payment)")
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        prefix = app.config["PSP_URL_PREFIX"]
        if not prefix.startswith("/") or prefix.endswith("/") and prefix != "/":
            raise ConfigurationError("PSP_URL_PREFIX must start with '/' and not end with one, e.g. '/psp'")

        keys = app.config["PSP_ENCRYPTION_KEY"]
        keys = [keys] if isinstance(keys, str) else list(keys or [])
        providers = validate_providers(app.config["PSP_PROVIDERS"], has_encryption_key=bool(keys))
        export_options(app.config)  # a wrong SIREN, currency or time zone stops the start, not an export
        extra_redirect_hosts(app.config)  # refused at start-up, not at the first checkout
        if not keys:
            if not (app.debug or app.testing):
                raise ConfigurationError(
                    "PSP_ENCRYPTION_KEY is required outside debug and testing: "
                    "generate one with `flask psp generate-key`"
                )
            if not app.config.get("SECRET_KEY"):
                raise ConfigurationError("set PSP_ENCRYPTION_KEY (or, in debug/testing, at least SECRET_KEY)")
            keys = [derive_dev_key(app.config["SECRET_KEY"])]
        try:
            box = SecretBox(keys)
        except SecretsError as exc:
            raise ConfigurationError(str(exc)) from None

        for table in ALL_TABLES:  # the host's create_all and Alembic autogenerate see our tables
            if table.name not in db.metadata.tables:
                table.to_metadata(db.metadata)

        app.extensions["psp"] = _State(self, app, db, orders, providers, box)
        from .mailer import connect as connect_mail

        connect_mail()  # notification e-mails on the signals (sent from a background thread)
        from .links import connect as connect_links

        connect_links()  # payment_link_paid after order_paid
        link_reminder_days(app.config)  # a wrong value stops the start, not the first job
        self._init_babel(app)
        from .views import blueprint

        app.register_blueprint(blueprint, url_prefix=prefix)
        self._exempt_from_csrf(app)
        if "csrf" not in app.extensions:
            # should the host set its CSRFProtect up after us, its check is registered after this
            app.before_request(lambda: self._exempt_from_csrf(app))

        from .cli import psp_cli

        if "psp" not in app.cli.commands:
            app.cli.add_command(psp_cli)

    # ------------------------------------------------------------------ wiring
    @staticmethod
    def _init_babel(app: Flask) -> None:
        if "babel" in app.extensions:
            return
        from flask_babel import Babel

        def select_locale():
            state = app.extensions["psp"]
            forced = g.get("psp_locale")
            if forced:
                return forced
            return best_locale(
                [m for m, _ in request.accept_languages] if request else [], state.locales, state.default_locale
            )

        Babel(app, locale_selector=select_locale)

    @staticmethod
    def _exempt_from_csrf(app: Flask) -> None:
        """PSPs and cross-site returns carry no CSRF token: exempt those two views from the host's
        CSRFProtect with ``csrf.exempt``, once, whether it was set up before or after us."""
        csrf = app.extensions.get("csrf")
        state = app.extensions["psp"]
        if csrf is None or state.csrf_exempted_by is csrf:
            return
        for endpoint in ("psp.notify", "psp.return_"):
            csrf.exempt(app.view_functions[endpoint])
        state.csrf_exempted_by = csrf

    # ------------------------------------------------------------------ public API for shop code
    def service(self) -> PaymentService:
        return current_state().service()

    def payments_for(self, order_ref: str) -> list[Payment]:
        """Every payment attempt of an order, oldest first."""
        return self.service().payments_of(order_ref)

    def payment(self, token: str) -> Payment | None:
        """The payment whose public token (in the buyer's URLs) is ``token``, or None."""
        return self.service().by_token(token)

    def capture(self, payment: Payment, amount: int | None = None) -> Payment:
        """Capture an authorized payment (default: all that is capturable). Raises ProviderError."""
        return self.service().capture(payment, amount)

    def refund(self, payment: Payment, amount: int | None = None) -> Payment:
        """Refund a paid payment (default: all that remains). Raises ProviderError."""
        return self.service().refund(payment, amount)

    def cancel(self, payment: Payment) -> Payment:
        """Cancel an authorized payment that was not captured. Raises ProviderError."""
        return self.service().cancel(payment)

    def create_payment_link(self, order_ref: str, *, email: str | None = None,
                            expires_in: timedelta = timedelta(days=30), locale: str | None = None,
                            note: str | None = None, actor: str = "shop code"):
        """A new payment link for an unpaid order: a :class:`~flask_psp.models.PaymentLink` with its
        ``url``, ``token``, ``status``, ``expires_at``. The amount is the order's when the buyer opens
        it. Raises :class:`flask_psp.links.LinkError` (unknown or paid order, bad address…)."""
        return current_state().links().create(order_ref, email=email, expires_in=expires_in, locale=locale,
                                              note=note, actor=actor)

    def send_payment_link(self, link, *, actor: str = "shop code"):
        """Mail the payment request (HTML and plain text, in the buyer's language) through the mail
        outbox, to the link's address or else the order's. Raises :class:`flask_psp.links.LinkError`."""
        return current_state().links().send(link, actor=actor)

    def cancel_payment_link(self, link, *, actor: str = "shop code"):
        """Cancel a link that is not paid: its page then answers 410. Raises :class:`flask_psp.links.LinkError`."""
        return current_state().links().cancel(link, actor=actor)

    def payment_links_for(self, order_ref: str) -> list:
        """Every payment link of an order, oldest first."""
        return current_state().links().for_order(order_ref)

    def payment_link(self, token: str):
        return current_state().links().by_token(token)

    def upgrade_database(self, revision: str = "head") -> None:
        """Run the plugin's migrations on the app's database (``flask psp db upgrade``)."""
        from .migrations import upgrade

        upgrade(current_state().db.engine, revision)

    def create_user(self, email: str, password: str, role: str = "owner"):
        """A built-in admin panel account (``flask psp create-user``); role ``owner``, ``manager``,
        ``accountant`` or ``viewer``. Raises ValueError for a password under 10 characters."""
        from .users import create_user

        return create_user(current_state().db.session, email, password, role)


def current_state() -> _State:
    """The current app's plugin state (``app.extensions["psp"]``): its service, jobs, mailer, settings.
    The one way the views, the CLI and the Celery tasks reach them."""
    return current_app.extensions["psp"]

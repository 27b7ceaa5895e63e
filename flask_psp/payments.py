"""Provider-neutral payment flows: start a checkout, take a notification, bring a buyer back,
capture, refund, cancel, ask the PSP again. No Flask: views hand in what they parsed and get plain
results back."""

from __future__ import annotations

import dataclasses
import enum
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

import requests
from sqlalchemy import and_, bindparam, exists, func, insert, literal_column, or_, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from .events import EventKind, InboxOutcome, VerifiedMessage
from .ledger import Ledger, Outcome, PostProcessingError, RetryPolicy, SignalSender
from .models import UPDATE_PAYMENT, AuditEntry, PageSettings, Payment, PaymentEvent, execute_plain, new_token, utcnow
from .money import to_decimal_string
from .orders import OrderInfo
from .providers import get_provider_class, provider_names
from .providers.base import (
    CheckoutRequest,
    CheckoutStart,
    InboundRequest,
    MalformedNotification,
    NotAuthentic,
    ProofUnavailable,
    Provider,
    ProviderConfig,
    ProviderError,
)
from .secret_box import safe_headers
from .provider_settings import ProviderSettingsSource, as_sent_to_psp, capture_policy
from .states import SETTLED, PaymentStatus

log = logging.getLogger("flask_psp")
S = PaymentStatus
#: the settled statuses written into the statement as constants (they are the plugin's own words, no
#: input): an IN of bound values is expanded anew at every execution, which cost a checkout more
#: than running the rest of the statement
_SETTLED_IN_SQL = [literal_column(f"'{s.value}'") for s in sorted(SETTLED, key=lambda s: s.value)]
#: the payments that paid an order: settled, or handed to the shop's ``mark_paid``
_SETTLED_OF_ORDER = and_(Payment.order_ref == bindparam("of_order"),
                         or_(Payment.order_marked_at.is_not(None), Payment.status.in_(_SETTLED_IN_SQL)))
#: the first payment that paid an order, if any (the id alone)
_SETTLED_ID = select(Payment.id).where(_SETTLED_OF_ORDER).order_by(Payment.id).limit(1)
_PAYMENTS = Payment.__table__
#: the columns a checkout start gives a new payment (the others take their defaults)
_STARTED_COLUMNS = ("token", "order_ref", "provider", "mode", "capture", "capture_delay_days", "amount", "currency",
                    "locale", "email", "status", "extra")
_PAGE_LOOK = (select(PageSettings.brand_name).limit(1).scalar_subquery().label("brand_name"),
              select(PageSettings.provider_look).limit(1).scalar_subquery().label("provider_look"))


def _insert_unless_settled(*also):
    """A checkout start's one statement: insert the new payment unless a payment of its order paid
    it already (no row then), returning its id, the look the merchant set for the PSPs' pages and
    ``also``."""
    values = select(*(bindparam(name, type_=_PAYMENTS.c[name].type) for name in _STARTED_COLUMNS)).where(
        ~exists().where(_SETTLED_OF_ORDER))
    return (insert(_PAYMENTS).from_select([_PAYMENTS.c[name] for name in _STARTED_COLUMNS], values)
            .returning(_PAYMENTS.c.id, *_PAGE_LOOK, *also))


_INSERT_UNLESS_SETTLED = _insert_unless_settled()
#: PostgreSQL: the same INSERT also sets ``synchronous_commit`` off for its transaction alone (what
#: ``SET LOCAL`` does, without a statement of its own). A checkout's attempt is committed before its
#: PSP is called without waiting for the disk: it is recorded all the same — seen by every
#: connection, kept if this process dies during the call — and the commit of the PSP's answer, which
#: waits, makes both durable. Only a crash of the database server between the two loses it, as it
#: would an attempt committed with the answer. (A checkout waited for two disk flushes, the longest
#: part of its answer.)
_INSERT_UNLESS_SETTLED_NOT_WAITING_FOR_DISK = _insert_unless_settled(
    func.set_config("synchronous_commit", "off", True))


class AlreadyPaid(Exception):
    def __init__(self, payment: Payment):
        super().__init__(f"order {payment.order_ref} is already paid")
        self.payment = payment


class NotAvailable(Exception):
    """The provider is not enabled or does not accept this order (currency, amount)."""


@dataclass
class Urls:
    return_url: str
    cancel_url: str
    notify_url: str


class Check(enum.Enum):
    """What asking the PSP about a payment gave."""

    CHECKED = "checked"  # the PSP answered; what it proved was applied
    CANNOT_ASK = "cannot_ask"  # this PSP has no read API (or no credentials for the payment's mode)
    UNREACHABLE = "unreachable"  # the PSP could not be reached or refused: try again later


class NotificationQueue(Protocol):
    """Where verified notifications go to be applied by background workers (``flask_psp.celery_tasks``)."""

    #: a row still queued this long after it was stored is re-queued by the sweeper
    requeue_after: timedelta

    def enqueue(self, event_ids: list[int]) -> None:
        """Hand the inbox rows to the workers; raise if they cannot be handed over now."""


@dataclass
class NotificationAnswer:
    status: int
    body: str
    headers: dict[str, str]
    outcomes: list[Outcome]


class PaymentService:
    def __init__(
        self,
        session: Session,
        orders,
        settings: ProviderSettingsSource,
        send_signal: SignalSender,
        http: requests.Session,
        defaults: dict | None = None,
        retry: RetryPolicy | None = None,
        extra_redirect_hosts: Mapping[str, frozenset[str]] | None = None,
    ):
        #: PSP_EXTRA_REDIRECT_HOSTS: {provider or "*": hosts} accepted beyond the providers' own
        self.extra_redirect_hosts = dict(extra_redirect_hosts or {})
        self.session = session
        self.orders = orders
        self.settings = settings
        self.http = http
        self.ledger = Ledger(session, orders, send_signal, retry,
                             mode_in_force=lambda name: settings.mode_in_force(session, name))

    # ------------------------------------------------------------------ providers
    def provider(self, name: str, mode: str | None = None) -> Provider | None:
        """The provider with the credentials of ``mode`` (default: the mode in force), or None when
        those credentials are not configured. Disabled providers still verify late notifications."""
        config = self.settings.config_for(self.session, name, mode)
        if config is None:
            return None
        cls = get_provider_class(name)
        if cls.validate_credentials(config.credentials, config.mode):
            return None
        return cls(as_sent_to_psp(config), self.http)

    def notification_provider(self, provider_name: str, inbound: InboundRequest) -> Provider:
        """The provider with the credentials that must prove this notification: those of the mode
        it claims (:meth:`Provider.notification_mode`); when it claims none, those of the mode whose
        account it names (:meth:`Provider.addressed_to`: a Sips response sent in test mode arriving
        after the switch to live names the test merchant), else the mode in force. Reading the
        unverified body only picks the credentials; their proof is checked all the same. Raises
        NotAuthentic when there are no such credentials, MalformedNotification for an unreadable body."""
        cls = get_provider_class(provider_name)
        mode = cls.notification_mode(inbound)
        if mode is None:
            in_force = self.settings.config_for(self.session, provider_name)
            if in_force is not None:
                other = "live" if in_force.mode == "test" else "test"
                for candidate in (in_force.mode, other):
                    provider = self.provider(provider_name, candidate)
                    if provider is not None and provider.addressed_to(inbound):
                        return provider
        provider = self.provider(provider_name, mode)
        if provider is None:
            raise NotAuthentic(f"no {mode or 'active'} credentials for {provider_name} to verify it with")
        return provider

    def expire_test_payments_of_live_providers(self, actor: str = "flask psp run-jobs (expire)") -> list[int]:
        """:func:`expire_test_payments` for every provider live now, and commit: how a switch to
        live made in ``PSP_PROVIDERS`` (a deploy) is noticed, by the ``expire`` job. Returns the ids."""
        expired = []
        for name in provider_names():
            if self.settings.mode_in_force(self.session, name) == "live":
                expired += expire_test_payments(self.session, name, actor)
        self.session.commit()
        return expired

    @staticmethod
    def can_fetch(provider_name: str) -> bool:
        """Can the plugin ask this PSP for a payment's state (``Provider.fetch``)?"""
        return get_provider_class(provider_name).fetch is not Provider.fetch

    def available_providers(self, order: OrderInfo, only: str | None = None) -> list[ProviderConfig]:
        """Providers the buyer may choose for this order, in the merchant's display order
        (``only``: that one, if the buyer may choose it)."""
        result = []
        for config, (low, high, currencies) in self.settings.offered(self.session, only):
            cls = get_provider_class(config.name)
            if cls.currencies is not None and order.currency not in cls.currencies:
                continue
            if currencies is not None and order.currency not in currencies:
                continue
            lows = [b for b in (low, cls.min_amount) if b is not None]
            highs = [b for b in (high, cls.max_amount) if b is not None]
            if (lows and order.amount < max(lows)) or (highs and order.amount > min(highs)):
                continue
            result.append(config)
        return result

    # ------------------------------------------------------------------ orders
    def payments_of(self, order_ref: str) -> list[Payment]:
        return list(self.session.scalars(select(Payment).where(Payment.order_ref == order_ref).order_by(Payment.id)))

    def settled_payment(self, order_ref: str) -> Payment | None:
        """The payment that paid this order, if any (:meth:`settled_among`, asked of the database)."""
        settled_id = self.session.scalar(_SETTLED_ID, {"of_order": order_ref})
        return None if settled_id is None else self.session.get(Payment, settled_id)

    @staticmethod
    def settled_among(payments: list[Payment]) -> Payment | None:
        """The payment that paid the order, among all of the order's payments."""
        return next((p for p in payments if p.order_marked_at is not None or p.status_enum in SETTLED), None)

    def by_token(self, token: str) -> Payment | None:
        return self.session.scalar(select(Payment).where(Payment.token == token))

    # ------------------------------------------------------------------ checkout
    def start(
        self, order: OrderInfo, provider_name: str, locale: str, urls: Callable[[str], Urls], extras: dict | None = None,
        payment_extra: dict | None = None,
    ) -> tuple[Payment, CheckoutStart]:
        """Create a payment of ``order`` and start the provider's hosted checkout, with the look the
        merchant set for the PSPs' pages (``extras``: ``brand_name``, ``provider_look`` given instead).
        ``payment_extra`` seeds the payment's ``extra`` (a payment link's token: ``{"payment_link": token}``)."""
        config = next(iter(self.available_providers(order, only=provider_name)), None)
        if config is None:
            self._refuse_if_paid(order.reference)
            raise NotAvailable(provider_name)
        provider = get_provider_class(provider_name)(as_sent_to_psp(config), self.http)
        policy, delay_days = capture_policy(config)
        # the token is made here, not at the flush: the request to the PSP is built from what is at
        # hand, and nothing reads the payment back after the commit that records the attempt
        token = new_token()
        payment = Payment(
            token=token,
            order_ref=order.reference,
            provider=provider_name,
            mode=config.mode,
            capture=policy,
            capture_delay_days=delay_days,
            amount=order.amount,
            currency=order.currency,
            locale=locale,
            email=order.email,
            status=S.CREATED.value,
            extra=dict(payment_extra or {}),
        )
        payment_id, brand_name, provider_look = self._insert(payment)
        links = urls(token)
        extras = {"brand_name": brand_name, "provider_look": provider_look, **(extras or {})}
        billing = order.billing_address()
        request = CheckoutRequest(
            token=token,
            order_ref=order.reference,
            amount=order.amount,
            currency=order.currency,
            email=order.email,
            description=order.description,
            locale=locale,
            return_url=links.return_url,
            cancel_url=links.cancel_url,
            notify_url=links.notify_url,
            first_name=billing.first_name if billing else None,
            last_name=billing.last_name if billing else None,
            address={
                "line1": (billing.line1 if billing else None) or "",
                "line2": (billing.line2 if billing else None) or "",
                "postcode": (billing.postcode if billing else None) or "",
                "city": (billing.city if billing else None) or "",
            },
            country=billing.country if billing else None,
            brand_name=extras.get("brand_name"),
            provider_look=extras.get("provider_look") or {},
            billing=billing,
            shipping=order.shipping,
            delivery_type=order.delivery_type,
        )
        self.session.commit()  # the attempt, before the PSP is called (not waiting for the disk: above)
        try:
            started = provider.start_checkout(request, config.mode)
            self._check_redirect(provider, started)
        except ProviderError as exc:
            self._record_start(payment, payment_id, status=S.FAILED.value, failure_reason=exc.message[:255])
            log.warning("starting %s checkout for order %s failed: %s", provider_name, order.reference, exc.message)
            raise
        # the payment's extra is what it was created with (a payment link's token), plus the PSP's
        answer = {"extra": {**(payment_extra or {}), **started.extra}} if started.extra else {}
        self._record_start(payment, payment_id, psp_reference=started.psp_reference,
                           redirect_url=started.redirect_url or started.form_action, status=S.PENDING.value, **answer)
        if started.messages:
            self.ledger.record_and_apply(provider_name, started.messages, source="api")
        return payment, started

    def _insert(self, payment: Payment) -> tuple[int, str | None, dict | None]:
        """Store a new payment with one INSERT — unless a payment of its order has paid it (raises
        AlreadyPaid) — and attach it to the session as stored: what it was not given (its defaults)
        is read from the database when first asked for. Returns its id and the look the merchant set
        for the PSPs' pages (brand name, provider look), read by the same statement. (The session's
        unit of work cost a checkout several times more; the settled check, a statement of its own.)"""
        on_postgresql = self.session.get_bind(mapper=Payment).dialect.name == "postgresql"
        statement = _INSERT_UNLESS_SETTLED_NOT_WAITING_FOR_DISK if on_postgresql else _INSERT_UNLESS_SETTLED
        values = {**{name: getattr(payment, name) for name in _STARTED_COLUMNS}, "of_order": payment.order_ref}
        while (stored := execute_plain(self.session, statement, values).first()) is None:
            # returns only when the payment that had paid the order was cancelled since: insert again
            self._refuse_if_paid(payment.order_ref)
        payment.id = stored.id
        make_transient_to_detached(payment)
        self.session.add(payment)
        return payment.id, stored.brand_name, stored.provider_look

    def _refuse_if_paid(self, order_ref: str) -> None:
        """Raise AlreadyPaid when a payment has paid this order."""
        paid = self.settled_payment(order_ref)
        if paid is not None:
            raise AlreadyPaid(paid)

    def _record_start(self, payment: Payment, payment_id: int, **values) -> None:
        """What came of asking the PSP to start a payment, in one UPDATE, committed. (The commit
        that recorded the attempt expired the payment object: written back through the ORM, it
        would be loaded again first.) The object is expired, so that whoever reads it next reads
        the row as it is now, whatever the session's ``expire_on_commit``."""
        execute_plain(self.session, UPDATE_PAYMENT, {"payment_id": payment_id, **values})
        self.session.expire(payment)
        self.session.commit()

    def _check_redirect(self, provider: Provider, started: CheckoutStart) -> None:
        """The payment page must be on one of the PSP's own hosts (or PSP_EXTRA_REDIRECT_HOSTS'):
        a tampered API answer must not send buyers elsewhere."""
        target = started.redirect_url or started.form_action
        if not target:
            raise ProviderError(f"{provider.display_name} gave no payment page")
        parts = urlsplit(target)
        endpoint_host = urlsplit(provider.config.endpoint).netloc if provider.config.endpoint else None
        extra = self.extra_redirect_hosts.get("*", frozenset()) | self.extra_redirect_hosts.get(provider.name,
                                                                                                frozenset())
        host = parts.netloc.lower()
        allowed = parts.netloc in provider.allowed_redirect_hosts() or (host in extra and parts.scheme == "https")
        secure = parts.scheme == "https" or (parts.scheme == "http" and parts.netloc == endpoint_host)
        if not (allowed and secure):
            log.warning(
                "%s sent the buyer to %s://%s, %s: checkout stopped. If %s is %s's own payment page host, add it "
                "to PSP_EXTRA_REDIRECT_HOSTS", provider.display_name, parts.scheme, host,
                "not over https" if allowed else "a host not in its allow-list", host, provider.display_name)
            raise ProviderError(f"{provider.display_name} sent the buyer to an unexpected address ({host})")

    # ------------------------------------------------------------------ buyer coming back
    def refresh(self, payment: Payment, how: str, inbound: InboundRequest | None = None) -> Payment:
        """Ask the PSP what became of a payment the buyer returns from (``how``: return|abandon)
        and apply what it proves. A PSP that cannot be reached leaves the page on "pending"."""
        provider = self.provider(payment.provider, payment.mode)
        if provider is None:
            return payment
        try:
            if how == "abandon":
                messages = provider.abandon(payment)
            else:
                messages = provider.handle_return(payment, inbound or InboundRequest(b"", {}))
        except (ProviderError, NotAuthentic, MalformedNotification, ProofUnavailable) as exc:
            log.info("could not refresh payment %s from %s: %s", payment.id, payment.provider, exc)
            return payment
        try:
            self.ledger.record_and_apply(payment.provider, messages, source="return")
        except PostProcessingError:
            pass  # the inbox keeps it; the notification or a retry will apply it
        self.session.refresh(payment)
        return payment

    def check_with_psp(self, payment: Payment) -> Check:
        """Ask the PSP for the payment's state and apply what it proves (the scheduled jobs: missed
        notifications). Nothing changes unless the PSP answered."""
        provider = self.provider(payment.provider, payment.mode)
        if provider is None or not self.can_fetch(payment.provider):
            return Check.CANNOT_ASK
        try:
            messages = provider.fetch(payment)
        except (ProviderError, NotAuthentic, MalformedNotification, ProofUnavailable) as exc:
            log.info("could not check payment %s with %s: %s", payment.id, payment.provider, exc)
            return Check.UNREACHABLE
        try:
            self.ledger.record_and_apply(payment.provider, messages, source="fetch")
        except PostProcessingError:
            pass  # the inbox row keeps it and the retry job applies it
        self.session.refresh(payment)
        return Check.CHECKED

    # ------------------------------------------------------------------ notifications
    def take_notification(
        self,
        provider_name: str,
        inbound: InboundRequest,
        remote_addr: str | None,
        queue: NotificationQueue | None = None,
    ) -> NotificationAnswer:
        """Prove and apply — or, with a ``queue``, prove and hand to the background workers,
        answering at once. The notification is stored whatever becomes of it, in the transaction
        that decides it (refused, applied, queued), or on its own when applying it failed. Raises
        nothing but database errors: then nothing was stored and the view answers 5xx."""
        row = self.ledger.receive(
            provider_name,
            inbound.body,
            headers=safe_headers(inbound.headers),
            content_type=inbound.content_type,
            remote_addr=remote_addr,
        )
        try:
            provider = self.notification_provider(provider_name, inbound)
            messages = provider.verify_notification(inbound)
        except MalformedNotification as exc:
            self.ledger.reject(row, InboxOutcome.INVALID, str(exc))
            return NotificationAnswer(400, f"malformed notification: {exc}", {}, [])
        except NotAuthentic as exc:
            self.ledger.reject(row, InboxOutcome.REJECTED, str(exc))
            log.warning("%s notification %s refused: %s", provider_name, row.id, exc)
            return NotificationAnswer(403, "not authentic", {}, [])
        except ProofUnavailable as exc:
            row.outcome, row.outcome_detail = InboxOutcome.ERROR, f"could not verify now: {exc}"
            self.session.add(row)
            self.session.commit()
            return NotificationAnswer(503, "cannot verify now, retry later", {"Retry-After": "60"}, [])
        if queue is not None:
            return self._queue(provider, row, messages, queue)
        try:
            outcomes = self.ledger.apply_all(row, messages)
        except PostProcessingError:
            return NotificationAnswer(500, "could not process, retry later", {}, [])
        body, status, headers = provider.notification_answer()
        return NotificationAnswer(status, body, headers, outcomes)

    def _queue(
        self, provider: Provider, row: PaymentEvent, messages: list[VerifiedMessage], queue: NotificationQueue
    ) -> NotificationAnswer:
        """Proven and stored: the PSP's part is done. The workers apply it; if they cannot be
        reached now it is applied here, and if that fails too the retry job has it."""
        ids = self.ledger.queue_all(row, messages, utcnow() + queue.requeue_after)
        outcomes = []
        if ids:
            try:
                queue.enqueue(ids)
            except Exception:  # noqa: BLE001 - a broker down must not lose a proven notification
                log.exception("could not queue inbox rows %s: applying them now", ids)
                outcomes = self.apply_queued(ids)
        body, status, headers = provider.notification_answer()
        return NotificationAnswer(status, body, headers, outcomes)

    def apply_queued(
        self, event_ids: list[int], expected: tuple[InboxOutcome, ...] = (InboxOutcome.QUEUED,)
    ) -> list[Outcome]:
        """Apply inbox rows kept for later (a worker's task, the sweeper, the retry job). A row
        whose post-processing fails is left to the retry job: the inbox says why."""
        outcomes = []
        for event_id in event_ids:
            try:
                outcome = self.ledger.apply_stored(event_id, expected)
            except PostProcessingError:
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    # ------------------------------------------------------------------ merchant operations
    def operate(self, payment: Payment, verb: str, amount: int | None = None) -> "Operation":
        """Capture, refund (``amount``: default all there is) or cancel through the PSP; says
        whether the PSP did it or only took the request (its notification will tell). The
        order's payments stay locked from the check of what may be done until the PSP's answer is
        recorded, so two clicks at once make one request. Raises ValueError (not possible now)
        or ProviderError (the PSP refused or could not be reached)."""
        rules = {"capture": self._capture_arguments, "refund": self._refund_arguments, "cancel": self._cancel_arguments}
        if verb not in rules:
            raise ValueError(f"unknown operation {verb!r}")
        provider = self.provider(payment.provider, payment.mode)
        if provider is None:
            raise ProviderError(f"{payment.provider} has no {payment.mode} credentials configured")
        locked = next(p for p in self.ledger.lock_order(payment.order_ref) if p.id == payment.id)
        try:
            args = rules[verb](locked, amount, provider.display_name)
            messages = getattr(provider, verb)(locked, *args)
        except BaseException:
            self.session.rollback()
            raise
        if verb == "capture":
            messages = [_as_asked(message, args[0]) for message in messages]
        awaiting = any(e.kind is EventKind.REQUESTED for m in messages for e in m.events)
        self.ledger.record_and_apply_locked(payment.provider, messages, source="api")
        self.session.refresh(payment)
        return Operation(payment, awaiting)

    def capture(self, payment: Payment, amount: int | None = None) -> Payment:
        return self.operate(payment, "capture", amount).payment

    def refund(self, payment: Payment, amount: int | None = None) -> Payment:
        return self.operate(payment, "refund", amount).payment

    def cancel(self, payment: Payment) -> Payment:
        return self.operate(payment, "cancel").payment

    def _capture_arguments(self, payment: Payment, amount: int | None, provider: str) -> tuple:
        if payment.status_enum is not S.AUTHORIZED:
            raise ValueError(f"only an authorized payment can be captured (this one is {payment.status})")
        if any(op.get("operation") == "cancel" for op in payment.pending_operations):
            raise ValueError(f"a cancellation is awaiting {provider}'s confirmation")
        wanted = payment.capturable_amount if amount is None else amount
        self._not_twice(payment, "capture", wanted, provider)
        self._within(payment, "capture", wanted, payment.capturable_amount, provider)
        return (wanted,)

    def _refund_arguments(self, payment: Payment, amount: int | None, provider: str) -> tuple:
        if payment.status_enum not in (S.PAID, S.PARTIALLY_REFUNDED):
            raise ValueError(f"only a paid payment can be refunded (this one is {payment.status})")
        wanted = payment.refundable_amount if amount is None else amount
        self._not_twice(payment, "refund", wanted, provider)
        self._within(payment, "refund", wanted, payment.refundable_amount, provider)
        return (wanted,)

    def _cancel_arguments(self, payment: Payment, amount: int | None, provider: str) -> tuple:
        if payment.status_enum not in (S.CREATED, S.PENDING, S.AUTHORIZED):
            raise ValueError(f"a {payment.status} payment cannot be cancelled")
        self._not_twice(payment, "cancel", None, provider)
        return ()

    @staticmethod
    def _not_twice(payment: Payment, operation: str, amount: int | None, provider: str) -> None:
        """The same request while the first awaits the PSP's word is a second click, not a wish."""
        for op in payment.pending_operations:
            if op.get("operation") == operation and (amount is None or op.get("amount") == amount):
                what = {"capture": "a capture", "refund": "a refund", "cancel": "a cancellation"}[operation]
                if op.get("amount"):
                    what += f" of {to_decimal_string(op['amount'], payment.currency)} {payment.currency}"
                raise ValueError(f"{what} is already awaiting {provider}'s confirmation")

    @staticmethod
    def _within(payment: Payment, operation: str, wanted: Any, limit: int, provider: str) -> None:
        if isinstance(wanted, int) and not isinstance(wanted, bool) and 0 < wanted <= limit:
            return
        waiting = payment.pending_amount(operation)
        earlier = (f"{to_decimal_string(waiting, payment.currency)} {payment.currency} asked earlier awaits "
                   f"{provider}'s confirmation") if waiting else ""
        if limit == 0 and earlier:
            raise ValueError(f"nothing is left to {operation}: {earlier}")
        raise ValueError(f"{operation} amount must be between 1 and {limit}" + (f" ({earlier})" if earlier else ""))


def _as_asked(message: VerifiedMessage, amount: int) -> VerifiedMessage:
    """The PSP's answer to a capture the merchant asked for: its captures say how much was asked,
    which the ledger takes as the one reason a capture may be for less than the payment."""
    events = [dataclasses.replace(e, operation="capture", operation_amount=amount) if e.kind is EventKind.CAPTURED
              else e for e in message.events]
    return dataclasses.replace(message, events=events)


#: why a test-mode payment left open when its provider went live was expired
SWITCHED_TO_LIVE = "expired: the provider went live (test-mode payments cannot pay orders any more)"


def expire_test_payments(session: Session, provider: str, actor: str) -> list[int]:
    """Expire the open (created, pending) test-mode payments of ``provider``, which is live now, in
    the caller's transaction (the switch to live, or the ``expire`` job for ``PSP_PROVIDERS``), with
    an audit entry; the caller commits. The statement takes the rows' write locks, so a notification
    applied at the same time waits and finds them expired. Returns the ids expired::

        expire_test_payments(session, "sips", actor="owner@example.com")
        session.commit()
    """
    stmt = (
        update(Payment)
        .where(Payment.provider == provider, Payment.mode == "test",
               Payment.status.in_((S.CREATED.value, S.PENDING.value)))
        .values(status=S.EXPIRED.value, failure_reason=SWITCHED_TO_LIVE[:255], updated_at=utcnow())
        .returning(Payment.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(session.execute(stmt).scalars())
    if ids:
        session.add(AuditEntry(actor=actor[:255], action="payments.expire_test_mode", target=provider,
                               details={"reason": SWITCHED_TO_LIVE, "count": len(ids), "payment_ids": ids[:100]}))
    return ids


@dataclass
class Operation:
    """What a capture, refund or cancellation gave: the payment as it is now, and whether the PSP
    only took the request (Adyen, HiPay: the outcome comes by notification)."""

    payment: Payment
    awaiting_provider: bool

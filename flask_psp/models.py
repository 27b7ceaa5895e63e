"""The plugin's tables. Plain SQLAlchemy, no Flask: they have their own ``MetaData`` (``metadata``)
and the extension copies them into the host's ``db.metadata`` so ``db.create_all()`` and the
host's Alembic autogenerate know them. Their schema history is the plugin's own Alembic history
(``flask psp db upgrade``), kept in the ``psp_alembic_version`` table.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timezone
from typing import Callable, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy import inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .events import InboxOutcome
from .states import PaymentStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_token() -> str:
    """Public id of a payment or payment link in URLs: 32 URL-safe characters, 192 bits of randomness,
    never starting with ``-`` (a merchant types it after ``flask psp payment-link cancel``, where it
    would read as an option)."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def requested_at(operation: dict) -> datetime | None:
    """When a request awaiting the PSP (one of :attr:`Payment.pending_operations`) was made; None
    when its date cannot be read."""
    try:
        return datetime.fromisoformat(str(operation.get("requested_at")))
    except ValueError:
        return None


def oldest_request(pending: list[dict]) -> datetime | None:
    """When the oldest of these requests awaiting the PSP was made (``Payment.awaiting_psp_since``);
    a request without a readable date is never overdue, so it does not count."""
    return min(filter(None, (requested_at(op) for op in pending)), default=None)


def given_columns(obj) -> dict:
    """The columns a new, unsaved object was given a value for, by column name: what a plain
    INSERT of it sends (the columns left out take their defaults)."""
    state = inspect(obj)
    return {prop.columns[0].key: state.dict[prop.key] for prop in state.mapper.column_attrs if prop.key in state.dict}


def execute_plain(session, statement, params=None):
    """Run a plain statement (a table's INSERT or UPDATE, a SELECT of columns: no ORM entity to
    load, nothing to flush first) on the session's connection, in its transaction. The session's
    own ``execute`` would first set the statement up for the ORM: about 20 µs more an UPDATE, 50 µs
    a SELECT of mapped columns (measured in process), which the checkout and notification paths,
    running several such statements per request, do without.

        execute_plain(db.session, UPDATE_PAYMENT, {"payment_id": 7, "status": "paid"})
    """
    return session.connection().execute(statement, params)


def lock_row(session, model: type, row_id: int):
    """Lock one row by primary key and read it afresh (PostgreSQL: ``FOR UPDATE``; SQLite, which has
    no row locks: the database's write lock, taken by a no-op UPDATE). Two workers handed the same
    row work on it one after the other. Returns None when there is no such row."""
    stmt = select(model).where(model.id == row_id)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(model).where(model.id == row_id).values(id=model.id))
    else:
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


class Base(DeclarativeBase):
    metadata = metadata


class Payment(Base):
    """One attempt to pay one order through one provider. An order may have several."""

    __tablename__ = "psp_payment"
    __table_args__ = (
        Index("ix_psp_payment_provider_psp_reference", "provider", "psp_reference"),
        Index("ix_psp_payment_created_at_id", "created_at", "id"),
        # admin panel: keyset pages (newest first) filtered by status or provider stay index-only walks
        Index("ix_psp_payment_status_id", "status", "id"),
        Index("ix_psp_payment_provider_id", "provider", "id"),
        Index("ix_psp_payment_email", "email"),
        Index("ix_psp_payment_amount_id", "amount", "id"),
        # scheduled jobs: delayed captures falling due
        Index("ix_psp_payment_capture_due_at", "capture_due_at"),
        # the overview's count of requests the PSP has not confirmed, and the reconcile job's
        Index("ix_psp_payment_awaiting_psp_since", "awaiting_psp_since"),
        # the overview's money, conversion and failures per day: an index-only walk of the range's payments
        Index("ix_psp_payment_mode_created_at_totals", "mode", "created_at", "provider", "currency", "status",
              "captured_amount", "refunded_amount", "failure_reason"),
        # the overview's count of payments that need the merchant's eyes: the few flagged, not all
        Index("ix_psp_payment_flagged", "id", postgresql_where=text("flag IS NOT NULL"),
              sqlite_where=text("flag IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    order_ref: Mapped[str] = mapped_column(String(128), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))  # "test" | "live"
    #: "auto" | "manual" | "delayed" (authorized at the PSP, captured by the plugin when due)
    capture: Mapped[str] = mapped_column(String(8), default="auto")
    #: delayed capture: days from the authorization to the capture, and when the capture falls due
    capture_delay_days: Mapped[int | None] = mapped_column(Integer)
    capture_due_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: when the oldest request awaiting the PSP (:attr:`pending_operations`) was made; None when none
    #: awaits. Kept by the ledger with the requests, so that what is overdue is found by index.
    awaiting_psp_since: Mapped[datetime | None] = mapped_column(DateTime)
    #: scheduled jobs leave the payment alone until then (one of them holds it, or checked it lately)
    held_until: Mapped[datetime | None] = mapped_column(DateTime)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24), default=PaymentStatus.CREATED.value)
    psp_reference: Mapped[str | None] = mapped_column(String(128))
    authorized_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    #: set when something needs the merchant's eyes (late success, second payment of a paid order…)
    flag: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(255))
    redirect_url: Mapped[str | None] = mapped_column(Text)
    #: the order was handed to ``orders.mark_paid`` through this payment
    order_marked_at: Mapped[datetime | None] = mapped_column(DateTime)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)

    # read-only both ways: the ledger links an inbox row by ``payment_id``, and a flush then has no
    # dependency between the two to work out (it runs on every notification)
    events: Mapped[list["PaymentEvent"]] = relationship(
        back_populates="payment", order_by="PaymentEvent.id", lazy="select", viewonly=True
    )

    @property
    def status_enum(self) -> PaymentStatus:
        return PaymentStatus(self.status)

    @property
    def pending_operations(self) -> list[dict]:
        """Captures, refunds and cancellations the PSP took but has not confirmed yet (Adyen,
        HiPay answer "received" and tell the outcome by notification), oldest first: each
        ``{"operation", "amount", "reference", "requested_at"}``. Kept by the ledger."""
        return list((self.extra or {}).get("pending_operations") or [])

    def pending_amount(self, operation: str) -> int:
        """The amount of the ``operation`` ("capture", "refund") requests awaiting the PSP."""
        return sum(op.get("amount") or 0 for op in self.pending_operations if op.get("operation") == operation)

    @property
    def refundable_amount(self) -> int:
        """What may still be refunded: refunds awaiting the PSP's confirmation count as made."""
        return max(self.captured_amount - self.refunded_amount - self.pending_amount("refund"), 0)

    @property
    def capturable_amount(self) -> int:
        """What may still be captured: captures awaiting confirmation count as made, and nothing
        is capturable while a cancellation awaits the PSP."""
        if self.status != PaymentStatus.AUTHORIZED.value:
            return 0
        if any(op.get("operation") == "cancel" for op in self.pending_operations):
            return 0
        return max(self.authorized_amount - self.captured_amount - self.pending_amount("capture"), 0)

    def __repr__(self) -> str:
        return f"<Payment {self.id} {self.provider} {self.order_ref} {self.status}>"


#: one payment's row updated by id (``payment_id``): the columns set are the other parameters each
#: execution is given — ``session.execute(UPDATE_PAYMENT, {"payment_id": 7, "status": "paid"})``
UPDATE_PAYMENT = update(Payment.__table__).where(Payment.__table__.c.id == bindparam("payment_id"))


class PaymentEvent(Base):
    """The inbox: every notification as received, with what became of it (stored by the
    transaction that decided it), and every PSP answer the plugin acted on (capture, refund,
    re-fetch on return)."""

    __tablename__ = "psp_payment_event"
    __table_args__ = (
        Index("ix_psp_payment_event_received_at_id", "received_at", "id"),
        Index("ix_psp_payment_event_outcome_id", "outcome", "id"),
        # background processing: queued rows to sweep, failed rows to retry
        Index("ix_psp_payment_event_outcome_next_attempt_at", "outcome", "next_attempt_at"),
        # the overview's "last notification" of each provider (a notification, not an answer to our call)
        Index("ix_psp_payment_event_provider_source_received_at", "provider", "source", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    #: notify | return | api | fetch | job
    source: Mapped[str] = mapped_column(String(16), default="notify")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str | None] = mapped_column(String(128))
    #: None: not checked yet; True: authenticity proven; False: refused
    verified: Mapped[bool | None] = mapped_column(Boolean)
    verification_error: Mapped[str | None] = mapped_column(String(255))
    #: unique among events that were applied: the same PSP news twice is a duplicate
    dedupe_key: Mapped[str | None] = mapped_column(String(191), unique=True)
    #: what became of it: an :class:`~flask_psp.events.InboxOutcome` (received, queued, applied…)
    outcome: Mapped[str] = mapped_column(String(16), default=InboxOutcome.RECEIVED.value)
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str | None] = mapped_column(String(64))
    psp_reference: Mapped[str | None] = mapped_column(String(128))
    mode: Mapped[str | None] = mapped_column(String(8))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("psp_payment.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("psp_payment_event.id"))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: the proven news read from this row (the ledger's own form), kept so that a worker, the
    #: sweeper or the retry job can apply it later without asking the PSP again
    verified_message: Mapped[dict | None] = mapped_column(JSON)
    #: queued: when the sweeper re-queues it; error: when the retry job tries again (None: never)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)

    payment: Mapped[Payment | None] = relationship(back_populates="events", viewonly=True)

    def __repr__(self) -> str:
        return f"<PaymentEvent {self.id} {self.provider} {self.outcome}>"


class Movement(Base):
    """The accounting journal: one row per movement of money — capture, refund, chargeback and its
    reversal, a PSP fee, a payout to the bank, an adjustment — written by the transaction that
    proved it (:func:`flask_psp.movements.record_movement`). Never updated nor deleted: a correction
    is a new row. ``amount`` is positive; its direction is the ``kind``'s."""

    __tablename__ = "psp_movements"
    __table_args__ = (
        # exports: a mode's movements of a period, in order
        Index("ix_psp_movements_mode_occurred_at_id", "mode", "occurred_at", "id"),
        # settlement matching: a PSP reference of one provider
        Index("ix_psp_movements_provider_psp_reference", "provider", "psp_reference"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: a :class:`~flask_psp.movements.MovementKind` (capture, refund, chargeback…)
    kind: Mapped[str] = mapped_column(String(24))
    #: when the money moved: the PSP's own date of the event where it gives one, else when it was proven
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))  # "test" | "live"
    #: None for what belongs to no one payment (a payout, a monthly fee)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("psp_payment.id"), index=True)
    psp_reference: Mapped[str | None] = mapped_column(String(128))
    #: the inbox row that proved it (None: a report line, or history the data migration could not tie)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("psp_payment_event.id"), index=True)
    #: the settlement report line that proved it (that table is the settlements module's: no foreign key)
    settlement_line_id: Mapped[int | None] = mapped_column(Integer, index=True)
    note: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<Movement {self.id} {self.kind} {self.amount} {self.currency} {self.provider}>"


class ProviderSettings(Base):
    """A provider managed from the admin panel (providers in ``PSP_PROVIDERS`` are not stored here).
    ``credentials`` holds the Fernet token of a JSON object ``{"test": {...}, "live": {...}}``."""

    __tablename__ = "psp_provider_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mode: Mapped[str] = mapped_column(String(8), default="test")
    capture: Mapped[str] = mapped_column(String(8), default="auto")
    capture_delay_days: Mapped[int] = mapped_column(Integer, default=0)
    three_ds: Mapped[str] = mapped_column(String(24), default="when_required")
    min_amount: Mapped[int | None] = mapped_column(BigInteger)
    max_amount: Mapped[int | None] = mapped_column(BigInteger)
    currencies: Mapped[str | None] = mapped_column(String(255))  # "EUR,USD"; empty = all
    position: Mapped[int] = mapped_column(Integer, default=0)
    credentials: Mapped[str | None] = mapped_column(Text)
    accounting: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PageSettings(Base):
    """The look of the checkout and return pages, one row (id 1)."""

    __tablename__ = "psp_page_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand_name: Mapped[str | None] = mapped_column(String(128))
    logo_url: Mapped[str | None] = mapped_column(String(512))
    primary_color: Mapped[str | None] = mapped_column(String(7))
    accent_color: Mapped[str | None] = mapped_column(String(7))
    #: {"en": {"before": …, "pending": …, "success": …, "cancel": …}, "fr": {…}}
    messages: Mapped[dict] = mapped_column(JSON, default=dict)
    #: provider-side look: {"adyen_theme_id": …, "sips_template_name": …, "hipay_theme_code": …}
    provider_look: Mapped[dict] = mapped_column(JSON, default=dict)
    notifications: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AdminUser(Base):
    """A built-in merchant account for the admin panel (shops may use their own login instead)."""

    __tablename__ = "psp_admin_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")  # owner|manager|accountant|viewer
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: how many lockouts since the last successful sign-in: each one lasts twice as long as the one before
    lockouts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: kept in the signed session cookie at sign-in; bumped by sign-out and password changes, which
    #: ends every session that carries an older value
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LoginThrottle(Base):
    """Failed sign-ins from one client address (any account, known or not), for the per-address delays."""

    __tablename__ = "psp_login_throttle"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row, since the last lockout
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditEntry(Base):
    """Who changed which setting or ran which action. Never holds a secret value."""

    __tablename__ = "psp_audit_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class Asset(Base):
    """A file the merchant uploaded in the admin panel (the checkout logo), served by the plugin."""

    __tablename__ = "psp_asset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: sha256 of the content, hex: the public name of the file
    key: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MailMessage(Base):
    """The mail outbox: every notification e-mail, written by the transaction that decided it and
    sent by a sender (the mail thread, a Celery worker, ``flask psp run-jobs --job mail``).

    ``kind`` is the event (``paid``, ``refunded``…, ``receipt`` for the buyer's) or ``notice_digest``:
    one row per provider collects refused and unmatched notifications (``notice_count``) until it is
    sent; while it collects, its ``dedupe_key`` is ``notice:<provider>:open``."""

    __tablename__ = "psp_mail"
    __table_args__ = (
        # the senders' claim: unsent rows falling due
        Index("ix_psp_mail_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_psp_mail_kind_provider_id", "kind", "provider", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(32))
    payment_id: Mapped[int | None] = mapped_column(Integer)
    #: comma-separated addresses
    recipients: Mapped[str] = mapped_column(Text, default="")
    #: empty until composed (a digest is composed when it is sent)
    subject: Mapped[str] = mapped_column(String(255), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    #: what composing needs (a digest: its first notice, the merchant's locale)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    notice_count: Mapped[int] = mapped_column(Integer, default=0)
    #: unsent | sent | failed
    status: Mapped[str] = mapped_column(String(8), default="unsent")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: unsent: when a sender may take it (a sender holding it moves it on); None once sent or failed
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: an HTML alternative to ``body`` (payment-request mails); None: plain text only
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    composed_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)

    def __repr__(self) -> str:
        return f"<MailMessage {self.id} {self.kind} {self.status}>"


class SettlementImport(Base):
    """One settlement report read in (a file given to ``flask psp settlements import``, or fetched
    from the PSP). The same file twice is one import: ``digest`` is unique per provider."""

    __tablename__ = "psp_settlement_import"
    __table_args__ = (UniqueConstraint("provider", "digest", name="uq_psp_settlement_import_provider_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))
    #: file | fetch | notification (Adyen's REPORT_AVAILABLE)
    source: Mapped[str] = mapped_column(String(16))
    #: the file's name, the report's id or its URL's last segment
    name: Mapped[str | None] = mapped_column(String(255))
    #: sha256 of the content, hex
    digest: Mapped[str] = mapped_column(String(64))
    #: the day the report covers, when it was asked for one (``--fetch --date``)
    report_date: Mapped[date | None] = mapped_column(Date)
    imported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    #: lines of this file already imported from another file (overlapping reports)
    known_count: Mapped[int] = mapped_column(Integer, default=0)


class SettlementLine(Base):
    """One line of a PSP's settlement report and what reconciliation made of it. ``status``:
    ``matched`` (its movement found, same amount), ``booked`` (a fee or payout: it made its own
    movement), ``difference`` (its payment's movement found, another amount), ``unmatched`` (no
    movement is its). Amounts in minor units: ``gross`` in ``currency``; ``fee`` and the signed
    ``net`` in ``net_currency``."""

    __tablename__ = "psp_settlement_lines"
    __table_args__ = (
        UniqueConstraint("provider", "line_key", name="uq_psp_settlement_lines_provider_line_key"),
        Index("ix_psp_settlement_lines_status_id", "status", "id"),
        Index("ix_psp_settlement_lines_provider_id", "provider", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("psp_settlement_import.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))
    line_key: Mapped[str] = mapped_column(String(191))
    #: the file's line number
    line_number: Mapped[int] = mapped_column(Integer, default=0)
    #: a :class:`~flask_psp.settlements.lines.LineKind` (the movements' kinds)
    kind: Mapped[str] = mapped_column(String(24))
    psp_reference: Mapped[str | None] = mapped_column(String(128))
    merchant_reference: Mapped[str | None] = mapped_column(String(128))
    payout_id: Mapped[str | None] = mapped_column(String(64))
    booked_on: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    gross: Mapped[int] = mapped_column(BigInteger)
    net_currency: Mapped[str] = mapped_column(String(3))
    fee: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    #: what the reconciliation found, in words (the difference, why nothing matched)
    detail: Mapped[str | None] = mapped_column(String(255))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("psp_payment.id"), index=True)
    #: the capture/refund/chargeback movement this line settles (matched or different)
    movement_id: Mapped[int | None] = mapped_column(ForeignKey("psp_movements.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<SettlementLine {self.id} {self.provider} {self.kind} {self.status}>"


class PaymentLink(Base):
    """A payment link sent to a buyer for one order (:mod:`flask_psp.links`). It holds no amount:
    the order's own total is read when the buyer opens it. Its status is worked out from its dates
    (:attr:`status`), so an expiry needs no job."""

    __tablename__ = "psp_payment_link"
    __table_args__ = (
        # the reminder job: links falling due for a reminder
        Index("ix_psp_payment_link_reminder_sent_at_expires_at", "reminder_sent_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the last path segment of the link's URL: 192 random bits
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    order_ref: Mapped[str] = mapped_column(String(128), index=True)
    email: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    #: the last time it was mailed, and how many times
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    send_count: Mapped[int] = mapped_column(Integer, default=0)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: the first time a buyer opened it
    opened_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancelled_by: Mapped[str | None] = mapped_column(String(255))
    #: set in the transaction that paid the order, with the payment that paid it
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("psp_payment.id"))

    def status_at(self, now: datetime) -> str:
        """``paid``, ``cancelled``, ``expired`` or ``active`` at ``now`` (naive UTC)."""
        if self.paid_at is not None:
            return "paid"
        if self.cancelled_at is not None:
            return "cancelled"
        if self.expires_at <= now:
            return "expired"
        return "active"

    @property
    def status(self) -> str:
        return self.status_at(utcnow())

    #: builds the buyer's URL from a token; set by :mod:`flask_psp.links` (the models know no Flask)
    url_for_token: ClassVar[Callable[[str], str] | None] = None

    @property
    def url(self) -> str:
        """The buyer's address of the link (``PSP_PUBLIC_URL`` or the request's host; needs an app)."""
        build = type(self).url_for_token
        if build is None:
            raise RuntimeError("flask_psp.links is not imported: PSP.init_app imports it")
        return build(self.token)

    def __repr__(self) -> str:
        return f"<PaymentLink {self.id} {self.order_ref} {self.status}>"


ALL_TABLES = tuple(metadata.sorted_tables)

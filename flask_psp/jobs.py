"""Scheduled jobs: what runs from cron (``flask psp run-jobs``) or Celery beat. No Flask here: a
:class:`Jobs` is given a :class:`~flask_psp.payments.PaymentService` (session, orders adapter,
settings, HTTP session) and its :class:`JobSettings`.

* ``sweep`` — inbox rows verified and queued for a worker but still not applied (a worker died
  mid-task, the broker lost the message) are queued again, or applied here without a queue;
* ``retry`` — news whose post-processing failed (the shop's ``mark_paid`` raised) is applied
  again, with exponential backoff, until the ledger gives up and flags the payment;
* ``capture`` — delayed captures that fell due are captured through the PSP;
* ``reconcile`` — payments pending or authorized for long are checked with the PSP (missed
  notifications) and corrected through the ledger;
* ``expire`` — abandoned payments (created or pending for long) are checked with the PSP one
  last time when it can be asked, then expired through the ledger; open test-mode payments of a
  provider that is live now are expired at once (a switch made in ``PSP_PROVIDERS``);
* ``links`` — payment links falling due for their reminder get it (:mod:`flask_psp.links`), once;
* ``mail`` — notification e-mails of the outbox that are due are sent (:mod:`flask_psp.mailer`),
  retried with the same backoff as failed post-processing, then left ``failed`` for the admin panel.

Any number of runs may overlap (two machines, cron and beat): a job first *claims* what it will
work on in one statement — ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)`` on
PostgreSQL, the same statement under the database's single writer lock on SQLite — by moving the
rows' ``held_until`` (payments) or ``next_attempt_at`` (inbox rows, mails) past the present. Another run
does not see them until that hold ends, and every money move still goes through the ledger's row
locks and dedupe keys, so a run that dies mid-way is simply taken up again later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Iterable

from sqlalchemy import or_, select, update

from .events import Event, EventKind, InboxOutcome, VerifiedMessage
from .ledger import PostProcessingError, RetryPolicy
from .models import MailMessage, Payment, PaymentEvent, lock_row, utcnow
from .overdue import overdue_operations, overdue_requests
from .payments import Check, PaymentService
from .providers import get_provider_class, provider_names
from .providers.base import ProviderError
from .states import PaymentStatus

if TYPE_CHECKING:
    from .mailer import Mailer

log = logging.getLogger("flask_psp.jobs")
S = PaymentStatus

#: the reconcile job's flags (taken off again when the news comes)
UNANSWERED_FLAG = "no news from "
OVERDUE_FLAG = " not confirmed by "

#: in the order ``run`` runs them: news first, then what depends on payments being up to date
JOB_NAMES = ("sweep", "retry", "capture", "reconcile", "expire", "links", "mail")


@dataclass(frozen=True)
class JobSettings:
    #: rows claimed per statement
    batch_size: int = 100
    #: how long a job holds what it claimed; a run that died is taken up again after this
    hold: timedelta = timedelta(minutes=10)
    #: queued inbox rows not applied this long after they were stored are queued again
    requeue_after: timedelta = timedelta(minutes=5)
    #: pending or authorized payments older than this are checked with the PSP…
    reconcile_after: timedelta = timedelta(minutes=30)
    #: …and checked again at most this often
    reconcile_every: timedelta = timedelta(hours=1)
    #: created or pending payments older than this are expired (after a last check with the PSP)
    expire_after: timedelta = timedelta(hours=24)
    #: failed post-processing and failed delayed captures are retried with this backoff
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: a capture, refund or cancellation the PSP took but has not confirmed after this is flagged
    awaiting_after: timedelta = timedelta(hours=24)


@dataclass
class JobReport:
    job: str
    #: rows this run claimed (another run at the same time claims others)
    claimed: int = 0
    #: what the job is for: applied, captured, corrected, expired
    done: int = 0
    #: claimed but left for a later run (PSP unreachable, capture refused, post-processing failed)
    left: int = 0
    #: flagged for the merchant to look (reconcile: what the plugin cannot ask the PSP about)
    flagged: int = 0

    def __str__(self) -> str:
        text = f"{self.job}: {self.claimed} claimed, {self.done} done, {self.left} left for later"
        return text + (f", {self.flagged} flagged" if self.flagged else "")


class Jobs:
    def __init__(
        self,
        service: PaymentService,
        settings: JobSettings | None = None,
        enqueue: Callable[[list[int]], None] | None = None,
        mailer: "Mailer | None" = None,
        links: Callable[[datetime | None], "JobReport"] | None = None,
    ):
        """``enqueue``: hand inbox rows to background workers (the sweeper uses it); without it the
        sweeper applies them itself. ``mailer``: what sends the outbox's mails (none: the ``mail``
        job has nothing to do)."""
        self.service = service
        self.session = service.session
        self.settings = settings or JobSettings()
        self.enqueue = enqueue
        self.mailer = mailer
        #: the ``links`` job (payment link reminders), given by the app; None: nothing to do
        self.links = links

    def run(self, names: Iterable[str] = JOB_NAMES, now: datetime | None = None) -> list[JobReport]:
        jobs = {
            "sweep": self.sweep,
            "retry": self.retry_failed,
            "capture": self.capture_due,
            "reconcile": self.reconcile,
            "expire": self.expire_abandoned,
            "mail": self.send_mail,
            "links": self.links or (lambda now: JobReport("links")),
        }
        reports = []
        for name in names:
            if name not in jobs:
                raise ValueError(f"unknown job {name!r}; jobs are {', '.join(JOB_NAMES)}")
            reports.append(jobs[name](now))
        return reports

    # ------------------------------------------------------------------ claiming
    def _claim(self, model, hold_column, conditions: list, until: datetime, now: datetime, seen: set[int]) -> list[int]:
        """Take up to ``batch_size`` rows matching ``conditions`` that no run holds, holding them
        until ``until``; commit. Rows another transaction has locked are skipped, not waited for."""
        chosen = (
            select(model.id)
            .where(*conditions, or_(hold_column.is_(None), hold_column <= now))
            .order_by(model.id)
            .limit(self.settings.batch_size)
            .with_for_update(skip_locked=True)
        )
        if seen:
            chosen = chosen.where(model.id.not_in(seen))
        values = {hold_column.key: until}
        if model is Payment:
            values["updated_at"] = Payment.updated_at  # a hold is not a change of the payment
        stmt = (
            update(model)
            .where(model.id.in_(chosen.scalar_subquery()))
            .values(**values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
        try:
            ids = sorted(self.session.execute(stmt).scalars())
            self.session.commit()
        except Exception:
            self.session.rollback()
            raise
        seen.update(ids)
        return ids

    def _batches(self, model, hold_column, conditions: list, until: datetime, now: datetime):
        seen: set[int] = set()
        while True:
            ids = self._claim(model, hold_column, conditions, until, now, seen)
            if not ids:
                return
            yield ids

    def _payment(self, payment_id: int) -> Payment | None:
        return self.session.get(Payment, payment_id, populate_existing=True)

    def _release(self, payment: Payment, until: datetime | None = None) -> None:
        """End this run's hold (``until``: keep others off until then); commit."""
        self.session.flush()  # what the job changed (a flag, a due date) is a change of the payment…
        self.session.execute(  # …the hold itself is not
            update(Payment)
            .where(Payment.id == payment.id)
            .values(held_until=until, updated_at=Payment.updated_at)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()

    # ------------------------------------------------------------------ inbox
    def sweep(self, now: datetime | None = None) -> JobReport:
        """Queued rows still not applied: queue them again (or apply them here)."""
        now = now or utcnow()
        report = JobReport("sweep")
        conditions = [PaymentEvent.outcome == InboxOutcome.QUEUED, PaymentEvent.next_attempt_at <= now]
        until = now + self.settings.requeue_after
        for ids in self._batches(PaymentEvent, PaymentEvent.next_attempt_at, conditions, until, now):
            report.claimed += len(ids)
            if self.enqueue is not None:
                try:
                    self.enqueue(ids)
                    report.done += len(ids)
                    continue
                except Exception:  # noqa: BLE001 - no broker now: apply them here instead
                    log.exception("could not queue inbox rows %s again: applying them now", ids)
            self._apply_rows(report, ids, (InboxOutcome.QUEUED,))
        return report

    def retry_failed(self, now: datetime | None = None) -> JobReport:
        """Rows whose post-processing failed and whose next attempt is due: apply them again."""
        now = now or utcnow()
        report = JobReport("retry")
        conditions = [PaymentEvent.outcome == InboxOutcome.ERROR, PaymentEvent.next_attempt_at <= now]
        until = now + self.settings.hold
        for ids in self._batches(PaymentEvent, PaymentEvent.next_attempt_at, conditions, until, now):
            report.claimed += len(ids)
            self._apply_rows(report, ids, (InboxOutcome.ERROR,))
        return report

    def _apply_rows(self, report: JobReport, ids: list[int], expected: tuple[InboxOutcome, ...]) -> None:
        """Apply claimed inbox rows through the ledger; a row another run took meanwhile is left."""
        outcomes = self.service.apply_queued(ids, expected=expected)
        report.done += len(outcomes)
        report.left += len(ids) - len(outcomes)

    # ------------------------------------------------------------------ mail
    def send_mail(self, now: datetime | None = None) -> JobReport:
        """Unsent mails that are due: send them. When the server cannot be reached, the rest of
        the batch is left for the first retry (it would fail alike, a timeout each)."""
        now = now or utcnow()
        report = JobReport("mail")
        if self.mailer is None or not self.mailer.enabled:
            return report
        retry = self.settings.retry
        conditions = [MailMessage.status == "unsent", MailMessage.next_attempt_at <= now]
        until = now + self.settings.hold
        for ids in self._batches(MailMessage, MailMessage.next_attempt_at, conditions, until, now):
            report.claimed += len(ids)
            for position, mail_id in enumerate(ids):
                result = self.mailer.deliver(self.session, mail_id, now, retry)
                if result == "sent":
                    report.done += 1
                    continue
                report.left += 1
                if result == "down":
                    rest = ids[position + 1:]
                    if rest:
                        self.session.execute(
                            update(MailMessage)
                            .where(MailMessage.id.in_(rest), MailMessage.status == "unsent")
                            .values(next_attempt_at=now + retry.first_delay)
                            .execution_options(synchronize_session=False)
                        )
                        self.session.commit()
                    report.left += len(rest)
                    return report
        return report

    # ------------------------------------------------------------------ payments
    def capture_due(self, now: datetime | None = None) -> JobReport:
        """Delayed captures that fell due: capture all that is capturable, through the PSP."""
        now = now or utcnow()
        report = JobReport("capture")
        conditions = [
            Payment.status == S.AUTHORIZED.value,
            Payment.capture == "delayed",
            Payment.capture_due_at <= now,
        ]
        for ids in self._batches(Payment, Payment.held_until, conditions, now + self.settings.hold, now):
            report.claimed += len(ids)
            for payment_id in ids:
                payment = self._payment(payment_id)
                if payment is None:
                    continue
                if self._capture(payment, now):
                    report.done += 1
                else:
                    report.left += 1
        return report

    def _capture(self, payment: Payment, now: datetime) -> bool:
        due = payment.capture_due_at
        if payment.status != S.AUTHORIZED.value or due is None or due > now:
            self._release(payment)  # captured, cancelled or moved meanwhile
            return False
        try:
            self.service.capture(payment)
        except ValueError as exc:  # nothing left to capture
            log.info("delayed capture of payment %s skipped: %s", payment.id, exc)
            payment.capture_due_at = None
            self._release(payment)
            return False
        except ProviderError as exc:
            self.session.rollback()
            payment = self._payment(payment.id)
            extra = dict(payment.extra or {})
            attempts = int(extra.get("capture_attempts") or 0) + 1
            extra.update(capture_attempts=attempts, capture_error=exc.message[:255])
            payment.extra = extra
            if attempts >= self.settings.retry.max_attempts:
                payment.capture_due_at = None
                payment.flag = f"delayed capture failed {attempts} times: {exc.message}"[:255]
            else:
                payment.capture_due_at = now + self.settings.retry.delay(attempts)
                payment.flag = f"delayed capture failed (attempt {attempts}), retrying: {exc.message}"[:255]
            log.warning("delayed capture of payment %s failed: %s", payment.id, exc.message)
            self._release(payment)
            return False
        except PostProcessingError:
            pass  # the PSP captured; the inbox row has its answer and the retry job applies it
        payment = self._payment(payment.id)
        # captured, or (Adyen) the capture was taken and its webhook will say how it ended
        payment.capture_due_at = None
        extra = dict(payment.extra or {})
        extra["capture_requested_at"] = utcnow().isoformat(timespec="seconds")
        payment.extra = extra
        if payment.flag and payment.flag.startswith("delayed capture failed"):
            payment.flag = None
        self._release(payment)
        return True

    def reconcile(self, now: datetime | None = None) -> JobReport:
        """Pending or authorized for long: ask the PSP (a notification may have been lost)."""
        now = now or utcnow()
        report = JobReport("reconcile")
        askable = [name for name in provider_names() if self.service.can_fetch(name)]
        conditions = [
            Payment.status.in_((S.PENDING.value, S.AUTHORIZED.value)),
            Payment.created_at <= now - self.settings.reconcile_after,
            Payment.provider.in_(askable),
        ]
        unreachable: set[str] = set()
        for ids in self._batches(Payment, Payment.held_until, conditions, now + self.settings.hold, now):
            report.claimed += len(ids)
            for payment_id in ids:
                payment = self._payment(payment_id)
                if payment is None:
                    continue
                before = payment.status
                if payment.provider in unreachable:
                    result = Check.UNREACHABLE
                else:
                    result = self.service.check_with_psp(payment)
                if result is Check.UNREACHABLE:
                    unreachable.add(payment.provider)  # no point in asking it again in this run
                    report.left += 1
                    self._release(payment)
                    continue
                if payment.status != before:
                    report.done += 1
                self._release(payment, now + self.settings.reconcile_every)
        self._unflag_answered(now)
        report.flagged = self._flag_unanswered(now, askable) + self._flag_overdue_requests(now)
        return report

    def _unflag_answered(self, now: datetime) -> None:
        """The news came after all: the flags this job set are taken off."""
        flagged = self.session.scalars(select(Payment.id).where(or_(
            Payment.flag.like(UNANSWERED_FLAG + "%"), Payment.flag.like("%" + OVERDUE_FLAG + "%")))).all()
        for payment_id in flagged:
            payment = lock_row(self.session, Payment, payment_id)
            if payment is None or payment.flag is None:
                self.session.commit()
                continue
            if payment.flag.startswith(UNANSWERED_FLAG) and payment.status != S.PENDING.value:
                payment.flag = None
            elif OVERDUE_FLAG in payment.flag and not overdue_operations(payment, self.settings.awaiting_after, now):
                payment.flag = None
            self.session.commit()

    def _flag_unanswered(self, now: datetime, askable: list[str]) -> int:
        """Pending for longer than ``reconcile_after`` with a PSP the plugin cannot ask (Adyen):
        flagged once, with what the merchant should check."""
        conditions = [
            Payment.status == S.PENDING.value,
            Payment.created_at <= now - self.settings.reconcile_after,
            Payment.provider.not_in(askable),
            Payment.flag.is_(None),
        ]
        minutes = int(self.settings.reconcile_after.total_seconds() // 60)
        flagged = 0
        for ids in self._batches(Payment, Payment.held_until, conditions, now + self.settings.hold, now):
            for payment_id in ids:
                payment = lock_row(self.session, Payment, payment_id)
                if payment is not None and payment.status == S.PENDING.value and payment.flag is None:
                    cls = get_provider_class(payment.provider)
                    payment.flag = (f"{UNANSWERED_FLAG}{cls.display_name} after {minutes} min: "
                                    f"{cls.unanswered_hint or 'check the payment in its back office'}")[:255]
                    flagged += 1
                if payment is not None:
                    self._release(payment)
        return flagged

    def _flag_overdue_requests(self, now: datetime) -> int:
        """A capture, refund or cancellation awaiting the PSP for longer than ``awaiting_after``."""
        hours = int(self.settings.awaiting_after.total_seconds() // 3600)
        flagged = 0
        for candidate in overdue_requests(self.session, self.settings.awaiting_after, now):
            if candidate.flag is not None:
                continue
            payment = lock_row(self.session, Payment, candidate.id)
            late = overdue_operations(payment, self.settings.awaiting_after, now) if payment is not None else []
            if late and payment.flag is None:
                name = get_provider_class(payment.provider).display_name
                what = ", ".join(f"{op.get('operation')} requested {op.get('requested_at')}" for op in late)
                payment.flag = (f"{what}:{OVERDUE_FLAG}{name} after {hours} h; check it in {name}'s back office "
                                "(its notification may have been lost)")[:255]
                flagged += 1
            self.session.commit()
        return flagged

    def expire_abandoned(self, now: datetime | None = None) -> JobReport:
        """Created or pending for longer than ``expire_after``: expired, unless the PSP, asked one
        last time when it can be, says otherwise. A later proof of payment still wins (flagged)."""
        now = now or utcnow()
        report = JobReport("expire")
        # a provider gone live in PSP_PROVIDERS: its open test-mode payments cannot pay orders any more
        switched = self.service.expire_test_payments_of_live_providers()
        report.claimed, report.done = len(switched), len(switched)
        conditions = [
            Payment.status.in_((S.CREATED.value, S.PENDING.value)),
            Payment.created_at <= now - self.settings.expire_after,
        ]
        unreachable: set[str] = set()
        for ids in self._batches(Payment, Payment.held_until, conditions, now + self.settings.hold, now):
            report.claimed += len(ids)
            for payment_id in ids:
                payment = self._payment(payment_id)
                if payment is None:
                    continue
                result = Check.UNREACHABLE if payment.provider in unreachable else self.service.check_with_psp(payment)
                if result is Check.UNREACHABLE:
                    unreachable.add(payment.provider)
                    report.left += 1
                    self._release(payment)
                    continue
                if payment.status in (S.CREATED.value, S.PENDING.value):
                    try:
                        self.service.ledger.record_and_apply(payment.provider, [self._expiry(payment)], source="job")
                    except PostProcessingError:
                        report.left += 1
                        self._release(payment)
                        continue
                    payment = self._payment(payment.id)
                if payment.status in (S.CREATED.value, S.PENDING.value):
                    report.left += 1
                else:
                    report.done += 1  # expired, or the PSP's last word moved it
                self._release(payment)
        return report

    def _expiry(self, payment: Payment) -> VerifiedMessage:
        hours = int(self.settings.expire_after.total_seconds() // 3600)
        return VerifiedMessage(
            provider=payment.provider,
            dedupe_key=f"flask-psp:expired:{payment.token}",
            events=[Event(EventKind.EXPIRED, reason=f"abandoned: no outcome after {hours} h")],
            mode=payment.mode,
            event_type="expired by flask-psp",
            psp_reference=payment.psp_reference,
            payment_token=payment.token,
        )

"""The import of a settlement report, and what reconciliation made of it. No Flask.

:func:`import_report` stores a report's lines and reconciles each new one, in one transaction:

* a fee line, and the fee the PSP kept on a transaction line, becomes a ``fee`` movement; a payout
  line a ``payout`` movement (each tied to its line by ``settlement_line_id``);
* a capture, refund, chargeback or chargeback reversal line is matched to the shop's movement of
  that kind for the same payment (found by the PSP's reference, the shop's token or order
  reference): same amount and currency → ``matched``; another amount → ``difference`` (and the
  payment is flagged); none → ``unmatched``. A movement settles at most one line;
* an adjustment the PSP made is left ``unmatched`` for the accountant: its meaning is the PSP's note.

The same file twice is one import (its sha256); a line already imported from another file (reports
over overlapping periods) is skipped by its ``line_key``. :func:`unsettled_payments` lists paid
payments no imported report has settled after a number of days.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError

from ..models import Movement, Payment, SettlementImport, SettlementLine, lock_row
from ..movements import MovementKind, record_movement
from ..states import PaymentStatus
from . import parse_report
from .lines import TRANSACTION_KINDS, LineKind, ReportLine

log = logging.getLogger("flask_psp.settlements")

MATCHED, BOOKED, DIFFERENCE, UNMATCHED = "matched", "booked", "difference", "unmatched"
STATUSES = (MATCHED, BOOKED, DIFFERENCE, UNMATCHED)
#: what the admin page shows first: what needs the accountant's eyes
PROBLEMS = (DIFFERENCE, UNMATCHED)
#: a payment in one of these was paid: some report must settle its capture
PAID_STATUSES = (PaymentStatus.PAID.value, PaymentStatus.PARTIALLY_REFUNDED.value, PaymentStatus.REFUNDED.value)


@dataclass
class ImportResult:
    provider: str
    import_id: int
    #: the same file was imported before (nothing was done)
    already_imported: bool = False
    new_lines: int = 0
    #: lines of this file an earlier file brought already
    known_lines: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.already_imported:
            return f"{self.provider}: this report was imported already (import #{self.import_id}); nothing changed"
        counts = ", ".join(f"{self.by_status.get(status, 0)} {status}" for status in STATUSES)
        return (f"{self.provider}: import #{self.import_id}: {self.new_lines} new line(s) ({counts}), "
                f"{self.known_lines} already imported")

    @property
    def problems(self) -> int:
        return sum(self.by_status.get(status, 0) for status in PROBLEMS)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def already_imported(session, provider: str, data: bytes) -> SettlementImport | None:
    return session.scalar(select(SettlementImport).where(SettlementImport.provider == provider,
                                                         SettlementImport.digest == digest_of(data)))


def import_report(session, provider: str, mode: str, data: bytes, *, source: str = "file", name: str | None = None,
                  report_date: date | None = None) -> ImportResult:
    """Read ``data`` as ``provider``'s settlement report and reconcile its new lines; commit.
    Raises :class:`~flask_psp.settlements.ReportFormatError` (nothing stored) for a file that is
    not such a report. Two imports at once of overlapping reports: one waits for or loses to the
    other's unique keys, and is run again (it then skips what the other stored)."""
    if mode not in ("test", "live"):
        raise ValueError(f"mode is 'test' or 'live', not {mode!r}")
    lines = parse_report(provider, data)
    for attempt in (1, 2):
        earlier = already_imported(session, provider, data)
        if earlier is not None:
            return ImportResult(provider, earlier.id, already_imported=True)
        try:
            result = _import(session, provider, mode, data, lines, source, name, report_date)
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
            log.info("a concurrent import of %s stored some of the same lines: importing again", provider)
    raise AssertionError("unreachable")


def _import(session, provider, mode, data, lines: list[ReportLine], source, name, report_date) -> ImportResult:
    batch = SettlementImport(provider=provider, mode=mode, source=source, name=(name or "")[:255] or None,
                             digest=digest_of(data), report_date=report_date, line_count=len(lines), known_count=0)
    session.add(batch)
    session.flush()
    result = ImportResult(provider, batch.id)
    keys = [line.line_key for line in lines]
    known = set()
    for start in range(0, len(keys), 500):
        known.update(session.scalars(select(SettlementLine.line_key).where(
            SettlementLine.provider == provider, SettlementLine.line_key.in_(keys[start:start + 500]))))
    taken: set[int] = set()  # movements matched by a line of this import (not flushed yet)
    for line in lines:
        if line.line_key in known:
            result.known_lines += 1
            continue
        row = _store(session, batch, provider, mode, line)
        _reconcile(session, row, line, provider, mode, taken)
        result.new_lines += 1
        result.by_status[row.status] = result.by_status.get(row.status, 0) + 1
    batch.known_count = result.known_lines
    return result


def _store(session, batch: SettlementImport, provider: str, mode: str, line: ReportLine) -> SettlementLine:
    row = SettlementLine(
        import_id=batch.id, provider=provider, mode=mode, line_key=line.line_key, line_number=line.number,
        kind=line.kind.value, psp_reference=line.psp_reference, merchant_reference=line.merchant_reference,
        payout_id=line.payout_id, booked_on=line.booked_on, currency=line.currency, gross=line.gross,
        net_currency=line.settled_currency, fee=line.fee, net=line.net, status=UNMATCHED,
    )
    session.add(row)
    session.flush()
    return row


def _occurred(line: ReportLine) -> datetime:
    return datetime.combine(line.booked_on, time())


def _reconcile(session, row: SettlementLine, line: ReportLine, provider: str, mode: str, taken: set[int]) -> None:
    common = dict(currency=line.settled_currency, provider=provider, mode=mode, occurred_at=_occurred(line),
                  settlement_line_id=row.id)
    if line.kind is LineKind.PAYOUT:
        if line.gross > 0:
            record_movement(session, kind=MovementKind.PAYOUT, amount=line.gross, psp_reference=line.payout_id,
                            note=f"payout {line.payout_id or ''}".strip(), **common)
            row.status = BOOKED
        else:
            row.detail = "a payout of nothing, or money the PSP took from the bank account: book it by hand"
        return
    if line.kind is LineKind.FEE:
        _book_fee(session, row, line, None, common)
        row.status = BOOKED if line.fee > 0 else UNMATCHED
        if line.fee <= 0:
            row.detail = "a fee line that gives money back: book it by hand"
        return
    if line.kind is LineKind.ADJUSTMENT:
        row.detail = "an adjustment by the PSP: book it by hand, as its report describes it"
        return
    payment, movement, detail = _match(session, line, provider, mode, taken)
    row.payment_id = payment.id if payment is not None else None
    if line.fee:
        _book_fee(session, row, line, row.payment_id, common)
    if movement is None:
        row.status, row.detail = UNMATCHED, detail
        return
    taken.add(movement.id)
    row.movement_id = movement.id
    if movement.amount == line.gross and movement.currency == line.currency:
        row.status = MATCHED
        return
    row.status = DIFFERENCE
    row.detail = (f"the PSP settled {line.gross} {line.currency} for this {line.kind.value}; "
                  f"the shop recorded {movement.amount} {movement.currency} (movement #{movement.id})")[:255]
    if payment is not None:
        locked = lock_row(session, Payment, payment.id)
        if locked is not None:
            locked.flag = f"settlement report line #{row.id}: {row.detail}"[:255]


def _book_fee(session, row: SettlementLine, line: ReportLine, payment_id: int | None, common: dict) -> None:
    if line.fee > 0:
        record_movement(session, kind=MovementKind.FEE, amount=line.fee, payment_id=payment_id,
                        psp_reference=line.psp_reference, note=f"{line.kind.value} fee" if line.gross else "fee",
                        **common)
    elif line.fee < 0 and line.gross:
        # the PSP gave a fee back (part of a capture's fee on its refund): a correction, never a negative fee
        record_movement(session, kind=MovementKind.ADJUSTMENT, amount=-line.fee, payment_id=payment_id,
                        psp_reference=line.psp_reference, note=f"fee given back on a {line.kind.value}", **common)


def _references(line: ReportLine) -> list[str]:
    return [ref for ref in (line.psp_reference, line.related_reference) if ref]


def _payment_of(session, line: ReportLine, provider: str, mode: str) -> Payment | None:
    references = _references(line)
    if references:
        payment = session.scalar(select(Payment).where(Payment.provider == provider, Payment.mode == mode,
                                                       Payment.psp_reference.in_(references)).order_by(Payment.id))
        if payment is not None:
            return payment
        payment_id = session.scalar(select(Movement.payment_id).where(
            Movement.provider == provider, Movement.mode == mode, Movement.psp_reference.in_(references),
            Movement.payment_id.is_not(None)).order_by(Movement.id))
        if payment_id is not None:
            return session.get(Payment, payment_id)
    if line.merchant_reference:
        by_token = session.scalar(select(Payment).where(Payment.provider == provider, Payment.mode == mode,
                                                        Payment.token == line.merchant_reference))
        if by_token is not None:
            return by_token
        # an order may have had several attempts: the one that was paid
        return session.scalar(
            select(Payment).where(Payment.provider == provider, Payment.mode == mode,
                                  Payment.order_ref == line.merchant_reference)
            .order_by(Payment.paid_at.is_(None), Payment.id.desc())
        )
    return None


def _match(session, line: ReportLine, provider: str, mode: str, taken: set[int]):
    """(payment, movement, why none) for a transaction line: the movement of the line's kind whose
    amount is the line's, else the first of that kind not settled yet (a difference)."""
    assert line.kind in TRANSACTION_KINDS
    settled = select(SettlementLine.movement_id).where(SettlementLine.movement_id.is_not(None))
    of_kind = select(Movement).where(Movement.provider == provider, Movement.mode == mode,
                                     Movement.kind == line.kind.value, Movement.id.not_in(settled))
    if taken:
        of_kind = of_kind.where(Movement.id.not_in(taken))
    payment = _payment_of(session, line, provider, mode)
    conditions = []
    if _references(line):
        conditions.append(Movement.psp_reference.in_(_references(line)))
    if payment is not None:
        conditions.append(Movement.payment_id == payment.id)
    if not conditions:
        return None, None, "the line names no payment the shop knows"
    candidates = list(session.scalars(of_kind.where(or_(*conditions)).order_by(Movement.occurred_at, Movement.id)))
    if payment is None and candidates and candidates[0].payment_id is not None:
        payment = session.get(Payment, candidates[0].payment_id)
    if not candidates:
        if payment is None:
            return None, None, "no payment of the shop has this reference"
        return payment, None, f"the shop recorded no {line.kind.value} of payment #{payment.id} that is not settled already"
    exact = [m for m in candidates if m.amount == line.gross and m.currency == line.currency]
    return payment, (exact or candidates)[0], None


def unsettled_payments(session, now: datetime, after: timedelta, *, provider: str | None = None, limit: int = 500):
    """Payments paid more than ``after`` ago that no imported report has settled (no capture line
    names them), for the providers and modes whose reports are imported at all."""
    imported = select(SettlementImport.id).where(SettlementImport.provider == Payment.provider,
                                                 SettlementImport.mode == Payment.mode)
    settled = select(SettlementLine.id).where(SettlementLine.payment_id == Payment.id,
                                              SettlementLine.kind == LineKind.CAPTURE.value)
    query = (
        select(Payment)
        .where(Payment.status.in_(PAID_STATUSES), Payment.paid_at.is_not(None), Payment.paid_at <= now - after,
               exists(imported), ~exists(settled))
        .order_by(Payment.paid_at, Payment.id)
        .limit(limit)
    )
    if provider:
        query = query.where(Payment.provider == provider)
    return list(session.scalars(query))


def settlement_lines(session, *, provider: str | None = None, status: str | tuple[str, ...] | None = None,
                     mode: str | None = None, before_id: int | None = None, limit: int | None = 200):
    """Stored lines, newest first, filtered (``status``: one or several)."""
    query = select(SettlementLine).order_by(SettlementLine.id.desc())
    if provider:
        query = query.where(SettlementLine.provider == provider)
    if status:
        query = query.where(SettlementLine.status.in_((status,) if isinstance(status, str) else status))
    if mode:
        query = query.where(SettlementLine.mode == mode)
    if before_id:
        query = query.where(SettlementLine.id < before_id)
    if limit:
        query = query.limit(limit)
    return session.scalars(query)


def imported_on(session, provider: str, mode: str, report_date: date) -> bool:
    """Was ``provider``'s report of ``report_date`` fetched already (the job fetches each day once)?"""
    return session.scalar(select(SettlementImport.id).where(
        SettlementImport.provider == provider, SettlementImport.mode == mode,
        SettlementImport.report_date == report_date).limit(1)) is not None

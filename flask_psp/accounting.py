"""Accounting settings per provider and the journal export. No Flask.

Defaults follow the French chart of accounts (plan comptable général): PSP clearing accounts under
511 (valeurs à l'encaissement), PSP fees under 627 (services bancaires), customers 411. The
accountant changes them in the admin panel; they are kept in ``ProviderSettings.accounting``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable, Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from .i18n import gettext as _
from .models import Movement, Payment, ProviderSettings
from .money import exponent, to_decimal
from .movements import MovementKind

FIELDS = ("journal_code", "clearing_account", "fee_account", "customer_account", "bank_account")
_JOURNALS = {"adyen": "ADY", "paypal": "PPL", "payplug": "PPG", "sips": "SIP", "hipay": "HIP"}
_CLEARING = {"adyen": "511510", "paypal": "511520", "payplug": "511530", "sips": "511540", "hipay": "511550"}
_JOURNAL_RE = re.compile(r"[A-Z0-9]{1,8}")
_ACCOUNT_RE = re.compile(r"[0-9A-Z]{3,20}")


def defaults(provider: str) -> dict[str, str]:
    return {
        "journal_code": _JOURNALS.get(provider, provider[:3].upper()),
        "clearing_account": _CLEARING.get(provider, "511500"),
        "fee_account": "627800",
        "customer_account": "411000",
        "bank_account": "512000",
    }


def settings_for(session: Session, provider: str) -> dict[str, str]:
    row = session.scalar(select(ProviderSettings).where(ProviderSettings.name == provider))
    stored = (row.accounting if row is not None else None) or {}
    return {**defaults(provider), **{k: v for k, v in stored.items() if k in FIELDS and v}}


def save(session: Session, provider: str, form: Mapping[str, str], actor: str) -> list[str]:
    from .admin.audit import audit

    values, problems = {}, []
    for key in FIELDS:
        value = (form.get(key) or "").strip().upper()
        if not value:
            value = defaults(provider)[key]
        pattern = _JOURNAL_RE if key == "journal_code" else _ACCOUNT_RE
        if not pattern.fullmatch(value):
            problems.append(
                _("The journal code has 1 to 8 letters or digits.") if key == "journal_code"
                else _("Account numbers have 3 to 20 digits or capital letters (%(value)s).", value=value)
            )
        values[key] = value
    if problems:
        return problems
    row = session.scalar(select(ProviderSettings).where(ProviderSettings.name == provider))
    if row is None:
        row = ProviderSettings(name=provider, accounting={})
        session.add(row)
    before = dict(row.accounting or {})
    row.accounting = values
    audit(session, actor, "accounting.update", provider,
          {k: [before.get(k), v] for k, v in values.items() if before.get(k) != v}, commit=False)
    session.commit()
    return []


#: what a typed date looks like (date.fromisoformat alone also takes 20260101 and other ISO forms)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: the longest period one export covers: a fiscal year, up to 24 months for a company's first one
MAX_EXPORT_MONTHS = 24


def _months_on(day: date, months: int) -> date | None:
    """The day ``months`` after ``day`` (past a month's end: the 1st of the month after, so that
    29 February + 24 months leaves a period ending on 28 February); None past the calendar."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    if year > date.max.year:
        return None
    try:
        return day.replace(year=year, month=month + 1)
    except ValueError:
        return date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) if year < date.max.year or month < 11 else None


def export_period(start: str | None, end: str | None) -> tuple[date, date]:
    """The dates of an export as typed (``YYYY-MM-DD``): ``export_period("2026-01-01", "2026-12-31")``.
    Raises ValueError with a message for the merchant: unreadable dates, the end before the start, or
    a period longer than :data:`MAX_EXPORT_MONTHS` months (a company's first fiscal year)."""
    typed = [(value or "").strip() if isinstance(value, str) else "" for value in (start, end)]
    try:
        if not all(_ISO_DAY.fullmatch(value) for value in typed):
            raise ValueError
        first, last = date.fromisoformat(typed[0]), date.fromisoformat(typed[1])
    except ValueError:
        raise ValueError(_("Dates are written YYYY-MM-DD.")) from None
    if last < first:
        raise ValueError(_("The end of the period is before its start."))
    limit = _months_on(first, MAX_EXPORT_MONTHS)
    if limit is not None and last >= limit:
        raise ValueError(_("An export covers at most 24 months (a company's first fiscal year): "
                           "choose a shorter period."))
    return first, last


# ---------------------------------------------------------------------- what each movement books
#: (account debited, account credited) of each kind of movement, as accounting settings' fields
BOOKING: dict[MovementKind, tuple[str, str]] = {
    MovementKind.CAPTURE: ("clearing_account", "customer_account"),
    MovementKind.REFUND: ("customer_account", "clearing_account"),
    MovementKind.CHARGEBACK: ("customer_account", "clearing_account"),
    MovementKind.CHARGEBACK_REVERSAL: ("clearing_account", "customer_account"),
    MovementKind.FEE: ("fee_account", "clearing_account"),
    MovementKind.PAYOUT: ("bank_account", "clearing_account"),
    MovementKind.ADJUSTMENT: ("clearing_account", "customer_account"),
}

# The FEC is a French tax document (article A47 A-1 LPF): its labels are French whatever the
# admin panel's language.
_NAMES = {"adyen": "Adyen", "paypal": "PayPal", "payplug": "PayPlug", "sips": "Worldline Sips", "hipay": "HiPay"}
_ACCOUNT_LABELS = {
    "clearing_account": "Valeurs à l'encaissement {name}",
    "customer_account": "Clients",
    "fee_account": "Commissions {name}",
    "bank_account": "Banque",
}
_ENTRY_LABELS = {
    MovementKind.CAPTURE: "Encaissement {order} {name}",
    MovementKind.REFUND: "Remboursement {order} {name}",
    MovementKind.CHARGEBACK: "Impayé {order} {name}",
    MovementKind.CHARGEBACK_REVERSAL: "Annulation d'impayé {order} {name}",
    MovementKind.FEE: "Commission {name}",
    MovementKind.PAYOUT: "Virement {name} vers la banque",
    MovementKind.ADJUSTMENT: "Régularisation {name}",
}

FEC_COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
               "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
               "ValidDate", "Montantdevise", "Idevise")
#: article A47 A-1 LPF: ASCII, ISO 8859-15 or EBCDIC; records end with CR and/or LF
FEC_ENCODING = "iso-8859-15"
FEC_SEPARATOR = "\t"
FEC_NEWLINE = "\r\n"

#: Rates: ``{"USD": "0.92"}`` (units of the accounting currency for one unit of the other), or a
#: callable ``rate(currency, day) -> Decimal | str | None`` (the day's rate, e.g. the ECB's)
ExchangeRates = Mapping[str, Any] | Callable[[str, date], Any] | None


class ExportProblem(ValueError):
    """The export cannot be made as asked (no SIREN for a FEC, no exchange rate…): the message says why."""


@dataclass(frozen=True)
class ExportOptions:
    """What shapes an export besides its period: the mode's movements only (a FEC: live, always)."""

    mode: str = "live"
    timezone: tzinfo = timezone.utc
    currency: str = "EUR"
    rates: ExchangeRates = None
    siren: str | None = None


def fec_filename(siren: str, end: date) -> str:
    """``<SIREN>FEC<YYYYMMDD>.txt``, the date being the end of the period (the fiscal year's closing)."""
    return f"{siren}FEC{end:%Y%m%d}.txt"


def csv_filename(start: date, end: date, mode: str = "live") -> str:
    return f"psp-journal-{start}-{end}" + ("" if mode == "live" else f"-{mode}") + ".csv"


def _utc_bounds(start: date, end: date, zone: tzinfo) -> tuple[datetime, datetime]:
    def utc(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), zone).astimezone(timezone.utc).replace(tzinfo=None)

    lo = utc(start) if start > date.min else datetime.min
    hi = utc(end + timedelta(days=1)) if end < date.max - timedelta(days=1) else datetime.max
    return lo, hi


def _local_day(moment: datetime, zone: tzinfo) -> date:
    try:
        return moment.replace(tzinfo=timezone.utc).astimezone(zone).date()
    except OverflowError:
        return moment.date()


#: movements read from the database at a time: memory stays the same whatever the period holds
BATCH = 2000


def movement_rows(session: Session, start: date, end: date, options: ExportOptions) -> Iterator[Any]:
    """The ``mode``'s movements of the period (local days of ``options.timezone``), oldest first,
    each with its payment's order reference and token; streamed (a server-side cursor on
    PostgreSQL), never all in memory."""
    lo, hi = _utc_bounds(start, end, options.timezone)
    query = (
        select(Movement.id, Movement.kind, Movement.occurred_at, Movement.recorded_at, Movement.amount,
               Movement.currency, Movement.provider, Movement.psp_reference, Movement.note,
               Payment.order_ref, Payment.token)
        .outerjoin(Payment, Payment.id == Movement.payment_id)
        .where(Movement.mode == options.mode, Movement.occurred_at >= lo, Movement.occurred_at < hi)
        .order_by(Movement.occurred_at, Movement.id)
        .execution_options(yield_per=BATCH)
    )
    yield from session.execute(query)


def _rate(options: ExportOptions, currency: str, day: date) -> Decimal:
    rates, value = options.rates, None
    if callable(rates):
        value = rates(currency, day)
    elif isinstance(rates, Mapping):
        value = rates.get(currency)
    try:
        rate = Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or rate <= 0:
        raise ExportProblem(_("No exchange rate from %(currency)s to %(accounting)s for %(day)s: "
                              "set PSP_EXCHANGE_RATES.", currency=currency, accounting=options.currency,
                              day=day.isoformat()))
    return rate


def currencies_without_rate(session: Session, start: date, end: date, options: ExportOptions) -> list[str]:
    """The currencies of the period's movements other than the accounting one that a rate table
    (a dict) lacks, checked before a download starts (a callable is asked day by day, as it goes)."""
    if callable(options.rates):
        return []
    lo, hi = _utc_bounds(start, end, options.timezone)
    found = session.scalars(select(Movement.currency).distinct().where(
        Movement.mode == options.mode, Movement.occurred_at >= lo, Movement.occurred_at < hi))
    rates = options.rates or {}
    return sorted(c for c in found if c != options.currency and c not in rates)


_SEPARATORS = re.compile(r"[\t\r\n|]")


def _clean(text: Any) -> str:
    """A field holds no field separator (tab, or the other one the format allows, |) nor line break."""
    text = str(text or "")
    return _SEPARATORS.sub(" ", text) if _SEPARATORS.search(text) else text


def _minor_text(amount: int, places: int, point: str) -> str:
    """An amount in minor units as a decimal text, by integer arithmetic: ``(1205, 2, ",") -> "12,05"``."""
    if not places:
        return str(amount)
    units, rest = divmod(amount, 10 ** places)
    return f"{units}{point}{rest:0{places}d}"


def _decimal_text(value: Decimal, places: int, point: str) -> str:
    return f"{value:.{places}f}".replace(".", point)


class _Days:
    """The local day of UTC datetimes asked for in (mostly) increasing order: one time-zone
    conversion per day, not per movement."""

    def __init__(self, zone: tzinfo):
        self.zone = zone
        self.lo = self.hi = self.day = None

    def __call__(self, moment: datetime) -> date:
        if self.lo is not None and self.lo <= moment < self.hi:
            return self.day
        day = _local_day(moment, self.zone)
        self.lo, self.hi = _utc_bounds(day, day, self.zone)
        self.day = day
        return day


class _Books:
    """What one provider's entries say that does not change from one movement to the next: its
    journal, and for each kind of movement the accounts and labels of its two lines."""

    def __init__(self, provider: str, accounts: Mapping[str, str]):
        name = _NAMES.get(provider, provider)
        self.journal = _clean(accounts["journal_code"])
        self.journal_label = _clean(f"{name} - encaissements")
        self.lines = {}
        for kind, (debit, credit) in BOOKING.items():
            self.lines[kind.value] = (
                kind, _clean(accounts[debit]), _clean(_ACCOUNT_LABELS[debit].format(name=name)),
                _clean(accounts[credit]), _clean(_ACCOUNT_LABELS[credit].format(name=name)),
                _ENTRY_LABELS[kind].replace("{name}", name),
            )


@dataclass(frozen=True, slots=True)
class Entry:
    """One balanced journal entry: a movement as two lines, the debit and the credit of one amount."""

    journal: str
    journal_label: str
    number: int
    day: date
    valid_day: date
    debit_account: str
    debit_label: str
    credit_account: str
    credit_label: str
    piece: str
    label: str
    amount: int  # in the movement's currency, minor units
    currency: str


def journal_entries(session: Session, start: date, end: date, options: ExportOptions) -> Iterator[Entry]:
    """The period's movements as journal entries, in date order, numbered 1, 2, 3… per journal."""
    books: dict[str, _Books] = {}
    numbers: dict[str, int] = {}
    occurred_day, recorded_day = _Days(options.timezone), _Days(options.timezone)
    for row in movement_rows(session, start, end, options):
        book = books.get(row.provider)
        if book is None:
            book = books[row.provider] = _Books(row.provider, settings_for(session, row.provider))
        kind, debit, debit_label, credit, credit_label, template = book.lines[row.kind]
        day = occurred_day(row.occurred_at)
        valid_day = recorded_day(row.recorded_at)
        numbers[book.journal] = number = numbers.get(book.journal, 0) + 1
        label = template.replace("{order}", row.order_ref or "")
        if kind is MovementKind.ADJUSTMENT and row.note:
            label += f" : {row.note}"
        yield Entry(book.journal, book.journal_label, number, day, valid_day if valid_day > day else day,
                    debit, debit_label, credit, credit_label, _clean(row.psp_reference or row.token or f"MVT{row.id}"),
                    _clean(" ".join(label.split())[:200]), row.amount, row.currency)


def fec_lines(session: Session, start: date, end: date, options: ExportOptions) -> Iterator[str]:
    """The FEC of the period (article A47 A-1 LPF), line by line, each ending with CR LF: the
    header of the 18 fields, then two lines per movement. Live movements only. A movement in
    another currency than the accounting one is booked at the day's rate (``options.rates``), its
    own amount and currency in Montantdevise and Idevise."""
    if options.mode != "live":
        raise ExportProblem(_("A FEC holds live movements only: test payments are not accounting."))
    yield FEC_SEPARATOR.join(FEC_COLUMNS) + FEC_NEWLINE
    places = exponent(options.currency)
    quantum = Decimal(1).scaleb(-places)
    zero = _minor_text(0, places, ",")
    exponents = {options.currency: places}
    days: dict[date, str] = {}
    t, end_of_line = FEC_SEPARATOR, FEC_NEWLINE
    for e in journal_entries(session, start, end, options):
        day = days.get(e.day) or days.setdefault(e.day, f"{e.day:%Y%m%d}")
        valid = days.get(e.valid_day) or days.setdefault(e.valid_day, f"{e.valid_day:%Y%m%d}")
        if e.currency == options.currency:
            amount, in_currency, currency = _minor_text(e.amount, places, ","), "", ""
        else:
            own = exponents.get(e.currency)
            if own is None:
                own = exponents[e.currency] = exponent(e.currency)
            booked = (to_decimal(e.amount, e.currency) * _rate(options, e.currency, e.day)).quantize(quantum, ROUND_HALF_UP)
            amount, in_currency, currency = _decimal_text(booked, places, ","), _minor_text(e.amount, own, ","), e.currency
        head = f"{e.journal}{t}{e.journal_label}{t}{e.number}{t}{day}{t}"
        middle = f"{t}{t}{t}{e.piece}{t}{day}{t}{e.label}{t}"
        tail = f"{t}{t}{t}{valid}{t}{in_currency}{t}{currency}{end_of_line}"
        yield (f"{head}{e.debit_account}{t}{e.debit_label}{middle}{amount}{t}{zero}{tail}"
               f"{head}{e.credit_account}{t}{e.credit_label}{middle}{zero}{t}{amount}{tail}")


def fec_chunks(session: Session, start: date, end: date, options: ExportOptions, size: int = 256 * 1024) -> Iterator[bytes]:
    """The FEC encoded for the file (ISO 8859-15), in chunks of about ``size`` bytes."""
    buffer: list[str] = []
    held = 0
    for lines in fec_lines(session, start, end, options):
        buffer.append(lines)
        held += len(lines)
        if held >= size:
            yield "".join(buffer).encode(FEC_ENCODING, errors="replace")
            buffer, held = [], 0
    if buffer:
        yield "".join(buffer).encode(FEC_ENCODING, errors="replace")


COLUMNS = ("JournalCode", "EcritureDate", "CompteNum", "PieceRef", "EcritureLib", "Debit", "Credit", "Devise")


def csv_lines(session: Session, start: date, end: date, options: ExportOptions) -> Iterator[str]:
    """The journal as CSV (``;``, amounts in the movement's own currency with a point), a movement's
    two lines at a time."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield out.getvalue()
    exponents: dict[str, int] = {}
    for e in journal_entries(session, start, end, options):
        own = exponents.get(e.currency)
        if own is None:
            own = exponents[e.currency] = exponent(e.currency)
        amount, day = _minor_text(e.amount, own, "."), f"{e.day:%Y%m%d}"
        piece, label = _no_formula(e.piece), _no_formula(e.label)
        out.seek(0)
        out.truncate()
        writer.writerow((e.journal, day, e.debit_account, piece, label, amount, "", e.currency))
        writer.writerow((e.journal, day, e.credit_account, piece, label, "", amount, e.currency))
        yield out.getvalue()


def _no_formula(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: defuse merchant-supplied text."""
    return "'" + value if value[:1] in ("=", "+", "@") or (value[:1] == "-" and not value[1:2].isdigit()) else value

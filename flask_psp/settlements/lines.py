"""The provider-neutral shape of one line of a PSP's settlement report, and the helpers every
report parser reads its values with. No Flask, no database: files come from outside, so every
parser turns anything it cannot read into :class:`ReportFormatError` and nothing else."""

from __future__ import annotations

import csv
import enum
import io
from dataclasses import dataclass
from datetime import date, datetime

from ..money import MAX_DIGITS, from_decimal_string, is_currency

#: a settlement report holds thousands of lines, not millions: more is refused, not read into memory
MAX_LINES = 200_000
MAX_REPORT_BYTES = 64 * 1024 * 1024


class ReportFormatError(ValueError):
    """The file is not a report of this provider's kind, or one of its lines cannot be read."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class LineKind(str, enum.Enum):
    """What a report line is; the values are the accounting movements' kinds."""

    CAPTURE = "capture"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    CHARGEBACK_REVERSAL = "chargeback_reversal"
    FEE = "fee"
    PAYOUT = "payout"
    ADJUSTMENT = "adjustment"

    def __str__(self) -> str:
        return self.value


#: lines about one payment, matched to its movement of the same kind
TRANSACTION_KINDS = frozenset({LineKind.CAPTURE, LineKind.REFUND, LineKind.CHARGEBACK, LineKind.CHARGEBACK_REVERSAL})
#: money in (+1) or out (-1) of the merchant's balance at the PSP, by kind
DIRECTION = {LineKind.CAPTURE: 1, LineKind.CHARGEBACK_REVERSAL: 1, LineKind.REFUND: -1, LineKind.CHARGEBACK: -1,
             LineKind.FEE: -1, LineKind.PAYOUT: -1}


@dataclass(frozen=True)
class ReportLine:
    """One line of a settlement report. Amounts in minor units: ``gross`` the transaction's amount
    (never negative) in ``currency``; ``fee`` what the PSP kept for it (negative: a fee given back)
    and ``net`` the signed change of the merchant's balance at the PSP, both in ``net_currency``."""

    kind: LineKind
    line_key: str  # unique among all the provider's reports: the same line in two files is one line
    currency: str
    gross: int
    fee: int
    net: int
    booked_on: date
    psp_reference: str | None = None
    merchant_reference: str | None = None
    payout_id: str | None = None
    net_currency: str | None = None  # None: the same as ``currency``
    #: another reference of the same money: Adyen's modification pspReference, the capture a
    #: PayPal refund or reversal is about
    related_reference: str | None = None
    number: int = 0  # line number in the file (1: the first line)

    @property
    def settled_currency(self) -> str:
        return self.net_currency or self.currency


def read_text(data: bytes) -> str:
    if len(data) > MAX_REPORT_BYTES:
        raise ReportFormatError(f"the file is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReportFormatError("the file is not UTF-8 text") from None
    if "\x00" in text:
        raise ReportFormatError("the file holds NUL characters: not a text report")
    return text


def csv_rows(text: str, delimiter: str = ","):
    """``(line number, cells)`` of a CSV text; a malformed CSV is a ReportFormatError."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            if reader.line_num > MAX_LINES:
                raise ReportFormatError(f"more than {MAX_LINES} lines")
            yield reader.line_num, cells
    except csv.Error as exc:
        raise ReportFormatError(f"not CSV: {exc}", reader.line_num) from None


class Columns:
    """Cells read by header name: reports gain columns over the years, and merchants reorder them."""

    def __init__(self, header: list[str], required: tuple[str, ...], line: int):
        self.index = {name.strip(): position for position, name in enumerate(header)}
        missing = [name for name in required if name not in self.index]
        if missing:
            raise ReportFormatError(f"missing column(s): {', '.join(missing)}", line)

    def get(self, cells: list[str], name: str) -> str:
        position = self.index.get(name)
        if position is None or position >= len(cells):
            return ""
        return cells[position].strip()


def currency_code(text: str, line: int) -> str:
    code = text.strip().upper()
    if len(code) != 3 or not code.isalpha() or not is_currency(code):
        raise ReportFormatError(f"not an ISO 4217 currency: {text[:20]!r}", line)
    return code


def amount(text: str, currency: str, line: int, *, blank_is_zero: bool = True, comma: bool = False) -> int:
    """A decimal amount as the report writes it (``"12.34"``, ``"-0.59"``; with ``comma``: ``"12,34"``)."""
    text = text.strip()
    if not text:
        if blank_is_zero:
            return 0
        raise ReportFormatError("an amount is missing", line)
    if comma:
        text = text.replace(",", ".")
    if len(text) > MAX_DIGITS + 4 or not all(c in "0123456789.-+" for c in text):
        raise ReportFormatError(f"not an amount: {text[:30]!r}", line)
    try:
        return from_decimal_string(text, currency)
    except ValueError as exc:
        raise ReportFormatError(str(exc), line) from None


def minor_units(text: str, line: int) -> int:
    """An amount written in minor units (``"1234"``)."""
    text = text.strip()
    body = text[1:] if text[:1] == "-" else text
    if not body.isdigit() or not body.isascii() or len(body) >= MAX_DIGITS:
        raise ReportFormatError(f"not an amount in minor units: {text[:30]!r}", line)
    return int(text)


def day(text: str, formats: tuple[str, ...], line: int) -> date:
    text = text.strip()
    for form in formats:
        try:
            return datetime.strptime(text[:len(datetime(2000, 1, 1).strftime(form))], form).date()
        except ValueError:
            continue
    raise ReportFormatError(f"not a date: {text[:30]!r}", line)


def reference(text: str, line: int, limit: int = 128) -> str | None:
    text = text.strip()
    if len(text) > limit:
        raise ReportFormatError(f"a reference longer than {limit} characters", line)
    return text or None


def currency_from_number(text: str, line: int) -> str:
    """An ISO 4217 currency written by its numeric code (``"978"``: EUR) or its letters."""
    text = text.strip()
    if not text.isdigit():
        return currency_code(text, line)
    from iso4217 import Currency

    for currency in Currency:
        if currency.number == int(text[:4]) and is_currency(currency.code):
            return currency.code
    raise ReportFormatError(f"not an ISO 4217 numeric currency code: {text[:10]!r}", line)


def sniff_delimiter(header_line: str) -> str:
    """``;`` or ``,``: whichever the header line uses (back-office exports follow the locale)."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


def payouts_of(lines: list[ReportLine], provider: str) -> list[ReportLine]:
    """For reports where a settlement *is* the transfer to the bank (HiPay's settlement file, a
    Sips acquirer's remittance): one payout line per settlement, of its lines' net total."""
    totals: dict[tuple[str, str], tuple[int, date]] = {}
    for line in lines:
        if line.payout_id is None:
            continue
        key = (line.payout_id, line.settled_currency)
        total, booked = totals.get(key, (0, line.booked_on))
        totals[key] = (total + line.net, max(booked, line.booked_on))
    return [
        ReportLine(kind=LineKind.PAYOUT, line_key=f"{provider}:{payout}:{currency}:payout", currency=currency,
                   gross=total, fee=0, net=-total, booked_on=booked, payout_id=payout)
        for (payout, currency), (total, booked) in totals.items()
        if total > 0
    ]

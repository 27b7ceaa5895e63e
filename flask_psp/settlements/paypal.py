"""PayPal's Transaction Search (``GET /v1/reporting/transactions``): JSON, one
``transaction_details`` entry per balance movement, each with its ``transaction_info``:
``transaction_id``, ``transaction_event_code`` (``T0006`` a Checkout payment, ``T1107`` a refund
by the merchant, ``T1106``/``T1201`` a reversal or chargeback, ``T1202`` a chargeback reversal,
``T04xx`` a withdrawal to the bank, ``T01xx`` fees), ``transaction_initiation_date``,
``transaction_amount`` and ``fee_amount`` (signed decimals with ``currency_code``),
``transaction_status`` (``S`` success, ``V`` reversed later, ``P`` pending, ``D`` denied) and
``custom_field`` (the purchase unit's ``custom_id``: flask-psp's payment token).
Source: developer.paypal.com/docs/api/transaction-search/v1/ and the Transaction Search guide.

Pending and denied transactions moved no money yet and are skipped. A file is the pages of one
search joined: ``{"transaction_details": [...]}`` (what the fetch stores), or a list of pages.
"""

from __future__ import annotations

from ..providers.base import MalformedNotification, parse_json
from .lines import LineKind, ReportFormatError, ReportLine, amount, currency_code, day, read_text, reference

DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
COUNTED_STATUSES = ("S", "V")


def kind_of(event_code: str) -> LineKind:
    if event_code in ("T1106", "T1201"):
        return LineKind.CHARGEBACK
    if event_code == "T1202":
        return LineKind.CHARGEBACK_REVERSAL
    if event_code.startswith("T11"):
        return LineKind.REFUND
    if event_code.startswith("T00"):
        return LineKind.CAPTURE
    if event_code.startswith("T04"):
        return LineKind.PAYOUT
    if event_code.startswith("T01"):
        return LineKind.FEE
    return LineKind.ADJUSTMENT


def parse(data: bytes) -> list[ReportLine]:
    try:
        document = parse_json(read_text(data))
    except MalformedNotification as exc:
        raise ReportFormatError(str(exc).replace("body", "file")) from None
    pages = document if isinstance(document, list) else [document]
    lines: list[ReportLine] = []
    for page in pages:
        details = page.get("transaction_details") if isinstance(page, dict) else None
        if not isinstance(details, list):
            raise ReportFormatError("not a Transaction Search answer: no transaction_details list")
        for entry in details:
            line = _line(entry, len(lines) + 1)
            if line is not None:
                lines.append(line)
    return lines


def _money(info: dict, name: str, number: int, required: bool = True) -> tuple[int, str | None]:
    value = info.get(name)
    if value is None and not required:
        return 0, None
    if not isinstance(value, dict) or not isinstance(value.get("value"), str) or not isinstance(value.get("currency_code"), str):
        raise ReportFormatError(f"{name} is not an amount object", number)
    currency = currency_code(value["currency_code"], number)
    return amount(value["value"], currency, number, blank_is_zero=False), currency


def _text(info: dict, name: str, number: int, limit: int = 128) -> str | None:
    value = info.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReportFormatError(f"{name} is not text", number)
    return reference(value, number, limit)


def _line(entry, number: int) -> ReportLine | None:
    info = entry.get("transaction_info") if isinstance(entry, dict) else None
    if not isinstance(info, dict):
        raise ReportFormatError("an entry without transaction_info", number)
    status = _text(info, "transaction_status", number, 2)
    if status not in COUNTED_STATUSES:
        return None
    transaction_id = _text(info, "transaction_id", number, 64)
    event_code = _text(info, "transaction_event_code", number, 8) or ""
    if not transaction_id or not event_code:
        raise ReportFormatError("an entry without transaction_id or transaction_event_code", number)
    signed, currency = _money(info, "transaction_amount", number)
    fee_signed, fee_currency = _money(info, "fee_amount", number, required=False)
    if fee_currency not in (None, currency):
        raise ReportFormatError("fee_amount is not in the transaction's currency", number)
    kind = kind_of(event_code)
    fee = -fee_signed
    if kind is LineKind.FEE:
        fee, signed = fee - signed, 0
    date_text = _text(info, "transaction_initiation_date", number, 40) or ""
    return ReportLine(
        kind=kind,
        line_key=f"paypal:{transaction_id}:{event_code}",
        currency=currency,
        gross=abs(signed),
        fee=fee,
        net=signed - fee,
        booked_on=day(date_text, DATE_FORMATS, number),
        psp_reference=transaction_id,
        merchant_reference=_text(info, "custom_field", number) or _text(info, "invoice_id", number),
        payout_id=transaction_id if kind is LineKind.PAYOUT else None,
        related_reference=_text(info, "paypal_reference_id", number, 64),
        number=number,
    )

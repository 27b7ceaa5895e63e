"""PayPlug's accounting report: ``POST /v1/accounting_reports`` (``start_date``, ``end_date``)
answers an ``accounting_report`` object whose ``temporary_url`` (once the report is ready; until
``file_available_until``) is the CSV file. Source: PayPlug API reference, "Accounting reports".

⚠ PayPlug does not publish the file's columns; flask-psp reads these, by name (the README's
"Settlement reconciliation" documents them): ``Date``, ``Operation`` (``payment``, ``refund``,
``dispute``, ``dispute_reversal``, ``fee``, ``payout``), ``Payment ID`` (``pay_…``), ``Refund ID``,
``Order reference``, ``Amount``, ``Fees``, ``Net`` (decimals, signed as they move the balance),
``Currency``, ``Payout ID``.
"""

from __future__ import annotations

from .lines import (
    Columns,
    LineKind,
    ReportFormatError,
    ReportLine,
    amount,
    csv_rows,
    currency_code,
    day,
    read_text,
    reference,
    sniff_delimiter,
)

OPERATIONS = {
    "payment": LineKind.CAPTURE,
    "refund": LineKind.REFUND,
    "dispute": LineKind.CHARGEBACK,
    "dispute_reversal": LineKind.CHARGEBACK_REVERSAL,
    "fee": LineKind.FEE,
    "payout": LineKind.PAYOUT,
}
REQUIRED = ("Date", "Operation", "Payment ID", "Amount", "Fees", "Net", "Currency")
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def parse(data: bytes) -> list[ReportLine]:
    text = read_text(data)
    columns = None
    lines = []
    for number, cells in csv_rows(text, sniff_delimiter(text.split("\n", 1)[0])):
        if not any(cell.strip() for cell in cells):
            continue
        if columns is None:
            columns = Columns(cells, REQUIRED, number)
            continue
        get = lambda name: columns.get(cells, name)  # noqa: E731
        operation = get("Operation").lower()
        kind = OPERATIONS.get(operation, LineKind.ADJUSTMENT)
        currency = currency_code(get("Currency"), number)
        signed = amount(get("Amount"), currency, number, blank_is_zero=False)
        fee = amount(get("Fees"), currency, number)
        net = amount(get("Net"), currency, number, blank_is_zero=False)
        payment = reference(get("Payment ID"), number, 64)
        own = reference(get("Refund ID"), number, 64) or payment or reference(get("Payout ID"), number, 64) or f"{number}"
        lines.append(ReportLine(
            kind=kind,
            line_key=f"payplug:{operation}:{own}:{get('Date')[:19]}"[:191],
            currency=currency,
            gross=abs(signed) if kind is not LineKind.FEE else 0,
            fee=fee,
            net=net,
            booked_on=day(get("Date"), DATE_FORMATS, number),
            psp_reference=payment,
            merchant_reference=reference(get("Order reference"), number),
            payout_id=reference(get("Payout ID"), number, 64),
            number=number,
        ))
    if columns is None:
        raise ReportFormatError("an empty file: an accounting report starts with its column headers")
    return lines

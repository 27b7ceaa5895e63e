"""Worldline Sips' financial reconciliation report (``JRB``): CSV with ``;`` sent daily by e-mail
or FTP. Source: Worldline Sips "Reports" (WLSIPS.006): every report is a ``TITLE`` line (report
type, name, date, format version), a line of column names, the detail lines, and a closing line.
There is no API to fetch it: the file is imported.

⚠ The TAB20 field list is not public; flask-psp reads these columns by name (the README's
"Settlement reconciliation" documents them): ``TRANSACTION_REFERENCE``, ``ORDER_ID``,
``OPERATION_TYPE`` (``DEBIT`` a payment, ``CREDIT`` a refund, ``CHARGEBACK``,
``CHARGEBACK_REVERSAL``), ``AMOUNT``, ``COMMISSION_AMOUNT`` and ``NET_AMOUNT`` (minor units),
``CURRENCY_CODE`` (ISO 4217, numeric as Sips writes it, or letters), ``REMITTANCE_DATE``
(``YYYYMMDD``) and ``REMITTANCE_NUMBER``. The acquirer credits the bank per remittance: the import
books each remittance as a payout of its net total.
"""

from __future__ import annotations

from .lines import (
    Columns,
    LineKind,
    ReportFormatError,
    ReportLine,
    csv_rows,
    currency_from_number,
    day,
    minor_units,
    payouts_of,
    read_text,
    reference,
)

OPERATIONS = {
    "DEBIT": LineKind.CAPTURE,
    "CREDIT": LineKind.REFUND,
    "CHARGEBACK": LineKind.CHARGEBACK,
    "CHARGEBACK_REVERSAL": LineKind.CHARGEBACK_REVERSAL,
}
REQUIRED = ("TRANSACTION_REFERENCE", "OPERATION_TYPE", "AMOUNT", "NET_AMOUNT", "CURRENCY_CODE", "REMITTANCE_DATE",
            "REMITTANCE_NUMBER")
FRAMING = ("TITLE", "END", "FOOTER", "TRAILER")


def parse(data: bytes) -> list[ReportLine]:
    columns = None
    lines = []
    for number, cells in csv_rows(read_text(data), ";"):
        if not any(cell.strip() for cell in cells) or cells[0].strip().upper() in FRAMING:
            continue
        if columns is None:
            columns = Columns(cells, REQUIRED, number)
            continue
        get = lambda name: columns.get(cells, name)  # noqa: E731
        operation = get("OPERATION_TYPE").upper()
        kind = OPERATIONS.get(operation, LineKind.ADJUSTMENT)
        currency = currency_from_number(get("CURRENCY_CODE"), number)
        gross = abs(minor_units(get("AMOUNT"), number))
        net = minor_units(get("NET_AMOUNT"), number)
        fee = minor_units(get("COMMISSION_AMOUNT") or "0", number)
        transaction = reference(get("TRANSACTION_REFERENCE"), number, 64)
        remittance = reference(get("REMITTANCE_NUMBER"), number, 64)
        lines.append(ReportLine(
            kind=kind,
            line_key=f"sips:{remittance}:{transaction}:{operation}:{get('OPERATION_SEQUENCE') or number}"[:191],
            currency=currency,
            gross=gross,
            fee=fee,
            net=net,
            booked_on=day(get("REMITTANCE_DATE"), ("%Y%m%d", "%Y-%m-%d"), number),
            psp_reference=transaction,
            merchant_reference=reference(get("ORDER_ID"), number),
            payout_id=remittance,
            number=number,
        ))
    if columns is None:
        raise ReportFormatError("an empty file: a reconciliation report has a line of column names")
    return lines + payouts_of(lines, "sips")

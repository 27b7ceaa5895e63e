"""HiPay Enterprise's settlement file (CSV; by e-mail, SFTP or the back office's "Settlement
overview"), one file per settlement, read by column name. Source: developer.hipay.com
"Settlements" (settlement file fields): ``Account``, ``Date``, ``Date value``, ``Settlement ID``,
``Transaction ID``, ``Order``, ``Original amount``, ``Original currency``, ``Amount (Incl. Tax)``,
``Currency``, ``Operation``, ``Settled amount``, ``Settlement currency``…

``Operation`` names the operation type; flask-psp reads captures (``Capture``, ``Sale``), refunds,
chargebacks and their reversals, and fees (any operation naming a fee or commission); anything
else is an adjustment. A settlement is one transfer to the merchant's bank: the import books it as
a payout of the settlement's net total.
"""

from __future__ import annotations

from .lines import (
    DIRECTION,
    Columns,
    LineKind,
    ReportFormatError,
    ReportLine,
    amount,
    csv_rows,
    currency_code,
    day,
    payouts_of,
    read_text,
    reference,
    sniff_delimiter,
)

REQUIRED = ("Date", "Settlement ID", "Transaction ID", "Order", "Original amount", "Original currency", "Operation",
            "Settled amount", "Settlement currency")
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%d/%m/%Y")


def kind_of(operation: str) -> LineKind:
    words = operation.lower()
    if "chargeback" in words:
        return LineKind.CHARGEBACK_REVERSAL if "revers" in words else LineKind.CHARGEBACK
    if "refund" in words:
        return LineKind.REFUND
    if "fee" in words or "commission" in words:
        return LineKind.FEE
    if "capture" in words or "sale" in words:
        return LineKind.CAPTURE
    return LineKind.ADJUSTMENT


def parse(data: bytes) -> list[ReportLine]:
    text = read_text(data)
    columns = None
    lines = []
    #: a settlement may hold two refunds of one transaction: the n-th of its kind in the settlement
    seen: dict[tuple, int] = {}
    for number, cells in csv_rows(text, sniff_delimiter(text.split("\n", 1)[0])):
        if not any(cell.strip() for cell in cells):
            continue
        if columns is None:
            columns = Columns(cells, REQUIRED, number)
            continue
        get = lambda name: columns.get(cells, name)  # noqa: E731
        operation = get("Operation")
        kind = kind_of(operation)
        currency = currency_code(get("Original currency"), number)
        settled_currency = currency_code(get("Settlement currency"), number)
        net = amount(get("Settled amount"), settled_currency, number, blank_is_zero=False)
        if kind is LineKind.FEE:
            fee_currency = currency_code(get("Currency") or get("Settlement currency"), number)
            fee = abs(amount(get("Amount (Incl. Tax)") or get("Settled amount"), fee_currency, number))
            gross, net = 0, -fee
        else:
            gross = abs(amount(get("Original amount"), currency, number, blank_is_zero=False))
            sign = DIRECTION.get(kind) or (1 if net >= 0 else -1)
            fee = sign * gross - net if settled_currency == currency else 0
        settlement = reference(get("Settlement ID"), number, 64)
        transaction = reference(get("Transaction ID"), number, 64)
        occurrence = seen[(settlement, transaction, operation)] = seen.get((settlement, transaction, operation), 0) + 1
        lines.append(ReportLine(
            kind=kind,
            line_key=f"hipay:{settlement}:{transaction or number}:{operation}:{occurrence}"[:191],
            currency=currency if kind is not LineKind.FEE else settled_currency,
            gross=gross,
            fee=fee,
            net=net,
            booked_on=day(get("Date value") or get("Date"), DATE_FORMATS, number),
            psp_reference=transaction,
            merchant_reference=reference(get("Order"), number),
            payout_id=settlement,
            net_currency=settled_currency if settled_currency != currency and kind is not LineKind.FEE else None,
            number=number,
        ))
    if columns is None:
        raise ReportFormatError("an empty file: a settlement file starts with its column headers")
    return lines + payouts_of(lines, "hipay")

"""Adyen's Settlement details report (CSV, one file per payout batch:
``settlement_detail_report_batch_<n>.csv``), read by column name.

Each line's ``Type`` says what it is: ``Settled`` (a capture paid out), ``Refunded``,
``Chargeback``, ``ChargebackReversed``, ``Fee`` (transaction fees of the month, invoice
deductions), ``MerchantPayout`` (the batch's transfer to the bank), and corrections
(``DepositCorrection``, ``Balancetransfer``…), read as adjustments. Gross amounts are in the
payment's currency (``Gross Debit (GC)`` / ``Gross Credit (GC)``), the rest in the settlement
currency: ``Net Debit (NC)`` / ``Net Credit (NC)``, and what Adyen kept for the line in
``Commission (NC)``, ``Markup (NC)``, ``Scheme Fees (NC)`` and ``Interchange (NC)``.
Source: docs.adyen.com/reporting/settlement-detail-report (structure and sample lines).
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
)

TYPES = {
    "Settled": LineKind.CAPTURE,
    "SettledBulk": LineKind.CAPTURE,
    "Refunded": LineKind.REFUND,
    "RefundedBulk": LineKind.REFUND,
    "Chargeback": LineKind.CHARGEBACK,
    "SecondChargeback": LineKind.CHARGEBACK,
    "ChargebackReversed": LineKind.CHARGEBACK_REVERSAL,
    "Fee": LineKind.FEE,
    "InvoiceDeduction": LineKind.FEE,
    "MerchantPayout": LineKind.PAYOUT,
}
REQUIRED = ("Psp Reference", "Merchant Reference", "Creation Date", "Type", "Gross Currency", "Net Currency",
            "Net Debit (NC)", "Net Credit (NC)", "Batch Number")
FEE_COLUMNS = ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def parse(data: bytes) -> list[ReportLine]:
    rows = csv_rows(read_text(data))
    columns = None
    lines: list[ReportLine] = []
    for number, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue
        if columns is None:
            columns = Columns(cells, REQUIRED, number)
            continue
        lines.append(_line(columns, cells, number))
    if columns is None:
        raise ReportFormatError("an empty file: a Settlement details report starts with its column headers")
    return lines


def _line(columns: Columns, cells: list[str], number: int) -> ReportLine:
    get = lambda name: columns.get(cells, name)  # noqa: E731
    record_type = get("Type")
    if not record_type:
        raise ReportFormatError("a line without a Type", number)
    kind = TYPES.get(record_type, LineKind.ADJUSTMENT)
    net_currency = currency_code(get("Net Currency"), number)
    net = amount(get("Net Credit (NC)"), net_currency, number) - amount(get("Net Debit (NC)"), net_currency, number)
    gross_currency = currency_code(get("Gross Currency"), number) if get("Gross Currency") else net_currency
    gross = abs(amount(get("Gross Credit (GC)"), gross_currency, number)
                - amount(get("Gross Debit (GC)"), gross_currency, number))
    fee = sum(amount(get(name), net_currency, number) for name in FEE_COLUMNS)
    if kind is LineKind.FEE:
        gross, fee = 0, -net
    elif kind is LineKind.PAYOUT:
        gross, fee = -net, 0
    elif kind is LineKind.ADJUSTMENT:
        gross = abs(net) if gross_currency == net_currency else gross
    batch = reference(get("Batch Number"), number, 32)
    psp = reference(get("Psp Reference"), number, 64)
    modification = reference(get("Modification Reference"), number, 64)
    # a line is the batch's news about one modification: its own reference, or the line's place
    own = modification or psp or f"line{number}"
    return ReportLine(
        kind=kind,
        line_key=f"adyen:{batch}:{record_type}:{own}"[:191],
        currency=gross_currency,
        gross=gross,
        fee=fee,
        net=net,
        booked_on=day(get("Creation Date"), DATE_FORMATS, number),
        psp_reference=psp,
        merchant_reference=reference(get("Merchant Reference"), number),
        payout_id=batch,
        net_currency=net_currency if net_currency != gross_currency else None,
        related_reference=modification if modification != psp else None,
        number=number,
    )

"""The report parsers read files that come from outside: whatever the bytes, a parser answers
lines or ReportFormatError, never anything else; and they read the providers' published samples
as the providers describe them."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_psp.settlements import PROVIDERS, LineKind, ReportFormatError, parse_report
from flask_psp.settlements import adyen, hipay, payplug, sips

HEADERS = {
    "adyen": adyen.REQUIRED + adyen.FEE_COLUMNS + ("Gross Debit (GC)", "Gross Credit (GC)", "Modification Reference"),
    "payplug": payplug.REQUIRED + ("Refund ID", "Order reference", "Payout ID"),
    "hipay": hipay.REQUIRED + ("Amount (Incl. Tax)", "Currency", "Date value"),
    "sips": sips.REQUIRED + ("ORDER_ID", "COMMISSION_AMOUNT", "OPERATION_SEQUENCE"),
}
DELIMITER = {"sips": ";"}


def read(provider, data):
    """Lines, or None for a refused file: nothing else may come out."""
    try:
        found = parse_report(provider, data)
    except ReportFormatError:
        return None
    for line in found:
        assert isinstance(line.kind, LineKind) and isinstance(line.booked_on, date)
        assert line.gross >= 0 and len(line.currency) == 3 and line.line_key
        assert all(isinstance(v, int) and not isinstance(v, bool) for v in (line.gross, line.fee, line.net))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=st.sampled_from(PROVIDERS), data=st.binary(max_size=2000))
@example(provider="paypal", data=b"[" * 100_000)
@example(provider="adyen", data=b"\xef\xbb\xbf")
@example(provider="sips", data=b"TITLE;x\nEND;0\n")
@example(provider="hipay", data=b'"unterminated')
def test_any_bytes_are_lines_or_a_format_error(provider, data):
    read(provider, data)


cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["EUR", "JPY", "KWD", "978", "XAU", "ZZZ", "12.34", "-0.59", "1e999999", "NaN", "9" * 40, "",
                     "2026-12-05", "20261205", "2026-13-45 25:61:61", "Settled", "MerchantPayout", "Fee", "payment",
                     "refund", "payout", "DEBIT", "CREDIT", "Capture", "Refund", "-", "0", "١٢٣"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=st.sampled_from(sorted(HEADERS)), rows=st.lists(st.lists(cells, min_size=0, max_size=30), max_size=6),
       shuffle=st.randoms(use_true_random=False))
def test_a_report_with_the_right_columns_and_any_cells_is_lines_or_a_format_error(provider, rows, shuffle):
    header = list(HEADERS[provider])
    shuffle.shuffle(header)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=DELIMITER.get(provider, ","), lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    read(provider, out.getvalue().encode("utf-8"))


paypal_values = st.one_of(st.none(), st.text(max_size=10), st.integers(), st.sampled_from(["T0006", "T1107", "S", "V", "EUR", "10.00", "-1.5"]))


@settings(max_examples=150, deadline=None)
@given(info=st.dictionaries(st.sampled_from(["transaction_id", "transaction_event_code", "transaction_status",
                                             "transaction_initiation_date", "custom_field", "paypal_reference_id",
                                             "transaction_amount", "fee_amount"]),
                            st.one_of(paypal_values, st.fixed_dictionaries({"currency_code": paypal_values,
                                                                            "value": paypal_values}))))
def test_paypal_entries_of_any_shape_are_lines_or_a_format_error(info):
    read("paypal", json.dumps({"transaction_details": [{"transaction_info": info}]}).encode())


ADYEN_COLUMNS = ("Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,"
                 "TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,"
                 "Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),"
                 "Interchange (NC),Payment Method Variant,Modification Merchant Reference,Batch Number,Reserved4,"
                 "Reserved5,Reserved6,Reserved7,Reserved8,Reserved9,Reserved10")


def test_adyens_published_sample_lines_read_as_adyen_describes_them():
    """The two transaction lines of docs.adyen.com's Settlement details report page."""
    data = "\n".join([
        ADYEN_COLUMNS,
        "TestCompany,TestMerchant,1813702551707653,3vpzf7,visa,2013-06-03 11:26:49,CET,Settled,1713702551795048,"
        "GBP,,5.00,1,GBP,,4.88,,0.04,0.01,0.07,visaclassic,,,,,,,,,",
        "TestCompany,TestMerchant,1313642467023511,324959451,visa,2013-03-26 22:37:26,CET,Chargeback,"
        "2313642467170922,EUR,349.99,,1,EUR,357.49,,7.5,,,,visaclassic,,,,,,,,,",
    ]).encode()
    settled, chargeback = parse_report("adyen", data)
    assert (settled.kind, settled.currency, settled.gross, settled.fee, settled.net) == (LineKind.CAPTURE, "GBP", 500, 12, 488)
    assert (settled.psp_reference, settled.merchant_reference, settled.related_reference) == (
        "1813702551707653", "3vpzf7", "1713702551795048")
    assert settled.booked_on == date(2013, 6, 3)
    assert (chargeback.kind, chargeback.gross, chargeback.fee, chargeback.net) == (LineKind.CHARGEBACK, 34999, 750, -35749)


def test_paypals_documented_transaction_shape_reads_as_a_capture_with_its_fee():
    """A transaction_info as the Transaction Search reference shows one (a T0006 payment, its fee negative)."""
    answer = {"transaction_details": [{"transaction_info": {
        "paypal_account_id": "6STWC2LSUYYYE", "transaction_id": "5TY05013RG002845M",
        "transaction_event_code": "T0006", "transaction_initiation_date": "2014-07-11T04:03:52+0000",
        "transaction_updated_date": "2014-07-11T04:03:52+0000",
        "transaction_amount": {"currency_code": "USD", "value": "465.00"},
        "fee_amount": {"currency_code": "USD", "value": "-13.79"},
        "transaction_status": "S", "invoice_id": "Invoice-005", "custom_field": "Custom field",
    }}], "account_number": "XZXSPECPDZHZU", "start_date": "2014-07-12T00:00:00+0000", "page": 1}
    (line,) = parse_report("paypal", json.dumps(answer).encode())
    assert (line.kind, line.currency, line.gross, line.fee, line.net) == (LineKind.CAPTURE, "USD", 46500, 1379, 45121)
    assert line.merchant_reference == "Custom field" and line.booked_on == date(2014, 7, 11)


@pytest.mark.parametrize("status", ["P", "D"])
def test_paypal_transactions_that_moved_no_money_yet_are_skipped(status):
    answer = {"transaction_details": [{"transaction_info": {
        "transaction_id": "1", "transaction_event_code": "T0006", "transaction_status": status,
        "transaction_initiation_date": "2026-01-01T00:00:00Z",
        "transaction_amount": {"currency_code": "EUR", "value": "1.00"}}}]}
    assert parse_report("paypal", json.dumps(answer).encode()) == []


def test_the_same_line_twice_in_one_report_is_the_files_error():
    line = ("TestCompany,TestMerchant,1813702551707653,3vpzf7,visa,2013-06-03 11:26:49,CET,Settled,1713702551795048,"
            "GBP,,5.00,1,GBP,,4.88,,0.04,0.01,0.07,visaclassic,,7,,,,,,,")
    with pytest.raises(ReportFormatError, match="line 3: the same line twice"):
        parse_report("adyen", "\n".join([ADYEN_COLUMNS, line, line]).encode())

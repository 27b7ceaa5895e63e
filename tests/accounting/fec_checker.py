"""A checker of FEC files, written from the format's text — article A47 A-1 of the livre des
procédures fiscales and the BOFiP's commentary (BOI-CF-IOR-60-40-20) — not from our exporter:

- the file is named ``<SIREN>FEC<AAAAMMJJ>.txt`` (SIREN: 9 digits; the date: the closing date);
- characters from ASCII or ISO 8859-15; records end with CR and/or LF; one field separator
  (tabulation or ``|``), unique and never inside a field;
- the first record holds the names of the 18 fields, in order;
- dates are ``AAAAMMJJ``; amounts are decimal numbers with a comma, no thousands separator;
- an entry (JournalCode + EcritureNum) is balanced: its debits equal its credits; its number is
  from a continuous sequence (here: per journal, 1, 2, 3… in the order of the file);
- CompteNum's first three characters are digits (the chart of accounts' class and account);
- CompAuxNum/CompAuxLib, EcritureLet/DateLet, Montantdevise/Idevise are empty or filled together.

``check(name, data)`` returns the entries found ``{(journal, number): [line dicts]}`` and raises
AssertionError saying what is wrong."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

FIELDS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
          "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
          "ValidDate", "Montantdevise", "Idevise")
_NAME = re.compile(r"(\d{9})FEC(\d{8})\.txt")
_AMOUNT = re.compile(r"\d+(,\d+)?")
_REQUIRED = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "PieceRef",
             "PieceDate", "EcritureLib", "Debit", "Credit", "ValidDate")


def _date(value: str, field: str, where: str) -> None:
    assert re.fullmatch(r"\d{8}", value), f"{where}: {field} {value!r} is not AAAAMMJJ"
    datetime.strptime(value, "%Y%m%d")  # a real day


def _amount(value: str, field: str, where: str) -> Decimal:
    assert _AMOUNT.fullmatch(value), f"{where}: {field} {value!r} is not an amount with a decimal comma"
    return Decimal(value.replace(",", "."))


def check(name: str, data: bytes) -> dict[tuple[str, str], list[dict[str, str]]]:
    match = _NAME.fullmatch(name)
    assert match, f"file name {name!r} is not <SIREN>FEC<AAAAMMJJ>.txt"
    _date(match.group(2), "closing date", "file name")
    text = data.decode("iso-8859-15")  # ISO 8859-15 (ASCII is a part of it)
    assert "\r\n" in text or "\n" in text, "no record separator"
    records = text.split("\r\n") if "\r\n" in text else text.split("\n")
    assert records[-1] == "", "the last record is not ended"
    records = records[:-1]
    assert all("\r" not in r and "\n" not in r for r in records), "mixed record separators"
    separator = "\t" if "\t" in records[0] else "|"
    header = records[0].split(separator)
    assert tuple(header) == FIELDS, f"first record {header!r} is not the 18 field names in order"
    entries: dict[tuple[str, str], list[dict[str, str]]] = {}
    last_number: dict[str, int] = {}
    current = None
    for index, record in enumerate(records[1:], start=2):
        where = f"record {index}"
        values = record.split(separator)
        assert len(values) == len(FIELDS), f"{where}: {len(values)} fields, not {len(FIELDS)}"
        line = dict(zip(FIELDS, values))
        for field in _REQUIRED:
            assert line[field].strip(), f"{where}: {field} is empty"
        for field in ("EcritureDate", "PieceDate", "ValidDate"):
            _date(line[field], field, where)
        assert re.fullmatch(r"\d{3}.*", line["CompteNum"]), f"{where}: CompteNum {line['CompteNum']!r}"
        debit, credit = _amount(line["Debit"], "Debit", where), _amount(line["Credit"], "Credit", where)
        assert not (debit and credit), f"{where}: both a debit and a credit"
        for pair in (("CompAuxNum", "CompAuxLib"), ("EcritureLet", "DateLet"), ("Montantdevise", "Idevise")):
            assert bool(line[pair[0]]) == bool(line[pair[1]]), f"{where}: {pair[0]} and {pair[1]} not filled together"
        if line["DateLet"]:
            _date(line["DateLet"], "DateLet", where)
        if line["Idevise"]:
            assert re.fullmatch(r"[A-Z]{3}", line["Idevise"]), f"{where}: Idevise {line['Idevise']!r}"
            _amount(line["Montantdevise"], "Montantdevise", where)
        key = (line["JournalCode"], line["EcritureNum"])
        if key != current:
            assert key not in entries, f"{where}: entry {key} continues after another one"
            number = int(line["EcritureNum"])
            expected = last_number.get(line["JournalCode"], 0) + 1
            assert number == expected, f"{where}: entry number {number} of {line['JournalCode']}, expected {expected}"
            last_number[line["JournalCode"]] = number
            entries[key], current = [], key
        entries[key].append(line)
    for key, lines in entries.items():
        debits = sum(_amount(line["Debit"], "Debit", "") for line in lines)
        credits = sum(_amount(line["Credit"], "Credit", "") for line in lines)
        assert debits == credits, f"entry {key} is not balanced: debit {debits}, credit {credits}"
        assert len({line["EcritureDate"] for line in lines}) == 1, f"entry {key} spans several dates"
    return entries

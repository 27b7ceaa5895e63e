"""Settlement reconciliation: what each PSP says it paid out, read from its settlement report,
matched to the shop's accounting movements.

* :mod:`.lines` — :class:`ReportLine`, the neutral line every parser yields, and :class:`ReportFormatError`;
* one parser module per provider (:mod:`.adyen`, :mod:`.paypal`, :mod:`.payplug`, :mod:`.hipay`,
  :mod:`.sips`), each ``parse(data: bytes) -> list[ReportLine]``;
* :mod:`.fetch` — getting a report from the PSP (Adyen's download URL, PayPal's Transaction
  Search, PayPlug's accounting report), every call with a timeout;
* :mod:`.reconcile` — the idempotent import: lines stored, fees and payouts become movements,
  every other line matched to its movement, differences and payments never settled listed.
"""

from __future__ import annotations

import importlib

from .lines import LineKind, ReportFormatError, ReportLine

__all__ = ["LineKind", "PROVIDERS", "ReportFormatError", "ReportLine", "parse_report"]

PROVIDERS = ("adyen", "hipay", "paypal", "payplug", "sips")


def parse_report(provider: str, data: bytes) -> list[ReportLine]:
    """The lines of ``provider``'s settlement report ``data``; ReportFormatError for anything else.
    Line keys are unique within the report (a repeated line is the file's error, not a second line)."""
    if provider not in PROVIDERS:
        raise ValueError(f"no settlement report parser for {provider!r}; known: {', '.join(PROVIDERS)}")
    lines = importlib.import_module(f"{__name__}.{provider}").parse(data)
    seen: set[str] = set()
    for line in lines:
        if line.line_key in seen:
            raise ReportFormatError("the same line twice in one report", line.number or None)
        seen.add(line.line_key)
    return lines

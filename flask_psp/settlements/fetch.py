"""Getting settlement reports from the PSPs that have an API for them, through their provider
modules (every call with the provider's timeout). No Flask.

* Adyen: the ``REPORT_AVAILABLE`` webhook gives the download URL (its ``reason``); the report user's
  credentials fetch it (:meth:`AdyenProvider.download_report`). :func:`announced_adyen_reports`
  lists the verified announcements of Settlement details reports not imported yet.
* PayPal: Transaction Search for one day, every page (:meth:`PayPalProvider.search_transactions`).
* PayPlug: an accounting report of one day, then its file (:meth:`PayPlugProvider.create_accounting_report`).
* HiPay, Sips: no public API for the settlement file: it is imported (``--file``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from ..models import PaymentEvent, SettlementImport, utcnow
from ..providers.base import MalformedNotification, ProviderError, parse_json

#: providers whose report can be asked for by date
FETCHABLE_BY_DATE = ("paypal", "payplug")
#: Transaction Search pages read for one day at most (500 lines each)
MAX_PAGES = 200
REPORT_AVAILABLE = "REPORT_AVAILABLE:true"
SETTLEMENT_REPORT_PREFIX = "settlement_detail_report"


@dataclass(frozen=True)
class AnnouncedReport:
    event_id: int
    mode: str
    name: str
    url: str


def fetch_report(provider, day: date) -> tuple[str, bytes]:
    """(name, content) of ``provider``'s settlement report for ``day`` (UTC). Raises ProviderError."""
    if provider.name == "paypal":
        return _paypal(provider, day)
    if provider.name == "payplug":
        return _payplug(provider, day)
    if provider.name == "adyen":
        raise ProviderError("Adyen announces each settlement report with a REPORT_AVAILABLE webhook: "
                            "run `flask psp settlements import adyen --fetch` to download the announced ones")
    raise ProviderError(f"{provider.display_name} has no API for its settlement report: import the file (--file)")


def _paypal(provider, day: date) -> tuple[str, bytes]:
    start, end = f"{day.isoformat()}T00:00:00Z", f"{day.isoformat()}T23:59:59Z"
    details = []
    page, pages = 1, 1
    while page <= pages:
        answer = provider.search_transactions(start, end, page)
        found = answer.get("transaction_details")
        if not isinstance(found, list):
            raise ProviderError("PayPal's Transaction Search answer has no transaction_details list")
        details.extend(found)
        total = answer.get("total_pages")
        pages = min(total, MAX_PAGES) if isinstance(total, int) and not isinstance(total, bool) else 1
        page += 1
    document = {"start_date": start, "end_date": end, "transaction_details": details}
    return f"paypal-transactions-{day.isoformat()}.json", json.dumps(document).encode("utf-8")


def _payplug(provider, day: date) -> tuple[str, bytes]:
    report = provider.create_accounting_report(day.isoformat(), day.isoformat())
    url = report.get("temporary_url")
    if not url and isinstance(report.get("id"), str):
        report = provider.accounting_report(report["id"])
        url = report.get("temporary_url")
    if not isinstance(url, str) or not url:
        raise ProviderError("PayPlug is still preparing the accounting report: try again later", retryable=True)
    return f"payplug-accounting-{day.isoformat()}-{report.get('id', '')}.csv", provider.download_accounting_report(url)


def announced_adyen_reports(session, since: timedelta = timedelta(days=30), now=None) -> list[AnnouncedReport]:
    """Settlement details reports Adyen announced (verified ``REPORT_AVAILABLE`` webhooks of the
    last ``since``) that no import holds yet, oldest first."""
    now = now or utcnow()
    rows = session.scalars(
        select(PaymentEvent)
        .where(PaymentEvent.provider == "adyen", PaymentEvent.verified.is_(True),
               PaymentEvent.event_type == REPORT_AVAILABLE, PaymentEvent.received_at >= now - since,
               PaymentEvent.psp_reference.like(f"{SETTLEMENT_REPORT_PREFIX}%"))
        .order_by(PaymentEvent.id)
    )
    imported = set(session.scalars(select(SettlementImport.name).where(SettlementImport.provider == "adyen")))
    reports, seen = [], set()
    for row in rows:
        name = row.psp_reference
        if name in imported or (row.mode, name) in seen:
            continue
        url = _report_url(row)
        if url:
            seen.add((row.mode, name))
            reports.append(AnnouncedReport(row.id, row.mode or "test", name, url))
    return reports


def _report_url(row: PaymentEvent) -> str | None:
    """The ``reason`` of the row's verified item: its body is the item itself (one of a batch) or
    the whole notification of that one item."""
    try:
        data = parse_json(row.body or "")
    except MalformedNotification:
        return None
    items = [data]
    if isinstance(data, dict) and isinstance(data.get("notificationItems"), list):
        items = [entry.get("NotificationRequestItem") for entry in data["notificationItems"] if isinstance(entry, dict)]
        if len(items) != 1:
            return None  # a batch's own row: its items have rows of their own
    item = items[0]
    if not isinstance(item, dict) or item.get("eventCode") != "REPORT_AVAILABLE" or item.get("pspReference") != row.psp_reference:
        return None
    reason = item.get("reason")
    return reason if isinstance(reason, str) and reason.startswith(("https://", "http://")) else None

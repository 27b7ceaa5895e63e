"""The ways a settlement report comes in — a file, a fetch by date, Adyen's announcement — each
ending in :func:`~flask_psp.settlements.reconcile.import_report`. Used by ``flask psp settlements
import`` and the ``settlements`` job. No Flask: given a :class:`~flask_psp.payments.PaymentService`."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from ..providers.base import ProviderError
from .fetch import FETCHABLE_BY_DATE, announced_adyen_reports, fetch_report
from .lines import ReportFormatError
from .reconcile import ImportResult, import_report, imported_on

log = logging.getLogger("flask_psp.settlements")


def mode_of(service, provider: str, mode: str | None) -> str:
    """The mode given, else the provider's mode in force."""
    mode = mode or service.settings.mode_in_force(service.session, provider)
    if mode is None:
        raise ValueError(f"{provider} is not configured: say which mode the report is of (test or live)")
    return mode


def import_file(service, provider: str, data: bytes, *, name: str | None = None, mode: str | None = None) -> ImportResult:
    return import_report(service.session, provider, mode_of(service, provider, mode), data, source="file", name=name)


def fetch_and_import(service, provider: str, day: date, *, mode: str | None = None) -> ImportResult:
    """Ask ``provider`` for its report of ``day`` and import it. Raises ProviderError, ReportFormatError."""
    mode = mode_of(service, provider, mode)
    client = service.provider(provider, mode)
    if client is None:
        raise ProviderError(f"{provider} has no {mode} credentials configured")
    name, data = fetch_report(client, day)
    return import_report(service.session, provider, mode, data, source="fetch", name=name, report_date=day)


def import_announced_adyen(service, now: datetime | None = None) -> tuple[list[ImportResult], list[str]]:
    """Download and import every Settlement details report Adyen announced and no import holds.
    Returns (results, problems): a report that cannot be fetched now is tried again next time."""
    results, problems = [], []
    for report in announced_adyen_reports(service.session, now=now):
        client = service.provider("adyen", report.mode)
        if client is None:
            problems.append(f"{report.name}: Adyen has no {report.mode} credentials configured")
            continue
        try:
            data = client.download_report(report.url)
            results.append(import_report(service.session, "adyen", report.mode, data, source="notification",
                                         name=report.name))
        except (ProviderError, ReportFormatError) as exc:
            service.session.rollback()
            problems.append(f"{report.name}: {getattr(exc, 'message', None) or exc}")
    return results, problems


def fetch_due(service, providers, today: date) -> tuple[list[ImportResult], list[str]]:
    """Yesterday's report of each of ``providers`` that has an API for it, unless fetched already."""
    results, problems = [], []
    day = today - timedelta(days=1)
    for provider in providers:
        if provider not in FETCHABLE_BY_DATE:
            continue
        mode = mode_of(service, provider, None)
        if service.provider(provider, mode) is None or imported_on(service.session, provider, mode, day):
            continue
        try:
            results.append(fetch_and_import(service, provider, day, mode=mode))
        except (ProviderError, ReportFormatError) as exc:
            service.session.rollback()
            problems.append(f"{provider} {day}: {getattr(exc, 'message', None) or exc}")
    return results, problems

"""Accounting settings per provider and the journal export. No Flask.

Defaults follow the French chart of accounts (plan comptable général): PSP clearing accounts under
511 (valeurs à l'encaissement), PSP fees under 627 (services bancaires), customers 411. The
accountant changes them in the admin panel; they are kept in ``ProviderSettings.accounting``.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from typing import Iterable, Mapping

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .i18n import gettext as _
from .models import Payment, ProviderSettings
from .money import to_decimal_string

FIELDS = ("journal_code", "clearing_account", "fee_account", "customer_account")
_JOURNALS = {"adyen": "ADY", "paypal": "PPL", "payplug": "PPG", "sips": "SIP", "hipay": "HIP"}
_CLEARING = {"adyen": "511510", "paypal": "511520", "payplug": "511530", "sips": "511540", "hipay": "511550"}
_JOURNAL_RE = re.compile(r"[A-Z0-9]{1,8}")
_ACCOUNT_RE = re.compile(r"[0-9A-Z]{3,20}")


def defaults(provider: str) -> dict[str, str]:
    return {
        "journal_code": _JOURNALS.get(provider, provider[:3].upper()),
        "clearing_account": _CLEARING.get(provider, "511500"),
        "fee_account": "627800",
        "customer_account": "411000",
    }


def settings_for(session: Session, provider: str) -> dict[str, str]:
    row = session.scalar(select(ProviderSettings).where(ProviderSettings.name == provider))
    stored = (row.accounting if row is not None else None) or {}
    return {**defaults(provider), **{k: v for k, v in stored.items() if k in FIELDS and v}}


def save(session: Session, provider: str, form: Mapping[str, str], actor: str) -> list[str]:
    from .admin.audit import audit

    values, problems = {}, []
    for key in FIELDS:
        value = (form.get(key) or "").strip().upper()
        if not value:
            value = defaults(provider)[key]
        pattern = _JOURNAL_RE if key == "journal_code" else _ACCOUNT_RE
        if not pattern.fullmatch(value):
            problems.append(
                _("The journal code has 1 to 8 letters or digits.") if key == "journal_code"
                else _("Account numbers have 3 to 20 digits or capital letters (%(value)s).", value=value)
            )
        values[key] = value
    if problems:
        return problems
    row = session.scalar(select(ProviderSettings).where(ProviderSettings.name == provider))
    if row is None:
        row = ProviderSettings(name=provider, accounting={})
        session.add(row)
    before = dict(row.accounting or {})
    row.accounting = values
    audit(session, actor, "accounting.update", provider,
          {k: [before.get(k), v] for k, v in values.items() if before.get(k) != v}, commit=False)
    session.commit()
    return []


#: the longest period one export covers: a fiscal year, up to 24 months for a company's first one
MAX_EXPORT_DAYS = 731


def export_period(start: str | None, end: str | None) -> tuple[date, date]:
    """The dates of an export as typed (``YYYY-MM-DD``): ``export_period("2026-01-01", "2026-12-31")``.
    Raises ValueError with a message for the merchant: unreadable dates, the end before the start, or
    more than :data:`MAX_EXPORT_DAYS` days (``0001-01-01`` to ``9999-12-31``)."""
    try:
        first, last = date.fromisoformat((start or "").strip()), date.fromisoformat((end or "").strip())
    except ValueError:
        raise ValueError(_("Dates are written YYYY-MM-DD.")) from None
    if last < first:
        raise ValueError(_("The end of the period is before its start."))
    if (last - first).days >= MAX_EXPORT_DAYS:
        raise ValueError(_("An export covers at most %(days)s days (two years): choose a shorter period.",
                           days=MAX_EXPORT_DAYS))
    return first, last


def _day_after(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time()) + timedelta(days=1) if day < date.max else datetime.max


def journal_lines(session: Session, providers: Iterable[str], start: date, end: date) -> list[dict[str, str]]:
    """Journal entries for money taken (debit clearing / credit customer, on the day it was paid)
    and refunded (the reverse, on the day of the payment's last change), between ``start`` and
    ``end`` inclusive. Amounts as decimal strings of the payment's currency."""
    lo = datetime.combine(start, datetime.min.time())
    hi = _day_after(end)
    accounts = {p: settings_for(session, p) for p in providers}
    query = select(Payment).where(
        or_(
            and_(Payment.captured_amount > 0, Payment.paid_at >= lo, Payment.paid_at < hi),
            and_(Payment.refunded_amount > 0, Payment.updated_at >= lo, Payment.updated_at < hi),
        )
    ).order_by(Payment.id)
    lines: list[dict[str, str]] = []
    for payment in session.scalars(query):
        acc = accounts.get(payment.provider) or settings_for(session, payment.provider)
        piece = payment.psp_reference or payment.token

        def entry(day: datetime, account: str, label: str, debit: int, credit: int) -> dict[str, str]:
            return {
                "JournalCode": acc["journal_code"],
                "EcritureDate": day.strftime("%Y%m%d"),
                "CompteNum": account,
                "PieceRef": piece,
                "EcritureLib": label,
                "Debit": to_decimal_string(debit, payment.currency) if debit else "",
                "Credit": to_decimal_string(credit, payment.currency) if credit else "",
                "Devise": payment.currency,
            }

        if payment.captured_amount and payment.paid_at and lo <= payment.paid_at < hi:
            label = f"Order {payment.order_ref} {payment.provider}"
            lines.append(entry(payment.paid_at, acc["clearing_account"], label, payment.captured_amount, 0))
            lines.append(entry(payment.paid_at, acc["customer_account"], label, 0, payment.captured_amount))
        if payment.refunded_amount and lo <= payment.updated_at < hi:
            label = f"Refund {payment.order_ref} {payment.provider}"
            lines.append(entry(payment.updated_at, acc["customer_account"], label, payment.refunded_amount, 0))
            lines.append(entry(payment.updated_at, acc["clearing_account"], label, 0, payment.refunded_amount))
    return lines


COLUMNS = ("JournalCode", "EcritureDate", "CompteNum", "PieceRef", "EcritureLib", "Debit", "Credit", "Devise")


def to_csv(lines: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    for line in lines:
        writer.writerow({k: _no_formula(v) for k, v in line.items()})
    return out.getvalue()


def _no_formula(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: defuse merchant-supplied text."""
    return "'" + value if value[:1] in ("=", "+", "@") or (value[:1] == "-" and not value[1:2].isdigit()) else value

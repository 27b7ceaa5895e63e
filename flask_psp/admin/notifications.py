"""Who receives notification e-mails (addresses, events, the buyer's receipt)."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from sqlalchemy.orm import Session

from ..i18n import gettext as _
from ..models import PageSettings
from .audit import audit
from .page import page_row


NOTIFY_EVENTS = ("paid", "failed", "refunded", "chargeback", "notification_problem", "amount_mismatch")
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")


def notification_settings(row: PageSettings | None) -> dict[str, Any]:
    data = dict((row.notifications if row is not None else None) or {})
    return {
        "addresses": list(data.get("addresses") or []),
        "events": [e for e in data.get("events", ["paid", "chargeback", "notification_problem", "amount_mismatch"])
                   if e in NOTIFY_EVENTS],
        "buyer_receipt": bool(data.get("buyer_receipt", False)),
    }


def save_notifications(session: Session, form: Mapping[str, str], events: Iterable[str], actor: str) -> list[str]:
    raw = (form.get("addresses") or "").replace(";", ",").replace("\n", ",")
    addresses = [a.strip() for a in raw.split(",") if a.strip()]
    problems = [_("%(address)s is not an email address.", address=a) for a in addresses if not _EMAIL.fullmatch(a)]
    chosen = [e for e in events if e in NOTIFY_EVENTS]
    if len(addresses) > 20:
        problems.append(_("At most 20 addresses."))
    if problems:
        return problems
    row = page_row(session)
    row.notifications = {"addresses": addresses, "events": chosen,
                         "buyer_receipt": form.get("buyer_receipt") in ("on", "1")}
    audit(session, actor, "notifications.update", "notifications",
          {"addresses": len(addresses), "events": chosen, "buyer_receipt": row.notifications["buyer_receipt"]},
          commit=False)
    session.commit()
    return []

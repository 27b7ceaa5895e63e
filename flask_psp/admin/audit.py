"""The audit log: who did what (never a secret: callers pass field names, not values)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditEntry


def audit(session: Session, actor: str, action: str, target: str | None = None, details: dict | None = None,
          *, commit: bool = True) -> AuditEntry:
    """Record who did what. ``details`` must never hold a secret: callers pass field names, not values."""
    entry = AuditEntry(actor=actor[:255], action=action[:64], target=(target or "")[:255] or None,
                       details=details or {})
    session.add(entry)
    if commit:
        session.commit()
    return entry


def audit_page(session: Session, before_id: int | None = None, limit: int = 50, actor: str | None = None,
               action: str | None = None) -> tuple[list[AuditEntry], int | None]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def order_refs(session: Session, entries: list[AuditEntry]) -> dict[str, tuple[int, str]]:
    """For entries about a payment (their target is its token): token → (payment id, order reference),
    in one query."""
    from ..models import Payment

    tokens = {e.target for e in entries if e.action.startswith("payment.") and e.target}
    if not tokens:
        return {}
    return {token: (pid, ref) for pid, token, ref in session.execute(
        select(Payment.id, Payment.token, Payment.order_ref).where(Payment.token.in_(tokens)))}


def describe(entry: AuditEntry, money=None) -> str:
    """The entry's details as a sentence in the merchant's language ("Refund of €5.00; status paid →
    partially refunded."); details of a shape it does not know are listed as they are."""
    from ..i18n import gettext as _
    from ..views.admin.labels import label

    d = entry.details if isinstance(entry.details, dict) else {}
    action = entry.action

    def amount_words() -> str:
        amount, currency = d.get("amount"), d.get("currency")
        if isinstance(amount, int) and isinstance(currency, str) and money is not None:
            try:
                return money(amount, currency)
            except ValueError:
                pass
        return _("the whole amount")

    if action.startswith("payment."):
        verb = action.split(".")[1]
        what = {"capture": _("Capture of %(amount)s", amount=amount_words()),
                "refund": _("Refund of %(amount)s", amount=amount_words()),
                "cancel": _("Cancellation")}.get(verb, verb)
        if action.endswith(".refused"):
            return _("%(what)s refused by the provider: %(error)s", what=what, error=d.get("error") or "?")
        sentence = what
        if d.get("status_before") and d.get("status_after"):
            sentence += "; " + _("status %(before)s → %(after)s", before=label("status", d["status_before"]),
                                 after=label("status", d["status_after"]))
        if d.get("awaiting_provider"):
            sentence += "; " + _("awaiting the provider's confirmation")
        return sentence + "."
    if action == "provider.update":
        parts = []
        for key, change in (d.get("settings") or {}).items():
            if isinstance(change, list) and len(change) == 2:
                parts.append(_("%(setting)s: %(old)s → %(new)s", setting=key, old=_shown(change[0]), new=_shown(change[1])))
        if d.get("credentials_changed"):
            parts.append(_("credentials changed: %(fields)s", fields=", ".join(d["credentials_changed"])))
        for mode, change in (d.get("endpoints") or {}).items():
            parts.append(_("%(mode)s endpoint: %(old)s → %(new)s", mode=label("mode", mode),
                           old=change.get("old") or "—", new=change.get("new") or "—"))
        if d.get("secrets_cleared"):
            parts.append(_("secrets forgotten with the old endpoint: %(fields)s", fields=", ".join(
                f"{m}.{f}" for m, fields in d["secrets_cleared"].items() for f in fields)))
        return "; ".join(parts) + "." if parts else _("No change.")
    if action == "provider.test_connection":
        return (_("Connection test in %(mode)s mode: succeeded.", mode=label("mode", d.get("mode")))
                if d.get("ok") else _("Connection test in %(mode)s mode: failed.", mode=label("mode", d.get("mode"))))
    if action == "provider.endpoint_refused":
        return _("Endpoint change refused (only the owner may change it): %(modes)s.",
                 modes=", ".join(label("mode", m) for m in d.get("endpoints") or {}))
    if action == "page.update":
        return _("Changed: %(fields)s.", fields=", ".join(d.get("changed") or [])) if d.get("changed") else _("No change.")
    if action == "login":
        return _("Signed in.")
    if action == "user.password":
        return _("Password changed.")
    if action == "user.create":
        return _("Account created with the role %(role)s.", role=label("role", d.get("role")))
    return "; ".join(f"{k}: {_shown(v)}" for k, v in d.items())


def _shown(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        from ..i18n import gettext as _

        return _("yes") if value else _("no")
    if isinstance(value, (list, tuple)):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return str(value)

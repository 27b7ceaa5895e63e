"""The notifications benchmark's floor: the least any code can do that keeps flask-psp's contract for a
notification, written by hand — the same proof as the baseline (:class:`bench.baseline_app.Verifier`),
then, in one transaction on the plugin's own tables (same rows, same indexes):

1. lock every payment of the order (``SELECT … FOR UPDATE``, found by token or PSP reference);
2. look the news up by its dedupe key (a duplicate is stored as one, and changes nothing);
3. move the payment to paid and mark the order handed over;
4. store the notification in the inbox, with its outcome;
5. write the capture's movement in the accounting journal (``psp_movements``, naming the inbox row);
6. mark the shop's order paid (the example shop's ``mark_paid``: one UPDATE) and the order's open
   payment links paid by the payment;
7. commit.

Steps 5 and 6's links are the contract's since the second wave (the journal an auditor reads is
written with the payment's move; a link paid another way must not ask for the money again).

No ORM, no state machine, no checks of amount or mode, a fixed answer: it measures what the storage
and locking the contract asks for cost on this machine, so that the plugin's figure can be read
against it as well as against the bare baseline.

The checkout floor, ``POST /psp/checkout/<order_ref>`` (form: ``provider``, ``csrf_token``), does the
least a checkout start can under the contract, by hand too: check the form's CSRF token (the same
Flask-WTF session cookie as the plugin's), read the order (an unknown one is a 404, a paid one a 409),
insert the payment, call the provider through its simulator (the same call as the plugin's, see
:func:`bench.provider_calls.provider_call`), keep its reference and page, commit, 303 to the page.
``POST /psp/checkout-committing-first/<order_ref>`` does the same but commits the new payment before
calling the provider, as the plugin does by design (its ``INSERT`` not waiting for the disk, as the
plugin's), then records the answer in a transaction of its own.

Served by gunicorn like the others: ``bench.floor_app:app``, configured by ``BENCH_FLOOR_CONFIG`` (the
baseline's JSON, plus ``secret_key``: the shop's, so the buyer's session cookie reads the same).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import datetime, timezone

from flask import Flask, abort, redirect, request
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import text
from wtforms.validators import ValidationError

from .baseline_app import TIMEOUT, db, notify_app
from .provider_calls import payment_page, provider_call

LOCK = text(
    "SELECT id, order_ref, order_marked_at, token, psp_reference, amount, currency FROM psp_payment WHERE order_ref = ("
    " SELECT order_ref FROM psp_payment WHERE provider = :provider AND (token = :ref OR psp_reference = :ref)"
    " ORDER BY id DESC LIMIT 1) ORDER BY id FOR UPDATE")
SAME_NEWS = text("SELECT id FROM psp_payment_event WHERE dedupe_key = :key")
MOVE = text(
    "UPDATE psp_payment SET status = 'paid', captured_amount = amount, authorized_amount = amount, "
    "paid_at = :now, order_marked_at = :now, updated_at = :now WHERE id = :id")
KEEP = text(
    "INSERT INTO psp_payment_event (provider, source, received_at, remote_addr, headers, body, content_type, "
    "verified, dedupe_key, outcome, outcome_detail, event_type, psp_reference, mode, payment_id, processed_at, "
    "attempts, verified_message) VALUES (:provider, 'floor', :now, :remote_addr, :headers, :body, :content_type, "
    "true, :key, :outcome, :detail, 'paid', :ref, 'test', :payment_id, :now, 1, :message) RETURNING id")
JOURNAL = text(
    "INSERT INTO psp_movements (kind, amount, currency, provider, mode, occurred_at, recorded_at, payment_id, "
    "psp_reference, event_id) VALUES ('capture', :amount, :currency, :provider, 'test', :now, :now, :payment_id, "
    ":ref, :event_id)")
MARK_PAID = text("UPDATE shop_order SET status = 'paid' WHERE reference = :order_ref")
PAY_LINKS = text(
    "UPDATE psp_payment_link SET paid_at = :now, payment_id = :payment_id "
    "WHERE order_ref = :order_ref AND cancelled_at IS NULL AND paid_at IS NULL")
ORDER = text("SELECT reference, amount, currency, email, locale, status FROM shop_order WHERE reference = :ref")
START = text(
    "INSERT INTO psp_payment (token, order_ref, provider, mode, capture, amount, currency, status, authorized_amount, "
    "captured_amount, refunded_amount, locale, email, extra, created_at, updated_at) VALUES (:token, :order_ref, "
    ":provider, 'test', 'auto', :amount, :currency, 'created', 0, 0, 0, :locale, :email, '{}', :now, :now) "
    "RETURNING id")
STARTED = text(
    "UPDATE psp_payment SET status = 'pending', psp_reference = :psp_reference, redirect_url = :url WHERE id = :id")
#: the same INSERT turning ``synchronous_commit`` off for its transaction, as the plugin's does
START_NOT_WAITING_FOR_DISK = text(START.text.replace(
    "RETURNING id", "RETURNING id, set_config('synchronous_commit', 'off', true)"))
#: inbox rows of the floor are told apart from the plugin's by their source and dedupe keys
SOURCE, KEY_PREFIX = "floor", "floor:"


def create_app(config: dict) -> Flask:
    def take(provider: str, reference: str | None, body: bytes) -> None:
        key = f"{KEY_PREFIX}{provider}:{hashlib.sha256(body).hexdigest()}"
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        session = db.session
        payments = session.execute(LOCK, {"provider": provider, "ref": reference}).all() if reference else []
        outcome, detail, payment_id, paid = "unmatched", "no payment has this reference", None, None
        if payments:
            paid = max((p for p in payments if reference in (p.token, p.psp_reference)), key=lambda p: p.id)
            payment_id = paid.id
            earlier = session.execute(SAME_NEWS, {"key": key}).scalar()
            if earlier is not None:
                outcome, detail, key = "duplicate", f"same as event #{earlier}", None
            else:
                outcome, detail = "applied", "status paid"
                session.execute(MOVE, {"now": now, "id": payment_id})
        event_id = session.execute(KEEP, {
            "provider": provider, "now": now, "remote_addr": request.remote_addr,
            "headers": json.dumps(dict(request.headers)), "body": body.decode("utf-8", "replace"),
            "content_type": request.content_type, "key": key, "outcome": outcome, "detail": detail,
            "ref": reference, "payment_id": payment_id,
            "message": json.dumps({"provider": provider, "dedupe_key": key, "events": [{"kind": "captured"}]}),
        }).scalar()
        if outcome == "applied":
            session.execute(JOURNAL, {"amount": paid.amount, "currency": paid.currency, "provider": provider,
                                      "now": now, "payment_id": payment_id, "ref": reference, "event_id": event_id})
            # the bench's orders were paid by the plugin's run already: marked again all the same, so
            # that the floor makes every statement a first delivery makes
            session.execute(MARK_PAID, {"order_ref": paid.order_ref})
            session.execute(PAY_LINKS, {"now": now, "payment_id": payment_id, "order_ref": paid.order_ref})
        session.commit()

    app = notify_app(config, take)
    app.config["SECRET_KEY"] = config.get("secret_key")
    verifier = app.extensions["bench_verifier"]

    @app.post("/psp/checkout/<order_ref>")
    def checkout(order_ref):
        return start(order_ref, commit_first=False)

    @app.post("/psp/checkout-committing-first/<order_ref>")
    def checkout_committing_first(order_ref):
        return start(order_ref, commit_first=True)

    def start(order_ref, commit_first):
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            abort(400)
        provider = request.form.get("provider", "")
        settings = verifier.providers.get(provider)
        if settings is None or provider == "sips":
            abort(400)
        session = db.session
        order = session.execute(ORDER, {"ref": order_ref}).one_or_none()
        if order is None:
            abort(404)
        if order.status == "paid":
            abort(409)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        token = secrets.token_urlsafe(24)
        payment_id = session.execute(START_NOT_WAITING_FOR_DISK if commit_first else START, {
            "token": token, "order_ref": order.reference, "provider": provider, "amount": order.amount,
            "currency": order.currency, "locale": order.locale, "email": order.email, "now": now}).scalar()
        if commit_first:
            # as the plugin does: the attempt recorded before the PSP is called, not waiting for the disk
            # (the commit of the PSP's answer does), then a transaction of its own for the answer
            session.commit()
        base = config["public_url"]
        host, port, method, path, body, headers = provider_call(
            settings, provider, token, base, verifier._paypal_bearer() if provider == "paypal" else None)
        answer = verifier.http.request(method, f"http://{host}:{port}{path}", data=body, headers=headers,
                                       timeout=TIMEOUT)
        if answer.status_code not in (200, 201):
            session.rollback()
            abort(502)
        psp_reference, url = payment_page(provider, answer.json())
        session.execute(STARTED, {"psp_reference": psp_reference, "url": url, "id": payment_id})
        session.commit()
        return redirect(url, code=303)

    return app


if "BENCH_FLOOR_CONFIG" in os.environ:
    app = create_app(json.loads(os.environ["BENCH_FLOOR_CONFIG"]))

"""The notifications benchmark's baseline: the least a Flask + SQLAlchemy shop has to do with a PSP
notification — check its proof exactly as flask-psp does (the same HMAC, seal or hash; the same
re-fetch from PayPlug, the same verify call to PayPal) and mark one row paid. No inbox, no state
machine, no locking beyond the UPDATE itself.

Served by gunicorn under the same settings as the shop: ``bench.baseline_app:app``, configured by
the ``BENCH_BASELINE_CONFIG`` environment variable (JSON: ``database_url`` and ``providers`` — the
credentials and simulator endpoints, shaped like ``PSP_PROVIDERS``'s ``test`` blocks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
from typing import Callable
from urllib.parse import parse_qsl

import requests
from flask import Flask, abort, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

db = SQLAlchemy()
TIMEOUT = 10


class BaselineOrder(db.Model):
    __tablename__ = "bench_baseline_order"
    reference = db.Column(db.String(64), primary_key=True)
    status = db.Column(db.String(16), nullable=False, default="pending")
    paid_at = db.Column(db.DateTime)


def reference_of(provider: str, body: bytes) -> str:
    """The reference the baseline keys its row by, read from a notification (the bench uses it to
    create the rows beforehand)."""
    if provider == "adyen":
        return json.loads(body)["notificationItems"][0]["NotificationRequestItem"]["merchantReference"]
    if provider == "paypal":
        return json.loads(body)["resource"]["custom_id"]
    if provider == "payplug":
        return json.loads(body)["id"]
    if provider == "sips":
        fields = dict(parse_qsl(body.decode()))
        return _sips_data(fields["Data"])["transactionReference"]
    if provider == "hipay":
        return dict(parse_qsl(body.decode()))["order[id]"]
    raise KeyError(provider)


def _sips_data(data: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in data.split("|") if "=" in pair)


class Verifier:
    """Checks a notification's proof; returns the reference to mark paid, or None (proven, not a payment)."""

    def __init__(self, providers: dict):
        self.providers = providers
        self.http = requests.Session()
        self.http.trust_env = False
        self._paypal_token: str | None = None
        self._lock = threading.Lock()

    def adyen(self, body: bytes, headers) -> str | None:
        key = bytes.fromhex(self.providers["adyen"]["hmac_key"])
        paid = None
        for wrapper in json.loads(body)["notificationItems"]:
            item = wrapper["NotificationRequestItem"]
            amount = item.get("amount") or {}
            signed = ":".join(str(v) for v in (
                item.get("pspReference", ""), item.get("originalReference", ""), item.get("merchantAccountCode", ""),
                item.get("merchantReference", ""), amount.get("value", ""), amount.get("currency", ""),
                item.get("eventCode", ""), item.get("success", ""),
            ))
            expected = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(expected, (item.get("additionalData") or {}).get("hmacSignature", "")):
                abort(401)
            if item["eventCode"] == "AUTHORISATION" and item["success"] == "true":
                paid = item["merchantReference"]
        return paid

    def _paypal_bearer(self) -> str:
        with self._lock:
            if self._paypal_token is None:
                settings = self.providers["paypal"]
                answer = self.http.post(settings["endpoint"] + "/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                        auth=(settings["client_id"], settings["client_secret"]), timeout=TIMEOUT)
                answer.raise_for_status()
                self._paypal_token = answer.json()["access_token"]
            return self._paypal_token

    def paypal(self, body: bytes, headers) -> str | None:
        settings = self.providers["paypal"]
        fields = {name: headers.get("PAYPAL-" + name.upper().replace("_", "-"), "")
                  for name in ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time")}
        fields["webhook_id"] = settings["webhook_id"]
        payload = json.dumps(fields)[:-1] + ', "webhook_event": ' + body.decode() + "}"
        answer = self.http.post(settings["endpoint"] + "/v1/notifications/verify-webhook-signature", data=payload,
                                headers={"Authorization": "Bearer " + self._paypal_bearer(),
                                         "Content-Type": "application/json"}, timeout=TIMEOUT)
        if answer.status_code >= 500:
            abort(503)
        if answer.json().get("verification_status") != "SUCCESS":
            abort(403)
        event = json.loads(body)
        if event["event_type"] == "PAYMENT.CAPTURE.COMPLETED":
            return event["resource"]["custom_id"]
        return None

    def payplug(self, body: bytes, headers) -> str | None:
        settings = self.providers["payplug"]
        payment_id = json.loads(body)["id"]
        answer = self.http.get(f"{settings['endpoint']}/v1/payments/{payment_id}", timeout=TIMEOUT,
                               headers={"Authorization": "Bearer " + settings["secret_key"],
                                        "PayPlug-Version": "2019-08-06"})
        if answer.status_code != 200:
            abort(403)
        return payment_id if answer.json().get("is_paid") else None

    def sips(self, body: bytes, headers) -> str | None:
        settings = self.providers["sips"]
        fields = dict(parse_qsl(body.decode()))
        expected = hmac.new(settings["secret_key"].encode(), fields.get("Data", "").encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("Seal", "")):
            abort(403)
        data = _sips_data(fields["Data"])
        return data["transactionReference"] if data.get("responseCode") == "00" else None

    def hipay(self, body: bytes, headers) -> str | None:
        settings = self.providers["hipay"]
        expected = hashlib.sha256(body + settings["secret_passphrase"].encode()).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Allopass-Signature", "")):
            abort(403)
        fields = dict(parse_qsl(body.decode()))
        return fields["order[id]"] if fields.get("status") == "118" else None


def notify_app(config: dict, take: Callable[[str, str | None, bytes], None]) -> Flask:
    """A Flask app on ``config["database_url"]`` whose ``POST /psp/notify/<provider>`` checks the
    notification's proof (:class:`Verifier`), then hands ``take(provider, reference, body)`` the
    rest (``reference``: the payment to mark paid, None when the news is not a payment)."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = config["database_url"]
    db.init_app(app)
    verifier = app.extensions["bench_verifier"] = Verifier(config["providers"])

    @app.post("/psp/notify/<provider>")
    def notify(provider):
        check = getattr(verifier, provider, None)
        if check is None or provider not in verifier.providers:
            abort(404)
        body = request.get_data()
        take(provider, check(body, request.headers), body)
        return ("[accepted]" if provider == "adyen" else "OK"), 200

    return app


def create_app(config: dict) -> Flask:
    def mark_paid(provider: str, reference: str | None, body: bytes) -> None:
        if reference is not None:
            db.session.execute(
                text("UPDATE bench_baseline_order SET status = 'paid', paid_at = now() "
                     "WHERE reference = :reference AND status <> 'paid'"),
                {"reference": reference},
            )
            db.session.commit()

    return notify_app(config, mark_paid)


if "BENCH_BASELINE_CONFIG" in os.environ:
    app = create_app(json.loads(os.environ["BENCH_BASELINE_CONFIG"]))

"""init_app refuses bad configuration with a message that says what to fix, and fits into the host
app whatever order its extensions are set up in."""

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from flask_psp import PSP, ConfigurationError, OrderInfo


class Orders:
    def get(self, ref):
        return OrderInfo(ref, 1000, "EUR")

    def mark_paid(self, ref, payment):
        pass


def make(config, testing=True):
    app = Flask(__name__)
    app.config.update(TESTING=testing, SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://", **config)
    db = SQLAlchemy(app)
    PSP(app, db=db, orders=Orders())
    return app


def payplug(**entry):
    return {"PSP_PROVIDERS": {"payplug": entry}}


@pytest.mark.parametrize(
    "config,message",
    [
        ({"PSP_PROVIDERS": {"stripe": {}}}, "unknown provider"),
        (payplug(mode="test", test={}), "secret_key"),
        (payplug(mode="test", test={"secret_key": "sk_live_abc"}), "must start with sk_test_"),
        (payplug(mode="live", live={"secret_key": "sk_test_abc"}, test={"secret_key": "sk_test_x"}), "PSP_ENCRYPTION_KEY"),
        (payplug(mode="sandbox", test={"secret_key": "sk_test_x"}), "'test' or 'live'"),
        (payplug(capture="later", test={"secret_key": "sk_test_x"}), "'auto' or 'manual'"),
        (payplug(mode="test"), "no 'test' credentials"),
        (payplug(test={"secret_key": "sk_test_x", "api_key": "y"}), "unknown field(s) api_key"),
    ],
)
def test_bad_provider_settings_are_refused_clearly(config, message):
    with pytest.raises(ConfigurationError) as caught:
        make(config)
    assert message in str(caught.value)


def test_live_key_in_live_mode_with_an_encryption_key_is_accepted():
    from cryptography.fernet import Fernet

    app = make({"PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(), **payplug(mode="live", live={"secret_key": "sk_live_abc"})})
    assert app.extensions["psp"].settings.configured["payplug"]["mode"] == "live"


def test_encryption_key_is_required_outside_debug_and_testing():
    with pytest.raises(ConfigurationError, match="PSP_ENCRYPTION_KEY is required"):
        make({}, testing=False)


def test_defaults_are_documented_values():
    app = make({})
    assert app.config["PSP_URL_PREFIX"] == "/psp"
    assert app.config["PSP_PROVIDERS"] == {}
    assert app.config["PSP_PUBLIC_URL"] is None
    assert "psp" in app.extensions
    assert app.url_map.bind("x").match("/psp/payments/abcdefghijklmnopqrstu/status.json")[0] == "psp.status"


def test_url_prefix_is_honoured():
    app = make({"PSP_URL_PREFIX": "/pay"})
    assert app.url_map.bind("x").match("/pay/checkout/A1")[0] == "psp.checkout"


def host_with_csrf(database_url, csrf_first):
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="x", SQLALCHEMY_DATABASE_URI=database_url)
    db = SQLAlchemy(app)
    if csrf_first:
        CSRFProtect(app)
    PSP(app, db=db, orders=Orders())
    if not csrf_first:
        CSRFProtect(app)
    with app.app_context():
        db.create_all()
    return app


@pytest.mark.parametrize("csrf_first", [True, False], ids=["csrf-first", "psp-first"])
def test_notifications_and_returns_pass_a_host_csrf_protect_set_up_in_either_order(database_url, csrf_first):
    """The host's CSRFProtect guards the shop's forms and the checkout's, never the PSPs'
    notifications nor the buyer's cross-site way back."""
    client = host_with_csrf(database_url, csrf_first).test_client()
    for _ in range(2):  # and again, once the exemption is made
        notified = client.post("/psp/notify/payplug", data=b"not json", content_type="application/json")
        assert notified.status_code == 400 and b"malformed notification" in notified.data
        back = client.post("/psp/return/no-such-payment-token", data={"PayerID": "X"})
        assert back.status_code == 404
        chosen = client.post("/psp/checkout/ORD-1", data={"provider": "payplug"})
        assert chosen.status_code == 400 and b"CSRF token is missing" in chosen.data

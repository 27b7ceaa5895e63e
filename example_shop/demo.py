"""``make demo``: the example shop and the five PSP simulators in one process.

The providers are set up in the admin panel's own tables on first start (not in ``PSP_PROVIDERS``),
so the demo merchant can change them there. Prints the URLs, the login and the test cards;
Ctrl-C stops everything.
"""

from __future__ import annotations

import os

from werkzeug.serving import run_simple

HOST = os.environ.get("DEMO_HOST", "127.0.0.1")
SHOP_PORT = int(os.environ.get("DEMO_PORT", "5000"))
#: the simulators listen on this port and the next four (PayPlug first, as the README says)
SIMULATOR_PORT = int(os.environ.get("DEMO_SIMULATOR_PORT", "8101"))
# DEMO_DATABASE_URL: another database than instance/example_shop.db (Flask's instance folder of the shop)
DEMO_EMAIL = "merchant@example.com"
DEMO_PASSWORD = "demo-merchant-2026"
PROVIDERS = ("payplug", "adyen", "paypal", "sips", "hipay")


def simulator_credentials(name: str, simulator) -> dict[str, str]:
    """The test credentials each simulator knows, as the admin panel's form fields."""
    if name == "payplug":
        creds = {"secret_key": next(k for k in simulator.accounts if k.startswith("sk_test_"))}
    elif name == "adyen":
        api_key = next(k for k, live in simulator.accounts.items() if not live)
        creds = {"api_key": api_key, "merchant_account": simulator.merchant_account, "hmac_key": simulator.hmac_key}
    elif name == "paypal":
        creds = {"client_id": simulator.client_id, "client_secret": simulator.accounts[simulator.client_id],
                 "webhook_id": simulator.webhook_id}
    elif name == "sips":
        merchant_id, account = next(iter(simulator.accounts.items()))
        creds = {"merchant_id": merchant_id, "secret_key": account["secret_key"],
                 "key_version": account["key_version"], "seal_algorithm": "HMAC-SHA-256"}
    else:  # hipay
        user, account = next(iter(simulator.accounts.items()))
        creds = {"api_username": user, "api_password": account["password"],
                 "secret_passphrase": account["passphrase"], "hash_algorithm": account.get("hash_algorithm", "sha256")}
    form = {f"cred-test-{field}": value for field, value in creds.items()}
    form["cred-test-endpoint"] = simulator.url
    return form


def seed_providers(app, simulators: dict) -> None:
    """Enable every simulated provider in test mode, once: later starts keep the merchant's changes."""
    from flask_psp.admin.providers import provider_form, save_provider
    from flask_psp.models import ProviderSettings

    state = app.extensions["psp"]
    session = state.db.session
    if session.query(ProviderSettings).count():
        follow_the_simulators(app, simulators)
        return
    for position, name in enumerate(PROVIDERS):
        form = {"enabled": "on", "mode": "test", "capture": "auto", "three_ds": "when_required",
                "position": str(position), **simulator_credentials(name, simulators[name])}
        problems = save_provider(session, state.settings, state.box, provider_form(name, form), actor="make demo",
                                 may_change_endpoints=True)  # the demo sets itself up, as its owner
        if problems:
            raise SystemExit(f"demo: could not set up {name}: {'; '.join(map(str, problems))}")


def follow_the_simulators(app, simulators: dict) -> list[str]:
    """A start on other ports: each provider whose saved test endpoint is a simulator of an earlier
    start (an http address on this machine) is pointed at this start's simulator, its credentials
    and the merchant's other settings kept. Returns the names of the providers moved."""
    from urllib.parse import urlsplit

    from flask_psp.admin.audit import audit
    from flask_psp.models import ProviderSettings

    state = app.extensions["psp"]
    session = state.db.session
    moved = []
    for row in session.query(ProviderSettings).order_by(ProviderSettings.name):
        simulator = simulators.get(row.name)
        stored = state.settings.stored_credentials(row)
        test = dict(stored.get("test") or {})
        old = test.get("endpoint") or ""
        parts = urlsplit(old)
        if simulator is None or not old or old == simulator.url or parts.scheme != "http" \
                or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            continue
        test["endpoint"] = simulator.url
        row.credentials = state.box.encrypt({**stored, "test": test})
        audit(session, "make demo", "provider.update", row.name,
              {"settings": {}, "credentials_changed": ["test.endpoint"],
               "endpoints": {"test": {"old": old, "new": simulator.url}}}, commit=False)
        moved.append(row.name)
    session.commit()
    return moved


def main() -> None:
    from flask_psp.simulator import create_simulator

    shop_url = f"http://{HOST}:{SHOP_PORT}"
    simulators = {}
    for index, name in enumerate(PROVIDERS):
        simulator = create_simulator(name, retry_delays=(2, 10, 30, 60))
        simulator.serve(HOST, SIMULATOR_PORT + index)
        simulators[name] = simulator

    from example_shop import create_app, psp
    from flask_psp.models import AdminUser

    # the session cookie (the cart, the admin's sign-in) is not sent with other sites' POSTs, and only
    # over https when the shop is served that way; the SECRET_KEY is the one kept in the instance folder
    config = {"PSP_PUBLIC_URL": shop_url, "PSP_PROVIDERS": {},
              "SESSION_COOKIE_SAMESITE": "Lax", "SESSION_COOKIE_SECURE": shop_url.startswith("https://")}
    if os.environ.get("DEMO_DATABASE_URL"):  # default: the SQLite file in instance/
        config["SQLALCHEMY_DATABASE_URI"] = os.environ["DEMO_DATABASE_URL"]
    app = create_app(config)
    prefix = app.config["PSP_URL_PREFIX"]
    for name in ("adyen", "paypal"):  # the URL a merchant pastes in these PSPs' back offices
        simulators[name].webhook_url = f"{shop_url}{prefix}/notify/{name}"
    with app.app_context():
        seed_providers(app, simulators)
        if app.extensions["psp"].db.session.query(AdminUser).filter_by(email=DEMO_EMAIL).first() is None:
            psp.create_user(DEMO_EMAIL, DEMO_PASSWORD, role="owner")

    lines = [
        "",
        "  flask-psp demo",
        f"  shop:         {shop_url}/",
        f"  admin panel:  {shop_url}{prefix}/admin/   login {DEMO_EMAIL} / {DEMO_PASSWORD}",
        "  simulators (test cards: any expiry and CVC):",
    ]
    for name, simulator in simulators.items():
        lines.append(f"    {name:8} {simulator.url}")
        lines += [f"             {line}" for line in simulator.describe() if line.startswith(("card", "3-D Secure"))]
    lines += ["  Ctrl-C stops the shop and the simulators.", ""]
    print("\n".join(lines), flush=True)
    try:
        run_simple(HOST, SHOP_PORT, app, threaded=True, use_reloader=False)
    finally:
        for simulator in simulators.values():
            simulator.close()


if __name__ == "__main__":
    main()

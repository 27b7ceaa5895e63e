"""Who gets in, and every admin route checked with every role on the server."""

from __future__ import annotations

import requests
from sqlalchemy import select

from .conftest import PASSWORD, ROLES, Admin, configure_payplug

ALL = set(ROLES)
READERS = {"owner", "manager", "accountant"}
MANAGERS = {"owner", "manager"}
ACCOUNTANTS = {"owner", "accountant"}
PUBLIC = None

#: what the issue asks, written independently of the code's own table
EXPECTED = {
    "psp.admin_login": PUBLIC,
    "psp.admin_asset": PUBLIC,
    "psp.admin_logout": ALL,
    "psp.admin_home": ALL,
    "psp.admin_payments": ALL,
    "psp.admin_payment": ALL,
    "psp.admin_inbox": ALL,
    "psp.admin_event": ALL,
    "psp.admin_providers": READERS,
    "psp.admin_provider": READERS,
    "psp.admin_page": READERS,
    "psp.admin_notifications": READERS,
    "psp.admin_accounting": READERS,
    "psp.admin_audit": READERS,
    "psp.admin_provider_save": MANAGERS,
    "psp.admin_provider_test": MANAGERS,
    "psp.admin_page_save": MANAGERS,
    "psp.admin_notifications_save": MANAGERS,
    "psp.admin_payment_action": MANAGERS,
    "psp.admin_event_process": MANAGERS,
    "psp.admin_accounting_save": ACCOUNTANTS,
    "psp.admin_accounting_export": ACCOUNTANTS,
    "psp.admin_users": {"owner"},
    "psp.admin_user_create": {"owner"},
    "psp.admin_user_update": {"owner"},
}


def paid_order(panel):
    buyer = panel.shop.buyer()
    ref = buyer.place_order()
    answer = buyer.choose(ref)
    assert answer.status_code == 303, answer.text
    buyer.pay_on_payplug(answer.headers["Location"])
    panel.sim.notifier.wait_idle(timeout=10)
    return ref


def test_every_admin_route_checks_the_role_on_the_server(panel):
    configure_payplug(panel, panel.sim.url)
    ref = paid_order(panel)
    from flask_psp.models import AdminUser, PaymentEvent

    payment_id = panel.shop.payments(ref)[0]["id"]
    event_id = panel.query(lambda s: s.scalar(select(PaymentEvent.id).where(PaymentEvent.source == "notify")))
    viewer_id = panel.query(lambda s: s.scalar(select(AdminUser.id).where(AdminUser.email == "viewer@example.com")))
    params = {"payment_id": payment_id, "event_id": event_id, "name": "payplug", "user_id": viewer_id,
              "key": "0" * 64, "action": "cancel"}
    harmless = {  # allowed POSTs must change nothing important
        "psp.admin_user_update": {"role": "viewer", "active": "on"},
        "psp.admin_user_create": {"email": "x", "password": "short", "role": "viewer"},
        "psp.admin_provider_save": {"mode": "test", "capture": "auto", "three_ds": "when_required", "enabled": "on"},
        "psp.admin_page_save": {"primary_color": "not a colour"},
        "psp.admin_notifications_save": {"addresses": "not an address"},
        "psp.admin_accounting_save": {"journal_code": "!!"},
    }

    routes = []
    for rule in panel.app.url_map.iter_rules():
        if rule.endpoint.startswith("psp.admin_"):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                path = rule.rule.removeprefix("/psp/admin")
                for arg in rule.arguments:
                    path = path.replace(f"<int:{arg}>", str(params[arg])).replace(f"<{arg}>", str(params[arg]))
                routes.append((rule.endpoint, method, path))
    assert {endpoint for endpoint, _m, _p in routes} == set(EXPECTED), "a route without an expectation"
    routes.sort(key=lambda r: r[0] == "psp.admin_logout")  # signing out last

    anonymous = Admin(panel.shop)
    for endpoint, method, path in routes:
        answer = anonymous.get(path) if method == "GET" else anonymous.post(path, harmless.get(endpoint, {}))
        if EXPECTED[endpoint] is PUBLIC:
            assert answer.status_code in (200, 401, 404), (endpoint, answer.status_code)
        else:
            assert answer.status_code in (302, 303), (endpoint, method, answer.status_code)
            assert "/psp/admin/login" in answer.headers["Location"]

    for role in ROLES:
        admin = panel.admin(role)
        for endpoint, method, path in routes:
            if EXPECTED[endpoint] is PUBLIC:
                continue
            answer = admin.get(path) if method == "GET" else admin.post(path, harmless.get(endpoint, {}))
            where = (role, endpoint, method, answer.status_code)
            if role in EXPECTED[endpoint]:
                assert answer.status_code != 403, where
                if endpoint != "psp.admin_logout":
                    assert "/admin/login" not in answer.headers.get("Location", ""), where
                assert answer.status_code < 500 or endpoint == "psp.admin_provider_test", where
            else:
                assert answer.status_code == 403, where
                assert 'data-forbidden="1"' in answer.text
    # the harmless posts changed nothing that matters
    assert panel.shop.payments(ref)[0]["status"] == "paid"
    assert panel.query(lambda s: s.get(AdminUser, viewer_id).role) == "viewer"


def test_login_logout_and_wrong_password(panel):
    admin = Admin(panel.shop, "manager@example.com")
    assert admin.login(password="wrong-password").status_code == 401
    assert admin.get("/").status_code == 302
    answer = admin.login()
    assert answer.status_code == 303
    home = admin.get("/")
    assert home.status_code == 200 and "manager@example.com" in home.text
    assert admin.post("/logout").status_code == 303
    assert admin.get("/").status_code == 302


def test_five_failures_lock_the_account_for_fifteen_minutes(panel):
    from flask_psp.models import AdminUser, utcnow

    admin = Admin(panel.shop, "viewer@example.com")
    for _ in range(4):
        assert admin.login(password="guess-guess-guess").status_code == 401
    fifth = admin.login(password="guess-guess-guess")
    assert fifth.status_code == 401 and "locked" in fifth.text
    right = admin.login()  # even the right password is refused while locked
    assert right.status_code == 401 and "locked" in right.text
    locked_until = panel.query(lambda s: s.scalar(select(AdminUser.locked_until).where(AdminUser.email == "viewer@example.com")))
    minutes = (locked_until - utcnow()).total_seconds() / 60
    assert 14 < minutes <= 15

    # the lock expires by itself
    def expire(session):
        user = session.scalar(select(AdminUser).where(AdminUser.email == "viewer@example.com"))
        user.locked_until = utcnow().replace(year=2000)
        session.commit()

    panel.query(expire)
    assert admin.login().status_code == 303


def test_an_owner_unlocks_an_account(panel):
    from flask_psp.models import AdminUser

    for _ in range(5):
        Admin(panel.shop, "accountant@example.com").login(password="nope-nope-nope")
    owner = panel.admin("owner")
    user_id = panel.query(lambda s: s.scalar(select(AdminUser.id).where(AdminUser.email == "accountant@example.com")))
    owner.get("/users")
    assert owner.post(f"/users/{user_id}", {"role": "accountant", "active": "on", "unlock": "on"}).status_code == 303
    assert Admin(panel.shop, "accountant@example.com").login().status_code == 303


def test_forms_without_a_csrf_token_are_refused(panel):
    owner = panel.admin("owner")
    answer = owner.http.post(owner.url("/notifications"), data={"addresses": "a@example.com"}, timeout=10)
    assert answer.status_code == 400
    login = requests.post(owner.url("/login"), data={"email": "owner@example.com", "password": PASSWORD}, timeout=10)
    assert login.status_code == 400


def test_login_never_redirects_off_site(panel):
    admin = Admin(panel.shop, "owner@example.com")
    admin.get("/login?next=https://evil.example/")
    answer = admin.http.post(admin.url("/login?next=//evil.example/x"),
                             data={"email": admin.email, "password": PASSWORD, "csrf_token": admin.csrf()},
                             allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/psp/admin/")


def test_deactivated_user_is_signed_out(panel):
    from flask_psp.models import AdminUser

    viewer = panel.admin("viewer")
    owner = panel.admin("owner")
    user_id = panel.query(lambda s: s.scalar(select(AdminUser.id).where(AdminUser.email == "viewer@example.com")))
    owner.get("/users")
    assert owner.post(f"/users/{user_id}", {"role": "viewer"}).status_code == 303  # "active" unticked
    assert viewer.get("/payments").status_code == 302


def test_the_last_owner_cannot_demote_themselves(panel):
    from flask_psp.models import AdminUser

    owner = panel.admin("owner")
    user_id = panel.query(lambda s: s.scalar(select(AdminUser.id).where(AdminUser.email == "owner@example.com")))
    owner.get("/users")
    answer = owner.post(f"/users/{user_id}", {"role": "viewer", "active": "on"})
    assert answer.status_code == 400 and "at least one active owner" in answer.text
    assert owner.get("/users").status_code == 200


def test_host_login_through_the_user_loader(make_panel):
    """A shop with its own login (here a header its auth proxy sets) hands the panel its user."""
    from flask import request

    class ShopUser:
        def __init__(self, email, role):
            self.email, self.role, self.is_authenticated = email, role, True

    def loader():
        who = request.headers.get("X-Shop-User")
        if who == "boss":
            return ShopUser("boss@shop.example", "owner")
        if who == "clerk":
            return ("clerk", "viewer")
        return None

    panel = make_panel(PSP_ADMIN_USER_LOADER=loader, PSP_ADMIN_LOGIN_URL="/account/login")
    boss = requests.get(f"{panel.url}/psp/admin/users", headers={"X-Shop-User": "boss"}, timeout=10)
    assert boss.status_code == 200 and "boss@shop.example" in boss.text
    clerk = requests.get(f"{panel.url}/psp/admin/providers", headers={"X-Shop-User": "clerk"}, allow_redirects=False, timeout=10)
    assert clerk.status_code == 403
    assert requests.get(f"{panel.url}/psp/admin/payments", headers={"X-Shop-User": "clerk"}, timeout=10).status_code == 200
    nobody = requests.get(f"{panel.url}/psp/admin/payments", allow_redirects=False, timeout=10)
    assert nobody.status_code == 302 and nobody.headers["Location"].startswith("/account/login?next=")
    # built-in accounts still work next to the host's login
    assert panel.admin("viewer").get("/payments").status_code == 200


def test_admin_pages_speak_french(panel):
    owner = panel.admin("owner")
    owner.http.headers["Accept-Language"] = "fr-FR,fr;q=0.9"
    page = owner.get("/payments")
    assert page.status_code == 200 and 'lang="fr"' in page.text

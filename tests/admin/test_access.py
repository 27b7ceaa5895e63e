"""Who gets in, and every admin route checked with every role on the server."""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from .conftest import CSRF, PASSWORD, ROLES, Admin, configure_payplug

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
    "psp.admin_account": ALL,
    "psp.admin_password": ALL,
    "psp.admin_payments": ALL,
    "psp.admin_payments_csv": ALL,
    "psp.admin_payment": ALL,
    "psp.admin_inbox": ALL,
    "psp.admin_event": ALL,
    "psp.admin_providers": READERS,
    "psp.admin_provider": READERS,
    "psp.admin_page": READERS,
    "psp.admin_notifications": READERS,
    "psp.admin_mail": READERS,
    "psp.admin_accounting": READERS,
    "psp.admin_audit": READERS,
    "psp.admin_provider_save": MANAGERS,
    "psp.admin_provider_test": MANAGERS,
    "psp.admin_page_save": MANAGERS,
    "psp.admin_notifications_save": MANAGERS,
    "psp.admin_mail_retry": MANAGERS,
    "psp.admin_payment_action": MANAGERS,
    "psp.admin_payment_confirm": MANAGERS,
    "psp.admin_event_process": MANAGERS,
    "psp.admin_accounting_save": ACCOUNTANTS,
    "psp.admin_accounting_export": ACCOUNTANTS,
    "psp.admin_accounting_export_fec": ACCOUNTANTS,
    "psp.admin_settlements": ACCOUNTANTS,
    "psp.admin_settlements_export": ACCOUNTANTS,
    "psp.admin_users": {"owner"},
    "psp.admin_user_create": {"owner"},
    "psp.admin_user_update": {"owner"},
    # payment links: everyone reads, managers and owners create, send and cancel
    "psp.admin_links": ALL,
    "psp.admin_link": ALL,
    "psp.admin_link_qr": ALL,
    "psp.admin_link_create": MANAGERS,
    "psp.admin_link_action": MANAGERS,
}


def admin_routes(panel, params):
    """Every (endpoint, method, path) the app serves under the panel's prefix, whatever its endpoint
    name, each checked to be registered through ``admin_route`` (sign-in, role and CSRF checks)."""
    from flask_psp.views.admin.base import ROUTE_PERMISSIONS

    routes = []
    for rule in panel.app.url_map.iter_rules():
        if rule.rule == "/psp/admin" or rule.rule.startswith("/psp/admin/"):
            assert rule.endpoint in ROUTE_PERMISSIONS, f"{rule.rule} is not registered through admin_route"
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                path = rule.rule.removeprefix("/psp/admin")
                for arg in rule.arguments:
                    path = path.replace(f"<int:{arg}>", str(params[arg])).replace(f"<{arg}>", str(params[arg]))
                routes.append((rule.endpoint, method, path))
    assert routes
    return routes


def route_params(panel, ref):
    from flask_psp.models import AdminUser, PaymentEvent

    return {"payment_id": panel.shop.payments(ref)[0]["id"],
            "event_id": panel.query(lambda s: s.scalar(select(PaymentEvent.id).where(PaymentEvent.source == "notify"))),
            "name": "payplug",
            "user_id": panel.query(lambda s: s.scalar(select(AdminUser.id).where(AdminUser.email == "viewer@example.com"))),
            "key": "0" * 64, "action": "cancel", "mail_id": 999999, "link_id": unpaid_link(panel)}


def unpaid_link(panel):
    from example_shop import psp

    ref = panel.shop.buyer().place_order()
    with panel.app.app_context():
        return psp.create_payment_link(ref).id


def paid_order(panel):
    buyer = panel.shop.buyer()
    ref = buyer.place_order()
    answer = buyer.choose(ref)
    assert answer.status_code == 303, answer.text
    buyer.pay_on_payplug(answer.headers["Location"])
    assert panel.sim.notifier.wait_idle(timeout=10)
    return ref


def test_every_admin_route_checks_the_role_on_the_server(panel):
    configure_payplug(panel, panel.sim.url)
    ref = paid_order(panel)
    from flask_psp.models import AdminUser

    params = route_params(panel, ref)
    viewer_id = params["user_id"]
    harmless = {  # allowed POSTs must change nothing important
        "psp.admin_user_update": {"role": "viewer", "active": "on"},
        "psp.admin_user_create": {"email": "x", "password": "short", "role": "viewer"},
        "psp.admin_provider_save": {"mode": "test", "capture": "auto", "three_ds": "when_required", "enabled": "on"},
        "psp.admin_page_save": {"primary_color": "not a colour"},
        "psp.admin_notifications_save": {"addresses": "not an address"},
        "psp.admin_accounting_save": {"journal_code": "!!"},
    }

    routes = admin_routes(panel, params)
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

    from .test_sessions import client

    # failures from two addresses (neither reaches five on its own): the account locks
    for address in ("127.0.0.31", "127.0.0.31", "127.0.0.31", "127.0.0.32", "127.0.0.32"):
        answer = client(panel, "viewer@example.com", address).login(password="guess-guess-guess")
        assert answer.status_code == 401
    right = client(panel, "viewer@example.com", "127.0.0.31").login()  # even the right password, while locked
    assert right.status_code == 401 and "too many failed attempts" in right.text
    locked_until = panel.query(lambda s: s.scalar(select(AdminUser.locked_until).where(AdminUser.email == "viewer@example.com")))
    minutes = (locked_until - utcnow()).total_seconds() / 60
    assert 14 < minutes <= 15

    # the lock expires by itself
    def expire(session):
        user = session.scalar(select(AdminUser).where(AdminUser.email == "viewer@example.com"))
        user.locked_until = utcnow().replace(year=2000)
        session.commit()

    panel.query(expire)
    assert client(panel, "viewer@example.com", "127.0.0.31").login().status_code == 303


def test_an_owner_unlocks_an_account(panel):
    from flask_psp.models import AdminUser

    from .test_sessions import client

    for address in ("127.0.0.41", "127.0.0.41", "127.0.0.42", "127.0.0.42", "127.0.0.42"):
        client(panel, "accountant@example.com", address).login(password="nope-nope-nope")
    assert client(panel, "accountant@example.com", "127.0.0.41").login().status_code == 401
    owner = panel.admin("owner")
    user_id = panel.query(lambda s: s.scalar(select(AdminUser.id).where(AdminUser.email == "accountant@example.com")))
    owner.get("/users")
    assert owner.post(f"/users/{user_id}", {"role": "accountant", "active": "on", "unlock": "on"}).status_code == 303
    assert client(panel, "accountant@example.com", "127.0.0.41").login().status_code == 303


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


def test_every_post_route_refuses_a_missing_or_foreign_csrf_token(panel):
    configure_payplug(panel, panel.sim.url)
    ref = paid_order(panel)
    params = route_params(panel, ref)
    owner = panel.admin("owner")
    other = panel.admin("manager")  # a token valid in someone else's session
    foreign = other.csrf()
    posts = [(e, p) for e, m, p in admin_routes(panel, params) if m == "POST"]
    assert len(posts) >= 10
    for endpoint, path in posts:
        bare = owner.http.post(owner.url(path), data={"amount": "1.00", "confirmed": "1"}, allow_redirects=False,
                               timeout=10)
        assert bare.status_code == 400, (endpoint, bare.status_code)
        stolen = owner.http.post(owner.url(path), data={"csrf_token": foreign, "amount": "1.00", "confirmed": "1"},
                                 allow_redirects=False, timeout=10)
        assert stolen.status_code == 400, (endpoint, stolen.status_code)
    assert panel.shop.payments(ref)[0]["status"] == "paid"
    assert owner.get("/").status_code == 200  # still signed in: the refused logout did nothing


def test_every_page_carries_csrf_tokens_in_its_forms_and_speaks_french(panel):
    configure_payplug(panel, panel.sim.url)
    ref = paid_order(panel)
    params = route_params(panel, ref)
    english, french = panel.admin("owner"), panel.admin("owner")
    french.http.headers["Accept-Language"] = "fr-FR,fr;q=0.9"
    pages = [(e, p) for e, m, p in admin_routes(panel, params)
             if m == "GET" and e not in ("psp.admin_asset", "psp.admin_accounting_export", "psp.admin_link_qr",
                                         "psp.admin_payments_csv", "psp.admin_accounting_export_fec",
                                         "psp.admin_settlements_export")]
    anonymous_en, anonymous_fr = Admin(panel.shop), Admin(panel.shop)
    anonymous_fr.http.headers["Accept-Language"] = "fr"
    for endpoint, path in pages:
        if endpoint == "psp.admin_login":  # a signed-in visitor is sent on to the panel
            en, fr = anonymous_en.get(path), anonymous_fr.get(path)
        else:
            en, fr = english.get(path), french.get(path)
        assert en.status_code == fr.status_code == 200, (endpoint, en.status_code, fr.status_code)
        assert '<html lang="en">' in en.text and '<html lang="fr">' in fr.text, endpoint
        title_en = re.search(r"<title>(.*?)</title>", en.text, re.S).group(1)
        title_fr = re.search(r"<title>(.*?)</title>", fr.text, re.S).group(1)
        assert title_en != title_fr, (endpoint, title_en)  # the page's own title is translated
        for page in (en.text, fr.text):
            for form in re.findall(r'<form[^>]*method="post"[^>]*>.*?</form>', page, re.S | re.I):
                assert 'name="csrf_token"' in form, (endpoint, form[:200])


def test_host_login_the_flask_login_way(make_panel):
    """The README's recipe: the shop signs its staff in with its own login (here a stand-in for
    Flask-Login's ``current_user`` and anonymous user) and the loader maps its roles onto the panel's.
    Nobody has a built-in account; the panel's checks, CSRF and audit log work the same."""
    from flask import redirect, request, session
    from flask_wtf.csrf import generate_csrf
    from werkzeug.local import LocalProxy

    staff = {"ada@shop.example": "admin", "bob@shop.example": "accounts", "cy@shop.example": None}  # cy: a customer
    panel_roles = {"admin": "owner", "ops": "manager", "accounts": "accountant", "support": "viewer"}

    class ShopUser:  # what a Flask-Login user model offers
        is_authenticated = True

        def __init__(self, email):
            self.email, self.staff_role = email, staff[email]

    class Anonymous:  # flask_login.AnonymousUserMixin
        is_authenticated = False

    current_user = LocalProxy(lambda: ShopUser(session["shop_user"]) if session.get("shop_user") in staff else Anonymous())

    def psp_admin_user():
        if current_user.is_authenticated and current_user.staff_role in panel_roles:
            return current_user.email, panel_roles[current_user.staff_role]
        return None

    panel = make_panel(PSP_ADMIN_USER_LOADER=psp_admin_user, PSP_ADMIN_LOGIN_URL="/account/login")

    def shop_login():
        if request.method == "POST":
            session["shop_user"] = request.form["email"]
            return redirect(request.args.get("next") or "/", code=303)
        return f'<form method="post"><input type="hidden" name="csrf_token" value="{generate_csrf()}"></form>'

    def sign_in(http, email, next_path=""):
        form = http.get(f"{panel.url}/account/login", timeout=10)
        return http.post(f"{panel.url}/account/login{next_path}",
                         data={"email": email, "csrf_token": CSRF.search(form.text).group(1)}, timeout=10)

    def shop_logout():
        session.pop("shop_user", None)
        return redirect("/", code=303)

    panel.app.add_url_rule("/account/login", "shop_login", shop_login, methods=["GET", "POST"])
    panel.app.add_url_rule("/account/logout", "shop_logout", shop_logout, methods=["POST"])

    ada = requests.Session()
    first = ada.get(f"{panel.url}/psp/admin/providers/payplug", allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert first.headers["Location"] == "/account/login?next=%2Fpsp%2Fadmin%2Fproviders%2Fpayplug"
    back = sign_in(ada, "ada@shop.example", "?next=/psp/admin/providers/payplug")
    assert back.status_code == 200 and back.url.endswith("/psp/admin/providers/payplug")
    assert "ada@shop.example" in back.text and 'data-role="owner"' in back.text
    assert "Sign out" not in back.text  # signing out is the shop's business
    token = CSRF.search(back.text).group(1)
    saved = ada.post(f"{panel.url}/psp/admin/providers/payplug",
                     data={"csrf_token": token, "mode": "test", "capture": "auto", "three_ds": "always"},
                     allow_redirects=False, timeout=10)
    assert saved.status_code == 303
    assert ada.get(f"{panel.url}/psp/admin/users", timeout=10).status_code == 200  # owner: users included
    audit = ada.get(f"{panel.url}/psp/admin/audit", timeout=10).text
    assert "ada@shop.example" in audit and "provider.update" in audit

    bob = requests.Session()
    sign_in(bob, "bob@shop.example")
    assert bob.get(f"{panel.url}/psp/admin/accounting", timeout=10).status_code == 200
    page = bob.get(f"{panel.url}/psp/admin/providers/payplug", timeout=10)
    refused = bob.post(f"{panel.url}/psp/admin/providers/payplug",
                       data={"csrf_token": CSRF.search(page.text).group(1), "mode": "test", "capture": "manual"},
                       allow_redirects=False, timeout=10)
    assert refused.status_code == 403  # an accountant reads providers, never changes them

    customer = requests.Session()
    sign_in(customer, "cy@shop.example")
    assert customer.get(f"{panel.url}/psp/admin/payments", allow_redirects=False, timeout=10).status_code == 302

    logout_form = ada.get(f"{panel.url}/account/login", timeout=10)
    ada.post(f"{panel.url}/account/logout", data={"csrf_token": CSRF.search(logout_form.text).group(1)}, timeout=10)
    assert ada.get(f"{panel.url}/psp/admin/", allow_redirects=False, timeout=10).status_code == 302


def test_built_in_passwords_are_stored_hashed_and_create_user_works_from_the_command_line(panel):
    from flask_psp.models import AdminUser

    runner = panel.app.test_cli_runner()
    result = runner.invoke(args=["psp", "create-user", "Clerk@Example.com", "--role", "viewer"],
                           input="a-long-enough-password\na-long-enough-password\n")
    assert result.exit_code == 0 and "created viewer clerk@example.com" in result.output.lower(), result.output
    short = runner.invoke(args=["psp", "create-user", "x@example.com"], input="short\nshort\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    again = runner.invoke(args=["psp", "create-user", "clerk@example.com"],
                          input="a-long-enough-password\na-long-enough-password\n")
    assert again.exit_code != 0 and "already exists" in again.output

    hashes = panel.query(lambda s: {u.email: u.password_hash for u in s.scalars(select(AdminUser))})
    assert "a-long-enough-password" not in hashes["clerk@example.com"]
    assert PASSWORD not in hashes["owner@example.com"]
    assert all(h.startswith(("scrypt:", "pbkdf2:")) for h in hashes.values())
    clerk = Admin(panel.shop, "clerk@example.com")
    assert clerk.login(password="a-long-enough-password").status_code == 303
    assert clerk.get("/payments").status_code == 200 and clerk.get("/providers").status_code == 403


def test_statuses_outcomes_and_roles_are_shown_in_the_merchants_language(panel):
    configure_payplug(panel, panel.sim.url)
    ref = paid_order(panel)
    owner = panel.admin("owner")
    owner.http.headers["Accept-Language"] = "fr-FR,fr;q=0.9"
    payments = owner.get("/payments").text
    row = re.search(r'<tr data-payment="\d+" data-status="paid">.*?</tr>', payments, re.S).group(0)
    assert ref in row and ">payé<" in row
    assert '<option value="partially_refunded" >partiellement remboursé</option>' in payments.replace("  ", " ")
    inbox = owner.get("/inbox").text
    assert ">appliquée<" in inbox and '<option value="applied"' in inbox
    users = owner.get("/users").text
    assert ">comptable</option>" in users and ">propriétaire<" in users
    owner.http.headers["Accept-Language"] = "en"
    assert ">partially refunded</option>" in owner.get("/payments").text

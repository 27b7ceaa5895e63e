"""Sessions and sign-in of the built-in accounts: sign-out and password changes end sessions on the
server, idle sessions end, and failed sign-ins are throttled per client address and per account
without telling which accounts exist and without letting a stranger lock the owner out.

Clients sign in from different loopback addresses (127.0.0.x) to be different client addresses."""

from __future__ import annotations

import hashlib
import re
import time

from requests.adapters import HTTPAdapter
from sqlalchemy import select

from .conftest import PASSWORD, Admin

OWNER = "owner@example.com"


class FromAddress(HTTPAdapter):
    """Connect from a given local address, as a client elsewhere on the network would."""

    def __init__(self, address):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client(panel, email=OWNER, address="127.0.0.1"):
    admin = Admin(panel.shop, email)
    admin.http.mount("http://", FromAddress(address))
    return admin


def audit_rows(panel, action):
    from flask_psp.models import AuditEntry

    return panel.query(lambda s: [(e.actor, e.target, e.details) for e in
                                  s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))])


def copy_of(admin):
    """Another browser holding a copy of ``admin``'s cookies (a stolen or left-behind cookie)."""
    thief = Admin(admin.shop, admin.email)
    thief.http.cookies.update(admin.http.cookies)
    return thief


# ----------------------------------------------------------------------------- sign-out, password
def test_a_cookie_copied_before_sign_out_is_refused_after_it(panel):
    owner = panel.admin("owner")
    copy = copy_of(owner)
    assert copy.get("/users").status_code == 200  # the copy works while the owner is signed in
    assert owner.post("/logout").status_code == 303
    for path in ("/", "/users", "/payments"):
        answer = copy.get(path)
        assert answer.status_code == 302 and "/psp/admin/login" in answer.headers["Location"], path
    created = copy.post("/users", {"email": "intruder@example.com", "password": "long-enough-pass", "role": "owner"})
    assert created.status_code == 302
    from flask_psp.models import AdminUser

    assert panel.query(lambda s: s.scalar(select(AdminUser).where(AdminUser.email == "intruder@example.com"))) is None
    # signing in again opens a new session; the old copy stays refused
    assert owner.login().status_code == 303
    assert owner.get("/users").status_code == 200
    assert copy.get("/users").status_code == 302


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(panel):
    laptop, phone = panel.admin("manager"), panel.admin("manager")
    viewer = panel.admin("viewer")  # someone else's session is not touched
    laptop.get("/account")
    wrong = laptop.post("/account/password", {"password": "not-my-password", "new_password": "a-brand-new-secret",
                                              "new_password_again": "a-brand-new-secret"})
    assert wrong.status_code == 400 and "Wrong password" in wrong.text
    differ = laptop.post("/account/password", {"password": PASSWORD, "new_password": "a-brand-new-secret",
                                               "new_password_again": "a-brand-new-secreT"})
    assert differ.status_code == 400 and "differ" in differ.text
    assert phone.get("/payments").status_code == 200  # refused changes end nothing

    changed = laptop.post("/account/password", {"password": PASSWORD, "new_password": "a-brand-new-secret",
                                                "new_password_again": "a-brand-new-secret"})
    assert changed.status_code == 303
    page = laptop.get("/account")
    assert page.status_code == 200 and "signed out everywhere else" in page.text
    assert laptop.get("/payments").status_code == 200
    assert phone.get("/payments").status_code == 302
    assert viewer.get("/payments").status_code == 200
    assert Admin(panel.shop, "manager@example.com").login().status_code == 401  # the old password
    assert Admin(panel.shop, "manager@example.com").login(password="a-brand-new-secret").status_code == 303
    assert [(actor, target) for actor, target, _d in audit_rows(panel, "user.password")] == \
        [("manager@example.com", "manager@example.com")]


# ----------------------------------------------------------------------------- idle sessions
def age_session(panel, admin, seconds):
    """Rewrite ``admin``'s session cookie as if its last request had been ``seconds`` ago (the cookie is
    signed with the shop's SECRET_KEY, which the test knows)."""
    serializer = panel.app.session_interface.get_signing_serializer(panel.app)
    cookie = next(c for c in admin.http.cookies if c.name == panel.app.config["SESSION_COOKIE_NAME"])
    data = serializer.loads(cookie.value)
    data["psp_admin_seen"] = data.get("psp_admin_seen", int(time.time())) - seconds
    cookie.value = serializer.dumps(data)


def test_a_session_idle_longer_than_the_limit_is_signed_out(panel):
    owner = panel.admin("owner")
    age_session(panel, owner, 29 * 60)  # the default limit is 30 minutes
    assert owner.get("/users").status_code == 200
    age_session(panel, owner, 29 * 60)  # that request counted as activity: 29 more minutes are fine
    assert owner.get("/users").status_code == 200

    age_session(panel, owner, 31 * 60)
    answer = owner.get("/users")
    assert answer.status_code == 302 and "/psp/admin/login" in answer.headers["Location"]
    login = owner.get(answer.headers["Location"].removeprefix("/psp/admin"))
    assert "signed out after 30 minutes without activity" in login.text
    assert owner.get("/users").status_code == 302  # and it stays signed out
    assert owner.login().status_code == 303 and owner.get("/users").status_code == 200


def test_the_idle_limit_is_configurable(make_panel):
    panel = make_panel(PSP_ADMIN_IDLE_MINUTES=5)
    viewer = panel.admin("viewer")
    age_session(panel, viewer, 6 * 60)
    assert viewer.get("/payments").status_code == 302


# ----------------------------------------------------------------------------- throttling
def normalised(answer, email):
    text = re.sub(r'name="csrf_token" value="[^"]+"', "", answer.text)
    return answer.status_code, text.replace(f'value="{email}"', 'value="…"')


def test_refusals_look_and_cost_the_same_for_unknown_wrong_and_locked(panel, monkeypatch):
    from flask_psp.models import AdminUser

    hashed = []
    real_scrypt = hashlib.scrypt  # werkzeug's password hashes (scrypt by default) call it once per check

    def counting_scrypt(*args, **kwargs):
        hashed.append(1)
        return real_scrypt(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)

    def attempt(email, password, address):
        hashed.clear()
        answer = client(panel, email, address).login(password=password)
        assert len(hashed) == 1, (email, address, len(hashed))  # one password hash, whatever the outcome
        return normalised(answer, email)

    # four addresses each fail once or twice: the account locks, none of the addresses does
    for address in ("127.0.0.11", "127.0.0.11", "127.0.0.12", "127.0.0.12", "127.0.0.13"):
        attempt("viewer@example.com", "guess-guess-guess", address)
    locked = panel.query(lambda s: s.scalar(select(AdminUser.locked_until).where(AdminUser.email == "viewer@example.com")))
    assert locked is not None

    unknown = attempt("nobody@example.com", "guess-guess-guess", "127.0.0.12")
    wrong = attempt("manager@example.com", "guess-guess-guess", "127.0.0.12")
    locked_out = attempt("viewer@example.com", PASSWORD, "127.0.0.12")  # the right password, refused while locked
    assert unknown == wrong == locked_out
    assert unknown[0] == 401 and "Wrong email or password, or too many failed attempts" in unknown[1]
    # a blocked address gets the same answer too
    for _ in range(5):
        attempt("nobody@example.com", "guess-guess-guess", "127.0.0.14")
    assert attempt("manager@example.com", PASSWORD, "127.0.0.14") == unknown
    hashed.clear()
    assert client(panel, "manager@example.com", "127.0.0.15").login().status_code == 303
    assert len(hashed) == 1


def test_a_stranger_cannot_lock_the_owner_out(panel):
    from flask_psp.models import AdminUser

    stranger = client(panel, OWNER, "127.0.0.2")
    for _ in range(8):
        assert stranger.login(password="owner-password-guess").status_code == 401
    assert stranger.login().status_code == 401  # that address is blocked: even the right password
    # each new address the stranger brings gets one guess while the account is locked
    for n in range(3, 8):
        assert client(panel, OWNER, f"127.0.0.{n}").login(password="another-guess").status_code == 401
        assert client(panel, OWNER, f"127.0.0.{n}").login(password=PASSWORD).status_code == 401

    # one audit row per lockout, not per attempt: the address once, the account twice, the second
    # lock twice as long as the first
    throttled = audit_rows(panel, "login.throttled")
    assert [(actor, details["minutes"]) for actor, _t, details in throttled] == [("127.0.0.2", 15)]
    locks = audit_rows(panel, "login.locked")
    assert [(target, details["minutes"]) for _a, target, details in locks] == [(OWNER, 15), (OWNER, 30)]
    locked_until = panel.query(lambda s: s.scalar(select(AdminUser.locked_until).where(AdminUser.email == OWNER)))
    from flask_psp.models import utcnow

    assert 29 < (locked_until - utcnow()).total_seconds() / 60 <= 30

    # the owner, from an address with no failures, signs in with the right password
    owner = client(panel, OWNER, "127.0.0.1")
    assert owner.login().status_code == 303
    assert owner.get("/users").status_code == 200
    assert stranger.login().status_code == 401  # the stranger's address stays blocked


def test_an_address_that_keeps_failing_waits_longer_each_time(panel):
    from flask_psp.models import LoginThrottle, utcnow

    guesser = client(panel, "nobody@example.com", "127.0.0.21")

    def expire_block(session):
        row = session.get(LoginThrottle, "127.0.0.21")
        row.blocked_until = utcnow().replace(year=2000)
        session.commit()

    for _round in range(3):
        for _ in range(5):
            assert guesser.login(password="guess-guess-guess").status_code == 401
        panel.query(expire_block)
    minutes = [details["minutes"] for _a, _t, details in audit_rows(panel, "login.throttled")]
    assert minutes == [15, 30, 60]
    # a success from the address forgets it
    assert client(panel, OWNER, "127.0.0.21").login().status_code == 303
    assert panel.query(lambda s: s.get(LoginThrottle, "127.0.0.21")) is None


def test_failures_are_forgotten_once_the_longest_delay_has_passed(panel):
    from datetime import timedelta

    from flask_psp.models import AdminUser, LoginThrottle, utcnow

    for address in ("127.0.0.51", "127.0.0.51", "127.0.0.52", "127.0.0.52", "127.0.0.52"):
        client(panel, "viewer@example.com", address).login(password="guess-guess-guess")
    assert client(panel, "viewer@example.com", "127.0.0.51").login().status_code == 401  # locked, not clean

    def two_days_later(session):  # the lock ran out a while ago, the failures are older than a day
        past = utcnow() - timedelta(days=2)
        session.get(LoginThrottle, "127.0.0.51").last_failure_at = past
        user = session.scalar(select(AdminUser).where(AdminUser.email == "viewer@example.com"))
        user.locked_until, user.last_failure_at = past, past
        session.commit()

    panel.query(two_days_later)
    for _ in range(4):  # a fresh count: four failures lock nothing
        assert client(panel, "viewer@example.com", "127.0.0.51").login(password="guess-again").status_code == 401
    assert client(panel, "viewer@example.com", "127.0.0.51").login().status_code == 303
    assert [d["lockout"] for _a, _t, d in audit_rows(panel, "login.locked")] == [1]


def test_delays_double_up_to_the_cap():
    from datetime import timedelta

    from flask_psp.access import Throttle

    throttle = Throttle(5, timedelta(minutes=15), timedelta(hours=24))
    delays = [throttle.delay(n) for n in range(1, 12)]
    assert delays[:4] == [timedelta(minutes=m) for m in (15, 30, 60, 120)]
    assert delays[-1] == timedelta(hours=24) and all(a <= b for a, b in zip(delays, delays[1:]))
    assert throttle.delay(10_000) == timedelta(hours=24)


# ----------------------------------------------------------------------------- SECRET_KEY
def test_the_example_shop_makes_its_own_secret_key_and_keeps_it(tmp_path, database_url):
    """The key is random, kept in the instance folder (owner-only) and read back at the next start,
    with the encryption key, so sessions and stored provider secrets outlive a restart; a key given
    in the config is used as given."""
    import os
    import stat

    from example_shop import create_app, db

    def stop(app):
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    config = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url}
    first = create_app(config, instance_path=str(tmp_path))
    key = first.config["SECRET_KEY"]
    path = tmp_path / "secret_key"
    assert key and len(key) >= 32 and key != "example-shop-dev-secret"
    assert path.read_text().strip() == key and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    sealed = first.extensions["psp"].box.encrypt({"secret_key": "sk_live_kept"})
    stop(first)

    again = create_app(config, instance_path=str(tmp_path))
    assert again.config["SECRET_KEY"] == key
    assert again.extensions["psp"].box.decrypt(sealed) == {"secret_key": "sk_live_kept"}
    stop(again)

    given = create_app({**config, "SECRET_KEY": "the-shop-s-own-key"}, instance_path=str(tmp_path / "other"))
    assert given.config["SECRET_KEY"] == "the-shop-s-own-key"
    assert not (tmp_path / "other" / "secret_key").exists()
    stop(given)


def test_shops_starting_at_the_same_moment_share_one_whole_key(tmp_path):
    """Each start makes a key while none is kept yet: every one of them reads back the same, whole
    key (the first kept), never an empty or half-written file, and no stray file is left."""
    import os
    import threading

    from example_shop import instance_secret

    starts = 6
    all_made = threading.Barrier(starts)
    made = iter(f"key-{n}-" + "x" * 40 for n in range(starts))
    lock = threading.Lock()

    def make():
        with lock:
            key = next(made)
        all_made.wait(timeout=10)  # every start has seen that no key is kept
        return key

    read = []
    threads = [threading.Thread(target=lambda: read.append(instance_secret(str(tmp_path), "secret_key", make)))
               for _ in range(starts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    kept = (tmp_path / "secret_key").read_text()
    assert len(read) == starts and set(read) == {kept} and kept.startswith("key-") and len(kept) == 46
    assert os.listdir(tmp_path) == ["secret_key"]


def test_a_session_signed_with_the_old_fixed_key_is_refused(database_url):
    """main shipped ``"example-shop-dev-secret"`` as the example shop's fallback SECRET_KEY: anyone
    could sign an owner's session with it."""
    from flask.sessions import SecureCookieSessionInterface

    from example_shop import create_app, db, psp

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})  # no SECRET_KEY given
    with app.app_context():
        owner_id = psp.create_user("owner@example.com", PASSWORD, role="owner").id

    class OldKey:
        secret_key = "example-shop-dev-secret"
        config = app.config

    forged = SecureCookieSessionInterface().get_signing_serializer(OldKey()).dumps(
        {"psp_admin_user": owner_id, "psp_admin_generation": 0, "psp_admin_seen": int(time.time())})
    with app.test_client() as browser:
        browser.set_cookie(app.config["SESSION_COOKIE_NAME"], forged)
        answer = browser.get("/psp/admin/users")
    assert answer.status_code == 302 and "/psp/admin/login" in answer.headers["Location"]
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# ----------------------------------------------------------------------------- strangers' input
def test_whatever_a_stranger_types_into_the_sign_in_form_gets_the_one_refusal(panel):
    """Arbitrary emails, passwords and client addresses: never a 5xx, never signed in, always the
    same answer (the email typed is echoed back in the form, nothing else differs)."""
    from hypothesis import HealthCheck, given, settings, strategies as st
    from markupsafe import escape

    browser = panel.app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/psp/admin/login").text).group(1)
    reference = {}

    def answer_to(email, password, address):
        answer = browser.post("/psp/admin/login", data={"email": email, "password": password, "csrf_token": token},
                              environ_base={"REMOTE_ADDR": address})
        text = answer.get_data(as_text=True)
        text = re.sub(r'name="csrf_token" value="[^"]+"', "", text)
        return answer.status_code, text.replace(f'value="{escape(email.strip())}"', 'value="…"')

    reference["answer"] = answer_to("nobody@example.com", "guess-guess-guess", "192.0.2.1")
    assert reference["answer"][0] == 401

    emails = st.one_of(st.text(max_size=300), st.sampled_from(["owner@example.com", "OWNER@example.com ",
                                                               "viewer@example.com"]))
    addresses = st.one_of(st.ip_addresses().map(str), st.sampled_from(["127.0.0.1", "192.0.2.1"]))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(email=emails, password=st.text(max_size=200).filter(lambda p: p != PASSWORD), address=addresses)
    def stranger(email, password, address):
        status, text = answer_to(email, password, address)
        if "\x00" in email or "\x00" in password:
            # no account can hold a NUL: every admin form refuses it alike, before any query
            assert status == 400 and "NUL character" in text
        else:
            assert (status, text) == reference["answer"]

    stranger()
    assert browser.get("/psp/admin/users").status_code == 302  # never signed in

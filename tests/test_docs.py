"""The documentation under docs/ tells the truth: the quick start runs, the configuration reference
names every ``PSP_*`` key the code reads with its real default, and the merchant's guides (English
and French) cover every page of the admin panel. (``make docs`` builds the site with warnings as
errors, which also catches a page no toctree reaches.)"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_KEY, Buyer, LiveServer, Shop

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG_REFERENCE = DOCS / "guide" / "configuration.md"


# ------------------------------------------------------------------ code samples of a page
def captioned_blocks(page: Path, caption: str) -> list[str]:
    """The bodies of the ``{code-block}`` fences of ``page`` whose ``:caption:`` is ``caption``."""
    blocks = []
    for match in re.finditer(r"^```\{code-block\} \w+\n((?::\w+:[^\n]*\n)*)\n?(.*?)^```$", page.read_text(), re.S | re.M):
        options, body = match.groups()
        if re.search(rf"^:caption: {re.escape(caption)}$", options, re.M):
            blocks.append(body)
    assert blocks, f"{page.name} has no code block captioned {caption!r}"
    return blocks


def test_quick_start_shop_takes_a_payment(tmp_path, database_url, sim, monkeypatch):
    """The quick start's shop.py, set up by its own commands, sells an order through the PayPlug
    simulator: the buyer pays, the notification marks the order paid and ``ship`` hears of it once."""
    page = DOCS / "guide" / "quickstart.md"
    (tmp_path / "shop.py").write_text("\n".join(captioned_blocks(page, "shop.py")))
    setup = [line for line in "".join(captioned_blocks(page, "set up")).splitlines()
             if line.strip() and not line.startswith("flask --app shop run")]
    assert any(line.startswith("flask --app shop init-db") for line in setup)

    env = {**os.environ, "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("FLASK_PSP_")}
    password = "quick-start-2026"
    ran = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(setup)], cwd=tmp_path, env=env,
                         input=f"{password}\n{password}\n", capture_output=True, text=True, timeout=120,
                         start_new_session=True)  # no terminal: the password prompt reads stdin
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "created owner owner@shop.example" in ran.stdout

    # the same shop served in this process, pointed at the simulator as the page says
    holder = {}
    server = LiveServer(lambda environ, start_response: holder["app"](environ, start_response))
    monkeypatch.setenv("PAYPLUG_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("FLASK_SQLALCHEMY_DATABASE_URI", database_url)
    monkeypatch.setenv("FLASK_SECRET_KEY", "quick-start")
    monkeypatch.setenv("FLASK_PSP_ENCRYPTION_KEY", _fernet_key())
    monkeypatch.setenv("FLASK_PSP_PROVIDERS__payplug__test__endpoint", sim.url)
    monkeypatch.setenv("FLASK_PSP_PUBLIC_URL", server.url)
    spec = importlib.util.spec_from_file_location("quick_start_shop", tmp_path / "shop.py")
    shop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shop)
    holder["app"] = shop.app
    shipped = []
    shop.app.logger.warning = lambda message, *args: shipped.append(message % args)
    server.start()
    try:
        with shop.app.app_context():
            shop.db.session.add(shop.Order(ref="QS-1", total_cents=1450, email="buyer@example.com"))
            shop.db.session.commit()
        buyer = Buyer(Shop(shop.app, server.url, sim), requests.Session())
        to_checkout = buyer.http.get(f"{server.url}/orders/QS-1/pay", allow_redirects=False, timeout=10)
        assert to_checkout.headers["Location"].endswith("/psp/checkout/QS-1")
        to_payplug = buyer.choose("QS-1", "payplug")
        assert to_payplug.status_code == 303 and to_payplug.headers["Location"].startswith(sim.url)
        back = buyer.pay_on_payplug(to_payplug.headers["Location"])
        assert back.status_code == 200
        assert sim.notifier.wait_until(lambda: sim.notifier.deliveries and all(d.done for d in sim.notifier.deliveries),
                                       timeout=10)
        with shop.app.app_context():
            assert shop.db.session.get(shop.Order, "QS-1").status == "paid"
        assert shipped == ["order QS-1 is paid: ship it"]
    finally:
        server.stop()
        from flask_psp.signals import order_paid

        order_paid.disconnect(shop.ship)
        with shop.app.app_context():
            shop.db.session.remove()
            shop.db.engine.dispose()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# ------------------------------------------------------------------ the configuration reference
def documented_keys() -> dict[str, str]:
    """``{key: its "Default:" line}`` from the reference: one ``### `KEY` `` heading per key."""
    text = CONFIG_REFERENCE.read_text()
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    keys = {}
    for section in sections:
        heading, _, body = section.partition("\n")
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", heading)
        default = re.search(r"^Default: (.*)$", body, re.M)
        for name in names:
            keys[name] = default.group(1) if default else ""
    return keys


def keys_read_in_code() -> dict[str, set[str]]:
    """Every ``PSP_…`` name in a string of flask_psp's Python code (keys, messages, docstrings), and
    where: a grep that sees config keys and environment variables alike (``config["PSP_X"]``,
    ``os.environ.get("PSP_X")``, ``duration(config, "PSP_X")``…) but not identifiers such as
    ``_PSP_REFERENCE`` nor families such as ``PSP_JOBS_*``; and every ``PSP_…`` in the templates."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "flask_psp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for name in re.findall(r"\bPSP_[A-Z0-9_]*[A-Z0-9]\b", node.value):
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for path in sorted((ROOT / "templates").rglob("*.html")):  # shipped as flask_psp/templates
        for name in re.findall(r"\bPSP_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_default_is_in_the_configuration_reference():
    from flask_psp.config import DEFAULTS

    documented = documented_keys()
    missing = sorted(set(DEFAULTS) - set(documented))
    assert not missing, f"add a '### `KEY`' section with a 'Default:' line to {CONFIG_REFERENCE}: {missing}"
    wrong = {key: (documented[key], repr(value)) for key, value in DEFAULTS.items()
             if not documented[key].startswith(f"`{value!r}`")}
    assert not wrong, f"the reference's 'Default:' must start with the repr of DEFAULTS[key]: {wrong}"


def test_every_psp_key_in_the_code_is_in_the_configuration_reference():
    read = keys_read_in_code()
    assert {"PSP_URL_PREFIX", "PSP_JOBS_INTERVAL", "PSP_SIM_ADYEN_WEBHOOK_URL"} <= set(read)  # the scan sees them
    missing = {key: sorted(where) for key, where in read.items() if key not in documented_keys()}
    assert not missing, f"PSP_* names read in flask_psp/ but not in {CONFIG_REFERENCE}: {missing}"


def test_the_reference_documents_no_key_the_code_does_not_know():
    from flask_psp.config import DEFAULTS

    known = set(DEFAULTS) | set(keys_read_in_code())
    stale = sorted(key for key in documented_keys() if key not in known)
    assert not stale, f"{CONFIG_REFERENCE} documents keys nothing reads: {stale}"


# ------------------------------------------------------------------ the merchant's guides
def admin_pages() -> list[str]:
    """The admin panel's pages, as a merchant meets them: every GET route under /psp/admin/ but the
    logo files, with its placeholders named as the guides name them (``<…>``)."""
    from example_shop import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                      "PSP_PROVIDERS": {}})
    pages = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/psp/admin/") and "GET" in rule.methods and rule.endpoint != "psp.admin_asset":
            pages.add(re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule))
    return sorted(pages)


def named_pages(guide: Path) -> set[str]:
    text = "\n".join(page.read_text() for page in guide.rglob("*.md"))
    return {re.sub(r"<[^>]*>", "<>", path) for path in re.findall(r"`(/psp/admin/[^`\s]*)`", text)}


@pytest.mark.parametrize("guide", ["merchant", "fr/merchant"])
def test_the_merchant_guide_covers_every_admin_page(guide):
    pages = admin_pages()
    assert "/psp/admin/providers/<name>" in pages and "/psp/admin/login" in pages
    named = named_pages(DOCS / guide)
    missing = [page for page in pages if re.sub(r"<[^>]*>", "<>", page) not in named]
    assert not missing, f"name these admin pages (as `{{address}}`) in docs/{guide}/: {missing}"


def test_the_french_guide_has_a_page_for_every_english_one():
    english = {p.relative_to(DOCS / "merchant") for p in (DOCS / "merchant").rglob("*.md")}
    french = {p.relative_to(DOCS / "fr" / "merchant") for p in (DOCS / "fr" / "merchant").rglob("*.md")}
    assert english == french and len(english) >= 10


def test_screenshots_the_docs_show_exist():
    shown = {m for page in DOCS.rglob("*.md") for m in re.findall(r"\]\(((?:\.\./)*screenshots/[^)]+)\)", page.read_text())}
    assert shown
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"\]\(((?:\.\./)*screenshots/[^)]+)\)", page.read_text()):
            assert (page.parent / target).resolve().is_file(), f"{page}: {target}"


# ------------------------------------------------------------------ every page is reachable
def toctree_entries(page: Path) -> list[tuple[str, bool]]:
    """``(entry, globbing)`` for each entry of each ``{toctree}`` fence of ``page``."""
    entries = []
    for options, body in re.findall(r"^```\{toctree\}\n((?::[^\n]*\n)*)(.*?)^```$", page.read_text(), re.S | re.M):
        entries += [(line.strip(), ":glob:" in options) for line in body.splitlines() if line.strip()]
    return entries


def test_every_page_is_reachable_from_the_root_toctree():
    """What Sphinx's ``-W`` refuses as "document isn't included in any toctree", here for ``make test``
    too: every .md under docs/ is reached from index.md (a glob's ``*`` stays within one folder)."""
    pages = {p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.rglob("*.md") if "_build" not in p.parts}
    reached, todo = set(), ["index"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        folder = name.rpartition("/")[0]
        for entry, globbing in toctree_entries(DOCS / f"{name}.md"):
            target = f"{folder}/{entry}" if folder else entry
            target = os.path.normpath(target).replace(os.sep, "/")
            if globbing and "*" in target:
                pattern = re.compile(re.escape(target).replace(r"\*", "[^/]*") + "$")
                todo += [p for p in pages if pattern.match(p) and p != name]
            else:
                assert target in pages, f"{name}.md lists {entry}, which is no page"
                todo.append(target)
    assert pages - reached == set(), "pages no toctree reaches (add them to one, see docs/guide/development.md)"

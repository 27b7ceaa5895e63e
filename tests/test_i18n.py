"""Every user-facing string of the plugin has a French translation, and the shipped .mo matches."""

import gettext
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
LC = ROOT / "flask_psp" / "translations" / "fr" / "LC_MESSAGES"
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}


def source_messages():
    with open(ROOT / "babel.cfg") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_source_string_is_translated_to_french():
    with open(LC / "flask_psp.po", "rb") as handle:
        catalog = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(source_messages() - translated)
    assert not missing, f"run `make translations` and translate: {missing}"


def test_compiled_catalog_matches_the_po_file():
    with open(LC / "flask_psp.po", "rb") as handle:
        catalog = read_po(handle)
    with open(LC / "flask_psp.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string:
            assert compiled.gettext(message.id) == message.string, "run `make translations` to recompile"


def test_buyer_pages_follow_accept_language():
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_psp import PSP, OrderInfo

    class Orders:
        def get(self, ref):
            return OrderInfo(ref, 1234, "EUR")

        def mark_paid(self, ref, payment):
            pass

    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://")
    db = SQLAlchemy(app)
    psp = PSP(app, db=db, orders=Orders())
    with app.app_context():
        psp.upgrade_database()
    client = app.test_client()
    french = client.get("/psp/checkout/A-1", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}).get_data(as_text=True)
    english = client.get("/psp/checkout/A-1", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    assert "Payer la commande A-1" in french and "12,34" in french and 'lang="fr"' in french
    assert "Pay for order A-1" in english and "€12.34" in english and 'lang="en"' in english

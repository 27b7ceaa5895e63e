"""A shop overrides any psp/… template from its own templates/ folder; what merchants type is escaped."""

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_psp import PSP, OrderInfo


class Orders:
    def get(self, ref):
        return OrderInfo(ref, 1234, "EUR")

    def mark_paid(self, ref, payment):
        pass


def make_app(template_folder=None):
    app = Flask(__name__, template_folder=template_folder)
    app.config.update(TESTING=True, SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://")
    db = SQLAlchemy(app)
    psp = PSP(app, db=db, orders=Orders())
    with app.app_context():
        psp.upgrade_database()
    return app, db


def test_shop_template_overrides_the_plugins(tmp_path):
    (tmp_path / "psp").mkdir()
    (tmp_path / "psp" / "base.html").write_text(
        "<html><body class='my-shop'>{% block content %}{% endblock %}</body></html>"
    )
    app, _ = make_app(str(tmp_path))
    html = app.test_client().get("/psp/checkout/A-1").get_data(as_text=True)
    assert "my-shop" in html and "Pay for order A-1" in html  # our checkout inside the shop's layout


def test_page_settings_typed_by_the_merchant_are_escaped():
    from flask_psp.models import PageSettings

    app, db = make_app()
    with app.app_context():
        db.session.add(PageSettings(
            brand_name="<script>alert(1)</script>", primary_color="red;}</style><script>x()</script>",
            messages={"en": {"before": "<img src=x onerror=alert(2)>"}}, provider_look={},
        ))
        db.session.commit()
    html = app.test_client().get("/psp/checkout/A-1").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<img src=x" not in html
    assert "x()</script>" not in html and "--psp-primary: red" not in html

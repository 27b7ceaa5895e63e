"""A small shop that uses flask-psp through its public API only.

``create_app(config)`` builds it; ``python -m example_shop.demo`` runs it with the simulators.
"""

from __future__ import annotations

import os
import secrets
import tempfile

from flask import Flask, abort, has_request_context, jsonify, redirect, render_template, request, session, url_for
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import bindparam, select, update

from flask_psp import DELIVERY_TYPES, PSP, Address, OrderInfo

db = SQLAlchemy()
csrf = CSRFProtect()
psp = PSP()

SIMULATOR_URL = os.environ.get("PSP_SIMULATOR_URL", "http://127.0.0.1:8101")
SAMPLE_PRODUCTS = [
    ("MUG-01", "Enamel mug", 1450),
    ("TEE-02", "Organic cotton tee", 2900),
    ("MAP-03", "Map of Lyon, 1850 print", 3990),
    ("PEN-04", "Fountain pen", 8500),
]


class Product(db.Model):
    __tablename__ = "shop_product"
    sku = db.Column(db.String(32), primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    price = db.Column(db.BigInteger, nullable=False)  # minor units
    currency = db.Column(db.String(3), nullable=False, default="EUR")


class Order(db.Model):
    __tablename__ = "shop_order"
    reference = db.Column(db.String(32), primary_key=True)
    email = db.Column(db.String(255))
    status = db.Column(db.String(16), nullable=False, default="pending")  # pending|paid|cancelled
    amount = db.Column(db.BigInteger, nullable=False)
    currency = db.Column(db.String(3), nullable=False)
    locale = db.Column(db.String(8))
    lines = db.relationship("OrderLine", order_by="OrderLine.id")


class OrderLine(db.Model):
    __tablename__ = "shop_order_line"
    id = db.Column(db.Integer, primary_key=True)
    order_ref = db.Column(db.String(32), db.ForeignKey("shop_order.reference"), nullable=False)
    sku = db.Column(db.String(32), nullable=False)
    name = db.Column(db.String(200), nullable=False)
    quantity = db.Column(db.Integer, nullable=False)
    unit_price = db.Column(db.BigInteger, nullable=False)


class OrderBuyer(db.Model):
    """The buyer's addresses and how the order reaches them, as given at order time (a table of
    its own, so a shop database made before it gains it on the next start)."""

    __tablename__ = "shop_order_buyer"
    order_ref = db.Column(db.String(32), db.ForeignKey("shop_order.reference"), primary_key=True)
    data = db.Column(db.JSON, nullable=False)  # {"billing": {...}, "shipping": {...} | None, "delivery_type": …}


ADDRESS_PARTS = ("first_name", "last_name", "company", "line1", "line2", "postcode", "city", "country", "phone")


def address_from_form(form, prefix: str) -> dict | None:
    """``billing-city`` … from the order form; None when nothing was typed. Address checks it."""
    values = {part: (form.get(f"{prefix}-{part}") or "").strip() or None for part in ADDRESS_PARTS}
    if not any(values.values()):
        return None
    Address(**values)  # raises ValueError with what is wrong (country, phone)
    return values


_ORDERS, _BUYERS, _LINES = Order.__table__, OrderBuyer.__table__, OrderLine.__table__
#: an order with its buyer and its lines, one row per line (one row with no line for an order without
#: lines): every checkout reads it, in one statement
ORDER_WITH_BUYER_AND_LINES = (
    select(_ORDERS.c.reference, _ORDERS.c.amount, _ORDERS.c.currency, _ORDERS.c.email, _ORDERS.c.locale,
           _ORDERS.c.status, _BUYERS.c.data.label("buyer"), _LINES.c.quantity, _LINES.c.name)
    .select_from(_ORDERS.outerjoin(_BUYERS, _BUYERS.c.order_ref == _ORDERS.c.reference)
                 .outerjoin(_LINES, _LINES.c.order_ref == _ORDERS.c.reference))
    .where(_ORDERS.c.reference == bindparam("order_ref"))
    .order_by(_LINES.c.id)
)
MARK_ORDER_PAID = update(Order.__table__).where(Order.__table__.c.reference == bindparam("order_ref")).values(
    status="paid")


class ShopOrders:
    """The adapter flask-psp asks about orders."""

    def get(self, order_ref):
        rows = db.session.execute(ORDER_WITH_BUYER_AND_LINES, {"order_ref": order_ref}).all()
        if not rows or rows[0].status == "cancelled":
            return None
        order = rows[0]
        data = order.buyer or {}
        return OrderInfo(
            reference=order.reference,
            amount=order.amount,
            currency=order.currency,
            email=order.email,
            description=", ".join(f"{line.quantity} × {line.name}" for line in rows if line.name is not None),
            locale=order.locale,
            billing=Address(**data["billing"]) if data.get("billing") else None,
            shipping=Address(**data["shipping"]) if data.get("shipping") else None,
            delivery_type=data.get("delivery_type"),
        )

    def mark_paid(self, order_ref, payment):
        # one UPDATE, in the same transaction as the payment's move: it runs while the order's
        # payments are locked, so it is kept short (no need to load the order first)
        db.session.execute(MARK_ORDER_PAID, {"order_ref": order_ref})


def default_config(instance_path: str) -> dict:
    return {
        "SECRET_KEY": os.environ.get("SHOP_SECRET_KEY"),  # else made once and kept in the instance folder
        "SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(instance_path, "example_shop.db"),
        "PSP_SHOP_URL": "/orders/{order_ref}",  # the buyer's way back from the payment's result page
        "PSP_ORDER_URL": "/orders/{order_ref}",  # the order, from the payment's page in the panel
        "PSP_PROVIDERS": {
            "payplug": {
                "enabled": True,
                "mode": "test",
                "test": {"secret_key": "sk_test_simulator", "endpoint": SIMULATOR_URL},
            }
        },
    }


def instance_secret(instance_path: str, filename: str, make) -> str:
    """A secret the example shop makes on first start and keeps in its instance folder, readable by
    its owner only (a real shop sets it from its secret store). Later starts read the same one back,
    so sessions and encrypted provider secrets outlive a restart.

        key = instance_secret(app.instance_path, "secret_key", lambda: secrets.token_urlsafe(48))
    """
    path = os.path.join(instance_path, filename)
    if not os.path.exists(path):
        # written aside, then linked into place: shops starting at the same moment all read back
        # the whole key of the first link, never a file still being written
        fd, written = tempfile.mkstemp(dir=instance_path, prefix=f".{filename}.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(make())
            os.link(written, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(written)
    with open(path) as handle:
        value = handle.read().strip()
    if not value:  # emptied by hand
        raise RuntimeError(f"{path} is empty: delete it and start again")
    return value


def create_app(config: dict | None = None, *, instance_path: str | None = None) -> Flask:
    """The shop; ``config`` is honoured as given (``SECRET_KEY``, ``PSP_ENCRYPTION_KEY`` and the database
    URI included). What it leaves out of those two keys is made once and kept in ``instance_path``
    (default ``example_shop/instance/``): ``secret_key`` and ``psp_encryption.key``, mode 0600."""
    from cryptography.fernet import Fernet

    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(default_config(app.instance_path))
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):  # never a fixed fallback: anyone could sign an owner's session
        app.config["SECRET_KEY"] = instance_secret(app.instance_path, "secret_key", lambda: secrets.token_urlsafe(48))
    if not app.config.get("PSP_ENCRYPTION_KEY"):
        app.config["PSP_ENCRYPTION_KEY"] = instance_secret(
            app.instance_path, "psp_encryption.key", lambda: Fernet.generate_key().decode())
    db.init_app(app)
    csrf.init_app(app)
    psp.init_app(app, db=db, orders=ShopOrders())
    with app.app_context():
        psp.upgrade_database()  # the plugin's tables, through its own migrations
        db.create_all()  # the shop's tables (the plugin's exist already and are skipped)
        if db.session.scalar(select(Product).limit(1)) is None:
            db.session.add_all(Product(sku=s, name=n, price=p, currency="EUR") for s, n, p in SAMPLE_PRODUCTS)
            db.session.commit()
    _routes(app)
    return app


#: the shop's few words in French (a real shop has its own translations; the plugin's pages have theirs)
FRENCH = {
    "Example shop": "Boutique d'exemple", "Products": "Produits", "Cart": "Panier", "Add to cart": "Ajouter au panier",
    "Total": "Total", "Email (for your receipt)": "E-mail (pour votre reçu)", "Place order and pay": "Commander et payer",
    "Your cart is empty.": "Votre panier est vide.", "Order": "Commande", "Status:": "Statut :", "Total:": "Total :",
    "Pay now": "Payer maintenant", "Invoice": "Facture", "Email me a payment link": "M'envoyer un lien de paiement",
    "A payment link is on its way to": "Un lien de paiement part vers", "pending": "en attente", "paid": "payée", "cancelled": "annulée",
    "A demonstration of flask-psp: no real money is taken.": "Une démonstration de flask-psp : aucun argent réel n'est pris.",
    "First name": "Prénom", "Last name": "Nom", "Company": "Société", "Address": "Adresse",
    "Address (line 2)": "Adresse (ligne 2)", "Postcode": "Code postal", "City": "Ville", "Country (FR, BE…)": "Pays (FR, BE…)",
    "Phone (+33…)": "Téléphone (+33…)", "Delivery": "Livraison", "shipped to me": "livrée chez moi",
    "picked up in the shop": "retirée en boutique", "nothing to ship": "rien à livrer",
    "Ship to another address": "Livrer à une autre adresse", "Shipping address": "Adresse de livraison",
    "Billing address (optional: it helps your bank skip the 3-D Secure step)":
        "Adresse de facturation (facultative : elle aide votre banque à éviter l'étape 3-D Secure)",
}


def _lang() -> str:
    """The visitor's language; English outside a request (the plugin renders mails from jobs)."""
    if not has_request_context():
        return "en"
    return request.accept_languages.best_match(["en", "fr"]) or "en"


def _money(amount: int, currency: str) -> str:
    from flask_psp.money import format_amount

    return format_amount(amount, currency, _lang())


def _translate(text: str) -> str:
    return FRENCH.get(text, text) if _lang() == "fr" else text


def _routes(app: Flask) -> None:
    app.jinja_env.globals["money"] = _money
    app.jinja_env.globals["t"] = _translate

    @app.context_processor
    def _language():
        return {"lang": _lang()}

    @app.get("/")
    def index():
        products = db.session.scalars(select(Product).order_by(Product.sku)).all()
        return render_template("shop/index.html", products=products, cart=session.get("cart", {}))

    @app.get("/products.json")
    def products_json():
        products = db.session.scalars(select(Product).order_by(Product.sku)).all()
        return jsonify([{"sku": p.sku, "name": p.name, "price": p.price, "currency": p.currency} for p in products])

    @app.post("/cart/add/<sku>")
    def cart_add(sku):
        if db.session.get(Product, sku) is None:
            abort(404)
        cart = dict(session.get("cart", {}))
        cart[sku] = cart.get(sku, 0) + 1
        session["cart"] = cart
        return redirect(url_for("cart"), code=303)

    def _cart_lines():
        lines = []
        for sku, quantity in session.get("cart", {}).items():
            product = db.session.get(Product, sku)
            if product is not None and quantity > 0:
                lines.append((product, int(quantity)))
        return lines

    @app.get("/cart")
    def cart():
        lines = _cart_lines()
        total = sum(p.price * q for p, q in lines)
        return render_template("shop/cart.html", lines=lines, total=total)

    @app.post("/orders")
    def place_order():
        lines = _cart_lines()
        if not lines:
            return redirect(url_for("cart"), code=303)
        currencies = {p.currency for p, _ in lines}
        if len(currencies) != 1:
            abort(400, "one currency per order")
        delivery_type = request.form.get("delivery_type") or None
        if delivery_type not in (None, *DELIVERY_TYPES):
            abort(400, "delivery_type: " + ", ".join(DELIVERY_TYPES))
        try:
            billing = address_from_form(request.form, "billing")
            shipping = address_from_form(request.form, "shipping") if request.form.get("ship_elsewhere") else None
        except ValueError as exc:
            abort(400, str(exc))
        reference = "ORD-" + secrets.token_hex(5).upper()
        locale = request.accept_languages.best_match(["en", "fr"]) or "en"
        order = Order(
            reference=reference,
            email=(request.form.get("email") or "").strip() or None,
            amount=sum(p.price * q for p, q in lines),
            currency=currencies.pop(),
            locale=locale,
        )
        db.session.add(order)
        db.session.add_all(
            OrderLine(order_ref=reference, sku=p.sku, name=p.name, quantity=q, unit_price=p.price) for p, q in lines
        )
        if billing or shipping or delivery_type:
            db.session.add(OrderBuyer(order_ref=reference, data={"billing": billing, "shipping": shipping,
                                                                 "delivery_type": delivery_type}))
        db.session.commit()
        session.pop("cart", None)
        return redirect(url_for("psp.checkout", order_ref=reference), code=303)

    @app.get("/orders/<ref>.json")
    def order_json(ref):
        order = db.session.get(Order, ref) or abort(404)
        return jsonify({"reference": order.reference, "status": order.status, "amount": order.amount, "currency": order.currency})

    @app.get("/orders/<ref>")
    def order_page(ref):
        order = db.session.get(Order, ref) or abort(404)
        return render_template("shop/order.html", order=order, sent=request.args.get("link") == "sent")

    @app.post("/orders/<ref>/payment-link")
    def email_payment_link(ref):
        """"Email me a payment link": a link to the order's address, mailed by the plugin."""
        from flask_psp.links import LinkError

        order = db.session.get(Order, ref) or abort(404)
        try:
            psp.send_payment_link(psp.create_payment_link(order.reference, actor="example shop (buyer)"))
        except LinkError as exc:
            return render_template("shop/order.html", order=order, error=str(exc)), 400
        return redirect(url_for("order_page", ref=order.reference, link="sent"), code=303)

    @app.get("/orders/<ref>/invoice")
    def invoice(ref):
        """The invoice, with the order's payment link and its QR code for a printed copy."""
        from flask_psp.links import qr_svg

        order = db.session.get(Order, ref) or abort(404)
        link = None
        if order.status == "pending":
            link = next((li for li in reversed(psp.payment_links_for(order.reference)) if li.status == "active"), None)
            link = link or psp.create_payment_link(order.reference, actor="example shop (invoice)")
        return render_template("shop/invoice.html", order=order, link=link, qr=qr_svg(link.url) if link else None)

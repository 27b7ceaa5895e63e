import pytest

SIREN = "732829320"


@pytest.fixture
def books(database_url):
    """``(app, db, Order)``: the example shop with no provider and a SIREN, in its app context."""
    from cryptography.fernet import Fernet

    from example_shop import Order, create_app, db

    app = create_app({
        "TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": database_url,
        "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(), "PSP_PROVIDERS": {}, "PSP_SIREN": SIREN,
    })
    with app.app_context():
        yield app, db, Order
        db.session.remove()
        db.engine.dispose()

"""What the admin panel does, without a request: one module per page of the panel, mirroring
:mod:`flask_psp.views.admin` (whose views only parse requests, call these, and render).

* :mod:`.providers` — provider settings and credentials, connection test, key rotation
* :mod:`.page` — the payment page's look (brand, logo, colours, messages, providers' own pages)
* :mod:`.notifications` — who receives notification e-mails, for which events
* :mod:`.payments` — the payments list, a payment's timeline, capture/refund/cancel
* :mod:`.inbox` — received notifications, masked bodies, "process again"
* :mod:`.dashboard` — the overview's counts
* :mod:`.users` — built-in accounts' roles
* :mod:`.audit` — who did what
* :mod:`.inputs` — reading what a merchant types (page links, amounts)

Functions take a SQLAlchemy session (and what else they need) plus the strings a form sent; they
return data or lists of problems in words a merchant understands::

    from flask_psp.admin.page import save_page
    problems = save_page(db.session, {"brand_name": "Atelier"}, "owner@example.com", ["en", "fr"])
"""

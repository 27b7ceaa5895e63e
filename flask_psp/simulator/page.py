"""The look of every simulated hosted page: one layout, filled with the values a simulator passes.

    html = render_page("Payment", brand="PayPlug", note="no real card is charged.", amount="12.34 EUR",
                       merchant="Demo shop", form=True, cards=(("4242424242424242", "success"),))

What the layout shows, each part only when its value is given: ``merchant``, ``amount`` and ``detail``
(the summary); ``message`` (in red when ``failed``), a ``back`` link to the shop, an ``error``; the card
form (``form``: fields ``card_number``, ``expiry``, ``cvc``, buttons ``action=pay|cancel``, posted to
``action`` or to the page itself) with the test ``cards``; ``choices`` (``(value, label)`` buttons named
``action``); the 3-D Secure ``challenge`` (field ``code``; ``code`` is the test answer, ``secret`` what
the bank calls it). ``lang``: the buyer's language as the shop sent it ("fr…": the page's words in
French, :data:`FRENCH`). A simulator that needs more passes ``template``: Jinja text that extends
``layout.html`` and fills its ``message`` or ``extra`` blocks.
"""

from __future__ import annotations

import functools

from jinja2 import DictLoader, Environment, Template

__all__ = ["LAYOUT", "render_page"]

LAYOUT = """<!doctype html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ w(title) }} · {{ brand }} {{ w("simulator") }}</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  .box { border: 1px solid #ccc; border-radius: 8px; padding: 1rem 1.25rem; }
  .amount { font-size: 1.6rem; font-weight: bold; }
  label { display: block; margin-top: .75rem; }
  input { width: 100%; padding: .4rem; font-size: 1rem; box-sizing: border-box; }
  button { margin-top: 1rem; padding: .5rem 1rem; font-size: 1rem; }
  .choices button { display: block; }
  .error { color: #a00; }
  .note { color: #666; font-size: .85rem; }
  table { border-collapse: collapse; margin-top: 1.5rem; font-size: .9rem; }
  td { padding: .2rem .5rem; border-top: 1px solid #eee; }
</style>
</head>
<body>
<p class="note">{{ brand }} {{ w("simulator") }} — {{ w(note) }}</p>
<main class="box">
<h1>{{ w(title) }}</h1>
{% if merchant %}<p id="merchant">{{ merchant }}</p>{% endif %}
{% if amount %}<p class="amount">{{ amount }}</p>{% endif %}
{% if detail %}<p class="note">{{ w(detail) }}</p>{% endif %}
{% block message %}{% if message %}<p{% if failed %} class="error"{% endif %}>{{ w(message) }}</p>{% endif %}{% endblock %}
{% if back %}<p><a href="{{ back }}">{{ w("Back to the shop") }}</a></p>{% endif %}
{% if error %}<p class="error" role="alert">{{ w(error) }}</p>{% endif %}
{% if form %}
<form method="post"{% if action %} action="{{ action }}"{% endif %}>
  <label>{{ w("Card number") }} <input name="card_number" inputmode="numeric" autocomplete="cc-number" required></label>
  <label>{{ w("Expiry (MM/YY)") }} <input name="expiry" placeholder="{{ w("MM/YY") }}" autocomplete="cc-exp" required></label>
  <label>{{ w("CVC") }} <input name="cvc" inputmode="numeric" autocomplete="cc-csc"></label>
  <button name="action" value="pay">{{ w("Pay") }} {{ amount }}</button>
  <button name="action" value="cancel" formnovalidate>{{ w("Cancel") }}</button>
</form>
<table>
  <caption>{{ w("Test cards (any future expiry, any CVC)") }}</caption>
  {% for number, meaning in cards %}<tr><td><code>{{ number }}</code></td><td>{{ w(meaning) }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if choices %}
<form method="post" class="choices">
  {% for value, label in choices %}<button name="action" value="{{ value }}">{{ w(label) }}</button>
  {% endfor %}</form>
{% endif %}
{% if challenge %}
<form method="post">
  <p>{{ w("Your bank asks you to confirm this payment.") }} {{ w("The test " ~ secret ~ " is") }} <code>{{ code }}</code>.</p>
  <label>{{ w(secret | capitalize) }} <input name="code" autocomplete="one-time-code" required></label>
  <button type="submit">{{ w("Confirm") }}</button>
</form>
{% endif %}
{% block extra %}{% endblock %}
</main>
</body>
</html>
"""

_environment = Environment(loader=DictLoader({"layout.html": LAYOUT}), autoescape=True, trim_blocks=True,
                           lstrip_blocks=True)
_DEFAULTS = {"lang": "en", "secret": "code", "cards": ()}

#: the hosted pages' words in French, for a buyer whose language the shop sent as French (as the real
#: PSPs show their pages in it); words not listed stay in English
FRENCH = {
    "simulator": "simulateur", "Payment": "Paiement", "Error": "Erreur", "3-D Secure": "3-D Secure",
    "Payment receipt": "Reçu de paiement", "Pay with PayPal": "Payer avec PayPal", "Unknown order": "Commande inconnue",
    "Unknown payment": "Paiement inconnu", "Back to the shop": "Retour à la boutique", "Card number": "Numéro de carte",
    "Expiry (MM/YY)": "Expiration (MM/AA)", "MM/YY": "MM/AA", "CVC": "Cryptogramme", "Pay": "Payer",
    "Cancel": "Annuler", "Confirm": "Confirmer", "Test cards (any future expiry, any CVC)":
    "Cartes de test (toute expiration future, tout cryptogramme)",
    "Your bank asks you to confirm this payment.": "Votre banque vous demande de confirmer ce paiement.",
    "The test code is": "Le code de test est", "The test password is": "Le mot de passe de test est",
    "Code": "Code", "Password": "Mot de passe", "test mode": "mode test",
    "no real card is charged.": "aucune vraie carte n'est débitée.",
    "This payment is paid.": "Ce paiement est payé.", "This payment is authorized.": "Ce paiement est autorisé.",
    "Your payment has been accepted.": "Votre paiement a été accepté.", "You cancelled the payment.": "Vous avez annulé le paiement.",
    "Enter a card number.": "Saisissez un numéro de carte.",
    "The card number must be 12 to 19 digits.": "Le numéro de carte a de 12 à 19 chiffres.",
    "Choose how to pay.": "Choisissez comment payer.", "This payment does not exist.": "Ce paiement n'existe pas.",
    "This payment page has been used.": "Cette page de paiement a déjà servi.",
    "success": "succès", "declined": "refusée", "3-D Secure challenge": "défi 3-D Secure",
}


def _words(lang: str):
    def word(text):
        if lang != "fr" or not isinstance(text, str):
            return text
        if text in FRENCH:
            return FRENCH[text]
        for english, french in FRENCH.items():  # "pay_… · test mode"
            if text.endswith(" · " + english):
                return text[: -len(english)] + french
        return text
    return word


@functools.lru_cache(maxsize=None)
def _template(text: str | None) -> Template:
    return _environment.get_template("layout.html") if text is None else _environment.from_string(text)


def render_page(title: str, *, brand: str, note: str, template: str | None = None, **context) -> str:
    """The HTML of one hosted page (values are escaped): ``note`` follows "<brand> simulator — " at the top."""
    values = {**_DEFAULTS, **context, "title": title, "brand": brand, "note": note}
    lang = str(values.get("lang") or "en")[:2].lower()
    return _template(template).render({**values, "lang": lang, "w": _words(lang)})

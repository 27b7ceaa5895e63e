"""The look of every simulated hosted page: one layout, filled with the values a simulator passes.

    html = render_page("Payment", brand="PayPlug", note="no real card is charged.", amount="12.34 EUR",
                       merchant="Demo shop", form=True, cards=(("4242424242424242", "success"),))

What the layout shows, each part only when its value is given: ``merchant``, ``amount`` and ``detail``
(the summary); ``message`` (in red when ``failed``), a ``back`` link to the shop, an ``error``; the card
form (``form``: fields ``card_number``, ``expiry``, ``cvc``, buttons ``action=pay|cancel``, posted to
``action`` or to the page itself) with the test ``cards``; ``choices`` (``(value, label)`` buttons named
``action``); the 3-D Secure ``challenge`` (field ``code``; ``code`` is the test answer, ``secret`` what
the bank calls it). A simulator that needs more passes ``template``: Jinja text that extends
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
<title>{{ title }} · {{ brand }} simulator</title>
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
<p class="note">{{ brand }} simulator — {{ note }}</p>
<main class="box">
<h1>{{ title }}</h1>
{% if merchant %}<p id="merchant">{{ merchant }}</p>{% endif %}
{% if amount %}<p class="amount">{{ amount }}</p>{% endif %}
{% if detail %}<p class="note">{{ detail }}</p>{% endif %}
{% block message %}{% if message %}<p{% if failed %} class="error"{% endif %}>{{ message }}</p>{% endif %}{% endblock %}
{% if back %}<p><a href="{{ back }}">Back to the shop</a></p>{% endif %}
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
{% if form %}
<form method="post"{% if action %} action="{{ action }}"{% endif %}>
  <label>Card number <input name="card_number" inputmode="numeric" autocomplete="cc-number" required></label>
  <label>Expiry (MM/YY) <input name="expiry" placeholder="MM/YY" autocomplete="cc-exp" required></label>
  <label>CVC <input name="cvc" inputmode="numeric" autocomplete="cc-csc"></label>
  <button name="action" value="pay">Pay {{ amount }}</button>
  <button name="action" value="cancel" formnovalidate>Cancel</button>
</form>
<table>
  <caption>Test cards (any future expiry, any CVC)</caption>
  {% for number, meaning in cards %}<tr><td><code>{{ number }}</code></td><td>{{ meaning }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if choices %}
<form method="post" class="choices">
  {% for value, label in choices %}<button name="action" value="{{ value }}">{{ label }}</button>
  {% endfor %}</form>
{% endif %}
{% if challenge %}
<form method="post">
  <p>Your bank asks you to confirm this payment. The test {{ secret }} is <code>{{ code }}</code>.</p>
  <label>{{ secret | capitalize }} <input name="code" autocomplete="one-time-code" required></label>
  <button type="submit">Confirm</button>
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


@functools.lru_cache(maxsize=None)
def _template(text: str | None) -> Template:
    return _environment.get_template("layout.html") if text is None else _environment.from_string(text)


def render_page(title: str, *, brand: str, note: str, template: str | None = None, **context) -> str:
    """The HTML of one hosted page (values are escaped): ``note`` follows "<brand> simulator — " at the top."""
    return _template(template).render({**_DEFAULTS, **context, "title": title, "brand": brand, "note": note})

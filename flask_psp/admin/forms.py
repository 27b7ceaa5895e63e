"""What the panel's forms share: a Flask-WTF form base and a checkbox read the way browsers send it.

A form is bound to the request in a view (``form = PageForm()`` reads ``request.form`` and
``request.files`` on a POST), or to a dict anywhere else (``PageForm(formdata={...})``, for the
demo and tests)::

    form = page_form(["en", "fr"], {"brand_name": "Atelier", "primary_color": "#1f5f99"})
    form.validate() and not problems(form)
"""

from __future__ import annotations

from typing import Any, Mapping

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField


class AdminForm(FlaskForm):
    """Base of the panel's forms. CSRF is checked once for every admin POST, forms and plain
    buttons alike, by :func:`~flask_psp.views.admin.base.admin_route`: not again here."""

    class Meta:
        csrf = False

    @classmethod
    def bound(cls, formdata: Mapping[str, Any] | None = None, **kwargs) -> "AdminForm":
        """The form bound to ``formdata`` (a dict or a MultiDict), or to the request when None."""
        if formdata is None:
            return cls(**kwargs)
        if not hasattr(formdata, "getlist"):
            formdata = MultiDict(formdata)
        return cls(formdata=formdata, **kwargs)


class Checkbox(BooleanField):
    """Ticked when the browser sends one of ``true_values`` ("on" for a plain checkbox); any other
    value, or none, is unticked."""

    def __init__(self, label=None, validators=None, true_values: tuple[str, ...] = ("on", "1"), **kwargs):
        super().__init__(label, validators, **kwargs)
        self.true_values = true_values

    def process_formdata(self, valuelist):
        self.data = bool(valuelist) and valuelist[0] in self.true_values


def stripped(value: Any) -> str:
    """Filter: what was typed, without surrounding blanks; nothing sent reads as ""."""
    return (value or "").strip() if isinstance(value, str) or value is None else value


def problems(form: FlaskForm) -> list[str]:
    """The form's errors as the panel lists them: in the order of the form's fields."""
    return [str(error) for field in form for error in field.errors]

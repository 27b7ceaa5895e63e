"""The plugin's blueprint ``psp``: buyer pages, PSP notifications and (later) the admin panel."""

from flask import Blueprint

from ..extension import STATIC_FOLDER, TEMPLATE_FOLDER

blueprint = Blueprint(
    "psp",
    __name__,
    template_folder=TEMPLATE_FOLDER,
    static_folder=STATIC_FOLDER,
    static_url_path="/static",
)

from . import admin, checkout, notify  # noqa: E402,F401  (routes register on import)

"""The plugin's blueprint ``psp``: buyer pages, PSP notifications and the admin panel."""

from flask import Blueprint, request

from ..extension import STATIC_FOLDER, TEMPLATE_FOLDER

blueprint = Blueprint(
    "psp",
    __name__,
    template_folder=TEMPLATE_FOLDER,
    static_folder=STATIC_FOLDER,
    static_url_path="/static",
)

#: what every answer of the blueprint but ``/notify`` carries: never framed (clickjacking of the
#: checkout's or the panel's buttons), the page's address (order reference, token) never sent to other
#: sites, and no guessing of content types. Only ``frame-ancestors`` in the CSP: the Sips checkout is an
#: auto-submitting form posting to Sips' host, which a ``form-action`` or ``script-src`` would have to allow
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


@blueprint.after_request
def _page_headers(response):
    if request.endpoint != "psp.notify":
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)  # a header a view set itself is kept
    return response


from . import admin, checkout, notify, pay  # noqa: E402,F401  (routes register on import)

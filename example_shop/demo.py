"""``make demo``: the example shop and the PSP simulators in one process.

Prints the shop's URL, the admin panel's and the demo merchant login; Ctrl-C stops everything.
"""

from __future__ import annotations

import os

from werkzeug.serving import run_simple

HOST = os.environ.get("DEMO_HOST", "127.0.0.1")
SHOP_PORT = int(os.environ.get("DEMO_PORT", "5000"))
SIMULATOR_PORT = int(os.environ.get("DEMO_SIMULATOR_PORT", "8101"))
DEMO_EMAIL = "merchant@example.com"
DEMO_PASSWORD = "demo-merchant-2026"


def main() -> None:
    from flask_psp.simulator import create_simulator

    simulator = create_simulator("payplug", retry_delays=(2, 10, 30, 60))
    sim_server = simulator.serve(HOST, SIMULATOR_PORT)
    os.environ["PSP_SIMULATOR_URL"] = sim_server.url

    from example_shop import create_app, psp
    from flask_psp.models import AdminUser

    shop_url = f"http://{HOST}:{SHOP_PORT}"
    app = create_app({"PSP_PUBLIC_URL": shop_url})
    with app.app_context():
        db = app.extensions["psp"].db
        if db.session.query(AdminUser).filter_by(email=DEMO_EMAIL).first() is None:
            psp.create_user(DEMO_EMAIL, DEMO_PASSWORD, role="owner")
    print(
        f"""
  flask-psp demo
  shop:            {shop_url}/
  admin panel:     {shop_url}{app.config['PSP_URL_PREFIX']}/admin/   login {DEMO_EMAIL} / {DEMO_PASSWORD}
  PayPlug (sim.):  {sim_server.url}   test card 4242 4242 4242 4242, 3-D Secure 4000 0000 0000 3220 (code 1234),
                   declined 4000 0000 0000 0002
  Ctrl-C stops the shop and the simulators.
""",
        flush=True,
    )
    try:
        run_simple(HOST, SHOP_PORT, app, threaded=True, use_reloader=False)
    finally:
        sim_server.stop()
        simulator.notifier.close()


if __name__ == "__main__":
    main()

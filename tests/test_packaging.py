"""The wheel carries templates, static files, translations and migrations: installed into a fresh
virtualenv (without the source tree), it renders the checkout page in French."""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import flask_psp, sys
    assert "{venv}" in flask_psp.__file__, flask_psp.__file__
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy
    from flask_psp import PSP, OrderInfo

    class Orders:
        def get(self, ref):
            return OrderInfo(ref, 1234, "EUR", locale="fr")
        def mark_paid(self, ref, payment):
            pass

    app = Flask("host")
    app.config.update(TESTING=True, SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://")
    db = SQLAlchemy(app)
    psp = PSP(app, db=db, orders=Orders())
    with app.app_context():
        psp.upgrade_database()
    client = app.test_client()
    page = client.get("/psp/checkout/A-1")
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    css = client.get("/psp/static/psp/psp.css")
    assert css.status_code == 200 and b"--psp-primary" in css.data
    print(html)
    """
)


def run(*command: str, **options) -> subprocess.CompletedProcess:
    """Run ``command``; when it fails, the assertion shows its stderr (and stdout), not only its exit code."""
    result = subprocess.run(command, capture_output=True, text=True, **options)
    assert result.returncode == 0, f"{command[:3]}… exited {result.returncode}\n{result.stderr}\n{result.stdout}"
    return result


#: what the wheel is built from: a copy of these, so that the build writes nothing into the checkout
#: (two suites can run side by side: .ci/run)
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "flask_psp", "templates", "static")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source), cwd=source)
    (path,) = out.glob("flask_psp-*.whl")
    return path


def test_wheel_ships_templates_static_translations_and_migrations(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for expected in (
        "flask_psp/templates/psp/base.html",
        "flask_psp/templates/psp/checkout.html",
        "flask_psp/static/psp/psp.css",
        "flask_psp/translations/fr/LC_MESSAGES/flask_psp.mo",
        "flask_psp/migrations/versions/0001_initial_schema.py",
    ):
        assert expected in names
    assert not any(n.startswith(("example_shop/", "tests/")) for n in names)


def test_installed_wheel_renders_the_checkout_page(wheel, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    site = run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    # the wheel itself, unpacked as pip would; its dependencies come from the test environment
    import zipfile

    zipfile.ZipFile(wheel).extractall(site)
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "deps.pth").write_text(deps + "\n")
    script = tmp_path / "render.py"
    script.write_text(SCRIPT.format(venv=str(venv)))
    result = run(str(python), str(script), cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert "Payer la commande A-1" in result.stdout
    assert "12,34" in result.stdout

"""Dependencies point one way (DESIGN.md): views → providers → core. The core — the pure
vocabulary and states, the models and the ledger that moves money — imports no view and no
provider, so a change to one PSP's module can never change how news is applied."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "flask_psp"
CORE = ("events.py", "states.py", "models.py", "ledger.py", "money.py", "movements.py")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against ``flask_psp``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "flask_psp" if node.level == 1 else ""
            module = ".".join(filter(None, (base, node.module)))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def reaches_out(name: str) -> bool:
    """Is ``name`` Flask, a Flask extension, or a part of the plugin outside the core?"""
    top = name.split(".")[0]
    if top == "flask_psp":
        return not any(name == c or name.startswith(c + ".") for c in CORE_MODULES)
    return top == "flask" or top.startswith("flask_")


CORE_MODULES = [f"flask_psp.{name.removesuffix('.py')}" for name in CORE]


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_nothing_but_the_core_and_no_flask(module):
    outward = sorted(filter(reaches_out, imported_modules(PACKAGE / module)))
    assert outward == [], f"{module} reaches out of the core: {outward}"



def test_no_module_of_the_plugin_is_named_after_a_standard_or_installed_package():
    """``flask_psp/secrets.py`` read as the standard library's ``secrets`` in a traceback or an
    editor's jump-to; ``celery.py`` as the celery package. Only the deprecated alias is left."""
    import sys
    from importlib.metadata import packages_distributions

    installed = set(packages_distributions()) - {"flask_psp"}
    shadowing = []
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        if name == "celery":  # flask_psp.celery: deprecated alias of celery_tasks, kept for old READMEs
            continue
        if name in sys.stdlib_module_names or name in installed:
            shadowing.append(name)
    assert shadowing == []


def test_the_old_celery_module_name_still_works_and_says_it_is_deprecated():
    import importlib
    import sys

    from flask_psp import celery_tasks

    sys.modules.pop("flask_psp.celery", None)
    with pytest.warns(DeprecationWarning, match="celery_tasks"):
        old = importlib.import_module("flask_psp.celery")
    assert old.init_celery is celery_tasks.init_celery

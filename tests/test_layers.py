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

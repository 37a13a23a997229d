"""The house rules that keep the architecture honest (README "Architecture").

* import-linter's contracts in ``pyproject.toml``: the layers, only the job layer reaches
  provider packages, providers never import the gateway, and no import cycle anywhere.
* No dependency internals: no import of a private module of a dependency, and no access to
  a private attribute (``x._name``) of anything but the object's own class (``self``/``cls``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("gateway", "providers", "tests", "benchmarks")


def _sources() -> list[Path]:
    return sorted(p for pkg in ("gateway", "providers") for p in (ROOT / pkg).rglob("*.py"))


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert result.stdout.count("KEPT") == 4, result.stdout


def _private_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] not in OURS and any(p.startswith("_") and not p.startswith("__") for p in parts)


def _private_access(node: ast.Attribute) -> bool:
    attr = node.attr
    if not attr.startswith("_") or attr.startswith("__"):
        return False
    return not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))


def _foreign_names(tree: ast.Module) -> set[str]:
    """Names this module imports from outside the project."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in OURS:
                names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names - set(OURS)


def _inherited_privates(tree: ast.Module, name: str) -> list[str]:
    """``self._x`` in a class that subclasses a dependency's class, where ``_x`` is not
    the class's own (assigned or defined in its body): a private attribute inherited
    from the dependency."""
    foreign = _foreign_names(tree)
    found = []
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        roots = {ast.unparse(b).split(".")[0].split("[")[0] for b in cls.bases}
        if not roots & foreign:
            continue
        own = {
            t.attr
            for n in ast.walk(cls)
            if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Attribute)
        }
        own |= {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        own |= {
            t.id
            for n in cls.body
            if isinstance(n, (ast.Assign, ast.AnnAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Name)
        }
        for n in ast.walk(cls):
            if (
                isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id in ("self", "cls")
                and n.attr.startswith("_")
                and not n.attr.startswith("__")
                and n.attr not in own
            ):
                found.append(f"{name}:{n.lineno}: {cls.name} uses inherited {n.attr}")
    return found


def find_internals(source: str, name: str = "<source>") -> list[str]:
    """Every private-module import and foreign private-attribute access in ``source``."""
    tree = ast.parse(source, name)
    found = _inherited_privates(tree, name)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _private_module(node.module):
                found.append(f"{name}:{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Import):
            found += [
                f"{name}:{node.lineno}: import {a.name}"
                for a in node.names
                if _private_module(a.name)
            ]
        elif isinstance(node, ast.Attribute) and _private_access(node):
            found.append(f"{name}:{node.lineno}: ._{node.attr.lstrip('_')}")
    return found


def test_the_check_finds_internals() -> None:
    bad = (
        "from litestar._openapi.x import Y\n"
        "import redis._parsers\n"
        "session._retry_connection = False\n"
        "self._pool._waiters\n"
    )
    assert len(find_internals(bad)) == 4
    assert find_internals("self._own = 1\ncls._cache\nfrom gateway.api import app\n") == []
    subclass = (
        "from redis.asyncio import BlockingConnectionPool\n"
        "class Pool(BlockingConnectionPool):\n"
        "    def __init__(self):\n"
        "        self._mine = 1\n"
        "    def get(self):\n"
        "        return self._available_connections, self._mine, self._helper()\n"
        "    def _helper(self):\n"
        "        return 0\n"
    )
    assert find_internals(subclass) == ["<source>:6: Pool uses inherited _available_connections"]


def test_no_dependency_internals() -> None:
    found = [hit for path in _sources() for hit in find_internals(path.read_text(), str(path.name))]
    assert found == []

"""The house plan (ARCHITECTURE.md): four floors, golden < hw < sim < model, and a floor never imports a higher
one. Every .py under the four folders is parsed (not imported): module-level and function-level ``import x`` /
``from x import y`` (relative ones resolved against the file's package) and ``importlib.import_module("...")``
/ ``__import__("...")`` with a string literal."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOORS = ("golden", "hw", "sim", "model")
LEVEL = {f: i for i, f in enumerate(FLOORS)}


def imported_modules(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``path`` (a file under ``root``), wherever it stands in the file,
    in the file's order."""
    package = list(path.relative_to(root).parent.parts)     # sim/hdl/x.py -> ["sim", "hdl"]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:      # relative: from . import x / from ..y import z
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                out.append((node.lineno, node.args[0].value))
    return sorted(out)


def upward_imports() -> list[str]:
    bad = []
    for floor in FLOORS:
        for path in sorted((REPO / floor).rglob("*.py")):
            for line, mod in imported_modules(path):
                top = mod.split(".")[0]
                if top in LEVEL and LEVEL[top] > LEVEL[floor]:
                    bad.append(f"{path.relative_to(REPO)}:{line}: {floor} imports {mod} ({top} is a higher floor)")
    return bad


def test_every_floor_has_python_files():
    for floor in FLOORS:
        assert any((REPO / floor).rglob("*.py")), floor


def test_no_floor_imports_a_higher_one():
    bad = upward_imports()
    assert not bad, "upward imports (golden < hw < sim < model):\n" + "\n".join(bad)


def test_the_checker_sees_every_kind_of_import(tmp_path):
    src = tmp_path / "hw" / "jpeg" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text("import sim.run\nfrom model import api\nfrom .. import engine\nfrom .dct import f\n\n"
                   "def g():\n    from golden.arch import DEFAULT_ARCH\n    import importlib\n"
                   "    importlib.import_module('model.cli')\n    __import__('sim')\n")
    assert [m for _, m in imported_modules(src, tmp_path)] == [
        "sim.run", "model", "hw", "hw.jpeg.dct", "golden.arch", "importlib", "model.cli", "sim"]

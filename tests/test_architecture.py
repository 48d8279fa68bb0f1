"""docs/ARCHITECTURE.md is a true map of the package: it is read here, so a stale page fails.

- Every module of the package (every .py file under nmt/) has a row in its module table, and every module
  the page names (a path `nmt/....py` or a dotted `nmt.x.y`) exists.
- Every import between the package's modules (read with ast, function-level and TYPE_CHECKING imports
  included) follows the page's layer order: a module imports only from its own layer or lower ones.
- Nothing imports nmt.cli but nmt.__main__ (and nmt.cli itself).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nmt"
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def module_name(path: Path) -> str:
    """nmt/text/corpus.py -> nmt.text.corpus; nmt/text/__init__.py -> nmt.text; nmt/__init__.py -> nmt."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {name for name, p in FILES.items() if p.name == "__init__.py"}


def layers() -> dict[str, int]:
    """The layer order as the page states it: {name: layer}, names as written (nmt.__init__ = the package)."""
    section = DOC.split("## Layer order", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, flags=re.S).group(1)
    order = {}
    for line in block.splitlines():
        match = re.fullmatch(r"layer (\d+)\s+(\S.*)", line.strip())
        assert match, f"docs/ARCHITECTURE.md: a layer line reads 'layer N  name[, name]': {line!r}"
        for name in match.group(2).split(","):
            order[name.strip()] = int(match.group(1))
    return order


def layer_of(module: str, order: dict[str, int]) -> int:
    key = "nmt.__init__" if module == "nmt" else module
    best = max((n for n in order if key == n or key.startswith(n + ".")), key=len, default=None)
    assert best is not None, f"{module}: in no layer of docs/ARCHITECTURE.md"
    return order[best]


def imports(module: str) -> set[str]:
    """The package modules `module` imports (nmt.x.y when that is a module, else the module it comes from)."""
    path = FILES[module]
    package = module if module in PACKAGES else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in FILES else source for alias in node.names]
        else:
            continue
        for name in names:
            if name == "nmt" or name.startswith("nmt."):
                while name not in FILES:  # an attribute: the module it is read from
                    name = name.rpartition(".")[0]
                found.add(name)
    return found


def test_every_module_has_a_row_and_every_row_is_a_module():
    rows = set(re.findall(r"^\| `(nmt/[\w/]+\.py)` \|", DOC, flags=re.M))
    actual = {str(p.relative_to(ROOT)) for p in FILES.values()}
    assert not actual - rows, f"modules missing from docs/ARCHITECTURE.md's table: {sorted(actual - rows)}"
    assert not rows - actual, f"docs/ARCHITECTURE.md names modules that do not exist: {sorted(rows - actual)}"


def test_every_module_the_page_names_exists():
    for path in set(re.findall(r"\bnmt/[\w/]+\.py\b", DOC)):
        assert (ROOT / path).is_file(), f"docs/ARCHITECTURE.md names {path}, which does not exist"
    for dotted in set(re.findall(r"(?<![\w./])nmt(?:\.\w+)+", DOC)):
        parts = dotted.split(".")
        if dotted in ("nmt.__init__", "nmt.__main__"):
            continue
        known = [i for i in range(len(parts), 1, -1) if ".".join(parts[:i]) in FILES]
        assert known, f"docs/ARCHITECTURE.md names {dotted}: no such module"
        module, rest = ".".join(parts[: known[0]]), parts[known[0] :]
        if rest:  # an attribute of the module: a name the module defines or imports
            tree = ast.parse(FILES[module].read_text(encoding="utf-8"))
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if hasattr(t, "id")}
            defined |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
            assert rest[0] in defined, f"docs/ARCHITECTURE.md names {dotted}: {module} has no {rest[0]}"


def test_every_layer_of_the_page_exists_and_every_module_has_one():
    order = layers()
    assert sorted(set(order.values())) == list(range(1, max(order.values()) + 1)), order
    for name in order:
        assert name == "nmt.__init__" or name in FILES, f"docs/ARCHITECTURE.md's layer {name}: no such module"
    for module in FILES:
        layer_of(module, order)


def test_imports_follow_the_layer_order():
    order = layers()
    upward = []
    for module in FILES:
        mine = layer_of(module, order)
        for imported in sorted(imports(module)):
            if imported != "nmt" and layer_of(imported, order) > mine:
                upward.append(f"{module} (layer {mine}) imports {imported} (layer {layer_of(imported, order)})")
    assert not upward, "imports against the layer order of docs/ARCHITECTURE.md:\n" + "\n".join(upward)


def test_only_the_main_module_imports_the_command_line():
    for module in FILES:
        if module == "nmt.__main__" or module == "nmt.cli" or module.startswith("nmt.cli."):
            continue
        cli = sorted(m for m in imports(module) if m == "nmt.cli" or m.startswith("nmt.cli."))
        assert not cli, f"{module} imports {cli}: only nmt/__main__.py may"


def test_the_import_reader_sees_what_the_modules_import():
    """The checks above are only as good as `imports`: spot-check it on imports known to be there."""
    assert "nmt.cli" in imports("nmt.__main__")
    assert {"nmt.model.gru"} <= imports("nmt.model.encoder")
    assert {"nmt.errors", "nmt.files"} <= imports("nmt.text.toy_corpus")
    assert "nmt.decode.translator" in imports("nmt.train.trainer")

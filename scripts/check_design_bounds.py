"""Static design bounds over the package (ast only, nothing is imported).

    python scripts/check_design_bounds.py [PACKAGE_DIR]      # default: sdap_cli next to this folder

Prints one count per bound and exits 1 if any bound fails:

* files over 400 lines;
* function bodies over 60 lines (from the first statement after the docstring to the last line);
* private names (``_x``) imported from another module of the package;
* modules of ``commands/`` importing another command module;
* atomic-rename sites (calls of ``os.replace`` / ``os.rename`` / ``Path.rename``/``.replace(`` with a
  path): exactly one allowed;
* ``isinstance``/``issubclass``/``type(x) is`` checks on a network class (``DBSNl``, ``StudentUNet``)
  outside the network modules, the network table and the checkpoint loading code;
* folders of the package holding more than 12 modules;
* import loops between modules (imports under ``if TYPE_CHECKING`` do not count, nor those of the package's
  own ``__getattr__`` in its ``__init__.py``: the lazy re-export of the public API, the facade on top);
* imports that run against the layers (``LAYERS``: an import must go to a lower layer or stay in its
  own wing; wings of one layer do not import each other).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FILE_LINES = 400
MAX_BODY_LINES = 60
MAX_FOLDER_MODULES = 12
NETWORK_CLASSES = {"DBSNl", "StudentUNet"}
# where asking for a network's class is allowed: the networks themselves, their table, the loading code
NETWORK_MODULES = {"method/dbsnl.py", "method/student.py", "method/networks.py", "inference/checkpoints.py"}
# the layers, top first: a module may import from a lower layer, or from its own wing (first part of its path)
LAYERS = [{"__main__"}, {"cli"}, {"progress"}, {"options", "console"}, {"commands"}, {"api"}, {"training"},
          {"inference", "evaluation"},
          {"io", "method"}, {"training_config"}, {"config", "config_sources"}, {"errors"}, {"__init__"}]


def _module_name(rel: Path) -> str:
    return ".".join(rel.with_suffix("").parts)


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    """Absolute dotted name (inside the package) of a ``from X import`` target."""
    if node.level == 0:
        return node.module or ""
    base = mod.split(".")[:-node.level]
    return ".".join(base + ([node.module] if node.module else []))


def _names(node: ast.AST) -> set[str]:
    """Every name and attribute name inside an expression."""
    return {x.id for x in ast.walk(node) if isinstance(x, ast.Name)} | \
        {x.attr for x in ast.walk(node) if isinstance(x, ast.Attribute)}


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def _layer(mod: str, top: str) -> tuple[int, str] | None:
    """(layer index, wing) of a dotted module name inside the package."""
    parts = mod.split(".")[1:] or ["__init__"]
    wing = parts[0]
    for i, layer in enumerate(LAYERS):
        if wing in layer:
            return i, wing
    return None


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in _names(node.test)


def _lazy_export(node: ast.AST) -> bool:
    """A module-level ``def __getattr__``: in the package's ``__init__.py``, the lazy re-export of its API."""
    return isinstance(node, ast.FunctionDef) and node.name == "__getattr__"


def _imports(tree: ast.AST, root: bool = False) -> list[ast.ImportFrom]:
    """The ``from`` imports of a module, those under ``if TYPE_CHECKING`` left out (and, in the package's
    ``__init__.py`` (``root``), those of its ``__getattr__``)."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking(child) or (root and node is tree and _lazy_export(child)):
                continue
            if isinstance(child, ast.ImportFrom):
                out.append(child)
            todo.append(child)
    return out


def _loops(graph: dict[str, set[str]]) -> list[str]:
    """Import loops: strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(" <-> ".join(sorted(group)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _layer_check(found: dict, graph: dict[str, set[str]], top: str) -> None:
    for mod, targets in sorted(graph.items()):
        src = _layer(mod, top)
        for t in sorted(targets):
            dst = _layer(t, top)
            if src is None or dst is None or src[1] == dst[1]:
                continue
            if dst[0] <= src[0]:
                found["layer_violations"].append(f"{mod} -> {t}")


def check(pkg: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {k: [] for k in ("long_files", "long_functions", "private_imports",
                                                    "command_imports", "atomic_renames", "network_dispatch",
                                                    "crowded_folders", "import_loops", "layer_violations")}
    graph: dict[str, set[str]] = {}
    modules = {".".join((pkg.name,) + p.relative_to(pkg).with_suffix("").parts) for p in pkg.rglob("*.py")}
    for folder in sorted({p.parent for p in pkg.rglob("*.py")}):
        n = sum(1 for p in folder.glob("*.py") if p.name != "__init__.py")
        if n > MAX_FOLDER_MODULES:
            found["crowded_folders"].append(f"{folder.relative_to(pkg.parent).as_posix()}: {n} modules")
    top = pkg.name
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg)
        where = rel.as_posix()
        text = path.read_text()
        tree = ast.parse(text)
        mod = _module_name(Path(top) / rel)
        if rel.name == "__init__.py":
            mod = mod.removesuffix(".__init__") + ".__init__"
        for node in _imports(tree, root=where == "__init__.py"):
            target = _resolve(mod, node)
            if target.startswith(top):
                for t in [target] + [f"{target}.{a.name}" for a in node.names]:
                    t = t if t in modules else (t + ".__init__" if t + ".__init__" in modules else None)
                    if t is not None and t != mod:
                        graph.setdefault(mod, set()).add(t)
        n = len(text.splitlines())
        if n > MAX_FILE_LINES:
            found["long_files"].append(f"{where}: {n} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                b = _body_lines(node)
                if b > MAX_BODY_LINES:
                    found["long_functions"].append(f"{where}:{node.lineno} {node.name}: {b} lines")
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(mod, node)
                if not target.startswith(top):
                    continue
                for a in node.names:
                    if a.name.startswith("_") and not a.name.endswith("__") and target != mod:
                        found["private_imports"].append(f"{where}:{node.lineno} {a.name} from {target}")
                if where.startswith("commands/") and rel.name != "__init__.py":
                    names = [target] + [f"{target}.{a.name}" for a in node.names]
                    if any(t.startswith(f"{top}.commands.") and t != mod for t in names) or \
                            (target == f"{top}.commands" and node.names):
                        found["command_imports"].append(f"{where}:{node.lineno} from {target}")
            elif isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Attribute) and f.attr in ("replace", "rename"):
                    is_os = isinstance(f.value, ast.Name) and f.value.id == "os"
                    # str.replace(a, b) takes two string arguments; os.replace / Path.replace take paths
                    if is_os or (f.attr == "rename" and len(node.args) == 1):
                        found["atomic_renames"].append(f"{where}:{node.lineno}")
                if isinstance(f, ast.Name) and f.id in ("isinstance", "issubclass") and len(node.args) == 2 \
                        and where not in NETWORK_MODULES and _names(node.args[1]) & NETWORK_CLASSES:
                    found["network_dispatch"].append(f"{where}:{node.lineno}")
            elif isinstance(node, ast.Compare) and where not in NETWORK_MODULES:
                # type(x) is DBSNl, type(x) == StudentUNet, ...
                sides = [node.left, *node.comparators]
                asks_type = any(isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id == "type"
                                for x in sides)
                if asks_type and any(_names(x) & NETWORK_CLASSES for x in sides):
                    found["network_dispatch"].append(f"{where}:{node.lineno}")
    found["import_loops"] = _loops(graph)
    _layer_check(found, graph, top)
    return found


LIMITS = {"long_files": 0, "long_functions": 0, "private_imports": 0, "command_imports": 0,
          "atomic_renames": 1, "network_dispatch": 0, "crowded_folders": 0, "import_loops": 0, "layer_violations": 0}


def main(argv: list[str]) -> int:
    pkg = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "sdap_cli"
    found = check(pkg)
    ok = True
    for key, items in found.items():
        limit = LIMITS[key]
        bad = len(items) > limit
        ok &= not bad
        print(f"{key}: {len(items)} (limit {limit}){'  FAIL' if bad else ''}")
        for item in items:
            print(f"    {item}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The package's shape: layers that import only downwards, small modules, one home per idea.

Imports are read from the source with ``ast``, those inside functions included; only imports under
``if TYPE_CHECKING:`` are left out (they never run).
"""

import ast
from pathlib import Path

import pytest

import distmatch

PACKAGE = Path(distmatch.__file__).parent
MAX_LINES = 420  # "no module over ~400 lines"
MAX_FLAT = 12

# Bottom first; a module may import its own layer's peers only where listed in PEERS.
LAYERS = [
    {"_core"},
    {"distances", "distributed", "data", "models"},
    {"runs", "report"},
    {"sketch"},
    {"window", "objectives"},
    {"evaluation"},
    {"training", "generation"},
    {"reproduce"},
    {"cli", "__main__"},
]
PEERS = {("report", "runs"), ("objectives", "window"), ("__main__", "cli")}  # (importer, imported)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> set[str]:
    """The distmatch modules ``path`` imports (resolved), at any depth but TYPE_CHECKING blocks."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("distmatch"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("distmatch"):
                for alias in node.names:  # "from . import sketch" imports a module
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if candidate in MODULES else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p) for p in SOURCES}
GRAPH = {module_name(p): imports_of(p) for p in SOURCES}


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if top(name) in layer:
            return i
    raise AssertionError(f"{name} belongs to no layer of LAYERS")


def test_at_most_twelve_modules_sit_flat_at_the_top():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= MAX_FLAT, flat


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_size_limit(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_every_module_is_in_a_layer():
    for name in MODULES - {"distmatch"}:
        layer_of(name)


def test_layers_import_only_downwards():
    wrong = []
    for name, targets in GRAPH.items():
        if name == "distmatch":
            continue
        for target in targets:
            if target == "distmatch" or top(target) == top(name):
                continue
            a, b = layer_of(name), layer_of(target)
            if b > a or (b == a and (top(name), top(target)) not in PEERS):
                wrong.append(f"{name} -> {target}")
    assert not wrong, wrong


def test_private_modules_never_import_their_own_face():
    wrong = []
    for name, targets in GRAPH.items():
        package, _, leaf = name.rpartition(".")
        if leaf.startswith("_") and package in targets and package != "distmatch":
            wrong.append(f"{name} -> {package}")
    assert not wrong, wrong


def test_there_is_no_import_cycle():
    state: dict[str, int] = {}
    cycles = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in GRAPH.get(node, ()):
            if target not in GRAPH:
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target, [*path, target])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            walk(module, [module])
    assert not cycles, cycles

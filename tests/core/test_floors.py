"""The floor plan, drawn as installed (cdinn.model = model/, ...): no module imports one on a higher floor,
at module level or inside a function, and no modules import each other in a circle."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "cdinn": "cdinn",
    "model": "cdinn.model",
    "quantize": "cdinn.quantize",
    "firmware": "cdinn.firmware",
    "host": "cdinn.host",
}
FLOORS = [
    ("cdinn.errors", "cdinn.options", "cdinn.quiet", "cdinn.cards", "cdinn.io"),  # the basement: imports no floor
    ("cdinn.model",),  # physics, networks, training, metrics
    ("cdinn.artefacts",),  # where a network set's artefacts live (paths only)
    ("cdinn.quantize",),
    ("cdinn.firmware",),
    ("cdinn.inversion",),  # patterns -> backend -> fit -> refine
    ("cdinn.host",),  # backends, sources, the runner, the writers
    ("cdinn.api",),
    ("cdinn.evaluation",),  # scores the networks through the API
    ("cdinn.cli", "cdinn"),  # the commands and the package facade
]


def module_name(path: Path) -> str:
    parts = [PACKAGES[path.relative_to(ROOT).parts[0]], *path.relative_to(ROOT).parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int:
    best = max(
        (prefix for level in FLOORS for prefix in level if module == prefix or module.startswith(prefix + ".")), key=len
    )
    return next(i for i, level in enumerate(FLOORS) if best in level)


def imports() -> dict[str, set[str]]:
    """Each cdinn module's cdinn imports (``from cdinn.x import y`` counts as cdinn.x.y when that is a module)."""
    modules = {module_name(p): p for top in PACKAGES for p in (ROOT / top).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        tree = ast.parse(path.read_text())
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:  # annotations only, never imported at run time
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cdinn":
                targets |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                }
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "cdinn"}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_module_imports_a_higher_floor():
    upward = sorted(f"{m} -> {t}" for m, targets in imports().items() for t in targets if floor(t) > floor(m))
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    graph = imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []

"""The house's floors: a package imports only from its own floor or the floors below it.

The order is written out here, so a new package has to be placed on purpose and the next
feature cannot quietly make a shared type depend on a page of the console. Every import
counts: function-local and `TYPE_CHECKING` ones too, since those are how a cycle hides.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROUTER = Path(__file__).resolve().parent.parent / "router"

# Lowest first. A module sits on the floor of its top-level name under `router`.
FLOORS: list[set[str]] = [
    # The ground floor: the shared types and the small vocabularies everything speaks.
    {"model", "identity", "metrics", "durations", "secrets", "matchers", "cancel"},
    # When things happen: rotations, time intervals.
    {"schedules"},
    # Words and messages, from the model alone.
    {"render"},
    # Durable state behind narrow protocols.
    {"store"},
    # routes.yaml, parsed into types.
    {"config"},
    # Where an alert goes: the route tree, inhibition.
    {"routing"},
    # The peers we call and the things we compute from config and store.
    {"alertmanager_api", "channels", "enrich", "importer", "replay", "oncall"},
    # One compiled config, swapped whole on reload.
    {"runtime"},
    # The notify pipeline: per receiver, mute/inhibit/dedup -> enrich -> deliver.
    {"notify"},
    # What feeds the pipeline: webhooks, heartbeats, people's clicks, route tests.
    {"ingest"},
    {"heartbeats", "interact", "routetest"},
    # The HTTP surface and the command line.
    {"web"},
    {"cli", "__main__"},
]


def _floor_of(unit: str) -> int:
    for index, floor in enumerate(FLOORS):
        if unit in floor:
            return index
    raise AssertionError(f"router/{unit} is on no floor: add it to FLOORS in {__name__}")


def _module_name(path: Path, root: Path = ROUTER) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = ROUTER) -> Iterator[tuple[int, str]]:
    """(line, module) for every module the file imports, wherever in the file it does."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield node.lineno, target
            # `from router import x` imports a unit when x is a module (else a root name).
            if target == "router":
                for alias in node.names:
                    if (root / alias.name).is_dir() or (root / f"{alias.name}.py").is_file():
                        yield node.lineno, f"router.{alias.name}"


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "router" or len(parts) < 2:
        return None
    return parts[1]


def _edges(root: Path = ROUTER) -> dict[tuple[str, str], list[str]]:
    """(importer unit, imported unit) -> where, for imports across units."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        source = _unit(_module_name(path, root))
        if source is None:
            continue
        for line, target in _imports(path, root):
            unit = _unit(target)
            if unit is not None and unit != source:
                edges[(source, unit)].append(f"{path.relative_to(root.parent)}:{line}")
    return edges


def test_every_package_is_on_a_floor() -> None:
    units = {_unit(_module_name(path)) for path in ROUTER.rglob("*.py")} - {None}
    missing = sorted(unit for unit in units if unit and not any(unit in f for f in FLOORS))
    assert not missing, f"place these on a floor in FLOORS: {missing}"


def test_no_import_runs_uphill() -> None:
    uphill = [
        f"{where}: router.{source} (floor {_floor_of(source)}) imports router.{target} "
        f"(floor {_floor_of(target)})"
        for (source, target), places in sorted(_edges().items())
        if _floor_of(target) > _floor_of(source)
        for where in places
    ]
    assert not uphill, "imports that run uphill:\n" + "\n".join(uphill)


def test_packages_on_one_floor_form_no_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in _edges():
        graph[source].add(target)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(unit: str) -> None:
        state[unit] = 1
        path.append(unit)
        for target in sorted(graph[unit]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit)


def test_the_check_sees_imports_hidden_in_functions_and_relative_ones(tmp_path: Path) -> None:
    # The check must be able to fail: a function-local import and a relative one both count.
    fake = tmp_path / "router"
    (fake / "web").mkdir(parents=True)
    (fake / "store").mkdir()
    (fake / "model.py").write_text("def f():\n    from router.web import app\n")
    (fake / "store" / "__init__.py").write_text("from ..config import schema\n")
    (fake / "web" / "__init__.py").write_text("")
    assert set(_edges(fake)) == {("model", "web"), ("store", "config")}
    assert _floor_of("web") > _floor_of("model")
    assert _floor_of("config") > _floor_of("store")


def _readme_rows() -> list[tuple[str, list[str], str]]:
    """(floor, units named in the package column, holds column) of README's map."""
    text = (ROUTER.parent / "README.md").read_text()
    section = text.split("### Where things live", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            named = [p.removeprefix("router/") for p in re.findall(r"`([^`]+)`", cells[1])]
            rows.append(
                (cells[0], [n.removesuffix("/").removesuffix(".py") for n in named], cells[2])
            )
    return rows


def test_the_readme_map_names_every_package_on_its_floor_and_every_module_in_it() -> None:
    rows = _readme_rows()
    named = {unit: (int(floor), holds) for floor, units, holds in rows for unit in units}
    units = {_unit(_module_name(path)) or "" for path in ROUTER.rglob("*.py")} - {""}
    assert sorted(u for u in units if u not in named) == [], "README's map misses these"
    assert sorted(u for u in named if u not in units) == [], "README's map names what is gone"
    for unit, (floor, holds) in named.items():
        assert floor == _floor_of(unit), f"README puts router/{unit} on floor {floor}"
        package = ROUTER / unit
        if not package.is_dir():
            continue
        written = set(re.findall(r"`([\w/]+(?:\.py|/))`", holds))
        children = {
            f"{child.name}/" if child.is_dir() else child.name
            for child in package.iterdir()
            if (child.suffix == ".py" and child.name != "__init__.py")
            or (child.is_dir() and (child / "__init__.py").exists())
        }
        missing = sorted(c for c in children if c not in written)
        assert not missing, f"README's row for router/{unit}/ does not name {missing}"
        gone = sorted(
            w for w in written if not (package / w).exists() and not any(package.rglob(w))
        )
        assert not gone, f"README's row for router/{unit}/ names what is not there: {gone}"

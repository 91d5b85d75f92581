"""The house: imports run one way (cli -> tap -> streams -> the base stream -> below),
and nothing below the command line reaches up into the Tap."""

from __future__ import annotations

import ast
import pathlib

import tap_mokapen

PACKAGE = pathlib.Path(tap_mokapen.__file__).parent
MODULES = {path.stem: path for path in PACKAGE.glob("*.py")}


def imports_of(path: pathlib.Path) -> set[str]:
    """The package's modules ``path`` imports, typing-only imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "tap_mokapen":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tap_mokapen."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("tap_mokapen.")}
    return found & set(MODULES)


def import_graph() -> dict[str, set[str]]:
    return {name: imports_of(path) for name, path in MODULES.items()}


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (the modules in order), or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            found = visit(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle_typing_imports_included():
    assert cycle_in(import_graph()) is None


def test_only_the_command_line_imports_the_tap():
    importers = {name for name, imported in import_graph().items() if "tap" in imported}
    assert importers == {"cli"}
    assert import_graph()["__main__"] == {"cli"}


def test_streams_and_below_get_the_run_not_the_tap():
    """Nothing below the Tap holds it under the tap's own name for it."""
    for name, path in MODULES.items():
        if name in {"tap", "cli"}:
            continue
        assert "mokapen_tap" not in path.read_text(), name


def test_no_globals_scan_and_requests_reads_the_environment():
    """Stream classes are listed, not scanned for; requests keeps honouring
    HTTPS_PROXY, .netrc and REQUESTS_CA_BUNDLE (users behind a proxy rely on it)."""
    for name, path in MODULES.items():
        text = path.read_text()
        assert "globals()" not in text, name
        assert "trust_env" not in text, name

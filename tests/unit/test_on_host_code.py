"""The VM-side code exists once (the collection's plugins/module_utils), stays standard library only, and is what the
modules import and the controller imports as ibgw_ops.on_host."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.support.layout import MODULE_UTILS, MODULE_UTILS_PACKAGE, MODULES, ON_HOST, on_host_sources

UNIT_TESTS = Path(__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports at any depth, by its full dotted name (relative imports as ``.name``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level and not node.module:
            names.update("." * node.level + alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_each_on_host_file_is_a_link_to_its_module_util_and_nothing_else():
    links = sorted(path for path in ON_HOST.iterdir() if path.name != "__init__.py")
    assert [link.name for link in links] == sorted(path.name for path in MODULE_UTILS.iterdir())
    for link in links:
        assert link.is_symlink(), f"{link} must be a symlink (one copy in git)"
        assert link.resolve() == (MODULE_UTILS / link.name).resolve()
        assert not (MODULE_UTILS / link.name).is_symlink(), "the collection's artifact carries module_utils as files"


@pytest.mark.parametrize("name", sorted(on_host_sources()))
def test_on_host_code_imports_the_standard_library_only(name):
    siblings = {f".{stem.removesuffix('.py')}" for stem in on_host_sources()}
    outside = {module for module in imported_modules(ON_HOST / name)
               if module.split(".")[0] not in sys.stdlib_module_names and module not in siblings}
    assert not outside, f"{name} runs on the VM with no package but Python's own and its siblings: {outside}"


@pytest.mark.parametrize("module", sorted(path.stem for path in MODULES.glob("*.py")))
def test_every_module_imports_host_code_from_the_collection_and_has_unit_tests(module):
    imports = imported_modules(MODULES / f"{module}.py")
    ours = {name for name in imports if "module_utils" in name and name != "ansible.module_utils.basic"}
    assert all(name.startswith(f"{MODULE_UTILS_PACKAGE}.") for name in ours), ours
    short = module.removeprefix("ibgw_")
    assert (UNIT_TESTS / f"test_{short}_module.py").is_file(), f"no tests/unit/test_{short}_module.py for {module}"

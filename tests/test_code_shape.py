"""The code stays easy to hold in one's head: the house's size limits, checked on every file.

A module under ~400 lines, a function under ~60 lines with at most 6 parameters, a stage script
under ~90 lines that reads params, calls the package and writes. Past a limit, split the work (a new
module, a helper function, a dataclass for the parameters) rather than raise the number.
"""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

MODULE_LINES = 400
FUNCTION_LINES = 60
PARAMETERS = 6
SCRIPT_LINES = 90
PACKAGE = sorted((REPO / "onnxship").rglob("*.py")) + sorted((REPO / "tools").rglob("*.py"))
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def functions(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def parameter_count(node) -> int:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    starred = [a for a in (args.vararg, args.kwarg) if a is not None]  # *args, **kwargs count too
    return len([n for n in names if n not in ("self", "cls")]) + len(starred)


def body_lines(node) -> int:
    """Lines of a function without its docstring (a long docstring is welcome)."""
    first = node.body[0]
    is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    start = node.body[1].lineno if is_doc and len(node.body) > 1 else first.lineno
    return node.end_lineno - start + 1


@pytest.mark.parametrize("path", PACKAGE + SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_modules_and_functions_stay_small(path):
    lines = len(path.read_text().splitlines())
    limit = SCRIPT_LINES if path.parent.name == "scripts" else MODULE_LINES
    assert lines <= limit, f"{path.name} has {lines} lines (limit {limit}): split it"
    for node in functions(path):
        where = f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
        assert body_lines(node) <= FUNCTION_LINES, f"{where} is {body_lines(node)} lines long"
        assert parameter_count(node) <= PARAMETERS, f"{where} takes {parameter_count(node)} parameters"


def test_the_shape_check_sees_a_long_function_and_too_many_parameters(tmp_path):
    source = tmp_path / "made_up.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(FUNCTION_LINES + 1))
    source.write_text(
        f'def long():\n    """Doc."""\n{body}\n\n\ndef wide(a, b, c, d, e, f, g):\n    pass\n\n\n'
        "def starred(self, a, *args, b, **kwargs):\n    pass\n"
    )
    found = {n.name: (body_lines(n), parameter_count(n)) for n in functions(source)}
    assert found == {"long": (FUNCTION_LINES + 1, 0), "wide": (1, 7), "starred": (1, 4)}

"""`tieout GROUP ...` builds the click tree of that group alone (cli.main.command): what it prints
and how it exits are those of the whole tree, for every group, its help and its usage errors."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
import typer

from cli import main


def _run(tree: Any, args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = tree.main(args=args, prog_name="tieout", standalone_mode=False)
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.TyperException as exc:  # usage errors, as cli.main.run shows them
            exc.show()
            code = exc.exit_code
    return (code if isinstance(code, int) else 0), out.getvalue()


GROUPS = [g.name for g in main.app.registered_groups if g.name]


@pytest.mark.parametrize("group", GROUPS)
def test_a_groups_own_tree_answers_as_the_whole_tree(group: str) -> None:
    whole = typer.main.get_command(main.app)
    for args in ([group, "--help"], [group], [group, "no-such-command"]):
        alone = main.command(args)
        assert alone is not whole
        assert _run(alone, args) == _run(whole, args), args
    for sub in sorted(main.command([group]).commands):  # type: ignore[attr-defined]
        args = [group, sub, "--help"]
        assert _run(main.command(args), args) == _run(whole, args), args


def test_the_whole_tree_answers_what_names_no_group() -> None:
    assert main.command(["positions", "--help"]) is main.command([])
    assert main.command(["no-such-group"]) is main.command(["--help"])
    assert set(main.command([]).commands) >= {*GROUPS, "positions", "init", "demo"}

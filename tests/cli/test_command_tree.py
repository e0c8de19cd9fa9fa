"""`tieout GROUP ...` imports the module of that group alone and builds its click tree
(cli.main.command, OWNERS): what it prints and how it exits are those of the whole tree, for
every group and every top-level command a module registers, their help and their usage errors.
OWNERS names every such command; `approve` (which runs any four-eyes command) and what names no
module's command get the whole tree."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from cli import main
from oms.store import Store


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


OWNED_COMMANDS = sorted(
    name for name in main.OWNERS if name not in GROUPS
)  # top-level commands a module registers: positions, lots, login, ...


@pytest.mark.parametrize("name", OWNED_COMMANDS)
def test_a_top_level_commands_own_tree_answers_as_the_whole_tree(name: str) -> None:
    whole = typer.main.get_command(main.app)
    for args in ([name, "--help"], [name, "--no-such-option"]):
        alone = main.command(args)
        assert alone is not whole
        assert _run(alone, args) == _run(whole, args), args


def test_owners_name_every_command_but_those_of_the_whole_tree() -> None:
    whole = set(typer.main.get_command(main.app).commands)  # type: ignore[attr-defined]
    assert set(main.OWNERS) == whole - {"init", "demo", "approve"}
    for name, owner in main.OWNERS.items():
        assert name in main.command([name]).commands, (name, owner)
    assert set(main.OWNERS.values()) == set(main.MODULES)


def test_the_whole_tree_answers_what_names_no_module() -> None:
    for args in (["init"], ["demo", "--help"], ["approve", "1"], ["no-such-group"], ["--help"]):
        assert main.command(args) is main.command([])
    assert set(main.command([]).commands) >= {*GROUPS, "positions", "init", "demo", "approve"}


def _fresh(code: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout)


def test_a_groups_command_imports_its_module_alone_and_approve_imports_them_all() -> None:
    """In a process of its own (as `tieout` runs): `tieout order ...` imports cli.order_cmd and
    no other command module, nor polars or pandera (what reads files imports them); `tieout
    approve` imports every command module, so that every four-eyes command it may run is
    registered (cli.common.FOUR_EYES_COMMANDS) and guarded."""
    probe = (
        "import sys, json; from cli import main, common; main.command({args!r}); "
        "print(json.dumps([sorted(m for m in sys.modules if m.endswith('_cmd') "
        "or m in ('polars', 'pandera')), sorted(common.FOUR_EYES_COMMANDS)]))"
    )
    loaded, _ = _fresh(probe.format(args=["order", "list"]))
    assert loaded == ["cli.order_cmd"]
    loaded, _ = _fresh(probe.format(args=["cash", "balance"]))
    assert loaded == ["cli.refdata_cmd"]
    loaded, four_eyes = _fresh(probe.format(args=["approve", "1"]))
    assert set(loaded) >= {f"cli.{m}" for m in main.MODULES}
    typer.main.get_command(main.app)
    from cli import common

    assert four_eyes == sorted(common.FOUR_EYES_COMMANDS) and four_eyes


def test_a_command_on_sqlite_loads_neither_psycopg_nor_alembic(tmp_path: Path) -> None:
    """In a process of its own, `tieout order list` on an SQLite book answers without importing
    psycopg (its errors are matched once a PostgreSQL engine loaded it: store.database_errors)
    or alembic (the schema check reads alembic_version and compares it with migrations.HEAD)."""
    url = f"sqlite:///{tmp_path / 'book.db'}"
    Store.open(url, check_schema=False).init()
    probe = (
        "import sys, json; sys.argv = ['tieout', 'order', 'list', '--json', '--db', {url!r}]\n"
        "from cli.main import run\n"
        "try:\n    run()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(m for m in ('psycopg', 'alembic', 'polars') if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe.format(url=url)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    listed, loaded = done.stdout.strip().splitlines()
    assert json.loads(listed) == []
    assert json.loads(loaded) == []

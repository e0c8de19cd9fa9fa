"""The paper venue's terms: slippage, participation and commission schedule (audited)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ActorOpt, DbOpt, JsonOpt, NumberArgs, emit_json, make_ctx, open_store, say
from oms import order_book, paper

paper_app = typer.Typer(
    help="The paper venue's slippage, participation rate and commission schedule.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(paper_app, name="paper")


def _show(terms: paper.PaperTerms, json: bool) -> None:
    doc = paper.terms_json(terms)
    if json:
        emit_json(doc)
        return
    for k, v in doc.items():
        say(f"{k:<20} {v}")


@paper_app.command("show")
def show(db: DbOpt = None, json: JsonOpt = False) -> None:
    """The paper venue's terms in force (defaults unless changed with `tieout paper set`)."""
    with open_store(db).read() as conn:
        terms = paper.load_terms(conn)
    _show(terms, json)


@paper_app.command("set", cls=NumberArgs)
def set_(
    name: Annotated[
        str,
        typer.Argument(
            help="one of: "
            + ", ".join([*paper.TERMS, *(f"{a}.CCY" for a in paper.AMOUNTS)])
            + " (an amount of a currency of its own, e.g. commission-min.JPY)",
            show_default=False,
        ),
    ],
    value: str,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Change one of the paper venue's terms (audited): slippage-bps moves market fills against
    the order; commission = per-unit x quantity + bps of notional, at least commission-min and
    at most commission-max-pct of notional per order."""
    _show(order_book.set_paper_term(open_store(db), make_ctx(actor), name, value), json)

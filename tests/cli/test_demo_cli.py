"""`tieout demo`: the README's main command works, is reproducible, and leaves a book worth
looking at: orders through the paper venue, venue files with discrepancies, breaks."""

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_tieout
from tests.pdftext import read_pdf


def _figures(out: Path) -> list[str]:
    r = run_tieout("demo", "--out", str(out), "--seed", "11")
    assert r.code == 0, r.err
    assert "chain intact" in r.out
    return [line for line in r.out.splitlines() if "head" not in line and str(out) not in line]


def test_the_same_seed_gives_the_same_day_again_and_the_documents_agree(tmp_path: Path) -> None:
    # run twice in one directory: the second run starts from a fresh database and writes
    # the same day again (two runs, not three: the demo is the suite's slowest command)
    names = ("trades_20261124.csv", "positions_20261124.csv", "cash_20261124.csv")
    first = _figures(tmp_path / "a")
    files = {name: (tmp_path / "a" / "venue" / name).read_bytes() for name in names}
    for name in names:
        (tmp_path / "a" / "venue" / name).unlink()  # written again, not left from the first
    assert _figures(tmp_path / "a") == first
    assert {name: (tmp_path / "a" / "venue" / name).read_bytes() for name in names} == files
    db = f"sqlite:///{tmp_path / 'a' / 'tieout.db'}"
    assert run_tieout("audit", "verify", "--db", db, "--json").json()["ok"] is True
    assert len(run_tieout("md", "rejects", "--db", db, "--json").json()) == 2
    orders = run_tieout("order", "list", "--db", db, "--json").json()
    statuses = {o["status"] for o in orders}
    assert {"filled", "rejected", "canceled"} <= statuses
    assert all(o["venue"] == "paper" for o in orders)
    breaks = run_tieout("breaks", "list", "--status", "all", "--db", db, "--json").json()
    types = {(b["kind"], b["type"]) for b in breaks}
    assert {
        ("trades", "missing_at_venue"),
        ("trades", "missing_internal"),
        ("trades", "price_mismatch"),
        ("trades", "fee_mismatch"),
        ("trades", "duplicate_venue"),
        ("positions", "quantity_mismatch"),
        ("cash", "missing_internal"),
        ("cash", "balance_mismatch"),
    } <= types
    late = [b for b in breaks if b["type"] == "missing_internal" and b["kind"] == "trades"]
    assert [b["status"] for b in late] == ["resolved"]  # the late booking closed it
    runs = run_tieout("recon", "runs", "--db", db, "--json").json()
    assert [r["quarantined_rows"] for r in runs if r["profile"] == "paper-trades"] == [1, 1]
    _the_documents_say_what_the_book_says(tmp_path / "a", tmp_path)


def _the_documents_say_what_the_book_says(out: Path, tmp_path: Path) -> None:
    """The demo's PDFs, read as text (pdftotext): the statement's NAV and positions are the
    book's, the exception report lists the open breaks, a confirmation its execution. (Part
    of the test above: each demo run costs about 10 s of CPU.)"""
    db = f"sqlite:///{out / 'tieout.db'}"
    reports = out / "reports"
    for account in ("FUND-A", "CLIENT-B", "CLIENT-C"):
        doc = run_tieout("report", "statement", "--account", account, "--from", "2026-11-24",
                         "--to", "2026-11-24", "--format", "json", "--db", db).json()  # fmt: skip
        pdf = read_pdf(reports / f"statement-{account}-2026-11-24-2026-11-24.pdf", tmp_path)
        text = pdf.compact()
        assert account in text
        for p in doc["positions"]:
            assert p["symbol"] in text
        for key in ("closing_nav", "opening_nav", "realized_pnl", "commissions"):
            shown = f"{abs(Decimal(doc[key])):,.2f}"
            assert shown in text, (account, key, shown)
        for i, page in enumerate(pdf.pages, start=1):
            assert f"Page {i} of {len(pdf.pages)}" in page
    open_breaks = run_tieout("breaks", "list", "--db", db, "--json").json()
    exceptions = next(reports.glob("exceptions-*.pdf"))
    text = read_pdf(exceptions, tmp_path).compact()
    assert open_breaks
    for b in open_breaks:
        assert f"Break{b['break_id']}" in text and b["type"] in text
    confirmation = next((reports / "confirmations").glob("*O00000003-1.pdf"))
    words = read_pdf(confirmation, tmp_path).words()
    assert "No. paper-O00000003-1" in words and "Rule 10b-10" in words


def test_the_demo_runs_on_an_empty_database_given_by_db(db_url: str, tmp_path: Path) -> None:
    """`--db`, as on every command: an empty database (here on each backend) takes the demo's
    book, and the summary's counts are the book's; a database with tables is refused."""
    r = run_tieout("demo", "--out", str(tmp_path / "out"), "--db", db_url)
    assert r.code == 0, r.err
    assert not (tmp_path / "out" / "tieout.db").exists()
    line = next(x for x in r.out.splitlines() if "orders:" in x)
    said = {
        what: int(n)
        for n, what in re.findall(r"(\d+) (sent|canceled|day orders expired|refused)", line)
    }
    orders = run_tieout("order", "list", "--db", db_url, "--json").json()
    statuses = Counter(o["status"] for o in orders)
    assert said["sent"] == len(orders) == sum(statuses.values())
    assert (statuses["canceled"], statuses["expired"], statuses["rejected"]) == (
        said["canceled"],
        said["day orders expired"],
        said["refused"],
    )
    assert said["day orders expired"] > 0
    assert run_tieout("audit", "verify", "--db", db_url, "--json").json()["ok"] is True
    again = run_tieout("demo", "--out", str(tmp_path / "out2"), "--db", db_url)
    assert again.code == 4
    assert "holds" in again.err and "the demo runs on an empty database" in again.err
    assert len(run_tieout("order", "list", "--db", db_url, "--json").json()) == len(orders)


def test_a_demo_stopped_part_way_says_so_and_runs_again_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk stopped the demo with "database error, nothing was changed" (of its last
    step), leaving a folder of part of its files unsaid. It says what it left and that a run
    again starts over; a database with tables is still refused before anything is made."""
    import reports.batch
    from oms.errors import OutputFailed

    def full(*args: object, **kw: object) -> None:
        raise OutputFailed(str(tmp_path / "out" / "reports"), "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(reports.batch, "day_documents", full)
        r = run_tieout("demo", "--out", str(tmp_path / "out"))
    assert r.code == 1
    assert f"tieout demo stopped part way: {tmp_path / 'out'} holds part of its files" in r.err
    assert "run it again once that is mended: it starts over" in r.err
    assert "No space left on device" in r.err
    again = run_tieout("demo", "--out", str(tmp_path / "out"))
    assert again.code == 0, again.err
    assert "chain intact" in again.out
    # a demo that made nothing says nothing of a part: a database it cannot reach, a file at
    # --out (a traceback before: FileExistsError)
    never = tmp_path / "never"
    r = run_tieout(
        "demo", "--out", str(never), "--db", "postgresql+psycopg://postgres@127.0.0.1:1/x"
    )
    assert r.code == 1 and "cannot connect" in r.err and "part way" not in r.err, r.err
    assert not never.exists()
    (tmp_path / "a-file").write_text("mine\n")
    r = run_tieout("demo", "--out", str(tmp_path / "a-file"))
    assert r.code == 3 and "is a file" in r.err and "part way" not in r.err, r.err
    assert (tmp_path / "a-file").read_text() == "mine\n"

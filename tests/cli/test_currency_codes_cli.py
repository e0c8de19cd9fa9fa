"""Currency codes: ISO 4217's (and CNH), in any case, the same on the command line and in
files. A code no currency has ("ZZZ", "USS") is refused where a book would be made in it: an
account, an instrument, a notional limit, an instrument file, an execution file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Tieout, write


def _state(t: Tieout) -> tuple[str, ...]:
    return (
        t.ok("account", "list", "--json").out,
        t.ok("instrument", "list", "--json").out,
        t.ok("exec", "list", "--json").out,
        t.ok("risk", "show", "--json").out,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("account", "open", "Z1", "--currency", "ZZZ"),
        ("account", "open", "Z1", "--currency", "uss"),
        ("instrument", "add", "ZED", "--exchange", "XNYS", "--currency", "ZZZ"),
        ("risk", "set", "max-notional.ZZZ", "1000"),
    ],
)
def test_a_code_no_currency_has_is_refused(tieout: Tieout, args: tuple[str, ...]) -> None:
    before = _state(tieout)
    r = tieout(*args)
    assert r.code == 3, r.err
    assert "is not an ISO 4217 currency code (no currency has it)" in r.err
    assert r.out == ""
    assert _state(tieout) == before


def test_iso_codes_and_cnh_are_taken_in_any_case(tieout: Tieout) -> None:
    for code, expected in (("usd", "USD"), ("Chf", "CHF"), ("CLF", "CLF"), ("cnh", "CNH")):
        tieout.ok("account", "open", f"A{expected}", "--currency", code)
        shown = tieout.ok("account", "show", f"A{expected}", "--json").json()
        assert shown["currency"] == expected


def test_instrument_files_take_codes_as_the_command_does(tieout: Tieout, tmp_path: Path) -> None:
    good = write(tmp_path / "i.csv", "symbol,exchange,currency\nAAPL,XNYS,usd\nVOD,XLON,Gbp\n")
    assert tieout.ok("instrument", "import", good, "--json").json()["added"] == 2
    listed = {i["symbol"]: i["currency"] for i in tieout.ok("instrument", "list", "--json").json()}
    assert listed == {"AAPL": "USD", "VOD": "GBP"}
    # the same file again, in upper case this time: the same instruments
    same = write(tmp_path / "j.csv", "symbol,exchange,currency\nAAPL,XNYS,USD\nVOD,XLON,GBP\n")
    assert tieout.ok("instrument", "import", same, "--json").json()["unchanged"] == 2
    bad = write(tmp_path / "b.csv", "symbol,exchange,currency\nX1,XNYS,USD\nX2,XNYS,ZZZ\n")
    before = _state(tieout)
    r = tieout("instrument", "import", bad)
    assert r.code == 3, r.err
    assert "line 3, currency: 'ZZZ' must be an ISO 4217 currency code" in r.err
    assert _state(tieout) == before  # the whole file refused: X1 not added either


def test_execution_files_take_codes_as_the_command_does(tieout: Tieout, tmp_path: Path) -> None:
    tieout.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    tieout.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    header = "exec_id,account,symbol,side,quantity,price,currency,trade_date,venue\n"
    good = write(tmp_path / "e.csv", header + "E1,A1,AAPL,buy,10,100,usd,2026-11-24,ACME\n")
    assert tieout.ok("exec", "import", good, "--json").json()["booked"] == 1
    assert tieout.ok("exec", "list", "--json").json()[0]["currency"] == "USD"
    again = write(tmp_path / "f.csv", header + "E1,A1,AAPL,buy,10,100,USD,2026-11-24,ACME\n")
    assert tieout.ok("exec", "import", again, "--json").json()["already_booked"] == 1
    bad = write(tmp_path / "b.csv", header + "E2,A1,AAPL,buy,10,100,ZZZ,2026-11-24,ACME\n")
    before = _state(tieout)
    r = tieout("exec", "import", bad)
    assert r.code == 3, r.err
    assert "line 2, currency: 'ZZZ' must be an ISO 4217 currency code" in r.err
    assert _state(tieout) == before

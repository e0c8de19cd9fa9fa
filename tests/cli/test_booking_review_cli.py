"""Through the real command on both backends: what a review of how the OMS's fills flow into
the book found. `exec import` may not correct or bust an order's fill (only the venue's
execution report may: it recomputes the order too); a corrected fill keeps its place in the
FIFO queue; a commission counted from a FIX rate is rounded to the currency's minor unit."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tests.cli.test_exec_apply_review import apply, book, external
from tests.cli.test_order_cli import fix_line, report, submit
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name

IMPORT_HEADER = (
    "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees,exec_type,"
    "ref_exec_id\n"
)


def _cash(t: Tieout) -> Decimal:
    return Decimal(t.ok("cash", "balance", "A1", "--json").json()["balance"])


def test_an_order_fill_is_busted_only_by_its_venue_report_and_only_once(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "X1", qty="100")
    assert apply(book, tmp_path, "fills.fix", report("X1", "X1-0", "0"),
                 report("X1", "Q1", "F", (32, "30"), (31, "100.1"), (12, "0.3")),
                 report("X1", "Q2", "F", (32, "70"), (31, "100.2"), (12, "0.7"))).code == 0
    filled = _cash(book)
    assert filled == Decimal("100000") - Decimal("3003.3") - Decimal("7014.7")
    today = datetime.now(UTC).date().isoformat()
    for kind, extra in (("bust", ""), ("correct", "")):
        f = write(tmp_path / f"{kind}.csv", IMPORT_HEADER
                  + f"QB1,A1,COIN,buy,30,100.5,{today},ACME,0.3,0,{kind},Q1{extra}\n")
        r = book("exec", "import", f)
        assert r.code == 3, r.err
        assert "Q1" in r.err and "is a fill of order O00000001 (X1)" in r.err
        assert "tieout exec apply" in r.err
    assert _cash(book) == filled and len(book.ok("exec", "list", "--json").json()) == 2
    # the venue's bust books once; the same bust again is refused, nothing moves twice
    assert apply(book, tmp_path, "bust.fix", report("X1", "QB2", "H", (19, "Q1"))).code == 0
    assert _cash(book) == filled + Decimal("3003.3")
    again = apply(book, tmp_path, "bust2.fix", report("X1", "QB3", "H", (19, "Q1")))
    assert again.code == 3 and "busted already by QB2" in again.err
    assert _cash(book) == filled + Decimal("3003.3")
    shown = book.ok("order", "show", "--client-order-id", "X1", "--json").json()
    assert (shown["cum_qty"], shown["leaves_qty"]) == ("70", "30")
    (pos,) = book.ok("positions", "--account", "A1", "--json").json()
    assert (pos["quantity"], pos["cost_basis"]) == ("70", "7014.7")
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_an_imported_fill_is_still_corrected_by_import(book: Tieout, tmp_path: Path) -> None:
    today = datetime.now(UTC).date().isoformat()
    f = write(tmp_path / "e.csv", IMPORT_HEADER
              + f"I1,A1,COIN,buy,10,100,{today},BRK,0,0,fill,\n"
              + f"I2,A1,COIN,buy,10,101,{today},BRK,0,0,correct,I1\n")
    assert book("exec", "import", f).code == 0
    (pos,) = book.ok("positions", "--account", "A1", "--json").json()
    assert (pos["quantity"], pos["cost_basis"]) == ("10", "1010")


def test_a_corrected_fill_keeps_its_place_in_the_fifo_queue(book: Tieout, tmp_path: Path) -> None:
    for cl, side, qty in (("B1", "buy", "10"), ("B2", "buy", "11"), ("S1", "sell", "10")):
        submit(book, "--side", side, "--qty", qty, "--venue", "ACME", "--client-order-id", cl)
    steps = [
        report("B1", "A1", "F", (32, "10"), (31, "100")),
        report("B2", "B1F", "F", (32, "11"), (31, "110")),
        report("B1", "A1C", "G", (19, "A1"), (32, "10"), (31, "101")),  # a price correction
        report("S1", "SF", "F", (32, "10"), (31, "120")),
    ]
    for n, line in enumerate(steps):  # each drop copy in its own file, one after the other
        assert apply(book, tmp_path, f"d{n}.fix", line).code == 0
    (pos,) = book.ok("positions", "--account", "A1", "--json").json()
    # FIFO: the sale relieves the oldest lot, A1, now at 101: 10 x (120 - 101) = 190
    assert (pos["quantity"], pos["realized_pnl"]) == ("11", "190")
    assert pos["cost_basis"] == "1210"


def test_a_commission_counted_from_a_fix_rate_is_money(book: Tieout, tmp_path: Path) -> None:
    book.ok("instrument", "add", "JC", "--exchange", "24/7", "--currency", "JPY")
    book.ok("account", "open", "J1", "--currency", "JPY", "--type", "margin")
    book.ok("cash", "deposit", "J1", "1000000")
    book.ok("order", "submit", "--account", "J1", "--symbol", "JC", "--side", "buy", "--qty",
            "33", "--type", "limit", "--limit", "999", "--venue", "ACME", "--client-order-id",
            "Y1", "--json")
    line = report("Y1", "Q1", "F", (32, "33"), (31, "999"), (12, "0.0015"), (13, "2"))
    assert apply(book, tmp_path, "jpy.fix", line).code == 0
    (ex,) = [e for e in book.ok("exec", "list", "--json").json() if e["exec_id"] == "Q1"]
    assert ex["commission"] == "49"  # 33 x 999 x 0.15% = 49.4505 yen: whole yen
    cash = book.ok("cash", "balance", "J1", "--json").json()["balance"]
    assert cash == str(1000000 - 33 * 999 - 49)


def _bank_day(book: Tieout, tmp_path: Path, qty: str, *fills: str) -> tuple[str, str]:
    """An order X1 at ACME acknowledged and given `fills` (one settlement date); that date and
    a bank's cash profile."""
    external(book, "X1", qty=qty)
    assert apply(book, tmp_path, "day.fix", report("X1", "X1-0", "0"), *fills).code == 0
    (day,) = {e["settle_date"] for e in book.ok("exec", "list", "--json").json()}
    profile = write(tmp_path / "bank.toml", 'name = "bank"\nvenue = "BANK"\nkind = "cash"\n'
                    'format = "csv"\n')
    return day, profile


def test_a_trade_busted_or_corrected_before_it_settles_is_one_cash_movement(
    book: Tieout, tmp_path: Path
) -> None:
    day, profile = _bank_day(
        book,
        tmp_path,
        "110",
        report("X1", "Q1", "F", (32, "100"), (31, "100.1"), (12, "1")),
        report("X1", "Q2", "H", (19, "Q1")),  # busted: no money moves for it
        report("X1", "Q3", "F", (32, "10"), (31, "100")),
        report("X1", "Q4", "G", (19, "Q3"), (32, "10"), (31, "101")),  # settles as 1,010
    )
    bank = write(tmp_path / "bank.csv", "account,currency,date,amount,ref,line_type\n"
                 f"A1,USD,{day},100000,,opening_balance\n"
                 f"A1,USD,{day},-1010,,movement\n"
                 f"A1,USD,{day},98990,,closing_balance\n")
    later = book.at(f"{day}T23:00:00Z")
    doc = later.ok("recon", "run", "--profile", profile, "--file", bank, "--date", day,
                   "--json").json()
    assert doc["breaks"] == {}, later.ok("breaks", "list", "--json").out
    assert doc["matched"] == 3  # the movement and the two balances


def test_a_bank_s_one_net_line_for_the_day_s_trades_matches_them(
    book: Tieout, tmp_path: Path
) -> None:
    day, profile = _bank_day(
        book,
        tmp_path,
        "30",
        report("X1", "Q1", "F", (32, "10"), (31, "100"), (12, "1")),
        report("X1", "Q2", "F", (32, "20"), (31, "99.5"), (12, "1.5")),
    )
    net = -(1000 + 1 + 1990 + Decimal("1.5"))
    later = book.at(f"{day}T23:00:00Z")
    for n, (amount, breaks) in enumerate(((net, {}), (net - 1, None))):
        bank = write(tmp_path / f"bank{n}.csv", "account,currency,date,amount,ref,line_type\n"
                     f"A1,USD,{day},{amount},NET-1,movement\n")
        doc = later.ok("recon", "run", "--profile", profile, "--file", bank, "--date", day,
                       "--json").json()
        if breaks is not None:  # the net line pays both trades
            assert doc["breaks"] == breaks and doc["matched"] == 1  # venue lines matched
        else:  # a dollar off: no group, each line is a break
            assert doc["breaks"] == {"missing_at_venue": 2, "missing_internal": 1}


def test_a_drop_copy_with_a_rate_commission_reconciles_with_what_it_booked(
    book: Tieout, tmp_path: Path
) -> None:
    """The book rounds a per-unit commission to cents (1.1655 -> 1.17); the drop copy says the
    rate: the half cent between them is rounding, not a fee break. A cent more is one."""
    external(book, "X1", qty="333")
    now = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S")
    named = ((1, "A1"), (55, "COIN"), (54, "1"), (60, now))  # what a venue's record names
    fill = report("X1", "E1", "F", *named, (32, "333"), (31, "100"), (12, "0.0035"), (13, "1"))
    assert apply(book, tmp_path, "d1.fix", report("X1", "E0", "0"), fill).code == 0
    (ex,) = [e for e in book.ok("exec", "list", "--json").json() if e["exec_id"] == "E1"]
    assert ex["commission"] == "1.17"
    profile = write(tmp_path / "fix.toml", 'name = "acmefix"\nvenue = "ACME"\nkind = "trades"\n'
                    'format = "fix"\n')
    day = ex["trade_date"]
    doc = book.ok("recon", "run", "--profile", profile, "--file", str(tmp_path / "d1.fix"),
                  "--date", day, "--json").json()
    assert (doc["breaks"], doc["matched"]) == ({}, 1)
    off = report("X1", "E1", "F", *named, (32, "333"), (31, "100"), (12, "1.18"), (13, "3"))
    f = write(tmp_path / "d2.fix", report("X1", "E0", "0") + "\n" + off + "\n")
    doc = book.ok("recon", "run", "--profile", profile, "--file", f, "--date", day,
                  "--json").json()
    assert doc["breaks"] == {"fee_mismatch": 1}


def test_an_imported_trade_busted_by_a_later_import_moves_no_cash(
    book: Tieout, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date().isoformat()
    for n, row in enumerate((f"F1,A1,COIN,buy,10,100,{today},ACME,1,0,fill,",
                             f"F1X,A1,COIN,buy,10,100,{today},ACME,1,0,bust,F1")):
        assert book("exec", "import", write(tmp_path / f"i{n}.csv", IMPORT_HEADER + row + "\n"))\
            .code == 0
    (day,) = {e["settle_date"] for e in book.ok("exec", "list", "--json").json()}
    profile = write(tmp_path / "bank.toml", 'name = "bank"\nvenue = "BANK"\nkind = "cash"\n'
                    'format = "csv"\n')
    bank = write(tmp_path / "bank.csv", "account,currency,date,amount,ref,line_type\n"
                 f"A1,USD,{day},100000,,opening_balance\nA1,USD,{day},100000,,closing_balance\n")
    doc = book.at(f"{day}T23:00:00Z").ok("recon", "run", "--profile", profile, "--file", bank,
                                         "--date", day, "--json").json()
    assert (doc["breaks"], doc["matched"]) == ({}, 2)


def test_a_bank_line_is_never_matched_to_a_deposit_netted_with_a_withdrawal(
    tieout: Tieout, tmp_path: Path
) -> None:
    tieout.at("2026-11-20T15:00:00Z").ok("account", "open", "A1", "--currency", "USD")
    tieout.at("2026-11-20T15:00:00Z").ok("destination", "add", "A1", "BANKX")
    tieout.at("2026-11-23T15:00:00Z").ok("cash", "deposit", "A1", "5000", "--ref", "DEP1")
    tieout.at("2026-11-23T16:00:00Z").ok("cash", "withdraw", "A1", "2000", "--to", "BANKX",
                                         "--ref", "WD1")
    profile = write(tmp_path / "bank.toml", 'name = "bank"\nvenue = "BANK"\nkind = "cash"\n'
                    'format = "csv"\n')
    bank = write(tmp_path / "bank.csv", "account,currency,date,amount,ref,line_type\n"
                 "A1,USD,2026-11-23,3000,XYZ,movement\n")
    doc = tieout.at("2026-11-23T23:00:00Z").ok("recon", "run", "--profile", profile, "--file",
                                               bank, "--date", "2026-11-23", "--json").json()
    assert doc["breaks"] == {"missing_at_venue": 2, "missing_internal": 1}


def test_split_fills_whose_charges_were_rounded_one_by_one_match_the_venue_s_total(
    book: Tieout, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date().isoformat()
    rows = "".join(f"S{n},A1,COIN,buy,333,100,{today},ACME,1.17,0,fill,\n" for n in (1, 2, 3))
    assert book("exec", "import", write(tmp_path / "e.csv", IMPORT_HEADER + rows)).code == 0
    profile = write(tmp_path / "acme.toml", 'name = "acme"\nvenue = "ACME"\nkind = "trades"\n'
                    'format = "csv"\n')
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees\n"
    for n, (charged, breaks) in enumerate((("3.4965", {}), ("3.49", {"fee_mismatch": 1}))):
        venue = write(tmp_path / f"v{n}.csv", head + f"V1,A1,COIN,buy,999,100,{today},ACME,"
                      f"{charged},0\n")
        doc = book.ok("recon", "run", "--profile", profile, "--file", venue, "--date", today,
                      "--force", "--json").json()
        assert doc["breaks"] == breaks, (charged, doc)


def test_an_imported_trade_moves_cash_by_its_exact_amount(book: Tieout, tmp_path: Path) -> None:
    """`exec import` summed its settlement batches in Python's default context (28 digits):
    a trade of 123456789012.12345678 at 123456789012.12345678 moved the cash by
    15241578753183967091425.13704, not by the exact product, which positions show as its cost.
    The cash journal now books the exact amounts: cash, cost basis and the file agree to the
    last digit (a bust and a correction of such trades too)."""
    today = datetime.now(UTC).date().isoformat()
    big = "123456789012.12345678"
    rows = (f"B1,A1,COIN,buy,{big},{big},{today},ACME,0,0,fill,\n"
            f"B2,A1,COIN,buy,{big},{big},{today},ACME,0,0,fill,\n"
            f"B3,A1,COIN,buy,{big},{big},{today},ACME,0,0,bust,B2\n"
            f"B4,A1,COIN,buy,{big},{big[:-1]}7,{today},ACME,0,0,correct,B1\n")  # fmt: skip
    book.ok("exec", "import", write(tmp_path / "big.csv", IMPORT_HEADER + rows))
    product = Decimal("15241578753183967090190.5691541752934006")  # big x ...77, exactly
    assert _cash(book) == Decimal("-15241578753183966990190.5691541752934006")  # 100000 - it
    (pos,) = book.ok("positions", "--account", "A1", "--json").json()
    assert Decimal(pos["cost_basis"]) == product


def test_statements_and_bank_recon_sum_the_cash_journal_exactly(
    book: Tieout, tmp_path: Path
) -> None:
    """A statement's settled cash and a bank reconciliation's book side summed the journal in
    Python's default 28 digits: a trade of 123456789.123456 at 123456789.123457 (29 digits,
    as a bank file may state it) settled as ...573607.15759850739 against the exact
    ...573607.157598507392 the journal holds, so the statement disagreed with itself and the
    bank's exact closing balance was a break."""
    today = datetime.now(UTC).date().isoformat()
    row = f"T1,A1,COIN,buy,123456789.123456,123456789.123457,{today},ACME,0,0,fill,\n"
    book.ok("exec", "import", write(tmp_path / "t.csv", IMPORT_HEADER + row))
    closing = "-15241578780573607.157598507392"
    assert _cash(book) == Decimal(closing)
    (day,) = {e["settle_date"] for e in book.ok("exec", "list", "--json").json()}
    doc = book.ok("report", "statement", "--account", "A1", "--from", today, "--to", day,
                  "--format", "json").json()  # fmt: skip
    assert Decimal(doc["settled_cash"]) == Decimal(doc["closing_cash"]) == Decimal(closing)
    profile = write(tmp_path / "bank.toml", 'name = "bank"\nvenue = "BANK"\nkind = "cash"\n'
                    'format = "csv"\n')  # fmt: skip
    bank = write(tmp_path / "bank.csv", "account,currency,date,amount,ref,line_type\n"
                 f"A1,USD,{day},100000,,opening_balance\n"
                 f"A1,USD,{day},-15241578780673607.157598507392,S1,\n"
                 f"A1,USD,{day},{closing},,closing_balance\n")  # fmt: skip
    rec = book.at(f"{day}T23:00:00Z").ok("recon", "run", "--profile", profile, "--file", bank,
                                         "--date", day, "--json").json()  # fmt: skip
    assert (rec["breaks"], rec["quarantined_rows"]) == ({}, 0), rec


def test_a_position_recon_compares_the_exact_quantity(book: Tieout, tmp_path: Path) -> None:
    """The book side of a position reconciliation summed the fills in Python's default 28
    digits: a position of 12345678901234567.123456789012 was 12345678901234567.12345678901
    there, and the venue's exact figure was a quantity_mismatch break."""
    book.ok("instrument", "add", "FINE", "--exchange", "24/7", "--currency", "USD",
            "--lot-size", "0.000000000001")  # fmt: skip
    today = datetime.now(UTC).date().isoformat()
    qty = "12345678901234567.123456789012"
    book.ok("exec", "import", write(tmp_path / "e.csv", IMPORT_HEADER.replace(
        ",exec_type,ref_exec_id", "") + f"F1,A1,FINE,buy,{qty},1,{today},ACME,0,0\n"))  # fmt: skip
    profile = write(tmp_path / "pos.toml", 'name = "pos"\nvenue = "ACME"\nkind = "positions"\n'
                    'format = "csv"\n')  # fmt: skip
    venue = write(tmp_path / "pos.csv", f"account,symbol,quantity\nA1,FINE,{qty}\n")
    rec = book.ok("recon", "run", "--profile", profile, "--file", venue, "--date", today,
                  "--json").json()  # fmt: skip
    assert (rec["breaks"], rec["matched"]) == ({}, 1), rec


def test_a_deposit_with_a_fraction_of_a_cent_is_refused_however_large(book: Tieout) -> None:
    """The check of the currency's decimals normalized the amount in Python's default 28
    digits first: 100000000000000000.000000000001 USD was taken for 1E+17 and accepted."""
    r = book("cash", "deposit", "A1", "100000000000000000.000000000001")
    assert r.code == 3 and "more decimals than the currency's 2" in r.err
    assert _cash(book) == Decimal(100000)


def test_an_after_hours_drop_copy_without_a_trade_date_reconciles_on_its_new_york_date(
    book: Tieout, tmp_path: Path
) -> None:
    """A fill at 20:30 New York time (01:30 UTC the next day) reported without TradeDate (75):
    FIX says its trade date is the day at the place of trade, and the book dates it so. The
    reconciliation of the same drop copy read it by the UTC date of TransactTime (60), and
    broke it as a trade date mismatch (a re-review)."""
    t = book.at("2024-11-14T20:00:00Z")
    t.ok("instrument", "add", "IBM", "--exchange", "XNYS", "--currency", "USD")
    t.ok("order", "submit", "--account", "A1", "--symbol", "IBM", "--side", "buy", "--qty",
         "10", "--type", "limit", "--limit", "101", "--tif", "gtc", "--venue", "ACME",
         "--client-order-id", "N1")  # fmt: skip
    named = ((1, "A1"), (55, "IBM"), (54, "1"), (60, "20241115-01:30:00"))
    fill = report("N1", "E1", "F", *named, (32, "10"), (31, "100"))
    later = book.at("2024-11-15T02:00:00Z")
    drop = write(tmp_path / "d.fix", report("N1", "E0", "0") + "\n" + fill + "\n")
    later.ok("exec", "apply", drop)
    (ex,) = later.ok("exec", "list", "--json").json()
    assert (ex["trade_date"], ex["settle_date"]) == ("2024-11-14", "2024-11-15")
    profile = write(tmp_path / "fix.toml", 'name = "acmefix"\nvenue = "ACME"\nkind = "trades"\n'
                    'format = "fix"\n')
    doc = later.ok("recon", "run", "--profile", profile, "--file", drop, "--date", "2024-11-14",
                   "--json").json()
    assert (doc["breaks"], doc["matched"]) == ({}, 1)


def test_a_fix_fill_without_a_trade_date_is_dated_as_the_profile_reads_it(
    tieout: Tieout, tmp_path: Path
) -> None:
    """The reconciliation dates a FIX fill without TradeDate (75) on its exchange, reading
    TransactTime (60) in the profile's [parse] timezone and finding the exchange by the
    symbol as the profile maps it: it read 60 as UTC and looked up raw tag 55, so a venue
    writing Sydney times, or one whose symbols need mapping, broke as trade date mismatches
    (a re-review)."""
    t = tieout.at("2026-01-08T00:00:00Z")
    t.ok("instrument", "add", "BHP", "--exchange", "XASX", "--currency", "AUD")
    t.ok("account", "open", "A1", "--currency", "AUD")
    t.ok("exec", "import", write(tmp_path / "e.csv",
         "exec_id,account,symbol,side,quantity,price,trade_date,venue,exec_time\n"
         "E1,A1,BHP,buy,100,45.5,2026-01-06,ACME,2026-01-06T03:00:00Z\n"
         "E2,A1,BHP,buy,50,45.5,2026-01-06,ACME,2026-01-05T23:30:00Z\n"))  # fmt: skip

    def fill(exec_id: str, qty: str, symbol: str, at: str) -> str:
        return fix_line((35, "8"), (11, f"C{exec_id}"), (17, exec_id), (150, "F"), (1, "A1"),
                        (55, symbol), (54, "1"), (32, qty), (31, "45.5"), (60, at))  # fmt: skip

    head = 'venue = "ACME"\nkind = "trades"\nformat = "fix"\n'
    mapped = '[values.symbol]\n"BHP.AX" = "BHP"\n'
    # Sydney times: 14:00 on the 6th is 03:00 UTC, not 14:00 UTC (01:00 on the 7th in Sydney)
    sydney = write(tmp_path / "syd.toml", f'name = "syd"\n{head}'
                   '[parse]\ntimezone = "Australia/Sydney"\n')  # fmt: skip
    # a mapped symbol: BHP.AX is BHP, on XASX, whose 6th began at 23:00 UTC on the 5th
    utc = write(tmp_path / "utc.toml", f'name = "utc"\n{head}{mapped}')
    for profile, line in ((sydney, fill("E1", "100", "BHP", "20260106-14:00:00.250")),
                          (utc, fill("E2", "50", "BHP.AX", "20260105-23:30:00"))):  # fmt: skip
        drop = write(tmp_path / "d.fix", line + "\n")
        doc = t.ok("recon", "run", "--profile", profile, "--file", drop, "--date",
                   "2026-01-06", "--json").json()  # fmt: skip
        assert (doc["breaks"].get("trade_date_mismatch"), doc["matched"]) == (None, 1), doc

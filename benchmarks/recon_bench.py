"""Reconciliation benchmarks: the trade engine against datacompy and a bare join, and
`tieout recon run` end to end against a store (SQLite and PostgreSQL).

    python -m benchmarks.recon_bench [engines] [store] [sqlite|postgresql] [--rows N]
        [--store-rows N] [--repeat K] [--venue-format csv|parquet] [--timeout S]
        [--mem-cap-mb MB] [--cprofile auto|always|never] [--no-datacompy]

With neither `engines` nor `store`, both run (and both backends unless one is named).

engines (default --rows 10,000,000): one data set is generated into a temp dir as Parquet, the
internal side a canonical trades frame (recon.canonical, Decimal(38,12) money, one trade date)
and the venue side the same trades with 1% faults (0.2% each: dropped, extra, quantity changed,
price changed, exec_id changed, so matched by the key stage), rows shuffled. Then, each in its
own subprocess so that time and peak memory (VmHWM) are its own:
- engine: load and validate the venue file (recon.loaders.load, recon.validate.validate; a
  Parquet profile, recon.profiles.Profile, with a price tolerance), match it against
  pl.scan_parquet(internal) with recon.engine.match_trades (the waterfall classifies every
  break), write the breaks as Parquet;
- datacompy: benchmarks/recon_bench_datacompy.py in benchmarks/.venv-datacompy (created and
  filled with `pip install datacompy` when missing): PolarsCompare on exec_id with the same
  tolerance, all_mismatch() and the one-sided rows written as Parquet;
- floor: a bare polars full outer join on exec_id of the two files (all columns, collected).
engine and floor run --repeat times (median reported); datacompy once, killed past --timeout
seconds or --mem-cap-mb of RSS, in which case smaller sizes are tried and the largest it
managed is reported.

store (default --store-rows 1,000,000): per backend, a fresh store is given reference data and
N executions of one venue and trade date through `exec import` (oms.executions.import_file);
the venue file (CSV by default) is the book's own trades (recon.book_side.internal_trades)
with the same 1% faults. Setup is not timed. Then recon.runs.run (what `tieout recon run`
calls) is timed in its own process, with the time spent in its main steps. When it misses the
20 s aim (or with --cprofile always) it is run again under cProfile on a copy of the booked
store (SQLite: a file copy; PostgreSQL: CREATE DATABASE ... TEMPLATE) and the top functions are
reported.

Prints one JSON document on stdout (with the machine, load averages and the aims met); progress
on stderr. Children are started as `python -m benchmarks.recon_bench --child KIND ...`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
DC_VENV: Final = ROOT / "benchmarks" / ".venv-datacompy"
DC_SCRIPT: Final = ROOT / "benchmarks" / "recon_bench_datacompy.py"
DAY: Final = date(2026, 11, 2)
VENUE: Final = "BENCH"
PRICE_TOL: Final = "0.0001"
FAULT_RATE: Final = 0.01
FAULT_KINDS: Final = ("dropped", "quantity", "price", "reref", "extra")
ACCOUNTS, SYMBOLS = 200, 500
AIMS: Final = {
    "engine_seconds_max": 15,
    "engine_peak_gb_max": 5,
    "speedup_vs_datacompy_min": 2.5,
    "ratio_to_bare_join_max": 2,
    "recon_run_seconds_max": 20,
}


def log(msg: str) -> None:
    print(f"[recon_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def arg(name: str, default: str) -> str:
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def vmhwm_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


class Phases:
    """Wall and CPU seconds (all threads) and peak RSS of consecutive steps of a child."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self.resets = True

    def __call__(self, name: str) -> Any:
        phases = self

        class _Step:
            def __enter__(self) -> None:
                phases.resets = reset_peak() and phases.resets
                self.t, self.c = time.perf_counter(), time.process_time()

            def __exit__(self, *exc: object) -> None:
                phases.wall[name] = time.perf_counter() - self.t
                phases.cpu[name] = time.process_time() - self.c
                phases.peak[name] = vmhwm_mb()

        return _Step()

    def doc(self) -> dict[str, Any]:
        return {
            "seconds": round(sum(self.wall.values()), 3),
            "cpu_s": round(sum(self.cpu.values()), 3),
            "vmhwm_mb": round(max(self.peak.values())),
            "phases": {
                k: {
                    "s": round(self.wall[k], 3),
                    "cpu_s": round(self.cpu[k], 3),
                    "peak_mb": round(self.peak[k]),
                }
                for k in self.wall
            },
        }


# ---- data -------------------------------------------------------------------------------------


def trades(n: int, seed: int, prefix: str) -> Any:
    """n random trades of one venue and day, canonical dtypes, exec ids PREFIX + 10 digits."""
    import numpy as np
    import polars as pl

    from recon.canonical import MONEY, UTC_TIME

    rng = np.random.default_rng(seed)

    def cents(values: Any) -> pl.Expr:
        c = pl.Series(values, dtype=pl.Int64)
        text = (c // 100).cast(pl.String) + "." + (c % 100).cast(pl.String).str.zfill(2)
        return pl.lit(text).cast(MONEY)

    start_us = int(datetime(DAY.year, DAY.month, DAY.day, 13, 30, tzinfo=UTC).timestamp() * 1e6)
    i = pl.int_range(0, n, dtype=pl.Int64, eager=True)
    return pl.DataFrame({"_i": i}).select(
        (pl.lit(prefix) + pl.col("_i").cast(pl.String).str.zfill(10)).alias("exec_id"),
        (pl.lit("A") + pl.Series(rng.integers(0, ACCOUNTS, n)).cast(pl.String)).alias("account"),
        (pl.lit("S") + pl.Series(rng.integers(0, SYMBOLS, n)).cast(pl.String)).alias("symbol"),
        pl.when(pl.Series(rng.random(n)) < 0.5)
        .then(pl.lit("buy"))
        .otherwise(pl.lit("sell"))
        .alias("side"),
        pl.lit(pl.Series(rng.integers(1, 1000, n))).cast(MONEY).alias("quantity"),
        cents(rng.integers(1000, 100000, n)).alias("price"),
        pl.lit("USD").alias("currency"),
        pl.lit(DAY).alias("trade_date"),
        pl.lit(date(DAY.year, DAY.month, DAY.day + 1)).alias("settle_date"),
        (pl.col("_i") * 2000 + start_us).cast(UTC_TIME).alias("exec_time"),
        cents(rng.integers(0, 500, n)).alias("commission"),
        pl.lit(Decimal("0.01")).cast(MONEY).alias("fees"),
        (pl.lit("O") + (pl.col("_i") // 3).cast(pl.String)).alias("client_order_id"),
    )


def internal_frame(n: int, seed: int = 7) -> Any:
    """A canonical internal trades frame: row (1.. in exec_id order), ref = exec_id, venue."""
    import polars as pl

    from recon.canonical import TRADES

    frame = trades(n, seed, "X").with_columns(
        pl.int_range(1, n + 1, dtype=pl.Int64).alias("row"),
        pl.col("exec_id").alias("ref"),
        pl.lit(VENUE).alias("venue"),
    )
    return frame.select(list(TRADES))


def with_faults(internal: Any, seed: int = 11) -> tuple[Any, dict[str, int]]:
    """The venue's view of `internal` (canonical columns, no row/ref/venue) with FAULT_RATE of
    faults split evenly over FAULT_KINDS, shuffled. Returns (venue frame, count per kind)."""
    import numpy as np
    import polars as pl

    from recon.canonical import MONEY
    from recon.profiles import FIELDS

    n = internal.height
    rng = np.random.default_rng(seed)
    k = max(1, int(n * FAULT_RATE / len(FAULT_KINDS)))
    perm = rng.permutation(n)
    mark = np.zeros(n, dtype=np.int8)
    for code in range(1, 5):  # dropped, quantity, price, reref; extra rows are added below
        mark[perm[(code - 1) * k : code * k]] = code
    f = pl.col("_f")
    venue = (
        internal.select(*FIELDS["trades"])
        .with_columns(pl.Series("_f", mark))
        .with_columns(
            pl.when(f == 2)
            .then(pl.col("quantity") + pl.lit(1, MONEY))
            .otherwise(pl.col("quantity"))
            .cast(MONEY),
            pl.when(f == 3)
            .then(pl.col("price") + pl.lit(Decimal("0.05"), MONEY))
            .otherwise(pl.col("price"))
            .cast(MONEY),
            pl.when(f == 4)
            .then(pl.lit("R") + pl.col("exec_id").str.slice(1))
            .otherwise(pl.col("exec_id"))
            .alias("exec_id"),
        )
        .filter(f != 1)
        .drop("_f")
    )
    extra = trades(k, seed + 1, "V").select(*FIELDS["trades"])
    extra = extra.with_columns(
        pl.lit(internal["settle_date"][0]).alias("settle_date"),
        pl.col("currency").cast(internal.schema["currency"]),
    )
    venue = pl.concat([venue, extra.cast(venue.schema)], how="vertical")
    venue = venue[rng.permutation(venue.height)]
    return venue, dict.fromkeys(FAULT_KINDS, k)


def expected_breaks(injected: dict[str, int]) -> dict[str, int]:
    return {
        "missing_at_venue": injected["dropped"],
        "missing_internal": injected["extra"],
        "quantity_mismatch": injected["quantity"],
        "price_mismatch": injected["price"],
    }


def profile_toml(fmt: str) -> str:
    """The benchmark's venue profile (canonical column names, the price tolerance)."""
    from recon.profiles import Profile

    return Profile(
        name="bench",
        venue=VENUE,
        kind="trades",
        format=fmt,
        tolerance=MappingProxyType({"price": Decimal(PRICE_TOL)}),
    ).to_toml()


def write_venue_csv(venue: Any, path: Path) -> None:
    import polars as pl

    from recon.engine_core import dec_text
    from recon.profiles import MONEY_FIELDS

    money = [c for c in MONEY_FIELDS["trades"] if c in venue.columns]
    venue.with_columns(
        *(dec_text(pl.col(c)).alias(c) for c in money),
        pl.col("exec_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
    ).write_csv(path)


# ---- children ---------------------------------------------------------------------------------


def child_generate(d: Path, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    internal = internal_frame(n)
    venue, injected = with_faults(internal)
    internal.write_parquet(d / "internal.parquet")
    venue.write_parquet(d / "venue.parquet")
    (d / "profile.toml").write_text(profile_toml("parquet"))
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "internal_rows": internal.height,
        "venue_rows": venue.height,
        "injected": injected,
        "bytes": {
            "internal.parquet": (d / "internal.parquet").stat().st_size,
            "venue.parquet": (d / "venue.parquet").stat().st_size,
        },
    }


def child_engine(d: Path) -> dict[str, Any]:
    t = time.perf_counter()
    import polars as pl

    from recon import engine
    from recon.loaders import load
    from recon.profiles import parse_profile
    from recon.validate import validate

    import_s = time.perf_counter() - t
    profile = parse_profile((d / "profile.toml").read_text(), "bench profile")
    step = Phases()
    with step("load"):
        loaded = load(profile, d / "venue.parquet")
    with step("validate"):
        checked = validate(profile, loaded)
        # keep what a run records (rows, digest), not the loaded file
        venue_rows, _sha = loaded.rows, loaded.sha256
        del loaded
    with step("match"):
        internal = pl.scan_parquet(d / "internal.parquet")
        result = engine.match_trades(internal, checked.valid, profile.tolerance)
    with step("write_breaks"):
        out = d / "out"
        out.mkdir(exist_ok=True)
        result.breaks.write_parquet(out / "breaks.parquet")
        checked.quarantine.write_parquet(out / "quarantine.parquet")
    return {
        **step.doc(),
        "import_s": round(import_s, 3),
        "found": {
            "venue_rows": venue_rows,
            "quarantined": checked.quarantine.height,
            "matched_by_stage": {
                s: [i, v] for s, (i, v) in result.stats.matched_by_stage().items()
            },
            "breaks": result.stats.break_counts(),
        },
        "polars": pl.__version__,
    }


def child_floor(d: Path, streaming: bool) -> dict[str, Any]:
    import polars as pl

    step = Phases()
    with step("read_join"):
        joined = (
            pl.scan_parquet(d / "internal.parquet")
            .join(pl.scan_parquet(d / "venue.parquet"), on="exec_id", how="full", coalesce=True)
            .collect(engine="streaming" if streaming else "auto")
        )
    return {**step.doc(), "found": {"joined_rows": joined.height, "columns": joined.width}}


def child_store_setup(backend: str, url: str, d: Path, n: int, fmt: str) -> dict[str, Any]:
    import polars as pl

    from benchmarks.common import reference_data
    from oms import executions
    from oms.book import Ctx
    from oms.store import Store
    from recon import book_side

    ctx = Ctx("bench", datetime.now(UTC))
    store = Store.open(url, check_schema=False)
    store.init()
    reference_data(store, ctx, accounts=ACCOUNTS, symbols=SYMBOLS)
    t0 = time.perf_counter()
    execs = trades(n, 7, "X").select(
        "exec_id",
        "account",
        "symbol",
        "side",
        "quantity",
        "price",
        "trade_date",
        pl.lit(VENUE).alias("venue"),
        "commission",
        "fees",
        "exec_time",
        "client_order_id",
    )
    write_venue_csv(execs, d / "execs.csv")
    del execs
    t1 = time.perf_counter()
    result = executions.import_file(store, ctx, str(d / "execs.csv"))
    assert result.booked == n, result
    t2 = time.perf_counter()
    with store.read() as conn:
        internal = book_side.internal_trades(conn, VENUE, DAY)
    assert internal.height == n, internal.height
    venue, injected = with_faults(internal)
    venue_path = d / f"venue.{fmt}"
    if fmt == "csv":
        write_venue_csv(venue, venue_path)
    else:
        venue.write_parquet(venue_path)
    (d / "profile.toml").write_text(profile_toml(fmt))
    store.dispose()
    log(f"{backend}: booked {n} executions in {t2 - t1:.1f}s")
    return {
        "write_exec_file_s": round(t1 - t0, 2),
        "exec_import_s": round(t2 - t1, 2),
        "venue_file": venue_path.name,
        "venue_rows": venue.height,
        "venue_bytes": venue_path.stat().st_size,
        "injected": injected,
    }


def _timed(phases: dict[str, float], name: str, fn: Any) -> Any:
    def wrapper(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - t

    return wrapper


def child_store_run(url: str, d: Path, fmt: str, cprofile: bool) -> dict[str, Any]:
    t = time.perf_counter()
    from oms import audit
    from oms.book import Ctx
    from oms.store import Store
    from recon import book_side, engine, runs

    import_s = time.perf_counter() - t
    # time the run's main steps without touching recon.runs: wrap what it calls
    phases: dict[str, float] = {}
    for owner, attr, name in (
        (runs, "load_and_validate", "load_validate"),
        (book_side, "internal_trades", "book_side.internal_trades"),
        (engine, "match_trades", "engine.match_trades"),
        (runs, "_record_breaks", "_record_breaks"),
        (runs, "_records_json", "_record_breaks/_records_json(venue)"),
        (runs._Outcome, "write", "_Outcome.write (breaks, events)"),
        (runs, "_quarantine", "_quarantine"),
        (audit, "append", "audit.append"),
    ):
        setattr(owner, attr, _timed(phases, name, getattr(owner, attr)))

    store = Store.open(url)
    ctx = Ctx("bench", datetime.now(UTC))
    venue_path = str(d / f"venue.{fmt}")
    profile_path = str(d / "profile.toml")
    top: dict[str, list[str]] = {}
    reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    if cprofile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        result = prof.runcall(runs.run, store, ctx, profile_path, venue_path, DAY)
        for key in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(30)
            lines = buf.getvalue().splitlines()
            start = next(i for i, x in enumerate(lines) if x.lstrip().startswith("ncalls"))
            top[key] = [x.rstrip() for x in lines[start:] if x.strip()]
    else:
        result = runs.run(store, ctx, profile_path, venue_path, DAY)
    seconds = time.perf_counter() - t0
    cpu_s = time.process_time() - c0
    store.dispose()
    accounted = sum(v for k, v in phases.items() if "/" not in k)
    doc = {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu_s, 3),
        "phases": {
            **{k: round(v, 3) for k, v in phases.items()},
            "rest (profile, lookups, commit)": round(seconds - accounted, 3),
        },
        "import_s": round(import_s, 3),
        "vmhwm_mb": round(vmhwm_mb()),
        "found": {
            "internal_rows": result.internal_rows,
            "venue_rows": result.venue_rows,
            "quarantined": result.quarantined_rows,
            "matched_by_stage": {s: list(v) for s, v in result.by_stage.items()},
            "breaks": result.breaks,
            "new_breaks": result.new_breaks,
            "duration_s_recorded": str(result.duration_s),
        },
    }
    if top:
        doc["cprofile_top"] = top
    return doc


def child_main() -> None:
    kind = sys.argv[sys.argv.index("--child") + 1]
    rest = sys.argv[sys.argv.index("--child") + 2 :]
    out = Path(rest[-1])
    if kind == "generate":
        doc = child_generate(Path(rest[0]), int(rest[1]))
    elif kind == "engine":
        doc = child_engine(Path(rest[0]))
    elif kind == "floor":
        doc = child_floor(Path(rest[0]), streaming=rest[1] == "streaming")
    elif kind == "store-setup":
        doc = child_store_setup(rest[0], rest[1], Path(rest[2]), int(rest[3]), rest[4])
    elif kind == "store-run":
        doc = child_store_run(rest[0], Path(rest[1]), rest[2], cprofile=rest[3] == "cprofile")
    else:
        raise SystemExit(f"unknown child {kind}")
    out.write_text(json.dumps(doc))


# ---- the parent -------------------------------------------------------------------------------


def spawn(
    cmd: list[str], timeout_s: float, mem_cap_mb: float, result: str | None = None
) -> dict[str, Any]:
    """Run a child that writes its JSON result to `result` (default cmd[-1]); kill it past
    timeout_s or mem_cap_mb of RSS. Adds wall_s, the process's peak RSS (wait4) and the load
    average after."""
    result_path = Path(result or cmd[-1])
    result_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    killed, rss_max = None, 0.0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                rss = next((int(x.split()[1]) / 1024 for x in fh if x.startswith("VmRSS:")), 0)
        except (FileNotFoundError, ProcessLookupError):
            rss = 0
        rss_max = max(rss_max, rss)
        elapsed = time.perf_counter() - t0
        low = mem_available_mb() < MIN_AVAILABLE_MB
        if killed is None and (elapsed > timeout_s or rss > mem_cap_mb or low):
            if elapsed > timeout_s:
                killed = f"killed after {elapsed:.0f}s (timeout {timeout_s:.0f}s)"
            elif rss > mem_cap_mb:
                killed = (
                    f"killed at {rss:.0f} MiB RSS (cap {mem_cap_mb:.0f} MiB) after {elapsed:.0f}s"
                )
            else:
                killed = (
                    f"killed at {rss:.0f} MiB RSS after {elapsed:.0f}s: the machine had less "
                    f"than {MIN_AVAILABLE_MB} MiB available (shared machine; not to OOM others)"
                )
            log(killed)
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    doc: dict[str, Any] = {}
    if result_path.exists() and proc.returncode == 0:
        doc = json.loads(result_path.read_text())
    else:
        doc["failed"] = killed or f"exit code {proc.returncode}"
    doc["wall_s"] = round(wall, 2)
    doc["rss_polled_max_mb"] = round(rss_max)  # sampled every 0.1 s: a lower bound
    if "vmhwm_mb" not in doc and pid:  # children that reset VmHWM report their own peaks
        doc["process_peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    doc["loadavg_after"] = loadavg()
    return doc


MIN_AVAILABLE_MB: Final = 1500


def mem_available_mb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def me(kind: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.recon_bench", "--child", kind, *args]


def ensure_datacompy() -> Path:
    py = DC_VENV / "bin" / "python"
    if not py.exists():
        log(f"creating {DC_VENV} and installing datacompy (it pins polars<1.45)")
        subprocess.run([sys.executable, "-m", "venv", str(DC_VENV)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "datacompy"],
            check=True,
            stdout=sys.stderr,
        )
    return py


def median_of(samples: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [s for s in samples if "failed" not in s]
    if not ok:
        return {"failed": samples[0].get("failed"), "samples": samples}
    secs = sorted(s["seconds"] for s in ok)
    med = statistics.median(secs)
    rep = min(ok, key=lambda s: abs(s["seconds"] - med))
    return {
        "seconds_median": round(med, 3),
        "seconds_all": secs,
        "cpu_s_median": round(statistics.median(s["cpu_s"] for s in ok), 3),
        "peak_mb_max": max(s["vmhwm_mb"] for s in ok),
        **{k: v for k, v in rep.items() if k not in ("seconds", "wall_s", "loadavg_after")},
        "loadavg_after_each": [s["loadavg_after"] for s in ok],
    }


def engines_part(
    n: int, repeat: int, timeout_s: float, mem_cap_mb: float, with_datacompy: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": n}
    with tempfile.TemporaryDirectory(prefix="recon_bench_") as tmp:
        d = Path(tmp)
        res = d / "result.json"
        log(f"generating {n:,} internal trades and the venue side (1% faults) in {d}")
        out["generate"] = spawn(me("generate", str(d), str(n), str(res)), 3600, mem_cap_mb)
        if "failed" in out["generate"]:
            return out
        samples: dict[str, list[dict[str, Any]]] = {
            "engine": [],
            "floor": [],
            "floor_streaming": [],
        }
        for r in range(repeat):  # interleaved, so that load swings hit all alike
            log(f"round {r + 1}/{repeat}: engine")
            samples["engine"].append(spawn(me("engine", str(d), str(res)), timeout_s, mem_cap_mb))
            log(
                f"  -> {samples['engine'][-1].get('seconds')} s, "
                f"{samples['engine'][-1].get('vmhwm_mb')} MiB"
            )
            log(f"round {r + 1}/{repeat}: bare join")
            samples["floor"].append(
                spawn(me("floor", str(d), "memory", str(res)), timeout_s, mem_cap_mb)
            )
            samples["floor_streaming"].append(
                spawn(me("floor", str(d), "streaming", str(res)), timeout_s, mem_cap_mb)
            )
        for name, s in samples.items():
            out[name] = median_of(s)
        if with_datacompy:
            py = ensure_datacompy()
            log("datacompy")
            dc = spawn(
                [
                    str(py),
                    str(DC_SCRIPT),
                    str(d / "internal.parquet"),
                    str(d / "venue.parquet"),
                    str(d / "dc_out"),
                    str(res),
                    "--price-tol",
                    PRICE_TOL,
                ],
                timeout_s,
                mem_cap_mb,
                str(res),
            )
            dc["rows"] = n
            out["datacompy"] = dc
    if with_datacompy and "failed" in out["datacompy"]:
        out["datacompy_smaller"] = datacompy_smaller(n, timeout_s, mem_cap_mb)
    return out


def datacompy_smaller(n: int, timeout_s: float, mem_cap_mb: float) -> list[dict[str, Any]]:
    """datacompy failed at n rows: the largest of n/2, n/5, n/10 it manages (each with the
    engine beside it, same data)."""
    tried = []
    py = ensure_datacompy()
    for size in (n // 2, n // 5, n // 10):
        with tempfile.TemporaryDirectory(prefix="recon_bench_") as tmp:
            d = Path(tmp)
            res = d / "result.json"
            spawn(me("generate", str(d), str(size), str(res)), 3600, mem_cap_mb)
            log(f"datacompy at {size:,} rows")
            dc = spawn(
                [
                    str(py),
                    str(DC_SCRIPT),
                    str(d / "internal.parquet"),
                    str(d / "venue.parquet"),
                    str(d / "dc_out"),
                    str(res),
                    "--price-tol",
                    PRICE_TOL,
                ],
                timeout_s,
                mem_cap_mb,
                str(res),
            )
            dc["rows"] = size
            entry = {"rows": size, "datacompy": dc}
            if "failed" not in dc:
                entry["engine"] = spawn(me("engine", str(d), str(res)), timeout_s, mem_cap_mb)
            tried.append(entry)
            if "failed" not in dc:
                break
    return tried


def _pg_admin() -> str:
    return os.environ.get("TIEOUT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_url(name: str) -> str:
    base = _pg_admin().rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def _pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(_pg_admin(), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type,unused-ignore]


def store_part(
    backends: list[str], n: int, fmt: str, cprofile: str, timeout_s: float, mem_cap_mb: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": n, "venue_format": fmt}
    for backend in backends:
        entry: dict[str, Any] = {}
        out[backend] = entry
        with tempfile.TemporaryDirectory(prefix="recon_store_") as tmp:
            d = Path(tmp)
            res = d / "result.json"
            names: list[str] = []
            if backend == "sqlite":
                url = f"sqlite:///{d}/bench.db"
            else:
                names.append(f"tieout_bench_{uuid.uuid4().hex[:8]}")
                _pg(f'CREATE DATABASE "{names[0]}"')
                url = _pg_url(names[0])
            try:
                log(f"{backend}: booking {n:,} executions (setup, not timed)")
                entry["setup"] = spawn(
                    me("store-setup", backend, url, str(d), str(n), fmt, str(res)),
                    3600,
                    mem_cap_mb,
                )
                if "failed" in entry["setup"]:
                    continue
                clone_url = None
                if cprofile != "never":  # a copy of the booked store, for a profiled run
                    if backend == "sqlite":
                        shutil.copyfile(d / "bench.db", d / "clone.db")
                        clone_url = f"sqlite:///{d}/clone.db"
                    else:
                        names.append(names[0] + "_p")
                        _pg(f'CREATE DATABASE "{names[1]}" TEMPLATE "{names[0]}"')
                        clone_url = _pg_url(names[1])
                log(f"{backend}: recon run")
                run = spawn(
                    me("store-run", url, str(d), fmt, "plain", str(res)), timeout_s, mem_cap_mb
                )
                entry["run"] = run
                log(f"  -> {run.get('seconds')} s, {run.get('vmhwm_mb')} MiB")
                missed = run.get("seconds", 1e9) > AIMS["recon_run_seconds_max"]
                if clone_url and (cprofile == "always" or missed):
                    log(f"{backend}: recon run under cProfile (on a copy of the store)")
                    entry["run_cprofile"] = spawn(
                        me("store-run", clone_url, str(d), fmt, "cprofile", str(res)),
                        timeout_s * 3,
                        mem_cap_mb,
                    )
            finally:
                for name in names:
                    _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


def verdicts(doc: dict[str, Any]) -> dict[str, Any]:
    """Each aim met or not; None when the run was smaller than the size the aim is set at."""
    v: dict[str, Any] = {}
    at_size = doc.get("engines", {}).get("rows", 0) >= 10_000_000
    store_at_size = doc.get("recon_run", {}).get("rows", 0) >= 1_000_000
    eng = doc.get("engines", {})
    e = eng.get("engine", {})
    if "seconds_median" in e:
        v["engine_seconds"] = {
            "rows": eng["rows"],
            "value": e["seconds_median"],
            "aim": f"<= {AIMS['engine_seconds_max']} s at 10M x 10M",
            "met": e["seconds_median"] <= AIMS["engine_seconds_max"] if at_size else None,
            "cpu_s": e["cpu_s_median"],
            "note": "cpu_s / 2 bounds the wall time on an idle 2-core machine from below",
        }
        v["engine_peak_memory"] = {
            "value_mb": e["peak_mb_max"],
            "aim": f"<= {AIMS['engine_peak_gb_max']} GB",
            "met": (
                e["peak_mb_max"] * 2**20 <= AIMS["engine_peak_gb_max"] * 10**9 if at_size else None
            ),
        }
        f = eng.get("floor", {})
        if "seconds_median" in f:
            ratio = e["seconds_median"] / f["seconds_median"]
            v["engine_vs_bare_join"] = {
                "ratio": round(ratio, 2),
                "ratio_cpu_s": round(e["cpu_s_median"] / f["cpu_s_median"], 2),
                "aim": f"<= {AIMS['ratio_to_bare_join_max']}x",
                "met": ratio <= AIMS["ratio_to_bare_join_max"] if at_size else None,
            }
        dc = eng.get("datacompy", {})
        if "seconds" in dc and "failed" not in dc:
            speedup = dc["seconds"] / e["seconds_median"]
            v["speedup_vs_datacompy"] = {
                "value": round(speedup, 2),
                "value_cpu_s": round(dc["cpu_s"] / e["cpu_s_median"], 2),
                "aim": f">= {AIMS['speedup_vs_datacompy_min']}x",
                "met": speedup >= AIMS["speedup_vs_datacompy_min"] if at_size else None,
            }
        elif dc:
            v["speedup_vs_datacompy"] = {"value": None, "datacompy": dc.get("failed"), "met": None}
    st = doc.get("recon_run", {})
    for backend in ("sqlite", "postgresql"):
        run = st.get(backend, {}).get("run", {})
        if "seconds" in run:
            v[f"recon_run_{backend}"] = {
                "rows": st["rows"],
                "value": run["seconds"],
                "aim": f"<= {AIMS['recon_run_seconds_max']} s at 1M",
                "met": run["seconds"] <= AIMS["recon_run_seconds_max"] if store_at_size else None,
            }
    return v


def main() -> None:
    if "--child" in sys.argv:
        child_main()
        return
    from benchmarks.common import report

    parts = [p for p in ("engines", "store") if p in sys.argv] or ["engines", "store"]
    backends: list[str] = [b for b in ("sqlite", "postgresql") if b in sys.argv]
    backends = backends or ["sqlite", "postgresql"]
    rows = int(arg("--rows", "10000000"))
    store_rows = int(arg("--store-rows", "1000000"))
    repeat = int(arg("--repeat", "3"))
    timeout_s = float(arg("--timeout", "600"))
    mem_cap_mb = float(arg("--mem-cap-mb", "18000"))
    fmt = arg("--venue-format", "csv")
    cprofile = arg("--cprofile", "auto")
    import polars as pl

    doc: dict[str, Any] = {
        "benchmark": "recon_bench",
        "polars": pl.__version__,
        "memory_total_mb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20),
        "loadavg_before": loadavg(),
    }
    if "engines" in parts:
        doc["engines"] = engines_part(
            rows, repeat, timeout_s, mem_cap_mb, "--no-datacompy" not in sys.argv
        )
    if "store" in parts:
        doc["recon_run"] = store_part(backends, store_rows, fmt, cprofile, timeout_s, mem_cap_mb)
    doc["loadavg_after"] = loadavg()
    doc["aims"] = verdicts(doc)
    report(doc)


if __name__ == "__main__":
    main()

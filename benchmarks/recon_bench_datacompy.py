"""Child of benchmarks/recon_bench.py: datacompy's PolarsCompare on the benchmark's Parquet files.

Runs in its own virtualenv (benchmarks/.venv-datacompy: datacompy pins polars<1.45, which the
project cannot use), so it imports nothing from tieout:

    benchmarks/.venv-datacompy/bin/python benchmarks/recon_bench_datacompy.py \\
        INTERNAL.parquet VENUE.parquet OUT_DIR RESULT.json [--price-tol 0.0001]

The same work as the engine's, as far as datacompy goes: read both files (the internal side
without the engine's bookkeeping columns row, ref and venue), PolarsCompare joined on exec_id
with the profile's price tolerance, then every mismatching pair (all_mismatch) and the rows on
one side only, written as Parquet (its "breaks"). report() is timed apart: a text summary with
samples, not a list of breaks. Writes one JSON document to RESULT.json; progress on stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time


def vmhwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    internal_path, venue_path, out_dir, result_path = sys.argv[1:5]
    tol = float(sys.argv[sys.argv.index("--price-tol") + 1]) if "--price-tol" in sys.argv else 0.0
    t_import = time.perf_counter()
    import datacompy
    import polars as pl
    from datacompy import PolarsCompare

    phases: dict[str, float] = {"import_s": time.perf_counter() - t_import}
    print(f"datacompy {datacompy.__version__}, polars {pl.__version__}", file=sys.stderr)
    t0, c0 = time.perf_counter(), time.process_time()
    df1 = pl.read_parquet(internal_path).drop("row", "ref", "venue")
    df2 = pl.read_parquet(venue_path)
    t1 = time.perf_counter()
    phases["read_s"] = t1 - t0
    cmp = PolarsCompare(
        df1,
        df2,
        join_columns=["exec_id"],
        abs_tol={"price": tol},
        df1_name="internal",
        df2_name="venue",
    )
    t2 = time.perf_counter()
    phases["compare_s"] = t2 - t1
    mismatch = cmp.all_mismatch(ignore_matching_cols=True)
    t3 = time.perf_counter()
    phases["all_mismatch_s"] = t3 - t2
    os.makedirs(out_dir, exist_ok=True)
    mismatch.write_parquet(os.path.join(out_dir, "dc_mismatch.parquet"))
    cmp.df1_unq_rows.write_parquet(os.path.join(out_dir, "dc_internal_only.parquet"))
    cmp.df2_unq_rows.write_parquet(os.path.join(out_dir, "dc_venue_only.parquet"))
    t4 = time.perf_counter()
    phases["write_s"] = t4 - t3
    seconds = t4 - t0
    cpu_s = time.process_time() - c0
    peak_work = vmhwm_mb()
    report = cmp.report()
    phases["report_s"] = time.perf_counter() - t4
    doc = {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu_s, 3),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "vmhwm_mb": round(peak_work),
        "vmhwm_with_report_mb": round(vmhwm_mb()),
        "found": {
            "mismatched_pairs": mismatch.height,
            "internal_only": cmp.df1_unq_rows.height,
            "venue_only": cmp.df2_unq_rows.height,
            "intersect": cmp.intersect_rows.height,
        },
        "report_chars": len(report),
        "versions": {"datacompy": datacompy.__version__, "polars": pl.__version__},
    }
    with open(result_path, "w") as fh:
        json.dump(doc, fh)


if __name__ == "__main__":
    main()

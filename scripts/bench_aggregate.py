"""Benchmark: ingestion and aggregation of 10 million apprehension records.

Generates a SYNTHETIC dataset folder (vectorised numpy, in a child process so that its memory does not count):
N apprehension records of ~0.3 N distinct people in two surveyed sections (Omsk, Orenburg) over ten years,
written as ``apprehensions.parquet``, beside tiny ``sections.csv``, ``checkpoints.csv`` and
``checkpoint_records.csv``. Then times, in this process:

  (a) ``estim.records.load_records(folder)``: reading, validation, pseudonymisation, typing. When that is
      not importable yet, the folder is read straight into a RecordSet (no validation, person_key renamed
      to person_id without hashing) and the report says so;
  (b) ``estim.statistics.sufficient_statistics(records)`` (and, for information, ``data_summary``).

Reports the wall time of each and the peak resident set size of this process (``ru_maxrss``; tracemalloc is
not used because it slows allocation-heavy code several-fold). On Linux it also resets the kernel's high-water
mark before (b), to report the peak during (b) alone. Target on 2 cores: (a) + (b) < 60 s, peak < 4 GB.

    python scripts/bench_aggregate.py                          # 10,000,000 records
    python scripts/bench_aggregate.py --records 20000 --json
    python scripts/bench_aggregate.py --keep /tmp/bench10m     # keep the folder; re-used if it has N records
    python scripts/bench_aggregate.py --keep /tmp/bench10m --direct   # (b) on a directly read RecordSet
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 20060101
FIRST_DAY = np.datetime64("2008-01-01")
YEARS = 10
SURVEYED = ("omsk", "orenburg")


# ------------------------------------------------------------------------------------------------ generation


def _fixed_width_strings(codes: np.ndarray, prefix: bytes, width: int, hex_digits: bool = False):
    """An Arrow string array of prefix + zero-padded number, built from raw buffers (no Python objects)."""
    import pyarrow as pa

    n = codes.size
    base = 16 if hex_digits else 10
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    body = np.empty((n, width), np.uint8)
    rest = codes.astype(np.uint64)
    for j in range(width - 1, -1, -1):
        body[:, j] = digits[(rest % base).astype(np.intp)]
        rest //= base
    total = len(prefix) + width
    data = np.empty((n, total), np.uint8)
    data[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    data[:, len(prefix) :] = body
    offsets = (np.arange(n + 1, dtype=np.int64) * total).astype(
        np.int32 if n * total < 2**31 else np.int64
    )
    kind = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    arr = pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(data.ravel())])
    return arr.cast(pa.string()) if kind != pa.string() else arr


def _choice_strings(rng: np.random.Generator, labels: list[str], index: np.ndarray):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(labels)).cast(
        pa.string()
    )


def generate(folder: Path, n: int) -> None:
    """Write a valid dataset folder with `n` apprehension records (synthetic)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from estim.records.schemas import CATEGORIES, DETECTORS, DIRECTIONS, RECORDED, SECTIONS

    rng = np.random.default_rng(SEED)
    folder.mkdir(parents=True, exist_ok=True)
    n_people = max(1, int(0.3 * n))

    # Every person is apprehended at least once; the other records go to people with gamma-distributed
    # propensities, so the frequencies f_k have a long tail as in real re-apprehension data.
    propensity = rng.gamma(0.5, 1.0, n_people)
    extra = np.searchsorted(np.cumsum(propensity), rng.uniform(0, propensity.sum(), n - n_people))
    person = np.concatenate([np.arange(n_people), np.minimum(extra, n_people - 1)])
    person = person[rng.permutation(n)]
    # A person mostly keeps to one section and one category.
    home = rng.integers(0, 2, n_people)
    section = np.where(rng.random(n) < 0.95, home[person], 1 - home[person])
    usual = rng.integers(0, len(CATEGORIES), n_people)
    category = np.where(rng.random(n) < 0.9, usual[person], rng.integers(0, len(CATEGORIES), n))
    days = int((FIRST_DAY + np.timedelta64(365 * YEARS, "D") - FIRST_DAY) / np.timedelta64(1, "D"))
    date = FIRST_DAY + rng.integers(0, days, n).astype("timedelta64[D]")

    table = pa.table(
        {
            "apprehension_id": _fixed_width_strings(np.arange(n), b"A", 10),
            "date": pa.array(date, type=pa.date32()),
            "section_id": _choice_strings(rng, list(SURVEYED), section),
            "person_key": _fixed_width_strings(person, b"P", 12, hex_digits=True),
            "citizenship": _choice_strings(
                rng, ["KAZ", "UZB", "TJK", "KGZ", "RUS"], rng.integers(0, 5, n)
            ),
            "border_zone_resident": pa.array(rng.random(n) < 0.3),
            "direction": _choice_strings(rng, list(DIRECTIONS), rng.integers(0, 2, n)),
            "recorded": _choice_strings(rng, list(RECORDED), rng.integers(0, len(RECORDED), n)),
            "detected_by": _choice_strings(
                rng, list(DETECTORS), rng.integers(0, len(DETECTORS), n)
            ),
            "category": _choice_strings(rng, list(CATEGORIES), category),
        }
    )
    pq.write_table(table, folder / "apprehensions.parquet", row_group_size=1 << 20)

    head = (
        "section_id,name,length_km,length_km_source,checkpoints_road,checkpoints_rail,checkpoints_air,"
        "checkpoints_river,checkpoints_source,terrain,terrain_source,border_population,"
        "border_population_source,surveyed,surveyed_source\n"
    )
    rows = [
        f"{s},{s.title()},500.0,assumed,1,1,0,0,assumed,steppe,assumed,100000,assumed,"
        f"{'true' if s in SURVEYED else 'false'},assumed\n"
        for s in SECTIONS
    ]
    (folder / "sections.csv").write_text(head + "".join(rows), encoding="utf-8")
    checkpoints = [(f"{s}_{t}", s, t) for s in SURVEYED for t in ("road", "rail")]
    (folder / "checkpoints.csv").write_text(
        "checkpoint_id,section_id,name,type,source\n"
        + "".join(f"{c},{s},{c},{t},assumed\n" for c, s, t in checkpoints),
        encoding="utf-8",
    )
    lines = [
        "checkpoint_id,month,crossings_citizens,crossings_foreigners,refusals_of_entry,"
        "invalid_documents,mean_wait_minutes\n"
    ]
    for c, _, _ in checkpoints:
        for m in range(12 * YEARS):
            month = np.datetime_as_string(
                FIRST_DAY.astype("datetime64[M]") + np.timedelta64(m, "M"), unit="M"
            )
            lines.append(
                f"{c},{month},{rng.integers(10_000, 50_000)},{rng.integers(1_000, 9_000)},"
                f"{rng.integers(0, 50)},{rng.integers(0, 20)},{rng.uniform(10, 120):.1f}\n"
            )
    (folder / "checkpoint_records.csv").write_text("".join(lines), encoding="utf-8")


# ------------------------------------------------------------------------------------------------ measuring


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process since it started."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _proc_status(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_phase_peak() -> bool:
    """Reset the kernel's high-water mark (VmHWM) so that the next phase's own peak can be read (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _direct_recordset(folder: Path):
    """The folder as a RecordSet without estim's loader: typed columns, person_key renamed (not hashed)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from estim.records.recordset import PERSON_ID, RecordSet, empty_frame, typed_columns
    from estim.records.schemas import SCHEMAS

    def typed(name: str, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.rename(columns={"person_key": PERSON_ID})
        for column, dtype in typed_columns(SCHEMAS[name]).items():
            if dtype.startswith("datetime"):
                frame[column] = pd.to_datetime(frame[column]).astype(dtype)
            else:
                frame[column] = frame[column].astype(dtype)
        return frame

    tables = {}
    for name, schema in SCHEMAS.items():
        parquet, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
        if parquet.exists():
            frame = pq.read_table(parquet).to_pandas(
                types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get, date_as_object=False
            )
        elif csv.exists():
            frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
        else:
            tables[name] = empty_frame(schema)
            continue
        tables[name] = typed(name, frame)
    return RecordSet(**tables, source=folder)


def measure(folder: Path, n: int, direct: bool = False) -> dict:
    from estim.statistics import data_summary, sufficient_statistics

    load_records = None
    if not direct:
        try:
            from estim.records import load_records
        except ImportError:
            pass

    # A benchmark-only key: the loader would otherwise warn about its public default key.
    os.environ.setdefault("ESTIM_PSEUDONYM_KEY", "bench-aggregate-not-a-secret")
    t0 = time.perf_counter()
    if load_records is not None:
        records = load_records(folder)
        how = "load_records"
    else:
        records = _direct_recordset(folder)
        why = "--direct" if direct else "estim.records.load_records not available"
        how = f"direct read ({why}): no validation, person_key renamed, not hashed"
    load_seconds = time.perf_counter() - t0
    rss_after_load = _peak_rss_bytes()
    rss_holding_records = _proc_status("VmRSS")

    phase_peak = _reset_phase_peak()
    t1 = time.perf_counter()
    ds = sufficient_statistics(records)
    statistics_seconds = time.perf_counter() - t1
    rss_after_statistics = _peak_rss_bytes()
    statistics_peak = _proc_status("VmHWM") if phase_peak else None

    t2 = time.perf_counter()
    summary = data_summary(records)
    summary_seconds = time.perf_counter() - t2

    k = ds.k.values
    return {
        "records": n,
        "loaded_rows": len(records.apprehensions),
        "load": how,
        "load_seconds": round(load_seconds, 3),
        "statistics_seconds": round(statistics_seconds, 3),
        "summary_seconds": round(summary_seconds, 3),
        "total_seconds": round(load_seconds + statistics_seconds, 3),
        "peak_rss_after_load_bytes": rss_after_load,
        # Resetting VmHWM also resets ru_maxrss, so the process peak is the larger of the two readings.
        "peak_rss_bytes": max(rss_after_load, rss_after_statistics),
        # Linux only (None elsewhere): RSS while holding the loaded records, and the peak during (b) alone.
        "rss_holding_records_bytes": rss_holding_records,
        "statistics_phase_peak_rss_bytes": statistics_peak,
        "distinct_people": int(summary["distinct_people"].sum()),
        # Consistency of the statistics: every person-in-stratum has one f_k cell and one history, and
        # sum_k k f_k gives back the number of apprehensions.
        "person_strata": int(ds.history_count.sum()),
        "frequency_total_people": int(ds.frequency.sum()),
        "sum_k_f_k": int((ds.frequency.sum(("section", "period", "category")) * k).sum()),
        "distinct_histories": int(ds.sizes["history"]),
        "k_max": int(k.max()) if k.size else 0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=10_000_000, help="apprehension records (default 10 M)"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="generate into (or re-use) this folder and keep it"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="skip load_records: read the folder straight into a RecordSet (isolates (b))",
    )
    parser.add_argument("--generate-into", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.generate_into is not None:  # the child process
        generate(args.generate_into, args.records)
        return

    with tempfile.TemporaryDirectory(prefix="bench_aggregate_") as tmp:
        folder = args.keep or Path(tmp) / "records"
        t0 = time.perf_counter()
        if not _reusable(folder, args.records):
            # A child process, so that the generator's arrays do not count in this process's peak RSS.
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--records",
                    str(args.records),
                    "--generate-into",
                    str(folder),
                ],
                check=True,
            )
        generate_seconds = time.perf_counter() - t0
        result = measure(folder, args.records, direct=args.direct)
        result["generate_seconds"] = round(generate_seconds, 3)

    if args.json:
        print(json.dumps(result))
        return
    gib = 2**30
    print(
        f"records               {result['records']:,} ({result['distinct_people']:,} distinct people per section, summed)"
    )
    print(f"generate (child)      {result['generate_seconds']:.1f} s")
    print(f"(a) load              {result['load_seconds']:.1f} s   [{result['load']}]")
    print(f"(b) statistics        {result['statistics_seconds']:.1f} s")
    print(f"    data_summary      {result['summary_seconds']:.1f} s (not in the total)")
    print(f"total (a)+(b)         {result['total_seconds']:.1f} s   (target < 60 s)")
    print(f"peak RSS after (a)    {result['peak_rss_after_load_bytes'] / gib:.2f} GiB")
    print(f"peak RSS (a)+(b)      {result['peak_rss_bytes'] / gib:.2f} GiB   (target < 4 GiB)")
    if result["statistics_phase_peak_rss_bytes"] is not None:
        held = result["rss_holding_records_bytes"] / gib
        during = result["statistics_phase_peak_rss_bytes"] / gib
        print(f"    RSS holding the records {held:.2f} GiB; peak during (b) alone {during:.2f} GiB")
    print(f"histories {result['distinct_histories']}, k_max {result['k_max']}")


def _reusable(folder: Path, n: int) -> bool:
    path = folder / "apprehensions.parquet"
    if not path.exists():
        return False
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows == n


if __name__ == "__main__":
    main()

"""RESULTS.md from the figures of a `make bench` run."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.measure import med


def render(results: dict[str, Any], quick: bool, command: str) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M %Z')}"
        + (" (QUICK MODE: small sizes, one repetition; not the real figures)" if quick else "")
        + ". Figures, not assertions; see benchmarks/run_all.py for exactly what runs.",
        "",
        f"Machine: {m['cpu']}, {m['memory']}, {m['os']}. Python {m['python']}, duckdb "
        f"{m['duckdb']}, pyarrow {m['pyarrow']}, orjson {m['orjson']}, dagster {m['dagster']}, "
        f"httpx {m['httpx']}.",
        "",
    ]
    if "load" in results:
        lines += _load_section(results["load"])
    if "collect" in results:
        c = results["collect"]
        f, n = c["first"], c["next"]
        lines += [
            f"## 2. First collection: {c['connections']} connections x {c['runs']} runs, "
            f"{c['latency'] * 1000:.0f} ms latency, page cap 50, {c['rate']:,} requests/min",
            "",
            f"Load average before: {c['load_avg'][0]}; after: {c['load_avg'][1]}. The simulator "
            "runs in its own process and also limits at the budget (a 429 would show our pace "
            "was too fast). The collection runs `pipeline.collection.collect` (client, flatten, "
            "load) in a fresh process, without Dagster.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| wall time (median of {len(c['first_walls'])} first collections, each into a "
            f"fresh warehouse; all: {', '.join(f'{x:.1f}' for x in c['first_walls'])} s) "
            f"| {f['wall_s']:.1f} s |",
            f"| requests made (pages {f['pages']}, retries {f['retries']}) | {f['requests']} |",
            f"| minimum the budget allows for them (requests / budget) | {c['min_wall_s']:.1f} s |",
            f"| **wall / minimum** (goal at most 1.10, issue 18; all rounds: "
            f"{', '.join(f'{x:.3f}' for x in c['first_ratios'])}) "
            f"| **{f['wall_s'] / c['min_wall_s']:.3f}** |",
            f"| 429 answers | {f['throttled_429']} |",
            f"| runs collected | {f['runs_loaded']:,} |",
            f"| requests per run collected | {f['requests'] / max(f['runs_loaded'], 1):.4f} |",
            f"| requests in flight at most (derived from the budget) | {f['in_flight_limit']} |",
            f"| peak RSS of the collecting process | {f['peak_tree_mb']:.0f} MB |",
            "",
            "## 3. Next collection, nothing new",
            "",
            "| figure | value |",
            "|---|---|",
            f"| wall time | {n['wall_s']:.2f} s |",
            f"| requests | {n['requests']} |",
            f"| goal: one per connection + one per open run | {c['connections']} + "
            f"{f['open_runs_after']} = {c['connections'] + f['open_runs_after']} |",
            f"| 429 answers | {n['throttled_429']} |",
            f"| runs new or changed | {n['runs_loaded']} |",
            "",
        ]
        if "quiet" in c:
            lines += quiet_section(c["quiet"])
    if "demo" in results:
        d = results["demo"]
        dag = d["dagster"]
        imports = med([x["imports_s"] for x in dag])
        defs = med([x["definitions_s"] for x in dag])
        run1 = med([x["one_op_run_s"] for x in dag])
        total = med(d["demo_wall"])
        lines += [
            "## 4. `itwin-runs demo` end to end",
            "",
            f"Load average before: {d['load_avg'][0]}; after: {d['load_avg'][1]}. "
            f"{len(d['demo_wall'])} run(s); Dagster's start-up measured in a separate fresh "
            "process the same way the CLI pays it.",
            "",
            "| part | median s |",
            "|---|---|",
            f"| whole `itwin-runs demo` (process start to exit) | {total:.1f} |",
            f"| Dagster: importing dagster and the definitions module | {imports:.1f} |",
            f"| Dagster: building the Definitions and resolving the job | {defs:.2f} |",
            f"| Dagster: an in-process run of a one-op job (run start, events, storage) | "
            f"{run1:.2f} |",
            f"| the rest: simulator, collection, models, reports, per-step Dagster overhead | "
            f"{total - imports - defs - run1:.1f} |",
            "",
            f"Peak RSS of the demo's process tree: {max(d['demo_rss']):.0f} MB.",
            "",
        ]
    return "\n".join(lines)


def _load_section(r: dict[str, Any]) -> list[str]:
    labels = {
        "cli": "`itwin-runs load`",
        "before": "before this work (`--baseline`)",
        "bare": "DuckDB read_json + UNNEST (bare reference)",
        "like": "DuckDB read_json + UNNEST, also keeping JSON text, sha256, fetch time",
    }
    lines = [
        f"## 1. `itwin-runs load` of {r['runs']:,} runs ({r['files']:,} page files, "
        f"{r['size_mb']:.0f} MB) against DuckDB's own load",
        "",
        f"Load average (1/5/15 min) before: {r['load_avg'][0]}; after: {r['load_avg'][1]}. "
        f"{len(r['cli']['wall'])} alternating rounds, each method in a fresh process. The "
        "load part runs to the 'loaded' line (imports included); the whole command adds, for "
        "ours, the SQL models, Parquet and HTML via Dagster. Medians; CPU is user + system of the "
        "whole command (on a shared machine it moves less than wall time). RSS: peak of the "
        "process tree.",
        "",
        "| method | load part s | whole command s | CPU s | peak RSS MB | rounds (part/whole) |",
        "|---|---|---|---|---|---|",
    ]
    for method, label in labels.items():
        m = r[method]
        if not m["wall"]:
            continue
        pairs = zip(m["load_part"], m["wall"], strict=True)
        rounds = ", ".join(f"{p:.1f}/{w:.1f}" for p, w in pairs)
        lines.append(
            f"| {label} | {med(m['load_part']):.1f} | {med(m['wall']):.1f} | "
            f"{med(m['cpu']):.1f} | {max(m['rss']):.0f} | {rounds} |"
        )
    ours_part, ours_whole = med(r["cli"]["load_part"]), med(r["cli"]["wall"])
    for key, name in (("bare", "bare"), ("like", "like-for-like")):
        ref_part, ref_whole = med(r[key]["load_part"]), med(r[key]["wall"])
        lines.append("")
        lines.append(
            f"Reference / ours, {name}: load part **{ref_part / ours_part:.2f}**, whole command "
            f"**{ref_whole / ours_whole:.2f}** (1.00 or more: ours at least as fast)."
        )
    lines += [
        "",
        "Peak RSS of `itwin-runs load` (whole process tree) by history size:",
        "",
        "| runs | peak tree RSS MB |",
        "|---|---|",
        *[f"| {n:,} | {mb:.0f} |" for n, mb in sorted(r["rss_by_size"].items())],
        "",
    ]
    return lines


def quiet_section(q: dict[str, Any]) -> list[str]:
    """Requests of a quiet hourly collection of connections discovered through iModels."""
    b, a, f = q["before"], q["after"], q["first"]
    return [
        f"### Nothing new, {q['connections']} connections discovered through "
        f"{q['imodels']} iModels ({q['runs']} runs each)",
        "",
        "| next collection | requests | runs new or changed |",
        "|---|---|---|",
        f"| every run listing read (before the `lastRun` skip) | {b['requests']} | "
        f"{b['runs_loaded']} |",
        f"| `lastRun` skip | {a['requests']} | {a['runs_loaded']} |",
        f"| goal: one per 50 connections of an iModel + the connections with open runs | "
        f"{q['listing_pages']} + {f['connections_with_open_runs']} |",
        "",
    ]

#!/usr/bin/python3
"""Markdown tables of scripts/bench-python.sh's runs.

    report_python.py RUNS.tsv

RUNS.tsv has one line per run: connections, depth, server, round and
zinx-bench's --json object ({} for a run that failed). Prints per row of
the matrix the median of the rounds for each server, the spread of its
rounds, and the throughput ratios taken within each round (the servers
of one round ran back to back, so a ratio of one round is less exposed
to the machine's slow spells than a ratio of medians).
"""

import json
import statistics
import sys
from collections import defaultdict

# (numerator, denominator) server pairs; a pair is shown when both ran.
RATIOS = [
    ("py-w0", "gevent"),
    ("c-w0", "gevent"),  # the ceiling: what a C handler gets in that row
    ("py-w10", "gevent"),
    ("c-w0", "py-w0"),
    ("c-w10", "py-w10"),
    ("py-w0", "py-w10"),
]
ORDER = ["c-w0", "c-w10", "py-w0", "py-w10", "gevent"]


def load(path):
    runs = defaultdict(dict)  # (conns, depth) -> {(server, round): json}
    with open(path) as f:
        for line in f:
            conns, depth, server, rnd, obj = line.rstrip("\n").split("\t", 4)
            runs[(int(conns), int(depth))][(server, int(rnd))] = json.loads(obj)
    return runs


def fmt_rate(v):
    return "%.0f" % v if v < 1000 else "{:,.0f}".format(v)


def per_server(table):
    """server -> list of (round, result) for the runs that succeeded."""
    out = defaultdict(list)
    for (server, rnd), res in sorted(table.items()):
        if res.get("frames_per_s"):
            out[server].append((rnd, res))
    return out


def print_servers(runs):
    print("| connections x depth | server | frames/s | p50 us | p99 us "
          "| server CPU us/frame | server CPU % | client CPU % "
          "| rounds' spread |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (conns, depth), table in sorted(runs.items()):
        by = per_server(table)
        names = [s for s in ORDER if s in by] + sorted(set(by) - set(ORDER))
        for s in names:
            res = [r for _, r in by[s]]
            rates = [r["frames_per_s"] for r in res]
            med = statistics.median(rates)
            p50 = statistics.median(r["latency_us"]["p50"] for r in res)
            p99 = statistics.median(r["latency_us"]["p99"] for r in res)
            cpu = [r["server_cpu_us_per_frame"] for r in res
                   if "server_cpu_us_per_frame" in r]
            spct = [r["server_cpu_pct"] for r in res if "server_cpu_pct" in r]
            cpct = statistics.median(r["client_cpu_pct"] for r in res)
            spread = (max(rates) - min(rates)) / med * 100 if med else 0
            print("| %d x %d | %s | %s | %.0f | %.0f | %s | %s | %.0f | %.0f %% |"
                  % (conns, depth, s, fmt_rate(med), p50, p99,
                     "%.2f" % statistics.median(cpu) if cpu else "-",
                     "%.0f" % statistics.median(spct) if spct else "-",
                     cpct, spread))
        failed = sorted({s for (s, _), r in table.items()
                         if not r.get("frames_per_s")})
        if failed:
            print("| %d x %d | failed runs: %s | | | | | | | |" % (
                conns, depth, ", ".join(failed)))


def print_ratios(runs, title, value, invert):
    """A table of value(result) ratios per server pair; invert: b / a."""
    shown = [(a, b) for a, b in RATIOS
             if any(per_server(t).get(a) and per_server(t).get(b)
                    for t in runs.values())]
    if not shown:
        return
    print()
    print(title)
    print()
    print("| connections x depth | " +
          " | ".join("%s / %s" % p for p in shown) + " |")
    print("|---|" + "---:|" * len(shown))
    for (conns, depth), table in sorted(runs.items()):
        by = per_server(table)
        cells = []
        for a, b in shown:
            ra = dict((rnd, value(r)) for rnd, r in by.get(a, []))
            rb = dict((rnd, value(r)) for rnd, r in by.get(b, []))
            if invert:
                ra, rb = rb, ra
            vals = [ra[k] / rb[k] for k in sorted(ra)
                    if k in rb and rb[k] and ra[k] is not None]
            cells.append("%s -> **%.2f**" % (
                ", ".join("%.2f" % v for v in vals),
                statistics.median(vals)) if vals else "-")
        print("| %d x %d | %s |" % (conns, depth, " | ".join(cells)))


def main():
    runs = load(sys.argv[1])
    print_servers(runs)
    print_ratios(runs, "Throughput ratios within each round (frames/s; "
                 "round 1, 2, ... -> median):",
                 lambda r: r["frames_per_s"], False)
    print_ratios(runs, "Efficiency ratios within each round (server CPU "
                 "per frame, the second server's over the first's: how "
                 "many times less CPU the first spends per frame):",
                 lambda r: r.get("server_cpu_us_per_frame"), True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The decode run's short table (run.sh): the harness's failing outputs per variant, then for
every benchmarked case (shape, bits, T) the shipped kernel and each variant in µs and % of the
bytes floor, beside cuBLAS bf16 and the copy rate measured in the same run; SASS counts last.

    python3 summary.py HARNESS_RESULTS_JSON BENCH_JSON [SASS_TXT]
"""
import json
import re
import sys


def variant_of(name):
    m = re.search(r"_(v\d+[a-z]?)$", name)
    return m.group(1) if m else "shipped"


def base_of(name):
    return re.sub(r"_(v\d+[a-z]?)$", "", name)


def sass_counts(path):
    """Per kernel symbol: instructions, HMMA, LDG.E.128, LDG, SHFL, BRA (whole function)."""
    counts, name = {}, None
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return counts
    for line in lines:
        m = re.search(r"Function : (\w+)", line)
        if m:
            name = m.group(1)
            counts[name] = {"instr": 0, "HMMA": 0, "LDG128": 0, "LDG": 0, "SHFL": 0, "BRA": 0}
            continue
        if not name or not re.search(r"/\*[0-9a-f]{4,}\*/", line):
            continue
        c = counts[name]
        c["instr"] += 1
        c["HMMA"] += " HMMA" in line
        c["LDG128"] += "LDG" in line and ".128" in line
        c["LDG"] += " LDG" in line
        c["SHFL"] += "SHFL" in line
        c["BRA"] += " BRA" in line
    return counts


def main():
    harness = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else []
    bench = json.load(open(sys.argv[2]))
    out = ["# decode: shipped kernel and variants (commit %s, %s)" % (bench["commit"], bench["gpu"]), ""]
    c = bench["ceilings"]
    out.append(f"Copy rate in this run: {c['copy_bytes_per_s'] / 1e12:.2f} TB/s (read + write). floor = bytes of the bindings / copy rate.")
    out.append("")
    if harness:
        by = {}
        for r in harness:
            v = variant_of(r["kernel"])
            s = by.setdefault(v, {"outputs": 0, "failing": 0, "worst": {}})
            s["outputs"] += 1
            s["failing"] += 0 if r["ok"] else 1
            s["worst"][r["dtype"]] = max(s["worst"].get(r["dtype"], 0.0), r["error"])
        out.append("Harness (float64 reference, ragged shapes, T = 1, 3, 5, 11, 16):")
        out.append("")
        out.append("| body | outputs | failing | largest error |")
        out.append("|---|---|---|---|")
        for v, s in sorted(by.items()):
            out.append(f"| {v} | {s['outputs']} | {s['failing']} | " + ", ".join(f"{d} {e:.1e}" for d, e in sorted(s["worst"].items())) + " |")
        out.append("")
    variants = sorted({variant_of(r["kernel"]) for r in bench["rows"]}, key=lambda v: (v != "shipped", v))
    cases = {}
    for r in bench["rows"]:
        key = (r["K"], r["N"], r["bits"], r["group"], r["rank"], r["T"])
        cases.setdefault(key, {})[variant_of(r["kernel"])] = r
    head = "| K×N | W g r | T | floor µs | " + " | ".join(f"{v} µs (%)" for v in variants) + " | cuBLAS µs | best % |"
    out += ["Bench (µs, median; % of the bytes floor):", "", head, "|" + "---|" * (head.count("|") - 1)]
    for key in sorted(cases):
        K, N, bits, g, rank, T = key
        rows = cases[key]
        any_row = next(iter(rows.values()))
        cells = []
        best = 0.0
        for v in variants:
            r = rows.get(v)
            if r is None:
                cells.append("—")
                continue
            pct = 100 * r["floor_ms"] / r["ours_ms"]
            best = max(best, pct) if r["ok"] else best
            cells.append(f"{r['ours_ms'] * 1e3:.1f} ({pct:.0f}%)" + ("" if r["ok"] else " FAIL"))
        cublas = next((r["cublas_ms"] for r in rows.values() if "cublas_ms" in r), None)
        cublas_text = f"{cublas * 1e3:.1f}" if cublas else "—"
        out.append(f"| {K}×{N} | W{bits} g{g} r{rank} | {T} | {any_row['floor_ms'] * 1e3:.1f} | " + " | ".join(cells) + f" | {cublas_text} | {best:.0f}% |")
    if len(sys.argv) > 3:
        counts = sass_counts(sys.argv[3])
        names = sorted({s for r in bench["rows"] for s in r["symbols"]})
        out += ["", "SASS (whole function): instructions, HMMA, LDG.128, LDG, SHFL, BRA", ""]
        for s in names:
            if s in counts and re.search(r"k4096_n11008_b4_g32", s):
                c = counts[s]
                out.append(f"    {s}: {c['instr']} instr, {c['HMMA']} HMMA, {c['LDG128']} LDG.128, {c['LDG']} LDG, {c['SHFL']} SHFL, {c['BRA']} BRA")
    print("\n".join(out))


if __name__ == "__main__":
    main()

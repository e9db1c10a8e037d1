"""Run the benchmarks, print a table and write ``benchmarks/results.json``.

    python benchmarks/run.py            # full run (under 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # smaller counts (under a minute): a smoke run
    python benchmarks/run.py --only policy --only startup

Each benchmark runs in its own child process (``run.py --child NAME``), so one benchmark's
imports, caches and memory never colour another's figures. Every benchmark measures its baseline
in the same invocation and reports the ratio to it: the machines are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: name -> module, in the issue's order
BENCHMARKS: dict[str, str] = {
    "round_trip": "benchmarks.bench_round_trip",
    "console_scale": "benchmarks.bench_console_scale",
    "server_throughput": "benchmarks.bench_server_throughput",
    "waiting_agents": "benchmarks.bench_waiting_agents",
    "policy": "benchmarks.bench_policy",
    "startup": "benchmarks.bench_startup",
    "store_growth": "benchmarks.bench_store_growth",
}

CHILD_TIMEOUT = {"quick": 120, "full": 420}


def _child(name: str, quick: bool, out: Path) -> int:
    import importlib

    module = importlib.import_module(BENCHMARKS[name])
    started = time.perf_counter()
    results = module.run(quick)
    payload = [r.to_dict() for r in results]
    for r in payload:
        r["benchmark"] = name
        r["seconds"] = round(time.perf_counter() - started, 2)
    out.write_text(json.dumps(payload, indent=2))
    return 0


def _run_one(name: str, quick: bool, tmp: Path) -> list[dict[str, Any]]:
    out = tmp / f"{name}.json"
    cmd = [sys.executable, str(HERE / "run.py"), "--child", name, "--out", str(out)] + (["--quick"] if quick else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_") or k.startswith("HITL_BENCH_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT["quick" if quick else "full"])
        failure = None if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    except subprocess.TimeoutExpired as exc:
        failure = f"timed out after {exc.timeout} s"
    if failure is None and out.exists():
        return json.loads(out.read_text())
    return [{
        "benchmark": name, "name": name, "figures": {}, "baseline": {}, "ratio": None, "ratio_of": "",
        "target": "", "passed": False, "checks": {}, "notes": [f"benchmark failed: {failure}"],
        "seconds": round(time.perf_counter() - started, 2), "error": failure,
    }]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(f"{'benchmark':34} {'pass':5} {'ratio':>8}  target / key figures")
    print("-" * 110)
    for r in results:
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.3g}"
        verdict = "PASS" if r["passed"] else "FAIL"
        print(f"{r['name'][:34]:34} {verdict:5} {ratio:>8}  {r['target']}")
        figs = ", ".join(f"{k}={_fmt(v)}" for k, v in r["figures"].items() if not k.endswith("_n"))
        base = ", ".join(f"{k}={_fmt(v)}" for k, v in r["baseline"].items() if not k.endswith("_n"))
        if figs:
            print(f"{'':48}ours: {figs}")
        if base:
            print(f"{'':48}baseline: {base}")
        failed = [k for k, ok in r.get("checks", {}).items() if not ok]
        if failed:
            print(f"{'':48}missed: {', '.join(failed)}")
        for note in r.get("notes", []):
            print(f"{'':48}note: {note}")
    print()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller counts: finishes in under a minute")
    p.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    p.add_argument("--out", type=Path, default=None, help="results file (default: benchmarks/results.json)")
    p.add_argument("--child", choices=sorted(BENCHMARKS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        assert args.out is not None
        return _child(args.child, args.quick, args.out)

    import tempfile

    from benchmarks.common import machine

    names = args.only or list(BENCHMARKS)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hitl-bench-") as tmp:
        for name in names:
            print(f"running {name} ({'quick' if args.quick else 'full'}) ...", file=sys.stderr, flush=True)
            got = _run_one(name, args.quick, Path(tmp))
            results.extend(got)
            print(f"  {name}: {'PASS' if all(r['passed'] for r in got) else 'FAIL'} "
                  f"({got[-1].get('seconds', 0):.1f} s)", file=sys.stderr, flush=True)
    report = {
        "mode": "quick" if args.quick else "full",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "benchmarks": results,
    }
    out = args.out or HERE / "results.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(results)
    print(f"{sum(r['passed'] for r in results)} of {len(results)} met their targets; "
          f"{report['seconds']} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

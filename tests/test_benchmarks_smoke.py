"""Smoke test for the benchmark harness: ``benchmarks/run.py --quick`` completes and every benchmark
emits a well-formed result. Timings are never asserted here (that is the harness's job, on a
machine set aside for it); only that each benchmark ran and reported its figures and baseline."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks.run import BENCHMARKS

FIELDS = {"name", "benchmark", "figures", "baseline", "ratio", "ratio_of", "target", "passed", "checks", "notes"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")} | {"HITL_WARM": "0"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "met their targets" in proc.stdout  # the table was printed
    return json.loads(out.read_text())


pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]


def test_report_names_the_run_and_the_machine(report: dict) -> None:
    assert report["mode"] == "quick"
    m = report["machine"]
    assert m["nproc"] >= 1 and m["python"].count(".") == 2 and m["cpu"]
    assert {"textual", "pydantic", "fastapi"} <= set(m["versions"])


def test_every_benchmark_completed(report: dict) -> None:
    ran = {r["benchmark"] for r in report["benchmarks"]}
    assert ran == set(BENCHMARKS)
    failed = [(r["name"], r.get("error")) for r in report["benchmarks"] if r.get("error")]
    assert not failed


@pytest.mark.parametrize("bench", sorted(BENCHMARKS))
def test_results_are_well_formed(report: dict, bench: str) -> None:
    rows = [r for r in report["benchmarks"] if r["benchmark"] == bench]
    assert rows
    for r in rows:
        assert set(r) >= FIELDS, FIELDS - set(r)
        assert r["name"] and r["target"] and isinstance(r["passed"], bool)
        assert r["checks"] and all(isinstance(v, bool) for v in r["checks"].values())
        assert r["passed"] == all(r["checks"].values())
        assert r["figures"], "no figures"
        numbers = [v for v in r["figures"].values() if isinstance(v, int | float) and not isinstance(v, bool)]
        assert numbers and all(math.isfinite(v) and v >= 0 for v in numbers), r["figures"]
        if r["ratio"] is not None:  # a ratio always comes with the baseline it is a ratio to
            assert r["baseline"] and r["ratio_of"] and math.isfinite(r["ratio"]) and r["ratio"] > 0

"""6. Command start-up: ``hitl hook claude-code`` (autonomous tool, embedded store), ``hitl request``
and ``hitl approve``, each a fresh process, against ``python -c "import pydantic"`` in the same run.

Target: each command's median wall time <= 1.5 x the median of ``python -c "import pydantic"``.
The commands run the default way: warm start on (``hitl_tui.warm``, docs/warm.md), with a daemon of
this run's own (private ``HITL_WARM_DIR``), started by the first, untimed round and stopped at the
end; ``warm_jobs`` counts the timed commands the daemon ran (all of them, or the "ran warm" check
fails). The same commands in-process (``HITL_WARM=0``, a fresh interpreter importing everything)
are reported as ``cold_*``, timed in the same rounds.
The runs are interleaved (one of each per round), so a noisy moment hits every command alike.
Also reported: which heavy modules (textual, httpx, fastapi, uvicorn, psycopg) each command loads
in-process, from ``python -X importtime`` (none of them should).

Bytecode: every process here runs as an installed ``hitl`` does, from compiled bytecode (pip
compiles it at install time, and a first run writes it): the children get a private
``PYTHONPYCACHEPREFIX`` (so nothing is written into the source tree) and no
``PYTHONDONTWRITEBYTECODE``, and each command runs once before timing. The baseline gets the same.
The figures without bytecode (every module of this tree compiled from source on every run, as
under ``PYTHONDONTWRITEBYTECODE=1`` with no ``__pycache__``, in-process) are reported too, as ``*_source_*``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Result, env, make_result, median, pct

NAME = "startup"
TITLE = "Command start-up"

HEAVY = ("textual", "httpx", "fastapi", "uvicorn", "psycopg", "starlette", "rich")
HITL = [sys.executable, "-m", "hitl_tui"]
HOOK_EVENT = json.dumps(
    {
        "hook_event_name": "PreToolUse",
        "session_id": "bench-session-0001",
        "cwd": "/tmp",
        "tool_name": "Read",
        "tool_input": {"file_path": "/tmp/notes.txt"},
    }
).encode()


def _run(cmd: list[str], e: dict[str, str], stdin: bytes | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, env=e, capture_output=True)
    took = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return took, proc.stdout.decode()


def heavy_modules(cmd: list[str], e: dict[str, str], stdin: bytes | None = None) -> list[str]:
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], input=stdin, env=e, capture_output=True)
    loaded = set()
    for line in proc.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and line.count("|") >= 2:
            loaded.add(line.split("|")[2].strip().split(".")[0])
    return sorted(m for m in HEAVY if m in loaded)


def _round(e: dict[str, str], i: int, times: dict[str, list[float]]) -> None:
    times["bare"].append(_run([sys.executable, "-c", "pass"], e)[0])
    times["pydantic"].append(_run([sys.executable, "-c", "import pydantic"], e)[0])
    times["hook"].append(_run([*HITL, "hook", "claude-code"], e, HOOK_EVENT)[0])
    took, out = _run(
        [*HITL, "request", "deploy", "--args", json.dumps({"env": "prod", "n": i}), "--agent", "ci-bot"], e
    )
    times["request"].append(took)
    request_id = out.split()[0]
    times["approve"].append(_run([*HITL, "approve", request_id], e)[0])


def _daemon(e: dict[str, str]) -> dict:
    p = subprocess.run([*HITL, "warm", "status", "--json"], env=e, capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def _wait_for_daemon(e: dict[str, str], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _daemon(e)
        if status.get("running"):
            return status
        time.sleep(0.1)
    raise RuntimeError(f"the warm daemon did not start: {_daemon(e)}")


def _stop_daemon(e: dict[str, str]) -> None:
    pid = _daemon(e).get("pid")
    subprocess.run([*HITL, "warm", "stop"], env=e, capture_output=True)
    deadline = time.monotonic() + 10
    while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def run(quick: bool) -> list[Result]:
    rounds = 5 if quick else 25
    source_rounds = 3 if quick else 9
    keys = ("bare", "pydantic", "hook", "request", "approve")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        source = env(
            {
                "HITL_STORE": str(Path(tmp) / "hitl.db"),
                "HITL_CONFIG": str(Path(tmp) / "none.toml"),
                "HITL_REVIEWER": "alice",
                "PYTHONDONTWRITEBYTECODE": "1",
                "HITL_WARM": "0",
            }
        )
        source.pop("PYTHONPYCACHEPREFIX", None)
        cold = {k: v for k, v in source.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cold["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        # the default way: warm start on (hitl_tui.warm), with a daemon of this run's own
        e = {**cold, "HITL_WARM": "1", "HITL_WARM_DIR": str(Path(tmp) / "warm")}
        try:
            # the hook's tool is allowed by a rule: it decides without waiting for anyone
            _run([*HITL, "policy", "rules", "add", "allow", "Read"], e)  # runs in-process, starts the daemon
            _wait_for_daemon(e)
            out = _run([*HITL, "hook", "claude-code"], e, HOOK_EVENT)[1]
            assert '"allow"' in out, out
            _round(e, -1, {k: [] for k in keys})  # untimed: the daemon's first children
            _round(cold, -2, {k: [] for k in keys})  # untimed: writes the bytecode
            jobs_before = _daemon(e)["jobs"]
            times: dict[str, list[float]] = {k: [] for k in keys}
            cold_times: dict[str, list[float]] = {k: [] for k in keys}
            for i in range(rounds):  # interleaved: a noisy moment hits both ways alike
                _round(e, 2 * i, times)
                _round(cold, 2 * i + 1, cold_times)
            status = _daemon(e)
            warm_jobs = status.get("jobs", 0) - jobs_before
            from_source: dict[str, list[float]] = {k: [] for k in keys}
            for i in range(source_rounds):
                _round(source, 2 * rounds + i, from_source)
            heavy = {  # what each command loads in-process (-X importtime runs in-process anyway)
                "hook": heavy_modules([*HITL, "hook", "claude-code"], cold, HOOK_EVENT),
                "request": heavy_modules([*HITL, "request", "deploy", "--agent", "ci-bot"], cold),
                "approve": heavy_modules([*HITL, "ls"], cold),
            }
        finally:
            _stop_daemon(e)
    ran_warm = warm_jobs == 3 * rounds and status.get("running", False)
    base = median(times["pydantic"])
    cold_base = median(cold_times["pydantic"])
    source_base = median(from_source["pydantic"])
    results = []
    for cmd, label in (
        ("hook", "hitl hook claude-code (autonomous)"),
        ("request", "hitl request (files)"),
        ("approve", "hitl approve"),
    ):
        m = median(times[cmd])
        cm = median(cold_times[cmd])
        sm = median(from_source[cmd])
        results.append(
            make_result(
                f"startup: {label}",
                {
                    "wall_p50_s": m,
                    "wall_p90_s": pct(times[cmd], 90),
                    "runs": rounds,
                    "warm_jobs": warm_jobs,
                    "heavy_modules_loaded": ",".join(heavy[cmd]) or "none",
                    "cold_wall_p50_s": cm,
                    "cold_wall_p90_s": pct(cold_times[cmd], 90),
                    "cold_ratio": cm / cold_base,
                    "wall_source_p50_s": sm,
                    "ratio_source": sm / source_base,
                    "runs_source": source_rounds,
                },
                {
                    "import_pydantic_p50_s": base,
                    "bare_python_p50_s": median(times["bare"]),
                    "cold_import_pydantic_p50_s": cold_base,
                    "import_pydantic_source_p50_s": source_base,
                },
                ratio=m / base,
                ratio_of="command (warm start, the default) / python -c 'import pydantic' (median wall time)",
                target="<= 1.5 x python -c 'import pydantic'",
                checks={
                    "<= 1.5 x import pydantic": m <= 1.5 * base,
                    "no heavy modules": not heavy[cmd],
                    "ran warm": ran_warm,
                },
            )
        )
    return results

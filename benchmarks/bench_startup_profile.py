"""Where the start-up time of ``hitl hook claude-code``, ``hitl request`` and ``hitl approve`` goes.

    python -m benchmarks.bench_startup_profile [--runs 15] [--out docs/profiles]

Writes ``startup-<command>.txt`` for each command: the same commands, store and bytecode cache as
``bench_startup`` (a private ``PYTHONPYCACHEPREFIX``, one warm-up run each), then

1. wall times (median and minimum of ``--runs`` fresh processes) next to ``python -c pass`` and
   ``python -c "import pydantic"``;
2. the import time by group, from ``python -X importtime`` (each module's own time, the minimum
   over the runs): what ``import pydantic`` already loads (the baseline), what the rest of pydantic
   loads when a first model is defined and validated, the standard library beyond that, and each
   hitl_tui module;
3. a cProfile of one run (the command's own work after its imports, by cumulative time).

It is a profile, not a benchmark: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from .bench_startup import HOOK_EVENT
from .common import env

PY = sys.executable
HITL = [PY, "-m", "hitl_tui"]


def _imports(cmd: list[str], e: dict[str, str], stdin: bytes | None) -> dict[str, int]:
    """module -> its own import time in microseconds, from ``-X importtime``."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], input=stdin, env=e, capture_output=True)
    out = {}
    for line in proc.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and line.count("|") >= 2:
            own, _, name = line[len("import time:") :].split("|")
            if own.strip().isdigit():
                out[name.strip()] = int(own)
    return out


def _min_imports(cmd: list[str], e: dict[str, str], stdin: bytes | None, runs: int) -> dict[str, int]:
    best: dict[str, int] = {}
    for _ in range(runs):
        for mod, us in _imports(cmd, e, stdin).items():
            best[mod] = min(us, best.get(mod, us))
    return best


def _wall(cmd: list[str], e: dict[str, str], stdin: bytes | None) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, env=e, capture_output=True)
    took = time.perf_counter() - t
    if proc.returncode not in (0,):
        raise RuntimeError(f"{cmd} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return took


_PYDANTIC_FLOOR = "from pydantic import BaseModel\nclass M(BaseModel):\n    a: int\nM(a=1)\n"


def _groups(mods: dict[str, int], baseline: set[str], floor: set[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for mod, us in mods.items():
        if mod in baseline:
            key = "python start-up + `import pydantic` (the baseline)"
        elif mod.startswith("hitl_tui"):
            key = mod
        elif mod in floor:
            key = "pydantic: first model defined and validated (pydantic.main, fields/types, plugin loader)"
        else:
            key = "standard library beyond that (argparse, logging, sqlite3, ...)"
        out[key] += us
    return dict(out)


def _cprofile(cmd_args: list[str], e: dict[str, str], stdin: bytes | None) -> str:
    """cProfile of one run in a child process (so the command's own imports count)."""
    code = (
        "import cProfile, pstats, io, runpy, sys\n"
        f"sys.argv = ['hitl', *{cmd_args!r}]\n"
        "pr = cProfile.Profile()\n"
        "pr.enable()\n"
        "try:\n    runpy.run_module('hitl_tui', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "pr.disable()\n"
        "s = io.StringIO()\n"
        "st = pstats.Stats(pr, stream=s).sort_stats('cumulative')\n"
        "st.print_stats(r'hitl_tui/(?!.*<module>)|pydantic/main.py.*model_validate|_model_construction.py:.*complete|"
        "create_schema_validator|sqlite3.Connection', 40)\n"
        "sys.stderr.write('@@PROFILE@@' + s.getvalue())\n"
    )
    proc = subprocess.run([PY, "-c", code], input=stdin, env=e, capture_output=True)
    text = proc.stderr.decode(errors="replace")
    return text.split("@@PROFILE@@", 1)[-1]


def profile(runs: int, out_dir: Path) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-profile-") as tmp:
        e = env({"HITL_STORE": str(Path(tmp) / "hitl.db"), "HITL_CONFIG": str(Path(tmp) / "none.toml"),
                 "HITL_REVIEWER": "alice", "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")})
        e.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([*HITL, "policy", "rules", "add", "allow", "Read"], env=e, capture_output=True, check=True)
        n = 0

        def request_id() -> str:
            nonlocal n
            n += 1
            proc = subprocess.run([*HITL, "request", "deploy", "--args", json.dumps({"n": n}), "--agent", "ci-bot"],
                                  env=e, capture_output=True, check=True)
            return proc.stdout.decode().split()[0]

        commands = {
            "hook": (["hook", "claude-code"], HOOK_EVENT),
            "request": (["request", "deploy", "--agent", "ci-bot"], None),
            "approve": (["approve", "{id}"], None),
        }
        bare, pyd, floor_cmd = [PY, "-c", "pass"], [PY, "-c", "import pydantic"], [PY, "-c", _PYDANTIC_FLOOR]
        for c in (bare, pyd, floor_cmd):
            _wall(c, e, None)  # writes the bytecode
        baseline = set(_min_imports(pyd, e, None, 3))
        floor = set(_min_imports(floor_cmd, e, None, 3)) - baseline
        for name, (args, stdin) in commands.items():
            def argv(args: list[str] = args) -> list[str]:
                return [request_id() if a == "{id}" else a for a in args]

            _wall([*HITL, *argv()], e, stdin)  # warm-up
            walls: dict[str, list[float]] = {"python -c pass": [], "python -c 'import pydantic'": [],
                                             "pydantic floor (one model, validated)": [], f"hitl {name}": []}
            for _ in range(runs):
                walls["python -c pass"].append(_wall(bare, e, None))
                walls["python -c 'import pydantic'"].append(_wall(pyd, e, None))
                walls["pydantic floor (one model, validated)"].append(_wall(floor_cmd, e, None))
                walls[f"hitl {name}"].append(_wall([*HITL, *argv()], e, stdin))
            mods: dict[str, int] = {}
            for _ in range(runs):
                for mod, us in _imports([*HITL, *argv()], e, stdin).items():
                    mods[mod] = min(us, mods.get(mod, us))
            groups = _groups(mods, baseline, floor)
            base = statistics.median(walls["python -c 'import pydantic'"])
            lines = [f"hitl {name}: start-up profile ({runs} fresh processes each, bytecode cached, "
                     f"embedded SQLite store)", "", "wall time            median     min   x import pydantic"]
            for label, ts in walls.items():
                lines.append(f"  {label:40s} {statistics.median(ts) * 1000:7.1f} ms {min(ts) * 1000:7.1f} ms"
                             f"   {statistics.median(ts) / base:5.2f}")
            lines += ["", "import time by group (each module's own time, minimum over the runs)"]
            for key, us in sorted(groups.items(), key=lambda kv: -kv[1]):
                lines.append(f"  {us / 1000:7.1f} ms  {key}")
            lines.append(f"  {sum(groups.values()) / 1000:7.1f} ms  total")
            lines += ["", "cProfile of one run (cumulative seconds; includes the profiler's overhead)",
                      _cprofile(argv(), e, stdin)]
            path = out_dir / f"startup-{name}.txt"
            path.write_text("\n".join(lines).rstrip() + "\n")
            written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=Path("docs/profiles"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for path in profile(a.runs, a.out):
        print(path)


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    main()

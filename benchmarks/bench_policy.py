"""5. Policy decision cost on the autonomous path, and the gate's overhead.

* ``PolicyEngine.decide`` with 200 rules (Claude-Code-style ``Bash(git push:*)``, ``Read(/src/**)``,
  ``WebFetch(domain:...)``, ``mcp__*`` globs, agent-scoped rules) over a mix of calls.
  Target: <= 20 µs per decision. Baseline (same run): the straightforward engine, each rule matched
  on its own in order (``policy.rule_matches``), as a naive implementation would.
* The gate (``Gate.check``) on an embedded store for an autonomous call, and for an autonomous call
  logged for review (``check`` + ``record``: the review write, committed with synchronous=FULL).
  Baseline: the store's own ``log_review`` write alone.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Result, make_result, median, pct, summary_ms

NAME = "policy"
TITLE = "Policy decision cost"


def build_rules(n: int = 200) -> list[Any]:
    from hitl_tui.models import Rule, RuleEffect

    rules: list[Rule] = []
    cmds = ["git", "npm", "make", "docker", "kubectl", "terraform", "cargo", "pip", "rm", "curl", "ssh", "psql"]
    subs = ["status", "log", "diff", "push", "pull", "build", "test", "run", "apply", "install", "exec", "deploy"]
    i = 0
    while len(rules) < n:
        c, s = cmds[i % len(cmds)], subs[(i // len(cmds)) % len(subs)]
        kind = i % 10
        if kind < 5:
            eff = (RuleEffect.allow, RuleEffect.ask, RuleEffect.deny)[i % 3]
            rules.append(Rule(pattern=f"Bash({c} {s} {i}:*)", effect=eff))
        elif kind == 5:
            rules.append(Rule(pattern=f"Read(/srv/project{i}/**)", effect=RuleEffect.allow))
        elif kind == 6:
            rules.append(Rule(pattern=f"Edit(**/secret{i}*.env)", effect=RuleEffect.deny))
        elif kind == 7:
            rules.append(Rule(pattern=f"WebFetch(domain:site{i}.example.com)", effect=RuleEffect.allow))
        elif kind == 8:
            rules.append(Rule(pattern=f"mcp__server{i}__*", effect=RuleEffect.ask))
        else:
            rules.append(Rule(pattern=f"Bash({c} {s}:*)", effect=RuleEffect.allow, agent=f"agent-{i % 7}"))
        i += 1
    return rules


CALLS: list[tuple[str, dict[str, Any], str | None]] = [
    ("Bash", {"command": "git status 0 --short"}, None),
    ("Bash", {"command": "ls -la /tmp && echo done"}, "agent-3"),
    ("Bash", {"command": "npm test 999"}, None),
    ("Read", {"file_path": "/srv/project5/src/main.py"}, None),
    ("Read", {"file_path": "/home/user/notes.txt"}, None),
    ("Edit", {"file_path": "/app/config/secret16.env", "old_string": "a", "new_string": "b"}, None),
    ("WebFetch", {"url": "https://site7.example.com/page", "prompt": "summarise"}, None),
    ("mcp__server8__query", {"sql": "select 1"}, None),
    ("Grep", {"pattern": "TODO", "path": "/srv"}, "agent-1"),
    ("search_docs", {"query": "refund policy"}, None),
]


def _caps() -> list[Any]:
    from hitl_tui.models import Capability, Stage

    tools = ["Bash", "Read", "Edit", "WebFetch", "Grep", "search_docs", "mcp__server8__query"]
    return [Capability(tool=t, stage=Stage.autonomous if i % 2 else Stage.approval) for i, t in enumerate(tools)]


def _per_call_us(fn: Any, calls: list[tuple[str, dict[str, Any], str | None]], rounds: int) -> list[float]:
    """Microseconds per call, one sample per round (each round decides every call once)."""
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        for tool, args, agent in calls:
            fn(tool, args, agent)
        samples.append((time.perf_counter() - t) / len(calls) * 1e6)
    return samples


def bench_engine(quick: bool) -> Result:
    from hitl_tui.policy import PolicyEngine, rule_matches

    rules = build_rules(200)
    caps = _caps()
    engine = PolicyEngine(caps, rules)
    empty = PolicyEngine(caps, [])
    rounds = 300 if quick else 3000
    calls = CALLS * 10

    ours = _per_call_us(lambda t, a, g: engine.decide(t, a, None, agent=g), calls, rounds)
    bare = _per_call_us(lambda t, a, g: empty.decide(t, a, None, agent=g), calls, rounds)

    def naive(tool: str, args: dict[str, Any], agent: str | None) -> Any:
        for effect in ("deny", "ask", "allow"):
            for rule in rules:
                if rule.effect.value == effect and rule_matches(rule, tool, args, agent):
                    return rule
        return None

    base = _per_call_us(naive, CALLS, max(20, rounds // 30))
    # the decisions agree with the naive reading (sanity: the fast path is not skipping work)
    for tool, args, agent in CALLS:
        d = engine.decide(tool, args, None, agent=agent)
        hit = naive(tool, args, agent)
        assert (hit is None) == (d.rule is None), (tool, args, d, hit)

    p50 = median(ours)
    return make_result(
        "policy.decide (200 rules)",
        {"us_per_decision_p50": p50, "us_per_decision_p99": pct(ours, 99), "us_no_rules_p50": median(bare),
         "rules": len(rules), "decisions": rounds * len(calls)},
        {"naive_us_per_decision_p50": median(base)},
        ratio=p50 / median(base),
        ratio_of="ours / naive per-rule matching (per decision, p50)",
        target="<= 20 µs per decision with 200 rules (p50)",
        checks={"p50 <= 20 us": p50 <= 20.0},
    )


async def _gate(quick: bool, tmp: Path) -> Result:
    from hitl_tui.backend.local import LocalBackend
    from hitl_tui.models import Capability, ReviewCreate, Stage
    from hitl_tui.sdk.gate import Gate
    from hitl_tui.store.sqlite import SQLiteStore

    backend = LocalBackend(SQLiteStore(tmp / "gate.db"), actor="bench")
    n = 200 if quick else 1500
    try:
        await backend.put_capability(Capability(tool="read_file", stage=Stage.autonomous), "bench")
        await backend.put_capability(Capability(tool="send_email", stage=Stage.autonomous, review_after=True), "bench")
        gate = Gate(backend, "agent-1")
        for _ in range(20):  # warm: hub started, engine cached
            await gate.check("read_file", {"path": "/tmp/x"})
        auto, review, raw = [], [], []
        for i in range(n):
            t = time.perf_counter()
            c = await gate.check("read_file", {"path": f"/tmp/{i}"})
            auto.append(time.perf_counter() - t)
            assert c.status == "autonomous", c
            t = time.perf_counter()
            c = await gate.check("send_email", {"to": "a@example.com", "n": i})
            item = await gate.record(c, "sent")
            review.append(time.perf_counter() - t)
            assert c.log_review and item is not None
            t = time.perf_counter()
            await backend.store.log_review(ReviewCreate(agent="agent-1", tool="send_email", args={"n": i}, result="x"))
            raw.append(time.perf_counter() - t)
    finally:
        await backend.close()
    figs = {**summary_ms(auto, "autonomous_check"), **summary_ms(review, "review_check_and_record")}
    base = summary_ms(raw, "store_log_review")
    return make_result(
        "gate overhead (embedded store)",
        figs,
        base,
        ratio=pct(review, 50) / pct(raw, 50),
        ratio_of="gate check+record / the store's review write alone (p50)",
        target="reported (no target): autonomous gate check, and check + review write",
        checks={"completed": True},
    )


def run(quick: bool) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-policy-") as tmp:
        gate = asyncio.run(_gate(quick, Path(tmp)))
    return [bench_engine(quick), gate]

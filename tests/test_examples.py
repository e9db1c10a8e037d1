"""Every example runs to the end by itself (a scripted reviewer decides) on a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"

EXPECTED = {
    "approval_gate": ["read_logs: read /var/log/app", "deploy: deployed 1.4.2 to prod", "'status': 'denied'"],
    "confidence_plan": ["98  autonomous", "72  approval           approved", "35  escalate           escalated"],
    "escalation_loop": ["human: Production is eu-west-1.", "agent: Done: rotate the TLS certificates in eu-west-1"],
    "review_digest": ["4 action(s) logged for review: 3 unreviewed, 1 flagged", "why read auth logs?"],
    "staged_rollout": ["disabled:  delete_branch not approved (blocked)", "approval:  deleted old", "refused:"],
}


def test_every_example_is_listed_in_the_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert set(EXPECTED) <= set(scripts)
    for name in scripts:
        assert f"({name}.py)" in readme


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_to_completion(name: str, tmp_path: Path, cli_env: dict[str, str]) -> None:
    store = tmp_path / "example.db"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--store", str(store)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    for text in EXPECTED[name]:
        assert text in proc.stdout, proc.stdout
    audit = subprocess.run(
        [sys.executable, "-m", "hitl_tui", "--store", str(store), "audit", "verify", "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert audit.returncode == 0 and json.loads(audit.stdout)["ok"]

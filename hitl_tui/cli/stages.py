"""Staged rollout and policy: ``hitl stages [set|history]``, ``promote``, ``demote`` and
``hitl policy preset|show|rules``. Every change records who made it and why."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InvalidInput
from ..models import Capability, Rule, RuleEffect, Stage
from ..text import sanitise
from . import add_json_flag
from .output import emit_json, print_table


def register(sub: Any) -> None:
    p = sub.add_parser("stages", help="list each tool's stage (disabled, approval, autonomous), or change one")
    add_json_flag(p)
    p.set_defaults(func=cmd_stages)
    ssub = p.add_subparsers(dest="stages_command", metavar="ACTION")

    q = ssub.add_parser("set", help="set a tool's stage")
    q.add_argument("tool")
    q.add_argument("stage", choices=[s.value for s in Stage])
    _change_flags(q, force=True)
    q.set_defaults(func=cmd_set)

    from .autonomy import add_suggest_command

    add_suggest_command(ssub, "suggest")  # `hitl stages suggest` == `hitl suggest`

    q = ssub.add_parser("history", help="who changed a tool's stage, when and why")
    q.add_argument("tool")
    q.add_argument("--agent", help="the agent-scoped capability, not the general one")
    add_json_flag(q)
    q.set_defaults(func=cmd_history)

    for name, helptext in (
        ("promote", "move a tool one stage up: disabled -> approval -> autonomous"),
        ("demote", "move a tool one stage down: autonomous -> approval -> disabled"),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("tool")
        _change_flags(q, force=name == "promote")
        q.set_defaults(func=cmd_promote if name == "promote" else cmd_demote)

    p = sub.add_parser("policy", help="load a preset policy, show it, edit its rules")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    q = psub.add_parser("preset", help="load a named preset (e.g. seed: the article's scenario table)")
    q.add_argument("name")
    q.add_argument("--keep-stages", action="store_true", help="keep the current stage of tools that already exist")
    q.add_argument("--replace-rules", action="store_true", help="replace all rules with the preset's (default: add)")
    add_json_flag(q)
    q.set_defaults(func=cmd_preset)

    q = psub.add_parser("show", help="capabilities and rules in force")
    add_json_flag(q)
    q.set_defaults(func=cmd_show)

    q = psub.add_parser("rules", help="permission rules like Bash(git push:*)")
    rsub = q.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    r = rsub.add_parser("ls", help="list rules in order")
    add_json_flag(r)
    r.set_defaults(func=cmd_rules_ls)
    r = rsub.add_parser("add", help="add a rule")
    r.add_argument("effect", choices=[e.value for e in RuleEffect])
    r.add_argument("pattern", help="Tool or Tool(specifier), e.g. 'Bash(rm:*)'")
    r.add_argument("--agent", help="only for this agent")
    r.add_argument("--reason", help="shown to the agent and reviewers")
    r.add_argument("--first", action="store_true", help="insert before the others")
    r.set_defaults(func=cmd_rules_add)
    r = rsub.add_parser("rm", help="remove a rule by its pattern or its number in `rules ls`")
    r.add_argument("rule")
    r.set_defaults(func=cmd_rules_rm)

    from .hook import add_policy_import_commands

    add_policy_import_commands(psub)  # `hitl policy import-claude|import-gemini`


def _change_flags(p: argparse.ArgumentParser, *, force: bool) -> None:
    p.add_argument("--reason", help="why (recorded in the stage history)")
    p.add_argument("--agent", help="change the agent-scoped capability, not the general one")
    if force:
        p.add_argument(
            "--force", action="store_true", help="allow an always-approval tool to become autonomous (audited)"
        )
    add_json_flag(p)


# --------------------------------------------------------------------------- stages


def _flags(c: Capability) -> str:
    names = [
        ("always_approval", "always-approval"),
        ("irreversible", "irreversible"),
        ("review_after", "review-after"),
        ("confidence_routed", "confidence"),
    ]
    return ",".join(label for attr, label in names if getattr(c, attr))


async def cmd_stages(args: argparse.Namespace, ctx: Any) -> int:
    caps = await ctx.backend().list_capabilities()
    if args.json:
        emit_json(caps)
        return 0
    if not caps:
        print("no capabilities yet: load a preset with `hitl policy preset seed`")
        return 0
    rows = [
        (c.tool, c.agent or "*", c.stage.value, c.risk.value, _flags(c), c.description or "")
        for c in sorted(caps, key=lambda c: (c.tool, c.agent or ""))
    ]
    print_table(["tool", "agent", "stage", "risk", "flags", "description"], rows)
    return 0


def _print_change(args: argparse.Namespace, cap: Capability, before: Stage | None) -> None:
    if args.json:
        emit_json(cap)
        return
    scope = f" (agent {sanitise(cap.agent, oneline=True)})" if cap.agent else ""
    if before is cap.stage:
        print(f"{sanitise(cap.tool, oneline=True)}{scope} is already {cap.stage.value}")
        return
    forced = " (forced, audited)" if cap.history and cap.history[-1].forced else ""
    print(f"{sanitise(cap.tool, oneline=True)}{scope}: {before.value if before else '-'} -> {cap.stage.value}{forced}")


async def _change(args: argparse.Namespace, ctx: Any, target: Stage, before: Stage | None) -> int:
    cap = await ctx.backend().set_stage(
        args.tool, target, ctx.reviewer, args.reason, force=getattr(args, "force", False), agent=args.agent
    )
    _print_change(args, cap, before)
    return 0


async def cmd_set(args: argparse.Namespace, ctx: Any) -> int:
    current = await ctx.backend().get_capability(args.tool, args.agent)
    return await _change(args, ctx, Stage(args.stage), current.stage)


async def cmd_promote(args: argparse.Namespace, ctx: Any) -> int:
    from ..policy import promote_target

    current = await ctx.backend().get_capability(args.tool, args.agent)
    return await _change(args, ctx, promote_target(current.stage), current.stage)


async def cmd_demote(args: argparse.Namespace, ctx: Any) -> int:
    from ..policy import demote_target

    current = await ctx.backend().get_capability(args.tool, args.agent)
    return await _change(args, ctx, demote_target(current.stage), current.stage)


async def cmd_history(args: argparse.Namespace, ctx: Any) -> int:
    cap = await ctx.backend().get_capability(args.tool, args.agent)
    if args.json:
        emit_json([h.model_dump(mode="json") for h in cap.history])
        return 0
    if not cap.history:
        print(f"{sanitise(cap.tool, oneline=True)}: no stage changes recorded")
        return 0
    rows = [
        (
            f"{h.at:%Y-%m-%d %H:%M:%S}",
            h.actor,
            h.from_stage.value if h.from_stage else "-",
            h.to_stage.value,
            "yes" if h.forced else "",
            h.reason or "",
        )
        for h in cap.history
    ]
    print_table(["when (utc)", "who", "from", "to", "forced", "reason"], rows)
    return 0


# --------------------------------------------------------------------------- policy


async def cmd_preset(args: argparse.Namespace, ctx: Any) -> int:
    from ..presets import get_preset

    try:
        preset = get_preset(args.name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    backend = ctx.backend()
    why = f"preset {preset.name}"
    existing = {(c.tool, c.agent): c for c in await backend.list_capabilities()}
    loaded: list[Capability] = []
    for cap in preset.capabilities:
        old = existing.get((cap.tool, cap.agent))
        if args.keep_stages and old is not None:
            cap = cap.model_copy(update={"stage": old.stage})
        loaded.append(await backend.put_capability(cap, ctx.reviewer, why))
    rules = await backend.list_rules()
    if args.replace_rules:
        new_rules = list(preset.rules)
    else:
        have = {(r.pattern, r.effect, r.agent) for r in rules}
        new_rules = rules + [r for r in preset.rules if (r.pattern, r.effect, r.agent) not in have]
    if new_rules != rules:
        await backend.set_rules(new_rules, ctx.reviewer, why)
    if args.json:
        emit_json({"preset": preset.name, "capabilities": loaded, "rules": new_rules})
    else:
        print(f"loaded preset {preset.name}: {len(loaded)} capabilities, {len(new_rules)} rules in force")
    return 0


async def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    backend = ctx.backend()
    caps = await backend.list_capabilities()
    rules = await backend.list_rules()
    if args.json:
        emit_json({"capabilities": caps, "rules": rules})
        return 0
    await cmd_stages(argparse.Namespace(json=False), ctx)
    print()
    _print_rules(rules)
    return 0


def _print_rules(rules: list[Rule]) -> None:
    if not rules:
        print("no rules")
        return
    rows = [(i, r.effect.value, r.pattern, r.agent or "*", r.reason or "") for i, r in enumerate(rules, start=1)]
    print_table(["#", "effect", "pattern", "agent", "reason"], rows)


async def cmd_rules_ls(args: argparse.Namespace, ctx: Any) -> int:
    rules = await ctx.backend().list_rules()
    if args.json:
        emit_json(rules)
    else:
        _print_rules(rules)
    return 0


async def cmd_rules_add(args: argparse.Namespace, ctx: Any) -> int:
    from ..policy import parse_rule

    try:
        rule = parse_rule(args.pattern, args.effect, agent=args.agent, reason=args.reason, source="cli")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    backend = ctx.backend()
    rules = await backend.list_rules()
    rules = [rule, *rules] if args.first else [*rules, rule]
    await backend.set_rules(rules, ctx.reviewer, f"added {rule.effect.value} {rule.pattern}")
    print(f"added rule: {rule.effect.value} {sanitise(rule.pattern, oneline=True)}")
    return 0


async def cmd_rules_rm(args: argparse.Namespace, ctx: Any) -> int:
    backend = ctx.backend()
    rules = await backend.list_rules()
    if args.rule.isdigit() and 1 <= int(args.rule) <= len(rules):
        index = int(args.rule) - 1
    else:
        matches = [i for i, r in enumerate(rules) if r.pattern == args.rule]
        if not matches:
            raise InvalidInput(f"no rule {args.rule!r}; see `hitl policy rules ls`")
        if len(matches) > 1:
            raise InvalidInput(f"{len(matches)} rules have the pattern {args.rule!r}; remove one by its number")
        index = matches[0]
    removed = rules.pop(index)
    await backend.set_rules(rules, ctx.reviewer, f"removed {removed.effect.value} {removed.pattern}")
    print(f"removed rule: {removed.effect.value} {sanitise(removed.pattern, oneline=True)}")
    return 0

"""Pane 4: the stage editor. Every tool with its stage, thresholds, timeout and record.

``p`` promotes and ``D`` demotes one step, ``s`` sets a stage; every change asks for a reason and
is recorded in the capability's history (``h``).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content

from ...errors import Conflict, HitlError
from ...models import Capability, Event, Page, Stage
from ..adapters import ToolRecord, capability_cells, capability_key, one_line
from ..filters import Filter, FilterError
from ..screens import ConfirmScreen, HistoryScreen, StageScreen
from ..stats import tool_record
from .capability_detail import CapabilityDetail
from .pane import Pane
from .virtual_table import Column, VirtualTable

COLUMNS = [
    Column("tool", "TOOL", flex=2, min_width=18),
    Column("stage", "STAGE", width=10),
    Column("risk", "RISK", width=8, drop=4),
    Column("flags", "FLAGS", flex=1, min_width=8, drop=5),
    Column("thresholds", "AUTO/APPR", width=9, drop=6),
    Column("timeout", "TIMEOUT", width=7, right=True, drop=7),
    Column("approved", "APPR", width=5, right=True, drop=1),
    Column("denied", "DENY", width=5, right=True, drop=2),
    Column("flagged", "FLAG", width=4, right=True, drop=3),
    Column("median", "MEDIAN", width=6, right=True, drop=1),
]


class CapabilitiesPane(Pane):
    PANE_ID = "capabilities"
    TITLE = "Capabilities"
    NOUN = "tools"
    FILTER_KEYS = frozenset({"stage", "agent"})
    FILTER_HELP = "words match the tool name · stage:disabled|approval|autonomous agent:NAME"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "promote", "Promote"),
        Binding("D", "demote", "Demote"),
        Binding("s", "set_stage", "Set stage"),
        Binding("h", "history", "History"),
        Binding("escape", "back", "Back to list", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.capabilities: list[Capability] = []
        self.records: dict[str, ToolRecord] = {}
        self._stats_running = False
        self._stats_again = False

    def compose(self) -> ComposeResult:
        yield from self.compose_list(
            VirtualTable(
                COLUMNS,
                fetch=self._fetch,
                render_row=lambda c: capability_cells(c, self.records.get(c.tool)),
                key=capability_key,
                empty_text="No capabilities yet: `hitl policy preset seed` (or the demo) adds some.",
                id="capabilities-table",
            )
        )
        yield CapabilityDetail(id="capabilities-detail")

    @property
    def detail(self) -> CapabilityDetail:
        return self.query_one(CapabilityDetail)

    def list_title(self) -> str:
        return "Capabilities"

    def validate_filter(self, new: Filter) -> None:
        if (stage := new.get("stage")) and stage not in Stage.__members__:
            raise FilterError(f"stage:{stage} is not one of disabled, approval, autonomous")

    def _matches(self, cap: Capability) -> bool:
        f = self.filter
        if (stage := f.get("stage")) and cap.stage.value != stage:
            return False
        if (agent := f.get("agent")) and cap.agent != agent:
            return False
        return all(w.lower() in cap.tool.lower() for w in f.words)

    async def _fetch(self, offset: int, limit: int) -> Page:
        caps = await self.console.backend.list_capabilities()
        self.capabilities = caps
        self.console.capabilities_loaded(caps)
        shown = [c for c in caps if self._matches(c)]
        if offset == 0:
            self.refresh_stats()
        return Page(items=shown[offset : offset + limit], total=len(shown))

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        cap = event.item
        self.detail.show(cap, None if cap is None else self.records.get(cap.tool), self.console.now())

    def on_virtual_table_activated(self, _event: VirtualTable.Activated) -> None:
        self.detail.focus()

    def action_back(self) -> None:
        self.table.focus()

    # ----------------------------------------------------------------- live
    def handle_event(self, event: Event) -> None:
        self.reload()

    def refresh_stats(self) -> None:
        """Recount every tool's record (after decisions and review marks); coalesced."""
        if self._stats_running:
            self._stats_again = True
            return
        self._stats_running = True
        self.run_worker(self._stats(), group="stats", exit_on_error=False)

    async def _stats(self) -> None:
        try:
            while True:
                self._stats_again = False
                for tool in sorted({c.tool for c in self.capabilities}):
                    try:
                        self.records[tool] = await tool_record(self.console.backend, tool)
                    except HitlError:
                        return
                self.table.refresh()
                cap = self.table.cursor_item
                if cap is not None:
                    self.detail.show(cap, self.records.get(cap.tool), self.console.now())
                if not self._stats_again:
                    break
        finally:
            self._stats_running = False

    # ----------------------------------------------------------------- actions
    def _current(self, what: str) -> Capability | None:
        cap = self.table.cursor_item
        if cap is None:
            self.console.say("No capability selected.", "warning")
            return None
        if not self.console.ensure_writable(what):
            return None
        return cap

    def _change(self, cap: Capability, target: Stage, verb: str) -> None:
        forced = cap.always_approval and target is Stage.autonomous
        label = Content.assemble((one_line(cap.tool, 60), "bold"), f": {cap.stage.value} → {target.value}")
        if forced:
            self.app.push_screen(
                ConfirmScreen(
                    Content.assemble("FORCE ", label, "?"),
                    Content.styled(
                        "This tool is marked always-approval. Making it autonomous is a forced override:\n"
                        "it is recorded as forced in the audit log.",
                        "$text-warning",
                    ),
                    confirm_label="Force",
                    reason="required",
                    reason_placeholder="Why is the override safe? (recorded)",
                    danger=True,
                ),
                lambda reason: self._send(cap, target, reason, force=True) if reason else None,
            )
            return
        self.app.push_screen(
            ConfirmScreen(
                Content.assemble(f"{verb} ", label),
                confirm_label=verb,
                reason="required",
                reason_placeholder="Why? (recorded in the stage history)",
                danger=target is Stage.autonomous,
            ),
            lambda reason: self._send(cap, target, reason) if reason else None,
        )

    def action_promote(self) -> None:
        from ...policy import promote_target

        cap = self._current("change stages")
        if cap is None:
            return
        try:
            target = promote_target(cap.stage)
        except Conflict as exc:
            self.console.say(f"{one_line(cap.tool, 60)}: {exc.message}", "warning")
            return
        self._change(cap, target, "Promote")

    def action_demote(self) -> None:
        from ...policy import demote_target

        cap = self._current("change stages")
        if cap is None:
            return
        try:
            target = demote_target(cap.stage)
        except Conflict as exc:
            self.console.say(f"{one_line(cap.tool, 60)}: {exc.message}", "warning")
            return
        self._change(cap, target, "Demote")

    def action_set_stage(self) -> None:
        cap = self._current("change stages")
        if cap is None:
            return

        def chosen(result: tuple[Stage, str] | None) -> None:
            if result is None:
                return
            stage, reason = result
            if cap.always_approval and stage is Stage.autonomous:
                self._change(cap, stage, "Set")
            else:
                self._send(cap, stage, reason)

        self.app.push_screen(StageScreen(cap), chosen)

    def action_history(self) -> None:
        cap = self.table.cursor_item
        if cap is not None:
            self.app.push_screen(HistoryScreen(cap, self.console.now()))

    def _send(self, cap: Capability, stage: Stage, reason: str, *, force: bool = False) -> None:
        async def run() -> None:
            console = self.console
            try:
                out = await console.backend.set_stage(
                    cap.tool, stage, actor=console.reviewer, reason=reason, force=force, agent=cap.agent
                )
            except HitlError as exc:
                console.say(f"Stage not changed: {exc.message}", "error")
                return
            self.table.update_item(out)
            console.say(f"{one_line(out.tool, 60)} is now {out.stage.value}.")
            self.reload()

        self.run_worker(run(), group="stage", exit_on_error=False)

"""Pane 4: the stage editor. Every tool with its stage, thresholds, timeout and track record.

``p`` promotes and ``D`` demotes one step, ``s`` sets a stage; every change asks for a reason and
is recorded in the capability's history (``h``). The record comes from the event log
(:class:`~hitl_tui.console.evidence.EvidenceBook`, folded incrementally in a worker after each
change-feed event) over a window ``w`` cycles (7/30/90 days). A suggestion the evidence supports is
marked ▲/▼ and shown with its evidence in the detail panel: ``a`` accepts it (with a recorded
reason), ``x`` dismisses it for a week; ``c`` shows the confidence calibration in full.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content

from ...autonomy import Suggestion
from ...errors import Conflict, HitlError
from ...models import Capability, Event, Page, Stage
from ..adapters import FLAGS_LEGEND, capability_cells, capability_key, clock_time, one_line
from ..evidence import DISMISS_DAYS, Evidence, EvidenceBook
from ..filters import Filter, FilterError
from ..screens import CalibrationScreen, ConfirmScreen, HistoryScreen, StageScreen
from .capability_detail import CapabilityDetail
from .pane import Pane
from .virtual_table import Column, VirtualTable

COLUMNS = [
    Column("tool", "TOOL", flex=2, min_width=18),
    Column("stage", "STAGE", width=10),
    Column("suggest", "SUG", width=3),
    Column("risk", "RISK", width=8, drop=4),
    Column("flags", "FLAGS", flex=1, min_width=14, drop=5),  # always,no-undo
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
        Binding("a", "accept_suggestion", "Accept suggestion"),
        Binding("x", "dismiss_suggestion", "Dismiss suggestion", tooltip=f"Hide it for {DISMISS_DAYS} days"),
        Binding("w", "cycle_window", "Record window"),
        Binding("c", "calibration", "Calibration", show=False),
        Binding("escape", "back", "Back to list", show=False),
    ]
    WRITE_ACTIONS: ClassVar[dict[str, str]] = {
        "promote": "change stages",
        "demote": "change stages",
        "set_stage": "change stages",
        "accept_suggestion": "change stages",
    }  # dismissing a suggestion is kept on this machine: allowed

    def __init__(self) -> None:
        super().__init__()
        self.capabilities: list[Capability] = []
        self._evidence_running = False
        self._evidence_again = False
        self._folded = 0  # events folded by the refresh in progress (shown while catching up)
        self.evidence_error: str | None = None  # why the log could not be read (shown in the title)

    def compose(self) -> ComposeResult:
        yield from self.compose_list(
            VirtualTable(
                COLUMNS,
                fetch=self._fetch,
                render_row=lambda c: capability_cells(c, self.book.get(c)),
                key=capability_key,
                empty_text="No capabilities yet: `hitl policy preset seed` (or the demo) adds some.",
                id="capabilities-table",
            )
        )
        yield CapabilityDetail(id="capabilities-detail")

    @property
    def detail(self) -> CapabilityDetail:
        return self.query_one(CapabilityDetail)

    @property
    def book(self) -> EvidenceBook:
        return self.console.evidence

    @property
    def evidence(self) -> dict[str, Evidence]:
        """Each capability's evidence for the current window, by ``tool`` or ``tool@agent``."""
        return self.book.by_key

    def list_title(self) -> str:
        return "Capabilities"

    def title_extras(self) -> list[str]:
        book = self.book
        extras = [f"record: {book.window_days} days"]
        if self.evidence_error:
            extras.append(f"records unavailable: {one_line(self.evidence_error, 80)}")
        elif book.folding:
            extras.append(f"reading the event log ({self._folded:,} events)…")
        elif n := book.suggestion_count:
            extras.append(f"{n} suggestion{'s' if n != 1 else ''}")
        return extras

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
            self.refresh_evidence()
        return Page(items=shown[offset : offset + limit], total=len(shown))

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        self._show_detail(event.item)

    def _show_detail(self, cap: Capability | None) -> None:
        now = self.console.now()
        if cap is None:
            self.detail.show(None, None, None, now)
            return
        evidence = self.book.get(cap)
        calibration = None if evidence is None else self.book.calibration(cap, now)
        self.detail.show(cap, evidence, calibration, now)

    def on_virtual_table_activated(self, _event: VirtualTable.Activated) -> None:
        self.detail.focus()

    def action_back(self) -> None:
        self.table.focus()

    # ----------------------------------------------------------------- live
    def handle_event(self, event: Event) -> None:
        self.reload()
        self.refresh_evidence()

    def refresh_evidence(self) -> None:
        """Fold the events written since the last refresh and recompute; coalesced, in a worker."""
        if self._evidence_running:
            self._evidence_again = True
            return
        self._evidence_running = True
        self.run_worker(self._refresh_evidence(), group="evidence", exit_on_error=False)

    def _progress(self, folded: int) -> None:
        self._folded = folded
        self.refresh_title()

    async def _refresh_evidence(self) -> None:
        try:
            while True:
                self._evidence_again = False
                self._folded = 0
                try:
                    await self.book.refresh(on_progress=self._progress)
                except HitlError as exc:
                    # a lost backend shows in the status line too; the next event or reconnect retries
                    self.evidence_error = exc.message
                    self.refresh_title()
                    return
                self.evidence_error = None
                self.recompute()
                if not self._evidence_again:
                    break
        finally:
            self._evidence_running = False

    def recompute(self) -> None:
        """Rebuild the evidence for the current window from the folded log and redraw it."""
        self.book.compute(self.console.now())
        self.table.refresh()
        self.refresh_title()
        self._show_detail(self.table.cursor_item)

    def tick(self) -> None:
        if self.book.by_key and self.book.stale(self.console.now()):
            self.recompute()  # a new day, or a dismissal ran out
        super().tick()

    def help_notes(self) -> list[str]:
        return [
            *super().help_notes(),
            "Records come from the event log: approvals, denials, expiries, edits and reviews in the window.",
            "SUG ▲ promotion suggested (enough approvals; no denial, edit or flag) · ▼ demotion (a flagged review).",
            f"a accepts it (asks for a reason, recorded) · x hides it for {DISMISS_DAYS} days on this machine.",
            "w switches the window: 7, 30, 90 days · c shows the calibration in finer bands.",
            FLAGS_LEGEND + ".",
        ]

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

    # ----------------------------------------------------------------- suggestions
    def _suggestion(self, cap: Capability) -> Suggestion | None:
        ev = self.book.get(cap)
        if ev is not None and ev.suggestion is not None:
            return ev.suggestion
        name = one_line(capability_key(cap), 60)
        if ev is None:
            why = f"its record is unavailable ({self.evidence_error})" if self.evidence_error else (
                "its record is still being read"
            )
        elif ev.dismissed is not None and ev.dismissal is not None:
            why = f"the suggestion is dismissed until {clock_time(ev.dismissal.until, self.console.now())}"
        else:
            why = "; ".join(ev.blockers) or "nothing to suggest"
        self.console.say(f"No suggestion for {name}: {why}.", "warning")
        return None

    def action_accept_suggestion(self) -> None:
        cap = self._current("accept suggestions")
        if cap is None or (s := self._suggestion(cap)) is None:
            return
        verb = "Promote" if s.kind == "promote" else "Demote"
        self.app.push_screen(
            ConfirmScreen(
                Content.assemble(
                    f"Accept: {verb.lower()} ", (one_line(s.target, 60), "bold"),
                    f": {s.from_stage.value} → {s.to_stage.value}",
                ),
                Content.assemble(("Evidence: ", "bold"), one_line(s.evidence, 400), "\n",
                                 Content.styled("Recorded with your reason in the stage history.", "$text-muted")),
                confirm_label=verb,
                reason="required",
                reason_placeholder="Why? (recorded after the evidence)",
                danger=s.to_stage is Stage.autonomous,
            ),
            lambda reason: self._accept(s, reason) if reason else None,
        )

    def _accept(self, suggestion: Suggestion, reason: str) -> None:
        async def run() -> None:
            console = self.console
            try:
                out = await self.book.accept(suggestion, actor=console.reviewer, reason=reason)
            except HitlError as exc:
                console.say(f"Suggestion not applied: {exc.message}", "error")
                self.refresh_evidence()
                return
            self.table.update_item(out)
            console.say(f"{one_line(capability_key(out), 60)} is now {out.stage.value} (suggestion accepted).")
            self.reload()
            self.refresh_evidence()

        self.run_worker(run(), group="stage", exit_on_error=False)

    def action_dismiss_suggestion(self) -> None:
        cap = self.table.cursor_item
        if cap is None:
            self.console.say("No capability selected.", "warning")
            return
        suggestion = self._suggestion(cap)
        if suggestion is None:
            return

        async def run() -> None:
            console = self.console
            try:
                entry = await self.book.dismiss(suggestion, by=console.reviewer, now=console.now())
            except (HitlError, OSError) as exc:
                console.say(f"Not dismissed: {getattr(exc, 'message', None) or exc}", "error")
                return
            console.say(
                f"Dismissed {one_line(suggestion.target, 60)} {suggestion.from_stage.value} → "
                f"{suggestion.to_stage.value} until {clock_time(entry.until, console.now())} "
                "(on this machine; hitl suggest --all lists it)."
            )
            self.recompute()

        self.run_worker(run(), group="dismiss", exit_on_error=False)

    def action_cycle_window(self) -> None:
        self.book.cycle_window()  # the title line says which window is shown
        self.recompute()

    def action_calibration(self) -> None:
        cap = self.table.cursor_item
        if cap is None:
            self.console.say("No capability selected.", "warning")
            return
        self.app.push_screen(CalibrationScreen(cap, self.book.calibration(cap, self.console.now())))

"""``HitlConsole``: the Textual app reviewers live in.

Four panes (approvals, escalations, review, capabilities) over one :class:`Backend`. Everything
shown comes from backend reads; everything live comes from the backend's change feed (one
worker, :class:`LiveFeed`), never from polling. Backend calls run in workers, so a slow
backend never freezes a key press. The app does not own the backend: whoever opened it closes it.

On an embedded store (``LocalBackend``) with ``[autonomy] demote_on_flag = "act"`` the console also
runs the flag watcher (:func:`~hitl_tui.autonomy.watch_flags`): a flagged after-the-fact review
takes its autonomous capability back to approval (a shared server runs its own watcher). Every
automatic demotion, whoever made it, is announced with a notification and the bell.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from pydantic import ValidationError
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widgets import ContentSwitcher
from textual.worker import WorkerCancelled

from ..autonomy import auto_demotion_notice, watch_flags
from ..backend.base import Backend
from ..backend.local import LocalBackend, default_actor
from ..config import Settings
from ..errors import HitlError
from ..models import RISK_ORDER, ApprovalRequest, Capability, EscalationStatus, Event, EventKind, RequestStatus
from ..text import sanitise
from .adapters import one_line, request_summary
from .commands import ConsoleCommands
from .evidence import EvidenceBook
from .live import Link, LinkState, LiveFeed
from .screens import HelpScreen
from .widgets.approvals import ApprovalsPane
from .widgets.capabilities import CapabilitiesPane
from .widgets.escalations import EscalationsPane
from .widgets.footer import FittingFooter
from .widgets.pane import Pane
from .widgets.review import ReviewPane
from .widgets.status_line import StatusLine
from .widgets.tab_bar import PaneCounts, TabBar
from .widgets.virtual_table import VirtualTable

ALERT_COALESCE_S = 8.0  # arrivals within this many seconds of an alert share the next one
ALERT_TIMEOUT_S = 4.0  # how long an arrival notification stays

WIDE = 160  # columns from which lists and details sit side by side (below it the list gets the full width)

Clock = Callable[[], datetime]
GLOBAL_ACTIONS = frozenset({"next_pane", "previous_pane", "show_pane", "help", "quit"})


def _local_now() -> datetime:
    return datetime.now(UTC).astimezone()


_frozen_apps = 0  # consoles running in this process with the start-up heap frozen (see _freeze_heap)

COUNTS = ("pending", "escalations", "review")  # the tab counts _count reads from the backend


class HitlConsole(App[None]):
    """The reviewer console. ``clock`` drives every age and countdown shown (tests fix it)."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "hitl console"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    NOTIFICATION_TIMEOUT = 6

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "show_pane('approvals')", "Approvals", show=False),
        Binding("2", "show_pane('escalations')", "Escalations", show=False),
        Binding("3", "show_pane('review')", "Review", show=False),
        Binding("4", "show_pane('capabilities')", "Capabilities", show=False),
        Binding("tab", "next_pane", "Next pane", show=False, priority=True),
        Binding("shift+tab", "previous_pane", "Previous pane", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    PANE_ORDER: ClassVar[list[str]] = ["approvals", "escalations", "review", "capabilities"]

    def __init__(self, backend: Backend, settings: Settings | None = None, *, clock: Clock | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.settings = settings or Settings()
        self._clock = clock or _local_now
        self.reviewer = self.settings.reviewer or default_actor()
        self.read_only = bool(backend.read_only)
        self.bells = 0  # how many times the bell rang (the terminal bell is silent when headless)
        self._alert_queue: list[ApprovalRequest] = []
        self._alert_timer: Timer | None = None
        self.said: deque[tuple[str, str, str]] = deque(maxlen=50)  # recent notifications: (severity, title, text)
        self.counts = PaneCounts()
        self._caps: list[Capability] = []
        self._counting = False
        self._to_count: set[str] = set()  # which of COUNTS the running (or next) count must read
        self._heap_frozen = False
        self.feed = LiveFeed(backend, on_event=self._on_live_event, on_link=self._on_link, on_sync=self._sync)
        self.evidence = EvidenceBook(backend, self.settings)
        self.flag_watch = isinstance(backend, LocalBackend) and self.settings.autonomy.demote_on_flag == "act"
        self.flag_watch_from: int | None = None  # the log position the flag watcher follows from
        if self.settings.console.theme:
            self._wanted_theme: str | None = self.settings.console.theme
        else:
            self._wanted_theme = None

    # ================================================================= layout
    def compose(self) -> ComposeResult:
        yield TabBar(id="tabs")
        with ContentSwitcher(initial="approvals", id="panes"):
            yield ApprovalsPane()
            yield EscalationsPane()
            yield ReviewPane()
            yield CapabilitiesPane()
        yield StatusLine(self.backend.describe(), self.reviewer, self.read_only, id="status")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        if self._wanted_theme and self._wanted_theme in self.available_themes:
            self.theme = self._wanted_theme
        self.run_worker(self.feed.run(), group="live", exit_on_error=False)
        if self.flag_watch and not self.read_only:
            self.run_worker(self._watch_flags(), group="live", exit_on_error=False)
        self.set_interval(1.0, self._tick)
        self.active_pane.focus_main()
        self.call_after_refresh(self._freeze_heap)

    def _freeze_heap(self) -> None:
        """Take everything alive after start-up (modules, styles, widgets: some 100,000 objects)
        out of the garbage collector's generations. Otherwise every full collection walks all of
        it: a 60-100 ms pause that lands on whatever frame is due (it was the round trip's p99).
        Later objects are still collected; :meth:`on_unmount` gives the frozen ones back."""
        global _frozen_apps
        if not self._heap_frozen:
            self._heap_frozen = True
            _frozen_apps += 1
            gc.freeze()

    def on_unmount(self) -> None:
        global _frozen_apps
        if self._heap_frozen:
            self._heap_frozen = False
            _frozen_apps -= 1
            if _frozen_apps == 0:
                gc.unfreeze()  # collectable again (tests run many consoles in one process)

    def on_resize(self, event: events.Resize) -> None:
        self.query_one("#panes").set_class(event.size.width >= WIDE, "-wide")

    @property
    def panes(self) -> list[Pane]:
        return list(self.query(Pane))

    def pane(self, pane_id: str) -> Pane:
        return self.query_one(f"#{pane_id}", Pane)

    @property
    def active_pane(self) -> Pane:
        current = self.query_one("#panes", ContentSwitcher).current or "approvals"
        return self.pane(current)

    def now(self) -> datetime:
        return self._clock()

    # ================================================================= panes and keys
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # a dialog is open: its keys win (tab moves focus, q is a letter)
        return not (action in GLOBAL_ACTIONS and len(self.screen_stack) > 1)

    def action_show_pane(self, pane_id: str) -> None:
        self.query_one("#panes", ContentSwitcher).current = pane_id
        self.query_one(TabBar).set_active(pane_id)
        pane = self.pane(pane_id)
        pane.tick()
        pane.focus_main()

    def _step_pane(self, step: int) -> None:
        at = self.PANE_ORDER.index(self.active_pane.PANE_ID)
        self.action_show_pane(self.PANE_ORDER[(at + step) % len(self.PANE_ORDER)])

    def action_next_pane(self) -> None:
        self._step_pane(1)

    def action_previous_pane(self) -> None:
        self._step_pane(-1)

    def on_tab_bar_chosen(self, event: TabBar.Chosen) -> None:
        self.action_show_pane(event.pane_id)

    def action_help(self) -> None:
        pane = self.active_pane
        self.push_screen(HelpScreen(f"Keys: {pane.TITLE}", self.help_sections(pane), self.help_notes(pane)))

    def _bindings_of(self, cls: type) -> list[Binding]:
        out: list[Binding] = []
        seen: set[str] = set()
        for klass in cls.__mro__:
            if not klass.__module__.startswith("hitl_tui."):
                continue  # Textual's own scrolling keys are not ours to document
            for b in klass.__dict__.get("BINDINGS", []):
                if isinstance(b, Binding) and b.key not in seen and b.description:
                    seen.add(b.key)
                    out.append(b)
        return out

    def help_sections(self, pane: Pane) -> list[tuple[str, list[tuple[str, str]]]]:
        def rows(bindings: list[Binding]) -> list[tuple[str, str]]:
            return [(self._keys_display(b), b.description) for b in bindings]

        sections = [(f"{pane.TITLE} pane", rows(self._bindings_of(type(pane))))]
        if isinstance(pane, EscalationsPane):
            sections.append(("Reply box", [("enter, ctrl+s", "Send the reply"), ("esc", "Leave the reply box")]))
        sections.append(("Lists", [*rows(self._bindings_of(VirtualTable)), ("enter", "Open / focus the detail")]))
        everywhere = [
            ("1 2 3 4", "Approvals · Escalations · Review · Capabilities"),
            ("tab, shift+tab", "Next / previous pane"),
            *rows([b for b in self._bindings_of(type(self)) if b.show]),
            ("ctrl+p", "Command palette: every action by name"),
        ]
        sections.append(("Everywhere", everywhere))
        return sections

    def _keys_display(self, binding: Binding) -> str:
        return ", ".join(
            self.get_key_display(Binding(k.strip(), binding.action)) for k in binding.key.split(",") if k.strip()
        )

    def help_notes(self, pane: Pane) -> list[str]:
        notes = pane.help_notes()
        notes.append("Mouse: click rows, tabs and footer keys; the wheel scrolls.")
        if self.read_only:
            notes.append("This connection is read-only: you can look but not decide.")
        return notes

    def run_pane_action(self, pane_id: str, action: str) -> None:
        """Show a pane and run one of its actions (used by the command palette)."""
        self.action_show_pane(pane_id)
        pane = self.pane(pane_id)
        self.call_later(pane.run_action, action)

    def _tick(self) -> None:
        try:
            self.active_pane.tick()
        except NoMatches:  # shutting down: the panes' widgets are already gone
            pass

    # ================================================================= talking to the reviewer
    def say(
        self, message: str, severity: str = "information", *, title: str = "", timeout: float | None = None
    ) -> None:
        """A notification; its text is sanitised and never parsed as markup."""
        text, heading = sanitise(message, limit=2000), sanitise(title, oneline=True, limit=120)
        self.said.append((severity, heading, text))
        self.notify(
            text,
            title=heading,
            severity=severity,  # type: ignore[arg-type]
            timeout=timeout,
            markup=False,
        )

    def ensure_writable(self, what: str) -> bool:
        """Refuse (and say why) when this console must not send anything: fail closed."""
        if self.read_only:
            self.say(f"Read-only connection: you can look but not {what}.", "warning")
            return False
        link = self.feed.link
        if not link.up:
            detail = f" ({link.detail})" if link.detail else ""
            self.say(f"Not connected to the backend{detail}: nothing was sent.", "error", title="Disconnected")
            return False
        return True

    def ring_bell(self) -> None:
        self.bells += 1
        self.bell()

    # ================================================================= capabilities (for irreversible checks)
    def capabilities_loaded(self, caps: list[Capability]) -> None:
        self._caps = caps
        if self.counts.capabilities != len(caps):
            self.counts.capabilities = len(caps)
            self.query_one(TabBar).set_counts(self.counts)

    def capability_for(self, tool: str, agent: str | None = None) -> Capability | None:
        scoped = next((c for c in self._caps if c.tool == tool and c.agent == agent and agent), None)
        return scoped or next((c for c in self._caps if c.tool == tool and c.agent is None), None)

    # ================================================================= live
    def _on_link(self, link: Link) -> None:
        self._learn_role()
        self.query_one(TabBar).set_link(link)
        self.query_one(StatusLine).set_link(link)
        if link.state is LinkState.disconnected:
            self.sub_title = "disconnected"

    def _learn_role(self) -> None:
        """An ``HttpBackend`` knows its token's role only after its first call (the feed's): an
        agent token turns the console read-only before any pane loads or anything can be sent.
        The token's name is who the server records as deciding, so it is who "you" is here
        (``HITL_REVIEWER`` / ``--as`` name only an embedded store's reviewer)."""
        identity = self.backend.identity
        if identity and identity != self.reviewer:
            self.reviewer = identity
            status = self.query_one(StatusLine)
            status.reviewer = one_line(identity, 40)
            status.refresh()
            for pane in self.panes:
                pane.table.refresh()
        if not self.read_only and self.backend.read_only:
            self.read_only = True
            status = self.query_one(StatusLine)
            status.read_only = True
            status.refresh()
            self.refresh_bindings()  # the footer drops the keys that would send something

    def _sync(self) -> None:
        """(Re)load everything shown: at start and after a reconnect."""
        for pane in self.panes:
            pane.reload()
        self._recount(*COUNTS)

    def _on_live_event(self, event: Event) -> None:
        kind = event.kind
        if kind.startswith("request."):
            approvals = self.query_one(ApprovalsPane)
            approvals.handle_event(event)
            if not approvals.counts_pending:  # else its reload brings the pending count (set_pending_count)
                self._recount("pending")
            if kind is EventKind.request_created:
                self._alert(event)
            elif kind in (EventKind.request_decided, EventKind.request_expired):
                self._capabilities_pane.refresh_evidence()
        elif kind.startswith("escalation."):
            self.pane("escalations").handle_event(event)
            self._recount("escalations")
            if kind is EventKind.escalation_opened:
                self._announce_escalation(event)
        elif kind.startswith("review."):
            self.pane("review").handle_event(event)
            self._recount("review")
            if kind is EventKind.review_marked:
                self._capabilities_pane.refresh_evidence()
        elif kind.startswith(("capability.", "rules.")):
            self.pane("capabilities").handle_event(event)
            if kind is EventKind.stage_changed:
                self._announce_demotion(event)

    def set_pending_count(self, pending: int) -> None:
        """The approvals list, unfiltered, just read how many requests are pending: the tab count
        follows from that read, without a query of its own."""
        if self.counts.pending != pending:
            self.counts.pending = pending
            self.query_one(TabBar).set_counts(self.counts)

    @property
    def _capabilities_pane(self) -> CapabilitiesPane:
        return self.query_one(CapabilitiesPane)

    def _alert(self, event: Event) -> None:
        """Bell and a notification for a new high-risk request. A busy fleet must not bury the
        screen in toasts: the first arrival after a quiet spell is announced at once; arrivals in
        the next ALERT_COALESCE_S seconds are summed up in one notification (one bell), and none
        is shown while a dialog is open (they wait until it closes)."""
        try:
            req = ApprovalRequest.model_validate(event.payload)
        except ValidationError:
            return
        if req.risk.value not in self.settings.console.notify_risks or not req.is_pending:
            return
        self._alert_queue.append(req)
        if self._alert_timer is None:
            self._flush_alerts()

    def _announce_escalation(self, event: Event) -> None:
        """A stuck agent is waiting on a human: say so wherever the reviewer is (and ring, as for a
        high-risk request), so a thread does not sit unseen in another pane."""
        payload = event.payload
        agent, message, eid = payload.get("agent"), payload.get("message"), payload.get("id")
        if not isinstance(eid, int):
            return
        if self.settings.console.bell:
            self.ring_bell()
        self.say(
            f"{one_line(agent, 40)}: {one_line(message, 200)}  (2: Escalations, r: reply)",
            "warning",
            title=f"Agent needs help: escalation #{eid}",
            timeout=ALERT_TIMEOUT_S,
        )

    def _flush_alerts(self) -> None:
        self._alert_timer = None
        if not self._alert_queue:
            return
        if len(self.screen_stack) > 1:  # a dialog is open: do not cover it
            self._alert_timer = self.set_timer(ALERT_COALESCE_S / 2, self._flush_alerts)
            return
        queued, self._alert_queue = self._alert_queue, []
        if self.settings.console.bell:
            self.ring_bell()
        latest = queued[-1]
        line = f"{one_line(latest.agent, 40)} → {one_line(latest.tool, 60)}: {request_summary(latest, 160)}"
        if len(queued) == 1:
            self.say(
                line, "warning", title=f"New {latest.risk.value}-risk request #{latest.id}", timeout=ALERT_TIMEOUT_S
            )
        else:
            # each risk with its own count: the batch's worst risk is not every request's
            by_risk = Counter(r.risk for r in queued)
            risks = ", ".join(f"{by_risk[r]} {r.value}" for r in sorted(by_risk, key=RISK_ORDER.get, reverse=True))
            self.say(
                f"latest #{latest.id} ({latest.risk.value} risk) {line}",
                "warning",
                title=f"{len(queued)} new requests: {risks}",
                timeout=ALERT_TIMEOUT_S,
            )
        self._alert_timer = self.set_timer(ALERT_COALESCE_S, self._flush_alerts)

    # ================================================================= automatic demotion
    async def _watch_flags(self) -> None:
        """Demote the autonomous capability of each newly flagged review (idempotent: a capability
        already demoted, or a flag older than its latest promotion, is left alone)."""
        stop = asyncio.Event()
        try:
            start = await self.backend.last_seq()
        except HitlError:
            start = None  # the watcher finds the end itself once the store is back
        self.flag_watch_from = start
        task = asyncio.ensure_future(watch_flags(self.backend, self.settings, stop, after_seq=start))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            stop.set()  # let the watcher close its subscription before the app goes
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 2.0)
            raise

    def _announce_demotion(self, event: Event) -> None:
        notice = auto_demotion_notice(event)  # sanitised; say() shows it as literal text
        if notice is None:
            return
        if self.settings.console.bell:
            self.ring_bell()
        self.say(notice, "warning", title="Capability demoted automatically", timeout=15)

    def _recount(self, *which: str) -> None:
        """Re-read the named tab counts (of COUNTS) in a worker; coalesced, at most one in flight."""
        self._to_count.update(which)
        if self._counting:
            return
        self._counting = True
        self.run_worker(self._count(), group="counts", exit_on_error=False)

    async def _count(self) -> None:
        b = self.backend
        try:
            while self._to_count:
                which, self._to_count = self._to_count, set()
                counts = PaneCounts(**vars(self.counts))
                try:
                    if "pending" in which:
                        counts.pending = (await b.list_requests(RequestStatus.pending, limit=1)).total
                    if "escalations" in which:
                        counts.escalations = (await b.list_escalations(EscalationStatus.open, limit=1)).total
                    if "review" in which:
                        counts.review = (await b.list_reviews(False, limit=1)).total
                except HitlError:
                    self._to_count.clear()
                    return
                if "pending" not in which:  # the approvals list may have set it meanwhile
                    counts.pending = self.counts.pending
                counts.capabilities = self.counts.capabilities
                self.counts = counts
                self.query_one(TabBar).set_counts(self.counts)
                if "review" in which:
                    self.pane("review").refresh_title()  # it says what the tab's count counts
        finally:
            self._counting = False

    # ================================================================= tests and scripts
    async def wait_settled(self, timeout: float = 10.0) -> None:
        """Wait until every load started so far (and any it started) has finished."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.feed.link.state is LinkState.connecting and loop.time() < deadline:
            await asyncio.sleep(0.01)
        while loop.time() < deadline:
            busy = [w for w in self.workers if w.group != "live" and not w.is_finished]
            if not busy:
                await asyncio.sleep(0.01)
                if not [w for w in self.workers if w.group != "live" and not w.is_finished]:
                    return
                continue
            try:
                await asyncio.wait_for(self.workers.wait_for_complete(busy), max(0.01, deadline - loop.time()))
            except WorkerCancelled:  # a load replaced by a newer one: wait for that one instead
                continue
        raise TimeoutError("the console did not settle")

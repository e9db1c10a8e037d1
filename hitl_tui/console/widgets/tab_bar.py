"""The top line: the four panes with their counts (click or 1-4 / tab) and the link state."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from textual import events
from textual.content import Content
from textual.message import Message
from textual.widget import Widget

from ..live import Link, LinkState


@dataclass
class PaneCounts:
    pending: int | None = None
    escalations: int | None = None
    review: int | None = None
    capabilities: int | None = None


PANES = [
    ("approvals", "Approvals", "pending"),
    ("escalations", "Escalations", "escalations"),
    ("review", "Review", "review"),
    ("capabilities", "Capabilities", "capabilities"),
]

LINK_TEXT = {
    LinkState.connecting: ("◌ connecting", "$text-warning"),
    LinkState.live: ("● live", "$text-success"),
    LinkState.disconnected: ("✕ DISCONNECTED", "bold reverse $text-error"),
    LinkState.reconnecting: ("◌ reconnecting", "bold $text-warning"),
}


class TabBar(Widget):
    DEFAULT_CSS = """
    TabBar { height: 1; background: $panel; }
    """

    class Chosen(Message):
        def __init__(self, pane_id: str) -> None:
            super().__init__()
            self.pane_id = pane_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.active = "approvals"
        self.counts = PaneCounts()
        self.link = Link(LinkState.connecting)
        self._spans: list[tuple[int, int, str]] = []

    def set_active(self, pane_id: str) -> None:
        self.active = pane_id
        self.refresh()

    def set_counts(self, counts: PaneCounts) -> None:
        self.counts = counts
        self.refresh()

    def set_link(self, link: Link) -> None:
        self.link = link
        self.refresh()

    def _labels(self, short: bool) -> list[str]:
        out = []
        for n, (_pane_id, label, attr) in enumerate(PANES, start=1):
            count = getattr(self.counts, attr)
            name = label[:5] + "." if short and len(label) > 8 else label
            out.append(f" {n} {name}" + ("" if count is None else f" {count:,}") + " ")
        return out

    def render(self) -> Content:
        badge_text, badge_style = LINK_TEXT[self.link.state]
        badge = Content.styled(f" {badge_text} ", badge_style)
        labels = self._labels(short=False)
        if sum(cell_len(t) for t in labels) + badge.cell_length + 1 > self.size.width:
            labels = self._labels(short=True)
        parts: list[Content] = []
        self._spans = []
        x = 0
        for text, (pane_id, _label, attr) in zip(labels, PANES, strict=True):
            style = "bold reverse $primary" if pane_id == self.active else "$text-muted"
            if pane_id == "approvals" and getattr(self.counts, attr) and pane_id != self.active:
                style = "bold $text-warning"
            parts.append(Content.styled(text, style))
            self._spans.append((x, x + cell_len(text), pane_id))
            x += cell_len(text)
        left = Content("").join(parts)
        gap = max(1, self.size.width - left.cell_length - badge.cell_length)
        return Content.assemble(left, " " * gap, badge)

    def on_click(self, event: events.Click) -> None:
        for start, end, pane_id in self._spans:
            if start <= event.x < end:
                self.post_message(self.Chosen(pane_id))
                return

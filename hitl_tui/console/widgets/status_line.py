"""The bottom status line: which backend, who you are, the link state in words, read-only."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from ..adapters import one_line
from ..live import Link, LinkState


class StatusLine(Widget):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $text-muted; }
    StatusLine.-down { background: $error 30%; color: $text; }
    """

    def __init__(self, backend: str, reviewer: str, read_only: bool, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.backend_text = one_line(backend, 200)
        self.reviewer = one_line(reviewer, 40)
        self.read_only = read_only
        self.link = Link(LinkState.connecting)

    def set_link(self, link: Link) -> None:
        self.link = link
        self.set_class(link.state in (LinkState.disconnected, LinkState.reconnecting), "-down")
        self.refresh()

    def render(self) -> Content:
        width = self.size.width
        state = self.link
        if state.state is LinkState.disconnected:
            retry = f"retrying in {max(1, round(state.retry_in))}s · " if state.retry_in else ""
            right = Content.styled(
                f"disconnected · nothing is sent · {retry}{one_line(state.detail, 160)} ", "bold $text-error"
            )
        elif state.state is LinkState.reconnecting:
            right = Content.styled(f"reconnecting ({one_line(state.detail, 40)}) ", "bold $text-warning")
        elif state.state is LinkState.connecting:
            right = Content("connecting… ")
        else:
            right = Content.assemble("you: ", (self.reviewer, "bold"), " ")
        ro = Content.styled(" READ-ONLY ", "bold reverse $text-warning") if self.read_only else Content("")
        if right.cell_length > width - ro.cell_length - 20:  # an outage explains itself first
            return Content.assemble(" ", ro, right.truncate(max(1, width - ro.cell_length - 1), ellipsis=True))
        room = max(8, width - right.cell_length - ro.cell_length - 2)
        backend = self.backend_text
        if len(backend) > room:
            backend = "…" + backend[-(room - 1) :]
        left = Content.assemble(" ", ro, (backend, ""))
        gap = max(1, width - left.cell_length - right.cell_length)
        return Content.assemble(left, " " * gap, right)

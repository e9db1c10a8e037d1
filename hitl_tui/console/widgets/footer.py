"""The key footer, cut to the keys whose whole label fits on the line.

Textual's footer lays every key out and lets the line overflow: at 80 columns the last labels were
cut (``q▏^p palette``: Quit lost) and at 60 a stray letter showed beside the palette key. This one
keeps the global keys (help, quit) and the command palette, then the pane's keys in their order
while they fit; the rest stay in ``?`` help and the command palette. It re-fits on resize.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ALWAYS = frozenset({"help", "quit"})  # actions the footer always shows


def key_width(key: FooterKey) -> int:
    """Columns a compact footer key takes: ``k Label`` and the gap after it."""
    return cell_len(key.key_display) + 1 + cell_len(key.description) + 1


class FittingFooter(Footer):
    _fitted_width = -1

    def compose(self) -> ComposeResult:
        items = list(super().compose())
        width = self.app.size.width
        self._fitted_width = width
        keys = [w for w in items if isinstance(w, FooterKey) and not w.has_class("-command-palette")]
        room = width - sum(key_width(w) + 2 for w in items if w not in keys)  # the palette key and its border
        room -= sum(key_width(k) for k in keys if k.action in ALWAYS)
        shown: set[int] = set()
        for k in keys:
            if k.action in ALWAYS:
                continue
            if key_width(k) > room:
                break  # keep the order: the keys shown are the pane's first ones
            room -= key_width(k)
            shown.add(id(k))
        out: list[Widget] = [w for w in items if w not in keys or w.action in ALWAYS or id(w) in shown]
        self.styles.grid_size_columns = max(1, len([w for w in out if w in keys]))
        yield from out

    def on_resize(self, event: events.Resize) -> None:
        if self.app.size.width != self._fitted_width and self.is_attached:
            self.call_after_refresh(self.recompose)

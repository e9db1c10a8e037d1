"""The command palette (ctrl+p): every console action, found by name.

Commands are generated from the panes' and the app's own bindings, so the palette, the help
screen and the footer can never disagree about what exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from .app import HitlConsole


def _pane_actions(app: HitlConsole) -> Iterator[tuple[str, str, Callable[[], object]]]:
    for pane in app.panes:
        yield (
            f"Go to {pane.TITLE}",
            f"show the {pane.TITLE.lower()} pane",
            partial(app.action_show_pane, pane.PANE_ID),
        )
        for binding in type(pane).BINDINGS:
            if not isinstance(binding, Binding) or not binding.description or binding.action == "back":
                continue
            help_text = f"{app.get_key_display(binding)} in {pane.TITLE}"
            yield (
                f"{pane.TITLE}: {binding.description}",
                help_text,
                partial(app.run_pane_action, pane.PANE_ID, binding.action),
            )
    yield ("Help: keys of this pane", "?", app.action_help)
    yield ("Quit the console", "q", app.action_quit)


class ConsoleCommands(Provider):
    @property
    def console(self) -> HitlConsole:
        return cast("HitlConsole", self.app)

    async def discover(self) -> Hits:
        for name, help_text, callback in _pane_actions(self.console):
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in _pane_actions(self.console):
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)

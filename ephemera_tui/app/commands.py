"""The command palette's provider: every command of the current screen, by its description."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from .keys import KeyAction, screen_actions

if TYPE_CHECKING:
    from .app import EphemeraApp


class JournalCommands(Provider):
    """Offers the same commands the keys, the footer and the help show."""

    def _actions(self) -> list[KeyAction]:
        app = cast("EphemeraApp", self.app)
        return screen_actions(self.screen, app.user_keymap)

    def _title(self, action: KeyAction) -> str:
        return f"{action.group}: {action.description}"

    def _help(self, action: KeyAction) -> str:
        keys = ", ".join(self.app.get_key_display(Binding(k, "")) for k in action.keys)
        return f"keys: {keys}"

    async def _run(self, action: KeyAction) -> None:
        await self.app.run_action(action.action, action.node)

    async def discover(self) -> Hits:
        for action in self._actions():
            yield DiscoveryHit(
                self._title(action), partial(self._run, action), help=self._help(action)
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in self._actions():
            title = self._title(action)
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self._run, action),
                    help=self._help(action),
                )

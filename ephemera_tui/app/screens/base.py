"""What the three mode screens share: status line, footer, reload when the journal changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from ..app import EphemeraApp


class JournalScreen(Screen[None]):
    """A mode screen; ``reload`` runs whenever the App's ``data_version`` moves on."""

    @property
    def journal(self) -> EphemeraApp:
        """The app, typed."""
        return cast("EphemeraApp", self.app)

    def on_mount(self) -> None:
        self.watch(self.app, "data_version", self._data_changed, init=False)

    def on_screen_resume(self) -> None:
        # A dialog just closed: the app's bindings (hidden while it was open) apply again.
        self.app.refresh_bindings()

    def _data_changed(self, _version: int) -> None:
        self.reload()

    def reload(self) -> None:
        """Fetch what the screen shows again (after a save, a sync, another process's write)."""

    def now(self) -> float:
        """The app's clock (fixed in tests)."""
        return self.journal.clock()

"""What the mode screens share: status line, footer, reload when the journal changes, follow
the memory just saved, and relative times that move on."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from ...engine import Memory
    from ..app import EphemeraApp

TIME_REFRESH_SECONDS = 30.0
"""How often relative times ("3 min ago") are drawn again."""


class JournalScreen(Screen[None]):
    """A mode screen; ``reload`` runs whenever the App's ``data_version`` moves on."""

    time_refresh: float = TIME_REFRESH_SECONDS

    def __init__(self) -> None:
        super().__init__()
        self._follow_seen = 0

    @property
    def journal(self) -> EphemeraApp:
        """The app, typed."""
        return cast("EphemeraApp", self.app)

    def on_mount(self) -> None:
        self.watch(self.app, "data_version", self._data_changed, init=False)
        self._follow_seen = self.journal.follow_serial  # only memories saved from now on
        if self.time_refresh > 0:
            self.set_interval(self.time_refresh, self.refresh_times)

    def on_screen_resume(self) -> None:
        # A dialog just closed: the app's bindings (hidden while it was open) apply again.
        self.app.refresh_bindings()

    def _data_changed(self, _version: int) -> None:
        self.reload()

    def reload(self) -> None:
        """Fetch what the screen shows again (after a save, a sync, another process's write)."""

    def refresh_times(self) -> None:
        """Draw relative times again (they are computed when drawn)."""

    def take_followed(self) -> Memory | None:
        """The memory the user saved since this screen last asked, once; else None."""
        serial = self.journal.follow_serial
        if serial == self._follow_seen:
            return None
        self._follow_seen = serial
        return self.journal.followed

    def now(self) -> float:
        """The app's clock (fixed in tests)."""
        return self.journal.clock()

"""The Ephemera app: three modes (search, timeline, graph), capture from anywhere, live status.

The first screen paints before the engine opens: the engine (SQL, then the embedder and the
vector store) opens in a thread worker after the first refresh. An App-level loop drains the
vector outbox and notices other processes' writes for the app's whole life.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from .commands import JournalCommands
from .format import memory_label
from .keys import screen_actions
from .queries import JournalState, journal_state
from .screens.capture import CaptureScreen, draft_age
from .screens.confirm import ConfirmScreen
from .screens.graph import GraphScreen
from .screens.help import HelpScreen
from .screens.patterns import PatternsScreen
from .screens.reader import ReaderScreen
from .screens.search import SearchScreen
from .screens.status import StatusScreen
from .screens.timeline import TimelineScreen
from .state import AppState, DraftStore, FormDraft
from .workers import engine_call, error_message

if TYPE_CHECKING:
    from ..engine import Engine, Memory, Settings
    from ..engine.sync.worker import Worker as UpkeepWorker

EngineFactory = Callable[["Settings"], "Engine"]
IDLE_TICK_MAX_S = 2.0  # the slowest upkeep tick while idle: changes elsewhere show within it
MODE_TITLES = {
    "search": "Search",
    "timeline": "Timeline",
    "graph": "Graph",
    "status": "Status",
    "patterns": "Patterns",
}
OURS_IN_THE_PALETTE = {"Theme", "Quit", "Keys"}
"""System commands the palette would list twice: the app's own bindings offer them (and its
Keys are this screen's keys, not Textual's widget help)."""


class EphemeraApp(App[None]):
    """A keyboard-driven journal of memory fragments."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "Ephemera"
    COMMANDS = App.COMMANDS | {JournalCommands}
    MODES: ClassVar[dict[str, type]] = {  # type: ignore[assignment]
        "search": SearchScreen,
        "timeline": TimelineScreen,
        "graph": GraphScreen,
        "status": StatusScreen,
        "patterns": PatternsScreen,
    }
    DEFAULT_MODE = "search"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "capture", "New", priority=True, id="app.capture"),
        Binding("f1,question_mark", "help", "Keys", id="app.help"),
        Binding("f2", "mode('search')", "Search", show=False, id="app.search"),
        Binding("f3", "mode('timeline')", "Timeline", id="app.timeline"),
        Binding("f4", "mode('graph')", "Graph", id="app.graph"),
        Binding("f5", "mode('status')", "Status", show=False, id="app.status"),
        Binding("f6", "mode('patterns')", "Patterns", show=False, id="app.patterns"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("f9", "change_theme", "Theme", show=False, id="app.theme"),
    ]

    data_version: reactive[int] = reactive(0)
    """Moves on whenever memories changed (saved here, synced, or written by another process)."""
    memory_count: reactive[int | None] = reactive(None)
    """Memories stored, None until the engine is open."""
    pending_count: reactive[int] = reactive(0)
    """Memories waiting for their vectors."""
    vector_state: reactive[str] = reactive("")
    """Why search is keyword-only right now (empty when the vector store is ours)."""

    def __init__(
        self,
        settings: Settings,
        engine_factory: EngineFactory | None = None,
        clock: Callable[[], float] | None = None,
        *,
        blink: bool = True,
        settle_heap: bool = False,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.clock: Callable[[], float] = clock or time.time
        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        self.upkeep: UpkeepWorker | None = None  # drain, cross-check, scheduled backups
        self.blink = blink
        """Whether text cursors blink (off in snapshot tests)."""
        self.settle_heap = settle_heap
        """Whether to freeze start-up's objects out of the collector's full passes once the
        engine is ready (``engine/heap.py``): on for the ``ephemera`` program, whose process
        the app owns; off where the app is one of many in a process (tests)."""
        self.user_keymap: dict[str, str] = dict(settings.keys)
        """The user's key remapping: binding id -> keys (from the config file)."""
        self.known_tags: list[str] = []
        self.followed: Memory | None = None
        """The memory the user saved last: screens move their highlight to it once."""
        self.follow_serial = 0
        self.state = AppState(settings.data_dir)
        self.drafts = DraftStore(settings.data_dir)
        self._signature: tuple[int, int | None, int] | None = None
        self._last_state: JournalState | None = None  # what the last upkeep tick counted
        self._last_error: str | None = None
        self._last_input = time.monotonic()  # when the user last pressed a key or clicked

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        theme = self.state.theme(self.settings.theme)
        if theme:
            if theme in self.available_themes:
                self.theme = theme
            else:
                self.notify(f"unknown theme {theme!r}", title="Config", markup=False)
        self.watch(self, "theme", self._theme_chosen, init=False)
        self.call_after_refresh(self._open_engine)

    def _theme_chosen(self, theme: str) -> None:
        """Remember a theme picked with F9 or the palette for the next start."""
        self.state.save_theme(theme, self.settings.theme)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's palette commands, less those the app's own bindings already offer."""
        for command in super().get_system_commands(screen):
            if command.title not in OURS_IN_THE_PALETTE:
                yield command

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def _open_engine(self) -> None:
        """Open the engine after the first paint, then warm the embedder and vector store."""
        try:
            if self._engine_factory is not None:
                engine = self._engine_factory(self.settings)
            else:
                from ..engine.compose import open_engine

                engine = open_engine(self.settings, clock=self.clock)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
            self.call_from_thread(
                self.notify,
                error_message(exc),
                title="Cannot open the journal",
                severity="error",
                timeout=30,
                markup=False,
            )
            return
        self.call_from_thread(self._engine_opened, engine)
        try:
            engine.prepare_interactive()
            engine.vectors()
            self._serve_others(engine)
            self.call_from_thread(self.data_changed)  # the status line: vectors now open
        except Exception as exc:  # noqa: BLE001 - search falls back to keywords
            self.call_from_thread(
                self.notify,
                error_message(exc),
                title="Search by meaning unavailable",
                severity="warning",
                markup=False,
            )
        if self.settle_heap:  # start-up is over, with or without search by meaning
            from ..engine.heap import settle

            settle()
        self.call_from_thread(self._run_sync)

    def _engine_opened(self, engine: Engine) -> None:
        from ..engine.sync.worker import Worker as Upkeep

        self.engine = engine
        self.upkeep = Upkeep(
            engine,
            interval=self.settings.sync_interval,
            backup_dir=self.settings.resolved_backup_dir,
            backup_every=self.settings.backup_every_hours * 3600,
            index_threshold=self.settings.index_threshold,
            idle=self.user_idle,
        )
        self.data_changed()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def user_idle(self, seconds: float = 2.0) -> bool:
        """No key or click for ``seconds`` (thread-safe: one float read)."""
        return time.monotonic() - self._last_input >= seconds

    def _serve_others(self, engine: Engine) -> None:
        """While this app holds the stores, serve other processes on this data dir (CLI
        calls, other windows) as the resident engine, for the app's lifetime. Runs on the
        engine worker's thread; failing to serve only means they work as before."""
        if self.settings.service != "auto" or engine.vector_manager.held is None:
            return
        if getattr(self, "service", None) is not None:
            return
        from ..service.runner import Service

        try:
            service = Service(engine, token=self.settings.service_token)
            service.start_in_thread()
        except Exception as exc:  # noqa: BLE001 - others keep working in-process
            import logging

            logging.getLogger(__name__).warning("not serving other processes: %s", exc)
            return
        self.service = service

    def on_unmount(self) -> None:
        service = getattr(self, "service", None)
        if service is not None:
            with contextlib.suppress(Exception):
                service.stop()
        if self.upkeep is not None:
            self.upkeep.indexer.cancel("the app closed")
        if self.engine is not None:
            with contextlib.suppress(Exception):
                self.engine.close()

    # ------------------------------------------------------------------ background sync

    def _run_sync(self) -> None:
        """One run of the background loop; the next is armed only when this one has ended."""

        def job(engine: Engine) -> JournalState:
            return journal_state(engine, self.upkeep, self._last_state)

        engine_call(self, job, self._synced, group="sync", failed=self._sync_failed)

    def _sync_failed(self, message: str) -> None:
        if message != self._last_error:
            self.notify(message, title="Background sync", severity="error", markup=False)
        self._last_error = message

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "sync" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self.set_timer(self._next_tick(), self._run_sync)

    def _next_tick(self) -> float:
        """Seconds to the next upkeep tick: ``sync_interval`` while anything happens, doubling
        while the journal and the user are idle, up to two seconds (so a change made
        elsewhere still shows within two seconds, and an idle app wakes rarely)."""
        run = self.upkeep.last_run if self.upkeep is not None else None
        if run is None or not run.idle or not self.user_idle():
            self._idle_ticks = 0
        else:
            self._idle_ticks = min(getattr(self, "_idle_ticks", 0) + 1, 8)
        interval: float = self.settings.sync_interval * (2**self._idle_ticks)
        return min(interval, max(self.settings.sync_interval, IDLE_TICK_MAX_S))

    def _synced(self, state: JournalState) -> None:
        self._last_state = state
        engine = self.engine
        if (
            getattr(self, "service", None) is None
            and engine is not None
            and engine.vector_manager.held is not None
            and self.settings.service == "auto"
        ):
            # This app holds the store now (another holder went away): serve the others.
            self.run_worker(
                lambda: self._serve_others(engine), thread=True, group="serve", exclusive=True
            )
        self.memory_count = state.count
        self.pending_count = state.pending
        self.vector_state = state.vector_state
        if state.sync_error and state.sync_error != self._last_error:
            self.notify(state.sync_error, title="Vector sync", severity="warning", markup=False)
        self._last_error = state.sync_error
        if state.notice:
            self.notify(state.notice, title="Search index", markup=False)
        if self._signature is not None and state.signature != self._signature:
            self.data_version += 1
            self._refresh_tags()
        self._signature = state.signature

    def data_changed(self, follow: Memory | None = None) -> None:
        """Tell every screen to reload, and refresh counts and tags now; ``follow`` is a memory
        just saved, which the screens then highlight."""
        if follow is not None:
            self.followed = follow
            self.follow_serial += 1
        self.data_version += 1
        self._refresh_tags()

        def job(engine: Engine) -> JournalState:
            return journal_state(engine)

        engine_call(self, job, self._counted, group="count")

    def _counted(self, state: JournalState) -> None:
        self._last_state = state
        self.memory_count = state.count
        self.pending_count = state.pending
        self.vector_state = state.vector_state
        self._signature = state.signature

    def _refresh_tags(self) -> None:
        def job(engine: Engine) -> list[str]:
            return [tag for tag, _ in engine.tags()]

        engine_call(self, job, self._tags_loaded, group="tags")

    def _tags_loaded(self, tags: list[str]) -> None:
        self.known_tags = tags

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if isinstance(self.screen, ModalScreen) and action in ("capture", "mode", "help"):
            return False
        current = action == "mode" and bool(parameters) and parameters[0] == self.current_mode
        return not current

    async def action_mode(self, mode: str) -> None:
        """Switch to the search, timeline or graph screen."""
        await self.switch_mode(mode)

    def action_capture(self) -> None:
        """Capture a new memory (offering back a draft left unsaved, if there is one)."""
        self.capture_memory()

    @work(exclusive=True, group="edit")
    async def capture_memory(self) -> None:
        """The new-memory form, after asking whether to continue an unsaved draft."""
        draft = self.drafts.load()
        memory: Memory | None = None
        if draft is not None:
            question = Text(
                f"Continue the memory you were writing {draft_age(draft, self.clock())}?\n\n"
            )
            question.append(_draft_label(draft), style="italic")
            question.append("\n\nStarting afresh drops the draft.", style="dim")
            ask = ConfirmScreen(
                "Unsaved draft", question, yes="Continue", no="Start afresh", safe_answer=True
            )
            if await self.push_screen_wait(ask):
                memory = await self._draft_memory(draft)
            else:
                self.drafts.clear()
                draft = None
        await self._edit(memory, draft)

    async def _draft_memory(self, draft: FormDraft) -> Memory | None:
        """The memory a restored draft was editing (None for a new one, or if it is gone)."""
        engine = self.engine
        if draft.memory_id is None or engine is None:
            return None
        try:
            return await asyncio.to_thread(engine.get, draft.memory_id)
        except Exception:  # noqa: BLE001 - deleted meanwhile: restore as a new memory
            return None

    def read_memory(self, memory: Memory) -> None:
        """Open the full-screen reader on ``memory``."""
        self.push_screen(ReaderScreen(memory))

    def action_help(self) -> None:
        """Show the keys of the current screen."""
        screen = self.screen
        actions = screen_actions(screen, self.user_keymap)
        display = {key: self.get_key_display(Binding(key, "")) for a in actions for key in a.keys}
        title = f"Keys: {MODE_TITLES.get(self.current_mode, 'Ephemera')}"
        self.push_screen(HelpScreen(title, actions, display))

    def show_in_graph(self, memory_id: int) -> None:
        """Open the association graph centred on ``memory_id``."""

        async def go() -> None:
            await self.switch_mode("graph")
            graph = self.screen
            if isinstance(graph, GraphScreen):
                graph.show(memory_id)

        self.call_later(go)

    @work(exclusive=True, group="edit")
    async def edit_memory(self, memory: Memory | None) -> None:
        """Open the capture form (``memory`` None) or the edit form; saves through the engine."""
        await self._edit(memory)

    async def _edit(self, memory: Memory | None, draft: FormDraft | None = None) -> None:
        form = CaptureScreen(memory, lambda: self.known_tags, draft=draft, drafts=self.drafts)
        saved = await self.push_screen_wait(form)
        if saved is not None:
            verb = "Updated" if memory else "Saved"
            self.notify(memory_label(saved, 60), title=verb, markup=False)
            self.data_changed(follow=saved)

    @work(exclusive=True, group="delete")
    async def delete_memory(self, memory: Memory, confirmed: bool = False) -> None:
        """Delete a memory through the engine, after asking unless already confirmed."""
        if not confirmed:
            question = Text("Delete this memory for good?\n\n")
            question.append(memory_label(memory, 200), style="italic")
            if not await self.push_screen_wait(ConfirmScreen("Delete", question)):
                return

        def job(engine: Engine) -> Memory:
            return engine.delete(memory.id)

        engine_call(self, job, self._deleted, group="delete-call", title="Cannot delete")

    def _deleted(self, memory: Memory) -> None:
        self.notify(memory_label(memory, 60), title="Deleted", markup=False)
        self.data_changed()


def _draft_label(draft: FormDraft) -> str:
    flat = " ".join(draft.content.split()) or " ".join(draft.notes.split()) or draft.tags
    return flat if len(flat) <= 200 else flat[:199] + "…"


def run_app(settings: Settings) -> None:
    """Run the app until the user quits (what ``ephemera`` with no subcommand does)."""
    EphemeraApp(settings, settle_heap=True).run()

"""Association graph: links both ways, suggestions, follow, back, link, unlink, accept."""

from __future__ import annotations

from pilot_helpers import open_engine, ready, settle

from ephemera_tui.app.screens.graph import GraphScreen
from ephemera_tui.app.screens.picker import PickerScreen


async def open_graph(pilot, memory_id: int) -> GraphScreen:
    await ready(pilot)
    pilot.app.show_in_graph(memory_id)
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, GraphScreen)
    return screen


def kinds(screen: GraphScreen) -> dict[int, str]:
    assert screen.data is not None
    return {n.memory.id: n.kind for n in screen.data.neighbours}


async def test_links_both_ways_and_suggestions(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_graph(pilot, seeded[0])
        found = kinds(screen)
        assert found[seeded[1]] == "out"
        assert found[seeded[8]] == "in"
        suggestions = [i for i, k in found.items() if k == "similar"]
        assert suggestions and seeded[0] not in suggestions
        assert len(suggestions) <= 5


async def test_follow_and_back(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_graph(pilot, seeded[0])
        assert screen.selected is not None and screen.selected.memory.id == seeded[1]
        await pilot.press("enter")
        await settle(pilot)
        assert screen.current_memory is not None
        assert screen.current_memory.id == seeded[1]
        assert kinds(screen)[seeded[0]] == "in"
        await pilot.press("backspace")
        await settle(pilot)
        assert screen.current_memory is not None
        assert screen.current_memory.id == seeded[0]
        assert screen.path == [seeded[0]]


async def test_accept_suggestion_and_unlink(make_app, seeded, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_graph(pilot, seeded[3])
        assert screen.data is not None
        index = next(i for i, n in enumerate(screen.data.neighbours) if n.kind == "similar")
        target = screen.data.neighbours[index].memory.id
        screen.neighbour_list.highlighted = index
        await pilot.press("a")
        await settle(pilot)
        assert kinds(screen)[target] == "out"
        screen.neighbour_list.highlighted = next(
            i for i, n in enumerate(screen.data.neighbours) if n.memory.id == target
        )
        await pilot.press("u")
        await settle(pilot)
        assert kinds(screen).get(target) != "out"
    engine = open_engine(settings.data_dir)
    try:
        outgoing, _ = engine.neighbours(seeded[3])
        assert target not in [m.id for m in outgoing]
    finally:
        engine.close()


async def test_unlink_incoming(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_graph(pilot, seeded[2])
        assert kinds(screen)[seeded[3]] == "in"
        assert screen.data is not None
        screen.neighbour_list.highlighted = next(
            i for i, n in enumerate(screen.data.neighbours) if n.memory.id == seeded[3]
        )
        await pilot.press("u")
        await settle(pilot)
        assert seeded[3] not in kinds(screen) or kinds(screen)[seeded[3]] == "similar"


async def test_link_through_picker(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_graph(pilot, seeded[4])
        await pilot.press("plus")
        await settle(pilot)
        assert isinstance(app.screen, PickerScreen)
        await pilot.press(*"grandma")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, GraphScreen)
        assert kinds(screen)[seeded[7]] == "out"


async def test_graph_without_selection_shows_newest(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(app.screen, GraphScreen)
        assert app.screen.current_memory is not None
        assert app.screen.current_memory.id == seeded[0]
        await pilot.press("escape")
        await settle(pilot)
        assert app.current_mode == "search"


async def test_empty_journal(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f4")
        await settle(pilot)
        assert app.screen.current_memory is None
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("j", "u", "left")
        await settle(pilot)


async def test_suggestions_close_to_the_best_only(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_graph(pilot, seeded[0])
        assert screen.data is not None
        scores = [n.score for n in screen.data.neighbours if n.kind == "similar"]
        assert scores and all(s is not None and s >= 0.8 * scores[0] for s in scores)
        assert len(scores) < 5  # the weak tail (0.25, 0.20, …) is not offered


async def test_nothing_similar_is_said(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_graph(pilot, seeded[1])  # its best match is weak
        assert screen.data is not None and not screen.data.has_suggestions
        listing = screen.neighbour_list
        texts = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]
        assert any("nothing similar" in t for t in texts)

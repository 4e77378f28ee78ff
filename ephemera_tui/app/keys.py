"""The bindings of the current screen, gathered once for help and the command palette.

Help and palette are generated from the same ``BINDINGS`` that drive the keys and the footer,
with the user's keymap applied, so they can never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding, BindingsMap
from textual.dom import DOMNode
from textual.screen import Screen

OUR_PACKAGE = __name__.rsplit(".", 1)[0]


@dataclass(frozen=True, slots=True)
class KeyAction:
    """One user command: where it runs, what it is called and which keys trigger it."""

    node: DOMNode
    action: str
    description: str
    keys: tuple[str, ...]
    group: str


def _group_name(node: DOMNode) -> str:
    if isinstance(node, App):
        return "Everywhere"
    if isinstance(node, Screen):
        return str(getattr(node, "HELP_TITLE", None) or type(node).__name__.removesuffix("Screen"))
    return getattr(node, "HELP_TITLE", None) or type(node).__name__


def _nodes(screen: Screen[object]) -> Iterator[DOMNode]:
    """The screen, its widgets that declare bindings in this package, then the app."""
    yield screen
    seen: set[type] = set()
    for widget in screen.walk_children():
        kind = type(widget)
        if kind not in seen and _own_bindings(widget):
            seen.add(kind)
            yield widget
    yield screen.app


def _own_bindings(node: DOMNode) -> list[Binding]:
    """Bindings declared by the node's class and its bases in this package (not Textual's)."""
    declared: list[Binding] = []
    for kind in reversed(type(node).__mro__):
        if not kind.__module__.startswith(OUR_PACKAGE) or "BINDINGS" not in vars(kind):
            continue
        declared.extend(binding for _key, binding in BindingsMap(vars(kind)["BINDINGS"]))
    return declared


def screen_actions(screen: Screen[object], keymap: Mapping[str, str]) -> list[KeyAction]:
    """Every command reachable on ``screen`` (its own, its widgets', the app's), keymap applied."""
    actions: dict[tuple[int, str], KeyAction] = {}
    order: list[tuple[int, str]] = []
    for node in _nodes(screen):
        for binding in _own_bindings(node):
            keys: tuple[str, ...] = (binding.key,)
            if binding.id and binding.id in keymap:
                keys = tuple(k.strip() for k in keymap[binding.id].split(",") if k.strip())
            slot = (id(node), binding.action)
            if slot in actions:
                known = actions[slot]
                merged = tuple(dict.fromkeys(known.keys + keys))
                actions[slot] = KeyAction(
                    node, known.action, known.description, merged, known.group
                )
                continue
            order.append(slot)
            actions[slot] = KeyAction(
                node,
                binding.action,
                binding.description or binding.action.replace("_", " "),
                keys,
                _group_name(node),
            )
    return [actions[slot] for slot in order]

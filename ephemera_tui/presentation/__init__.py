"""How Ephemera shows its figures, shared by the command line and the app.

Plain text only: no Textual, no Rich, and nothing from the engine beyond the records it
returns (imported for type checking). One rule per kind of figure, so a latency, a size or an
age reads the same in ``ephemera stats``, ``ephemera check``, ``ephemera report`` and on the
app's screens:

- :mod:`.numbers`: counts, plurals, milliseconds, bytes, percentages, ratios;
- :mod:`.times`: spans of time and how long ago;
- :mod:`.charts`: bars and sparklines of block characters, time buckets;
- :mod:`.svg`: the HTML report's inline SVG charts;
- :mod:`.metrics`: the metrics block of ``ephemera stats`` and the report's "System" lines;
- :mod:`.health`: the health lines of ``ephemera check``, the index build note;
- :mod:`.report`: ``ephemera report`` as text and as a self-contained HTML page.
"""

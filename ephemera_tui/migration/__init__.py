"""Moving from MeiliSearch to Ephemera: import a dump or export, dual write, compare, cut over.

Never imports Textual; the MeiliSearch client loads only when a live path needs it.

- :mod:`.readers` reads dumps (V1–V6, gzip tars) and document exports (NDJSON, JSON array,
  pages).
- :mod:`.mapping` guesses and applies the field mapping (document → Draft + kept fields).
- :mod:`.importer` writes mapped documents, keeping the original primary key.
- :mod:`.live` talks to a MeiliSearch server: dual-write queue, read routing, comparison,
  for the configured index with the mapping its import recorded.
- :mod:`.phases` records and reports which phase is active; attaches to new engines.
"""

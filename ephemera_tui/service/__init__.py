"""The resident engine: one process per data dir holds the stores and the model and serves
every other process (app windows, SSH sessions, scripts) over a local socket.

- :mod:`.server` is the Starlette application (the journal calls, the change feed, the
  OpenAI-compatible embeddings endpoint);
- :mod:`.runner` binds the socket (0600; a stale one is replaced) and runs uvicorn, in the
  foreground (``ephemera serve``) or on a thread of the app;
- :mod:`.client` is :class:`ServiceClient`, the same calls as the in-process engine;
- :mod:`.wire` is the JSON form of the engine's domain objects.
"""

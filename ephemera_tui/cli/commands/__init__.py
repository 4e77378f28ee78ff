"""One module per area of ``ephemera`` subcommands, each exposing ``register(app)``."""

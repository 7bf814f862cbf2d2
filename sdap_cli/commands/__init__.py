"""One module per subcommand; each exposes ``run(cfg, ...)`` returning a small result object."""

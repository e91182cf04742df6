"""One module per verb family; each ``register`` adds its subcommands with a one-line help each."""

"""The library: SDAP's network, sampler, loss and inference, plus I/O. Imports neither typer nor rich."""

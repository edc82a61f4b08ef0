"""``celeriac demo``: the whole system working on one machine, with nothing to install."""

"""Integrations with other tools: ``celeriac.contrib.pytest``."""

"""Adapters to other ecosystems, each optional and imported on its own (never by the core)."""

"""Sandbox fakes: in-memory stand-ins for the social platforms, spoken to over HTTP."""

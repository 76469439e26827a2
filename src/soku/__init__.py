"""Soku: publish posts to social platforms through one HTTP call."""

__version__ = "0.1.0"

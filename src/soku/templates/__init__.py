"""Templates: images rendered from a named layout and its parameters, stored as media
(docs/templates.md)."""

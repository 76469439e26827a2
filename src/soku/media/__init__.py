"""Media: fetching by URL (safely), content-addressed storage, probing, public serving."""

"""Pure rules of a mirror run: names, plans, changes, shards; no network."""

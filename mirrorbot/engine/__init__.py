"""Talks to registries; knows nothing of config files, git or GitHub."""

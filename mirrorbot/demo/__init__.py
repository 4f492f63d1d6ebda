"""Throwaway local registries and a sample corpus, for the demo, the tests and the bench."""

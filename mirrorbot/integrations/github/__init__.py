"""GitHub issue forms, requests, dispatch, step summary and outputs."""

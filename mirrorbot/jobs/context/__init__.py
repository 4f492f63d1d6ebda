"""The wiring that runs jobs: context (config, state repository, pool), runs, publishing.

Not a job itself: it assembles what a job needs and records what it did, one
module per concern. Nothing is re-exported here, so that a command loads only
the wiring it runs (a plain sync never imports the image-syncer or verify wiring).
"""

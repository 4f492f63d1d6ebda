"""``mirrorbot sync``: one job, in stages (see :mod:`mirrorbot.jobs.sync.run`).

``SyncReport`` lives in :mod:`mirrorbot.jobs.outcome` (rules reports with it
too); it is re-exported here for the commands that render a sync's report.
"""

from mirrorbot.jobs.outcome import SyncReport
from mirrorbot.jobs.sync.base import SyncOptions
from mirrorbot.jobs.sync.run import Sync, stop_on_signals

__all__ = ["Sync", "SyncOptions", "SyncReport", "stop_on_signals"]

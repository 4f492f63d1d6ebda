"""The wiring that runs jobs: context (config, state repository, pool), runs, publishing.

Not a job itself: it assembles what a job needs and records what it did. One
module per concern; this package re-exports what the commands call.
"""

from mirrorbot.jobs.context.imagesyncer import (
    RulesContext,
    open_rules_context,
    run_rules_sync,
    run_rules_verify,
)
from mirrorbot.jobs.context.publishing import (
    PublishOutcome,
    commit_message,
    confirm_in_mirror,
    publish_changes,
    run_publish,
)
from mirrorbot.jobs.context.runs import (
    SyncOutcome,
    VerifyOutcome,
    repair_after_sync,
    run_sync,
    run_verify,
    shard_matrix,
)
from mirrorbot.jobs.context.wiring import (
    JobContext,
    clone_root,
    iso_utc,
    open_context,
    open_state,
    run_async,
    sync_hosts,
    verify_hosts,
)

__all__ = [
    "JobContext",
    "PublishOutcome",
    "RulesContext",
    "SyncOutcome",
    "VerifyOutcome",
    "clone_root",
    "commit_message",
    "confirm_in_mirror",
    "iso_utc",
    "open_context",
    "open_rules_context",
    "open_state",
    "publish_changes",
    "repair_after_sync",
    "run_async",
    "run_publish",
    "run_rules_sync",
    "run_rules_verify",
    "run_sync",
    "run_verify",
    "shard_matrix",
    "sync_hosts",
    "verify_hosts",
]

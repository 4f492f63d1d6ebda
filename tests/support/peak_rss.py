"""Run a command and report its peak RSS, measured from a small parent.

``wait4``'s ``ru_maxrss`` folds in the memory of the process that forked the
child (Linux keeps the high-water mark of the address space replaced by
``exec``). Forked from pytest, a child "peaks" at pytest's own size, whatever
it does. Forked from this small interpreter instead, the figure is the
command's own.

    python -m tests.support.peak_rss OUTFILE COMMAND...

writes the peak RSS in bytes to OUTFILE and exits with the command's code.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    out, command = argv[0], argv[1:]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - replaced by exec
        try:
            os.execvp(command[0], command)  # noqa: S606 - the test's own command, no shell
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w", encoding="ascii") as sink:
        sink.write(str(usage.ru_maxrss * 1024))  # KiB on Linux
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

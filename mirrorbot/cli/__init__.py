"""The ``mirrorbot`` command line. Thin: parse, call, render.

One module per area (``copy``, ``sync``/``publish``, ``rules``, ``inspect``: plan,
verify, find; ``notify``, ``request``, ``demo``); the typer app and global options
in :mod:`mirrorbot.cli.app`; exit codes and the error → exit code mapping in
:mod:`mirrorbot.cli.exits` (0 success, 1 some namespaces or tags failed, 2 usage
or config error, 130 interrupted).

Start-up (``mirrorbot --version`` loads typer, this package, errors and redact): a command
imports what it runs inside its own body, under ``with loading():``
(:mod:`mirrorbot.cli.loading`), and command modules do not use ``from __future__
import annotations``, since typer would compile and evaluate every annotation
string twice while building the commands (tests/e2e/test_startup.py checks that, and what
`--version` loads).

Nothing secret is printed: every line goes through :mod:`mirrorbot.redact`,
explicitly where it is made and again at ``sys.stdout``/``sys.stderr``
(:func:`main` guards both, so a traceback or a library's message is covered too).
"""

from mirrorbot.cli.app import app, main

__all__ = ["app", "main"]

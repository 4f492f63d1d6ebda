"""The git metadata repository: open or clone, commit, push with pull-rebase-retry.

Credentials for the remote come from the environment (``MIRRORBOT_GIT_TOKEN``
or ``GITHUB_TOKEN``) and reach git only through ``GIT_CONFIG_*`` environment
variables of the git processes we start: never through the remote URL, never
written to ``.git/config``, never in a message (every error is redacted).

When a push is rejected because the remote moved, we first try ``git pull
--rebase``. If the rebase conflicts (two runs appended to the same CHANGELOG),
we drop our commit, take the remote's files, and re-apply this run's changes
on top of them: the changes are data, so nothing is lost or duplicated.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import git

from mirrorbot.redact import redact, register
from mirrorbot.registry.errors import MirrorbotError

__all__ = ["GitError", "MetadataRepo", "git_token"]

TOKEN_VARIABLES = ("MIRRORBOT_GIT_TOKEN", "GITHUB_TOKEN")
BOT_NAME = "mirrorbot"
BOT_EMAIL = "mirrorbot@users.noreply.github.com"
_URL_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)
_USERINFO_RE = re.compile(
    r"^(?P<scheme>https?://)(?P<userinfo>[^@/]+)@(?P<rest>.+)$", re.IGNORECASE
)


class GitError(MirrorbotError):
    """A git operation failed; the message is redacted."""


def git_token(environ: Mapping[str, str]) -> str | None:
    for name in TOKEN_VARIABLES:
        value = environ.get(name)
        if value:
            return value
    return None


def _split_userinfo(url: str) -> tuple[str, str | None]:
    """``https://user:token@host/x`` → (``https://host/x``, ``token``): secrets leave the URL."""
    match = _USERINFO_RE.match(url)
    if not match:
        return url, None
    _, _, secret = match.group("userinfo").partition(":")
    return match.group("scheme") + match.group("rest"), secret or match.group("userinfo")


def looks_like_url(spec: str) -> bool:
    return bool(_URL_RE.match(spec))


class MetadataRepo:
    """The working tree that holds the state folder."""

    def __init__(self, repo: git.Repo, branch: str, *, token: str | None = None) -> None:
        self.repo = repo
        self.branch = branch
        self._token = token
        self._secrets = tuple(s for s in (token, _basic(token) if token else None) if s)
        register(self._secrets)  # unprintable anywhere, not only in git's own errors
        # Set once our own clone has been checked out with -f: tracked files match HEAD.
        self._tracked_pristine = False

    # -- opening ----------------------------------------------------------

    @classmethod
    def open(
        cls,
        spec: str,
        *,
        branch: str,
        base_dir: Path,
        clone_root: Path,
        environ: Mapping[str, str] | None = None,
    ) -> MetadataRepo:
        """``"."``: the repository holding ``base_dir``; a path: that working tree (a
        bare repository is cloned); a URL: cloned (or refreshed) under ``clone_root``."""
        env = dict(os.environ if environ is None else environ)
        url_spec, url_secret = _split_userinfo(spec)
        token = url_secret or git_token(env)
        candidate = (base_dir / spec).resolve() if not looks_like_url(spec) else None
        if candidate is not None and candidate.exists() and not _is_bare(candidate):
            try:
                repo = git.Repo(candidate, search_parent_directories=True)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError):
                raise GitError(
                    f"state.repo {spec!r}: {candidate} is not inside a git repository"
                ) from None
            return cls(repo, branch, token=token)
        remote = str(candidate) if candidate is not None and candidate.exists() else url_spec
        if candidate is not None and not candidate.exists():
            raise GitError(f"state.repo {spec!r}: no such path {candidate}")
        destination = clone_root / hashlib.sha256(remote.encode()).hexdigest()[:16]
        instance = cls(_empty(destination), branch, token=token)
        instance._attach(remote)
        return instance

    def _attach(self, remote: str) -> None:
        """Bring our clone to the remote's branch, keeping only commits never pushed anywhere.

        A commit is unpushed when the remote-tracking ref (as last pushed or fetched)
        does not contain it: a ``--no-push`` run, or one killed between commit and
        push. Those are replayed onto the remote. Anything the remote has dropped
        since (a branch deleted, a repository recreated, history rewound) stays
        dropped: state never claims what the remote no longer records.
        """
        origin = next((r for r in self.repo.remotes if r.name == "origin"), None)
        if origin is None:
            self.repo.create_remote("origin", remote)
        elif origin.url != remote:
            origin.set_url(remote)
        tracking = f"refs/remotes/origin/{self.branch}"
        heads = f"refs/heads/{self.branch}"
        before = self._refs(tracking, heads)
        published, local = before.get(tracking), before.get(heads)
        self._git("fetch", "--prune", "origin")
        upstream = self._refs(tracking).get(tracking)
        unpushed = self._count_between(published, local)
        self._tracked_pristine = True  # every path below checks out with -f
        if upstream is None:
            if unpushed or local is None:
                self._git("checkout", "-f", "-B", self.branch)
            else:
                self._start_empty()
            return
        if not unpushed:
            self._git("checkout", "-f", "-B", self.branch, tracking)
            return
        self._git("checkout", "-f", self.branch)
        onto = ["--onto", tracking, published] if published else [tracking]
        try:
            self._git(*self._identity(), "rebase", *onto, self.branch)
        except GitError:
            self._git("rebase", "--abort", check=False)
            self._git("checkout", "-f", "-B", self.branch, tracking)

    def _refs(self, *names: str) -> dict[str, str]:
        """The commits of those of ``names`` (full ref names) that exist, in one call."""
        listed = self._git("for-each-ref", "--format=%(refname) %(objectname)", *names)
        return dict(line.split(" ", 1) for line in listed.splitlines() if " " in line)

    def _count_between(self, base: str | None, tip: str | None) -> int:
        """Commits on ``tip`` that ``base`` lacks (all of them when there is no base)."""
        if tip is None or tip == base:
            return 0
        since = [f"{base}..{tip}"] if base else [tip]
        return int(self._git("rev-list", "--count", *since).strip() or 0)

    def _start_empty(self) -> None:
        """An unborn branch and an empty tree: the remote has nothing, and neither do we."""
        self._git("symbolic-ref", "HEAD", f"refs/heads/{self.branch}")
        self._git("update-ref", "-d", f"refs/heads/{self.branch}")
        self._git("read-tree", "--empty")
        self._git("clean", "-fdxq")

    # -- facts --------------------------------------------------------------

    @property
    def root(self) -> Path:
        working_tree = self.repo.working_tree_dir
        if working_tree is None:
            raise GitError("the state repository has no working tree")
        return Path(working_tree)

    @property
    def has_remote(self) -> bool:
        return any(remote.name == "origin" for remote in self.repo.remotes)

    def head(self) -> str | None:
        # rev-parse rather than repo.head.commit: GitPython would keep a cat-file
        # process running for the life of the Repo object.
        sha = self._git("rev-parse", "--verify", "--quiet", "HEAD", check=False).strip()
        return sha or None

    def unpushed(self) -> int:
        """Commits on HEAD that the remote branch (as last fetched) does not have."""
        if not self.has_remote:
            return 0
        tracking = f"refs/remotes/origin/{self.branch}"
        if tracking not in [ref.path for ref in self.repo.remotes.origin.refs]:
            return self._count_between(None, self.head())
        # An unborn HEAD fails the range: nothing to push.
        counted = self._git("rev-list", "--count", f"{tracking}..HEAD", check=False)
        return int(counted.strip() or 0)

    # -- writing ------------------------------------------------------------

    def discard_changes(self, folder: Path) -> None:
        """Reset ``folder`` to HEAD: drop edits and files a killed run left uncommitted."""
        if not folder.exists():
            return
        relative = str(folder.resolve().relative_to(self.root.resolve()))
        if not self._tracked_pristine:
            # On an unborn HEAD ls-tree fails: nothing is tracked yet.
            tracked = self._git("ls-tree", "-r", "--name-only", "HEAD", "--", relative, check=False)
            if tracked.strip():
                self._git("checkout", "HEAD", "--", relative)
        self._git("clean", "-fdq", "--", relative)

    def commit(self, paths: Iterable[Path], message: str) -> str | None:
        """Commit exactly ``paths``; None when they hold no change."""
        relative = sorted({str(Path(p).resolve().relative_to(self.root.resolve())) for p in paths})
        if not relative:
            return None
        self._git("add", "--", *relative)
        staged = self._git("diff", "--cached", "--name-only", "--", *relative)
        if not staged.strip():
            return None
        self._git(*self._identity(), "commit", "--quiet", "-m", message, "--", *relative)
        return self.head()

    def push(
        self,
        reapply: Callable[[], Sequence[Path]],
        message: str,
        *,
        attempts: int = 5,
    ) -> None:
        """Push; when the remote moved, rebase (or re-apply our changes) and try again."""
        for attempt in range(1, attempts + 1):
            try:
                self._git("push", "origin", f"HEAD:refs/heads/{self.branch}")
                return
            except GitError as error:
                if attempt == attempts or not _rejected(str(error)):
                    raise
            self._git("fetch", "origin", self.branch)
            try:
                self._git(*self._identity(), "rebase", f"origin/{self.branch}")
                continue
            except GitError:
                self._git("rebase", "--abort", check=False)
            # Conflict: drop our commit, keep the remote's files, apply our changes again.
            self._git("reset", "--keep", f"origin/{self.branch}")
            self.commit(reapply(), message)

    # -- plumbing -----------------------------------------------------------

    def _identity(self) -> list[str]:
        reader = self.repo.config_reader()
        has_name = reader.has_option("user", "name")
        has_email = reader.has_option("user", "email")
        identity = []
        if not has_name and not os.environ.get("GIT_AUTHOR_NAME"):
            identity += ["-c", f"user.name={BOT_NAME}"]
        if not has_email and not os.environ.get("GIT_AUTHOR_EMAIL"):
            identity += ["-c", f"user.email={BOT_EMAIL}"]
        return identity

    def _environment(self) -> dict[str, str]:
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if self._token:
            env.update(
                {
                    "GIT_CONFIG_COUNT": "1",
                    "GIT_CONFIG_KEY_0": "http.extraheader",
                    "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {_basic(self._token)}",
                }
            )
        return env

    def _git(self, *args: str, check: bool = True) -> str:
        command: list[str] = ["git", *args]
        try:
            output: str = self.repo.git.execute(
                command, env=self._environment(), with_extended_output=False
            )
            return output
        except git.GitCommandError as exc:
            if not check:
                return ""
            detail = redact(f"{' '.join(args[:2])}: {(exc.stderr or '').strip()}", self._secrets)
            raise GitError(f"git {detail}") from None


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def _rejected(message: str) -> bool:
    return any(
        marker in message
        for marker in (
            "rejected",
            "fetch first",
            "non-fast-forward",
            "stale info",
            "cannot lock ref",
        )
    )


def _is_bare(path: Path) -> bool:
    try:
        return git.Repo(path).bare
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return False


def _empty(destination: Path) -> git.Repo:
    destination.mkdir(parents=True, exist_ok=True)
    # Our own clone: a lock left by a killed git (index, HEAD, refs, config) would
    # block every later run. Nothing else writes here, so any lock is stale.
    git_dir = destination / ".git"
    if git_dir.is_dir():
        for lock in git_dir.rglob("*.lock"):
            lock.unlink(missing_ok=True)
        try:
            return git.Repo(destination)
        except git.InvalidGitRepositoryError:
            pass  # a half-made clone: init repairs it
    return git.Repo.init(destination)

"""The git metadata repository: open or clone, then publish under a lock.

Credentials for the remote come from the environment (``MIRRORBOT_GIT_TOKEN``
or ``GITHUB_TOKEN``) and reach git only through ``GIT_CONFIG_*`` environment
variables of the git processes we start: never through the remote URL, never
written to ``.git/config``, never in a message (every error is redacted).

State is only ever committed on top of the remote state branch. A URL (or a
bare repository) is cloned under the cache; ``"."`` or a path to a working
tree gets a private linked worktree inside its git directory, detached at the
remote state branch, so a run from a feature branch never publishes that
branch's commits and never touches the user's checkout. A repository without
an ``origin`` has no remote state branch: it is committed to in place, and
nothing is pushed.

Every process working in one clone (or worktree) holds an exclusive file lock
(``flock``) for the whole clone→commit→push, so two runs on one host take
turns instead of failing on ``index.lock``. Publishing is "fetch, reset to the
remote tip, apply what still differs, commit, push"; a rejected push starts
again from the fetch, so a CHANGELOG section is never computed against an old
base (see :meth:`MetadataRepo.publish`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import git

from mirrorbot.errors import GitError
from mirrorbot.redact import redact, register
from mirrorbot.state.lock import RepoLock

__all__ = ["MetadataRepo", "git_token"]

TOKEN_VARIABLES = ("MIRRORBOT_GIT_TOKEN", "GITHUB_TOKEN")
BOT_NAME = "mirrorbot"
BOT_EMAIL = "mirrorbot@users.noreply.github.com"
# Inside the git directory, where neither `git clean` nor the stale-lock sweep
# (which removes ``*.lock``) reaches it: deleting a held lock file would let a
# second process lock a new inode and run alongside the first.
LOCK_NAME = "mirrorbot.flock"
_URL_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)
_USERINFO_RE = re.compile(
    r"^(?P<scheme>https?://)(?P<userinfo>[^@/]+)@(?P<rest>.+)$", re.IGNORECASE
)


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

    def __init__(
        self,
        repo: git.Repo,
        branch: str,
        *,
        token: str | None = None,
        lock: RepoLock | None = None,
        detached: bool = False,
    ) -> None:
        self.repo = repo
        self.branch = branch
        self._token = token
        self._secrets = tuple(s for s in (token, _basic(token) if token else None) if s)
        register(self._secrets)  # unprintable anywhere, not only in git's own errors
        # Our own clone or worktree: every entry to it goes through this lock.
        self._lock = lock or RepoLock(Path(repo.git_dir) / LOCK_NAME)
        # A private worktree of the user's repository: HEAD is detached (the
        # state branch is usually checked out in the user's own working tree).
        self._detached = detached
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
                user = git.Repo(candidate, search_parent_directories=True)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError):
                raise GitError(
                    f"state.repo {spec!r}: {candidate} is not inside a git repository"
                ) from None
            return cls._worktree_of(user, branch, token)
        remote = str(candidate) if candidate is not None and candidate.exists() else url_spec
        if candidate is not None and not candidate.exists():
            raise GitError(f"state.repo {spec!r}: no such path {candidate}")
        destination = clone_root / hashlib.sha256(remote.encode()).hexdigest()[:16]
        lock = RepoLock(destination / ".git" / LOCK_NAME)
        with lock.held():
            instance = cls(_empty(destination), branch, token=token, lock=lock)
            instance._attach(remote)
        return instance

    @classmethod
    def _worktree_of(cls, user: git.Repo, branch: str, token: str | None) -> MetadataRepo:
        """The user's repository: a private worktree at the remote state branch.

        Without an ``origin`` there is no remote state branch: the checkout
        itself is used, as before, and nothing is ever pushed from it.
        """
        if not any(remote.name == "origin" for remote in user.remotes):
            return cls(user, branch, token=token, lock=RepoLock(_common_dir(user) / LOCK_NAME))
        home = _common_dir(user) / "mirrorbot"
        digest = hashlib.sha256(branch.encode()).hexdigest()[:12]
        path = home / f"state-{digest}"
        lock = RepoLock(home / LOCK_NAME)
        with lock.held():
            owner = cls(user, branch, token=token, lock=lock)
            fresh = not _is_worktree(path)
            if fresh:
                shutil.rmtree(path, ignore_errors=True)
                owner._git("worktree", "prune")
                start = owner._refs(f"refs/remotes/origin/{branch}") or {"": "HEAD"}
                # --no-checkout: its files come from the remote branch below, never from HEAD.
                owner._git(
                    "worktree", "add", "--detach", "--no-checkout", str(path), *start.values()
                )
            else:
                _clear_stale_locks(Path(git.Repo(path).git_dir))
            instance = cls(git.Repo(path), branch, token=token, lock=lock, detached=True)
            instance._refresh(fresh=fresh)
        return instance

    def _attach(self, remote: str) -> None:
        """Point our clone's origin at ``remote`` and bring it to the remote's branch."""
        origin = next((r for r in self.repo.remotes if r.name == "origin"), None)
        if origin is None:
            self.repo.create_remote("origin", remote)
        elif origin.url != remote:
            origin.set_url(remote)
        self._refresh()

    def _refresh(self, *, fresh: bool = False) -> None:
        """Fetch, then stand on the remote tip, keeping only commits never pushed anywhere.

        A commit is unpushed when the remote-tracking ref (as last pushed or fetched)
        does not contain it: a ``--no-push`` run, or one killed between commit and
        push. Those are replayed onto the remote. Anything the remote has dropped
        since (a branch deleted, a repository recreated, history rewound) stays
        dropped: state never claims what the remote no longer records.
        """
        tracking = f"refs/remotes/origin/{self.branch}"
        published = self._refs(tracking).get(tracking)
        local = None if fresh else self.head()
        self._fetch(tracking)
        upstream = self._refs(tracking).get(tracking)
        unpushed = self._count_between(published, local)
        self._tracked_pristine = True  # every path below checks out with -f (or resets)
        if upstream is None:
            if unpushed:
                self._git("reset", "--quiet", "--hard")
            elif local is None and not self._detached:
                self._git("checkout", "-f", "-B", self.branch)
            else:
                self._start_empty()
            return
        if not unpushed:
            self._stand_on(tracking)
            return
        self._git("reset", "--quiet", "--hard")
        onto = ["--onto", tracking, published] if published else [tracking]
        try:
            self._git(*self._identity(), "rebase", *onto)
        except GitError:
            self._git("rebase", "--abort", check=False)
            self._stand_on(tracking)

    def _fetch(self, tracking: str) -> None:
        """Fetch the state branch alone (a checkout may be shallow or hold many branches)."""
        try:
            self._git("fetch", "--quiet", "origin", f"+refs/heads/{self.branch}:{tracking}")
        except GitError as error:
            if "couldn't find remote ref" not in str(error):
                raise
            self._git("update-ref", "-d", tracking)  # the branch is gone: so is what it held

    def _stand_on(self, commit: str) -> None:
        """Check ``commit`` out: as our branch in a clone, detached in a worktree."""
        if self._detached:
            self._git("checkout", "--quiet", "-f", "--detach", commit)
            self._drop_unborn_branch()
        else:
            self._git("checkout", "--quiet", "-f", "-B", self.branch, commit)

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

    def _unborn_branch(self) -> str:
        """Where a worktree's HEAD points while the remote branch does not exist yet:
        a detached HEAD cannot be unborn. Removed again once there is a commit."""
        if not self._detached:
            return f"refs/heads/{self.branch}"
        return f"refs/heads/mirrorbot-unborn/{self.branch}"

    def _drop_unborn_branch(self) -> None:
        if self._detached:
            self._git("update-ref", "-d", self._unborn_branch(), check=False)

    def _start_empty(self) -> None:
        """An unborn branch and an empty tree: the remote has nothing, and neither do we."""
        unborn = self._unborn_branch()
        self._git("symbolic-ref", "HEAD", unborn)
        self._git("update-ref", "-d", unborn)
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
        if not self._refs(tracking):
            return self._count_between(None, self.head())
        # An unborn HEAD fails the range: nothing to push.
        counted = self._git("rev-list", "--count", f"{tracking}..HEAD", check=False)
        return int(counted.strip() or 0)

    # -- writing ------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the clone's lock: no other mirrorbot process touches it meanwhile."""
        with self._lock.held():
            yield

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
        if self._detached and self._git("symbolic-ref", "-q", "HEAD", check=False).strip():
            # The first commit of a new state branch: detach from the stand-in branch.
            self._git("checkout", "--quiet", "--detach")
            self._drop_unborn_branch()
        return self.head()

    def publish(
        self,
        build: Callable[[], tuple[Sequence[Path], str]],
        *,
        push: bool,
        attempts: int = 5,
    ) -> tuple[str | None, bool]:
        """Fetch, stand on the remote tip, ``build``, commit, push; on a rejected push, again.

        ``build`` writes this run's changes into the working tree *as they
        differ from what is there now* and returns the files and the commit
        message (no files: nothing left to record). Because it runs again after
        every fetch, a CHANGELOG section always extends the remote's own
        CHANGELOG, and what another run recorded meanwhile is not recorded twice.
        Without ``push`` (or a remote) the changes are committed on the local
        branch as it is. Returns (HEAD when something was committed or pushed,
        whether it was pushed).
        """
        with self.locked():
            remote = push and self.has_remote
            for attempt in range(1, attempts + 1):
                if remote:
                    self._refresh()
                before = self.head()
                paths, message = build()
                commit = self.commit(paths, message) if paths else None
                if not remote or not self.unpushed():
                    return commit, False
                try:
                    self._git("push", "origin", f"HEAD:refs/heads/{self.branch}")
                except GitError as error:
                    if attempt == attempts or not _rejected(str(error)):
                        raise
                    # The remote moved: forget this attempt's commit and start over from it.
                    self._reset_to(before)
                    continue
                # What we pushed is published, whatever the remote's fetch refspec.
                self._git("update-ref", f"refs/remotes/origin/{self.branch}", "HEAD")
                return self.head(), True
        raise AssertionError("unreachable")  # pragma: no cover

    def _reset_to(self, commit: str | None) -> None:
        if commit is None:
            self._start_empty()
        else:
            self._git("reset", "--quiet", "--hard", commit)

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


def _common_dir(user: git.Repo) -> Path:
    """The git directory shared by all of a repository's worktrees."""
    return Path(user.common_dir).resolve()


def _is_worktree(path: Path) -> bool:
    try:
        return git.Repo(path).working_tree_dir is not None and (path / ".git").is_file()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return False


def _clear_stale_locks(git_dir: Path) -> None:
    """Our own clone or worktree: a lock left by a killed git (index, HEAD, refs,
    config) would block every later run. We hold the flock, so any lock is stale."""
    for lock in git_dir.rglob("*.lock"):
        lock.unlink(missing_ok=True)


def _empty(destination: Path) -> git.Repo:
    destination.mkdir(parents=True, exist_ok=True)
    git_dir = destination / ".git"
    if (git_dir / "HEAD").is_file():
        _clear_stale_locks(git_dir)
        try:
            return git.Repo(destination)
        except git.InvalidGitRepositoryError:
            pass  # a half-made clone: init repairs it
    return git.Repo.init(destination)

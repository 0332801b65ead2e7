"""What a launch records about the code and the machine that ran it (docs/store.md,
"Provenance"): the versions of insitu, Python and the libraries that compute or store the
results, the git commit of the insitu checkout it ran from (and whether its tracked files
had changes), the host and the platform.

Gathered here, in the application, and handed to the store room as plain JSON values (the
store imports only pyarrow and the standard library). Nothing here imports numpy, Ray or
pandas: a library's version is the ``__version__`` of the module this process has
imported, else the version of the installed distribution.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

# The libraries whose versions a launch records: what computes the physics (numpy, scipy),
# runs the trials (ray) and stores and reads the results (pyarrow, pandas).
LIBRARIES = ("numpy", "scipy", "ray", "pyarrow", "pandas")
GIT_TIMEOUT_S = 5.0


def versions() -> dict[str, str | None]:
    """``{"insitu", "python", "numpy", "scipy", "ray", "pyarrow", "pandas"}``: version
    strings, None for a library that is not installed."""
    from insitu import __version__

    found: dict[str, str | None] = {"insitu": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        found[name] = library_version(name)
    return found


def library_version(name: str) -> str | None:
    """The version of the module ``name`` as imported here, else as installed, else None."""
    module = sys.modules.get(name)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def source_root() -> Path:
    """The folder above the ``insitu`` package: the checkout's root when insitu runs from
    a source tree (an editable install), the ``site-packages`` folder of an installed wheel."""
    import insitu

    return Path(insitu.__file__).resolve().parent.parent


def git_state(root: Path) -> dict | None:
    """``{"commit": 40 hex digits, "dirty": bool}`` when ``root`` is the top of a git
    work tree, else None (an installed wheel, no git, a folder inside another repository).

    ``dirty``: a tracked file differs from the commit (staged or not); untracked files do
    not count, as for ``git describe --dirty``.
    """
    if not (root / ".git").exists():  # a directory, or a file in a linked work tree
        return None
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return None
    commit = _git(root, "rev-parse", "--verify", "HEAD")
    if commit is None:
        return None  # a repository without commits
    changes = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if changes is None else bool(changes)}


def _git(root: Path, *args: str) -> str | None:
    """The stripped output of ``git -C root ARGS``, None when it fails or is missing."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # status writes no index lock
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def launch_provenance() -> dict:
    """What a launch's opening record carries about its code and machine: ``versions``,
    ``git`` (None outside a checkout), ``host`` and ``platform``."""
    return {"versions": versions(), "git": git_state(source_root()),
            "host": socket.gethostname(), "platform": platform.platform()}

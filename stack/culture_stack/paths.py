"""Where the stack keeps its state (data, logs, pids) and its caches (downloads, builds).

Both live outside the repository so a fresh clone reuses what an earlier run fetched or built.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Data, logs, pid files and generated configs of the running stack."""
    # as root, /root is closed to the unprivileged users some servers must run as (PostgreSQL)
    if os.geteuid() == 0:
        default = Path("/var/lib/culture-platform")
    else:
        default = Path.home() / ".local" / "state" / "culture-platform"
    return Path(os.environ.get("CULTURE_STATE_DIR", default)).expanduser()


def cache_dir() -> Path:
    """Downloads and builds (Maven jars, Go binaries, npm tools); safe to delete, slow to rebuild."""
    default = Path.home() / ".cache" / "culture-platform"
    return Path(os.environ.get("CULTURE_CACHE_DIR", default)).expanduser()


def repo_root() -> Path:
    """The checkout this package was installed from (editable install)."""
    return Path(__file__).resolve().parents[2]

"""npm packages for the browser tests: `npm ci` from tests/support/npm/package-lock.json into a cache, once.

The browser tests load third-party JavaScript as its users would: OpenAI's `@openai/agents-realtime` ships a
browser ESM bundle (dist/bundle/), which the test serves as static files; nothing is built, nothing is committed.
The install is keyed on the lock file's hash (every package version pinned, every tarball's integrity checked by
`npm ci`) and kept under ~/.cache/voxloop-tests/npm/<hash> (VOXLOOP_TEST_NPM_CACHE overrides), so it runs once per
machine and lock. `make test` runs it before pytest (`python -m tests.support.npm_packages`); a test calling
`installed()` installs on demand too. Without npm, or with the registry unreachable, `installed()` says why.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "npm"
AGENTS_REALTIME = "@openai/agents-realtime"


def cache_dir() -> Path:
    lock = (SOURCE / "package-lock.json").read_bytes() + (SOURCE / "package.json").read_bytes()
    root = os.environ.get("VOXLOOP_TEST_NPM_CACHE") or Path.home() / ".cache" / "voxloop-tests" / "npm"
    return Path(root) / hashlib.sha256(lock).hexdigest()[:16]


def package_dir(name: str) -> Path:
    return cache_dir() / "node_modules" / name


def installed(name: str = AGENTS_REALTIME) -> tuple[Path | None, str | None]:
    """(the package's directory, None), installing the locked set first if needed; or (None, why it is missing)."""
    target = package_dir(name)
    if (target / "package.json").is_file():
        return target, None
    npm = shutil.which("npm")
    if npm is None:
        return None, (f"NPM PACKAGE TESTS NOT RUN: `npm` is not installed, so {name} cannot be fetched. Install "
                      "Debian's 'npm' (`make test` does, as root), then rerun.")
    root = cache_dir()
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file in ("package.json", "package-lock.json"):
        shutil.copy(SOURCE / file, staging / file)
    try:
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=staging, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"NPM PACKAGE TESTS NOT RUN: `npm ci` for {name} failed: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-800:]
        return None, f"NPM PACKAGE TESTS NOT RUN: `npm ci` for {name} failed (exit {done.returncode}):\n{tail}"
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return package_dir(name), None


if __name__ == "__main__":
    where, why = installed()
    print(why or f"{AGENTS_REALTIME} ready in {where}", file=sys.stderr if why else sys.stdout)

"""Fixtures shared by the site checks: one `mkdocs build --strict` per test session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# tests/ is not a package; make the shared helpers importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_support import REPO, SiteBuild  # noqa: E402

BUILD_TIMEOUT_SECONDS = 1800


@pytest.fixture(scope="session")
def site_build(tmp_path_factory: pytest.TempPathFactory) -> SiteBuild:
    """Build the site once per session, the way CI and the Pages workflow do.

    The build executes the tutorial notebook in both languages, so it is the slowest step:
    every test that needs built HTML shares this one build.
    """
    site_dir = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)]
    start = time.monotonic()
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS
    )
    return SiteBuild(site_dir, result.returncode, result.stdout + result.stderr, time.monotonic() - start)


@pytest.fixture(scope="session")
def built_site(site_build: SiteBuild) -> Path:
    """The built site's directory; fails (rather than skips) the caller if the build failed."""
    if site_build.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed (exit {site_build.returncode}):\n{site_build.log[-4000:]}")
    return site_build.site_dir

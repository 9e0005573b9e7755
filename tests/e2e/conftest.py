"""End-to-end fixtures: the real image, built from the repo's Dockerfile on a real engine.

./test.sh makes sure an engine answers and debian:bookworm-slim exists
(scripts/docker-base-image.sh). Under CI=true a missing engine is a failure.
"""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# One tag per checkout: several worktrees may share one engine, and a shared tag would let
# one checkout's build replace the image another one is testing.
IMAGE = os.environ.get("LIFEBOAT_IMAGE",
                       "lifeboat:e2e-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:8])
IN_CI = os.environ.get("CI", "").lower() == "true"


def docker(*args, check=True, timeout=600, **kw):
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert p.returncode == 0, f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
    return p


def need_engine():
    """Skip without an engine, except under CI=true, where that is a failure."""
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        msg = "no Docker engine answers (./test.sh starts one)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def image():
    need_engine()
    docker("build", "-q", "-t", IMAGE, str(REPO), timeout=1800)
    return IMAGE

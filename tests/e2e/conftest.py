"""End-to-end fixtures: the real image, built from the repo's Dockerfile on a real engine.

The session fixture `engine` uses the engine that answers or starts dockerd, and builds
debian:bookworm-slim (scripts/docker-base-image.sh) if it is missing, so any test file runs
alone. Under CI=true a missing engine is a failure.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import lbservers  # noqa: E402
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


@pytest.fixture(scope="session")
def engine():
    """A Docker engine that answers (started here if none does) and the base image."""
    with lbservers.running(lbservers.DockerEngine()) as e:
        yield e


def need_engine():
    """Skip without an engine, except under CI=true, where that is a failure."""
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        lbservers.unavailable("no Docker engine answers")


@pytest.fixture(scope="session")
def image(engine):
    docker("build", "-q", "-t", IMAGE, str(REPO), timeout=1800)
    return IMAGE


@pytest.fixture(scope="session")
def go_binaries():
    """The MinIO and FerretDB binaries (built once into the test cache) for service images."""
    try:
        return {"minio": lbservers.minio_bin(), "ferretdb": lbservers.ferretdb_bin()}
    except lbservers.Unavailable as e:
        lbservers.unavailable(str(e))

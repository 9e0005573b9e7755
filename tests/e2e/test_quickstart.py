"""The README's quick start, run as written: `make example` in a fresh clone with the
shipped .env.example (copied to .env by make itself), then `make example-down`."""

import os
import re
import subprocess
import uuid

from conftest import REPO


def make(clone, target, env, timeout=1800):
    return subprocess.run(["make", target], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_make_example_from_a_fresh_clone(engine, image, tmp_path):
    """The clone is of the committed HEAD, as a user (and CI) gets it. The `image` fixture
    only warms the layer cache: make builds the sidecar from the clone's Dockerfile."""
    clone = tmp_path / "lifeboat"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=300)
    assert not (clone / ".env").exists()
    project = "lbquick" + uuid.uuid4().hex[:8]
    env = dict(os.environ, COMPOSE_PROJECT_NAME=project)
    env.pop("LIFEBOAT_ENV_FILE", None)
    try:
        p = make(clone, "example", env)
        assert p.returncode == 0, f"make example failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        # The shipped .env.example, untouched, is what ran.
        assert (clone / ".env").read_bytes() == (clone / ".env.example").read_bytes()
        name = re.search(r"^BACKUP_NAME=(\S+)$", (clone / ".env").read_text(), re.M)[1]
        archives = sorted((clone / "backups" / name).glob(f"{name}-*.tar.gz.gpg"))
        assert len(archives) == 1, list((clone / "backups").rglob("*"))
        stamp = archives[0].name[len(name) + 1:-len(".tar.gz.gpg")]
        assert stamp in p.stdout, f"the listing does not show {stamp}:\n{p.stdout[-2000:]}"
        assert archives[0].stat().st_size > 1000
        down = make(clone, "example-down", env, timeout=600)
        assert down.returncode == 0, down.stderr[-2000:]
        ps = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                            capture_output=True, text=True)
        assert ps.stdout.strip() == "", "make example-down left containers running"
    finally:
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
        compose = ["docker", "compose"] if v2 else ["docker-compose"]
        subprocess.run([*compose, "-f", "docker-compose.example.yml", "down", "-v"],
                       cwd=clone, env=env, capture_output=True, timeout=600)

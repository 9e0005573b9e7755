"""The README's first command, checked without an engine: the shipped .env.example is a
configuration Lifeboat reads without a warning, and `make example` on a machine without a
Docker engine says in one line what is missing. (tests/e2e/test_quickstart.py runs
`make example` itself.)"""

import re
import shutil
import subprocess

from conftest import REPO, lifeboat_bin, need_tool

ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
COMMENTED = re.compile(r"^#\s*(BACKUP_[A-Z0-9_]+)=(.*)$")


def env_example():
    active, commented = [], []
    for line in (REPO / ".env.example").read_text().splitlines():
        m = ASSIGN.match(line)
        if m:
            active.append((m[1], m[2]))
        m = COMMENTED.match(line)
        if m:
            commented.append((m[1], m[2]))
    return active, commented


def check(env):
    p = subprocess.run([lifeboat_bin(), "check"], env={"PATH": "/usr/bin:/bin", **env},
                       capture_output=True, text=True, timeout=120)
    return p.stderr.splitlines()


def test_env_example_sets_each_variable_once():
    active, _ = env_example()
    names = [k for k, _ in active]
    assert len(active) > 5, ".env.example has no settings?"
    dups = sorted({n for n in names if names.count(n) > 1})
    assert not dups, f".env.example sets {dups} more than once (the later one wins)"


def test_env_example_gives_no_warning():
    active, _ = env_example()
    warnings = [line for line in check(dict(active)) if " warning: " in line]
    assert not warnings, warnings


def test_every_commented_example_is_a_known_variable():
    active, commented = env_example()
    assert commented, "no commented-out examples found"
    # Each one alone on top of the active settings, as a user uncomments it.
    for name, value in commented:
        lines = check({**dict(active), name: value})
        unknown = [line for line in lines if "unknown variable" in line]
        assert not unknown, f"{name}: {unknown}"


def test_make_example_without_an_engine_says_what_to_start(tmp_path):
    need_tool("make")
    for rel in ("Makefile", "scripts/require-docker.sh", "docker-compose.example.yml", ".env.example"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, tmp_path / rel)
    p = subprocess.run(["make", "example"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert p.returncode != 0
    lines = p.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "Docker engine does not answer" in lines[0] and "start it" in lines[0]
    assert not (tmp_path / ".env").exists(), "make example went on without an engine"

"""The exec API (src/docker-exec.c) against the real engine, through tests/e2e/docker-exec-probe.c.

The probe is built with the tests (build-asan first, so the stream threads also run under
ASan+UBSan); $LIFEBOAT_PROBE overrides it.
"""

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import REPO, docker, need_engine


def probe_path():
    env = os.environ.get("LIFEBOAT_PROBE")
    if env:
        return Path(env)
    for b in ("build-asan", "build"):
        p = REPO / b / "docker-exec-probe"
        if p.exists():
            return p
    pytest.fail("docker-exec-probe is not built (meson setup build -Dtests=enabled)")


def probe(*args, stdin_file=None, env=()):
    cmd = [str(probe_path())]
    if args[0] == "--find":
        cmd += list(args)
    else:
        cmd += [args[0]]
        if stdin_file:
            cmd += ["--stdin", str(stdin_file)]
        for e in env:
            cmd += ["--env", e]
        cmd += ["--", *args[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # a hang guard


@pytest.fixture(scope="module")
def box(engine):
    need_engine()
    name = f"lb-exec-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "debian:bookworm-slim", "sleep", "3600")
    yield name
    docker("rm", "-f", name, check=False)


def test_stdout_bytes_and_exit_code(box):
    p = probe(box, "sh", "-c",
              "head -c 5000000 /dev/urandom | tee /tmp/x; sha256sum /tmp/x >&2; exit 3")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["bytes"] == 5_000_000
    assert r["exit"] == 3
    # what we read equals what the command wrote, and stderr went to the tail, not stdout
    assert r["stderr"].split()[0] == r["sha256"]
    inside = docker("exec", box, "sha256sum", "/tmp/x").stdout.split()[0]
    assert inside == r["sha256"]


def test_stdin_round_trip_and_env_not_in_cmd(box, tmp_path):
    data = os.urandom(3_000_000)
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    p = probe(box, "sh", "-c", 'cat; printf "%s" "$PROBE_SECRET" >&2; exit 0',
              stdin_file=f, env=["PROBE_SECRET=s3cr3t-value"])
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["bytes"] == len(data)
    assert r["sha256"] == hashlib.sha256(data).hexdigest()
    assert r["exit"] == 0
    assert r["stderr"] == "s3cr3t-value"
    # The secret travelled in the exec's Env: the command line the engine records lacks it.
    execs = json.loads(docker("inspect", box).stdout)[0]["ExecIDs"] or []
    for x in execs:
        info = subprocess.run(["curl", "-s", "--unix-socket", "/var/run/docker.sock",
                               f"http://x/exec/{x}/json"], capture_output=True, text=True)
        if info.returncode == 0 and info.stdout:
            j = json.loads(info.stdout)
            assert "s3cr3t-value" not in json.dumps(j.get("ProcessConfig", {}))


def test_stderr_tail_is_bounded_and_failure_exit(box):
    p = probe(box, "sh", "-c", "head -c 100000 /dev/zero | tr '\\0' e >&2; echo last >&2; exit 7")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["exit"] == 7 and r["bytes"] == 0
    assert len(r["stderr"]) <= 4096 and r["stderr"].endswith("last")


def test_stdin_eof_ends_the_command(box, tmp_path):
    f = tmp_path / "empty"
    f.write_bytes(b"")
    p = probe(box, "wc", "-c", stdin_file=f)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["exit"] == 0 and r["bytes"] == 2  # "0\n"


def test_find_container_and_unknown_name(box):
    p = probe("--find", box)
    assert p.returncode == 0, p.stderr
    full = json.loads(docker("inspect", box).stdout)[0]["Id"]
    assert p.stdout.strip() == full
    p = probe("--find", "lb-no-such-container")
    assert p.returncode != 0
    assert "no Compose service or container named 'lb-no-such-container'" in p.stderr

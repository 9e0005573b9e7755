"""The image run as a non-root user (`user: UID:GID` with the Docker socket's group) in
Compose: a backup stops and restarts the application through the socket, a restore puts
the bytes back and says which owners it could not set, and the lock and state live in the
image's /var/lib/lifeboat. Checked from the host: file bytes and owners, the engine's
container state, the archive's owner."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import docker

HERE = Path(__file__).resolve().parent
UID = GID = 4242  # no passwd entry in the image: HOME is /


def sha_tree(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in files:
            p = os.path.join(d, n)
            if os.path.relpath(p, root) in ("ticks", "events"):
                continue  # the running app's own files
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def started_at(cid):
    return json.loads(docker("inspect", cid).stdout)[0]["State"]["StartedAt"]


@pytest.fixture
def stack(image):
    # Below /tmp with mode 0755 (not pytest's 0700 tmp_path): the user must reach it.
    top = tempfile.mkdtemp(prefix="lbnr", dir="/tmp")
    os.chmod(top, 0o755)
    data, backups = Path(top, "data"), Path(top, "backups")
    (data / "uploads").mkdir(parents=True)
    backups.mkdir()
    (data / "uploads" / "photo.bin").write_bytes(os.urandom(200_000))
    (data / "notes ü.txt").write_text("the user's notes\n")
    (data / "root-owned.txt").write_text("written by root, readable by all\n")
    for d, dirs, files in os.walk(top):
        for n in [d] + [os.path.join(d, x) for x in dirs + files]:
            os.lchown(n, UID, GID)
    os.chown(data / "root-owned.txt", 0, 0)
    project = f"lbe2e{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "LIFEBOAT_IMAGE": image, "LB_UID": str(UID), "LB_GID": str(GID),
           "LB_SOCKET_GID": str(os.stat("/var/run/docker.sock").st_gid),
           "LB_DATA": str(data), "LB_BACKUPS": str(backups)}

    def compose(*args, check=True):
        p = subprocess.run(["docker-compose", "-p", project, "-f", str(HERE / "nonroot.yml"),
                            *args], capture_output=True, text=True, env=env, timeout=600)
        if check:
            assert p.returncode == 0, f"docker-compose {args} failed:\n{p.stderr}"
        return p
    compose("up", "-d", "--build")
    try:
        yield compose, data, backups
    finally:
        compose("down", "-v", "-t", "2", check=False)
        shutil.rmtree(top, ignore_errors=True)


def test_backup_and_restore_as_a_non_root_user(stack):
    compose, data, backups = stack
    backup, app = (compose("ps", "-q", s).stdout.strip() for s in ("backup", "app"))
    cfg = json.loads(docker("inspect", backup).stdout)[0]
    assert cfg["Config"]["User"] == f"{UID}:{GID}"
    assert docker("exec", backup, "id", "-u").stdout.strip() == str(UID)
    want = sha_tree(data)

    before = started_at(app)
    b = docker("exec", backup, "lifeboat", "backup", check=False)
    assert b.returncode == 0, b.stderr
    ts = b.stdout.strip()
    archive = backups / "e2e" / f"e2e-{ts}.tar.gz.gpg"
    st = archive.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (UID, GID, 0o600)
    # Stopped and started again through the socket (the socket's group, not root).
    assert started_at(app) != before
    assert "stopping container" in b.stderr

    (data / "uploads" / "photo.bin").write_bytes(b"wrecked")
    (data / "notes ü.txt").unlink()
    (data / "new.txt").write_text("made after the backup\n")
    os.chown(data / "new.txt", UID, GID)
    before = started_at(app)
    r = docker("exec", backup, "lifeboat", "restore", ts, "--yes", check=False)
    assert r.returncode == 0, r.stderr
    assert sha_tree(data) == want
    assert started_at(app) != before
    # root-owned.txt comes back owned by the user, and the restore says so.
    owners = {n: (os.lstat(data / n).st_uid, os.lstat(data / n).st_gid)
              for n in ("root-owned.txt", "notes ü.txt", "uploads/photo.bin")}
    assert set(owners.values()) == {(UID, GID)}, owners
    lost = [l for l in r.stderr.splitlines() if "cannot set owners" in l]
    assert len(lost) == 1 and "1 entry recorded with other owners" in lost[0] \
        and "'dirs/app-data/root-owned.txt', 0:0" in lost[0], r.stderr

    # The lock and state files: in /var/lib/lifeboat, the user's.
    ls = docker("exec", backup, "sh", "-c", "cd /var/lib/lifeboat && stat -c '%n %u:%g' *").stdout
    files = dict(l.split() for l in ls.splitlines())
    assert {"e2e.lock", "e2e.state.json"} <= set(files), ls
    assert set(files.values()) == {f"{UID}:{GID}"}, ls

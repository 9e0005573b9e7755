"""A restore that does not run as root (the image's `user: UID:GID`) cannot set owners:
the data comes back owned by the restoring user, and one warning says so (how many
entries, the first one, its recorded owner). As root, owners are kept and nothing is said.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import lifeboat_bin, need_root, need_tool

UID = GID = 4242  # no such user on the machine: the container case


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


@pytest.fixture
def work():
    need_root("dropping to another uid")
    need_tool("gpg")
    # Not below pytest's tmp_path (mode 0700, root's): the other uid must reach it.
    d = tempfile.mkdtemp(prefix="lbnr", dir="/tmp")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(work, args, as_user):
    env = {"PATH": os.environ["PATH"], "HOME": work, "TZ": "UTC", "BACKUP_NAME": "nr",
           "BACKUP_LOCAL_PATH": f"{work}/store", "BACKUP_ENCRYPTION_KEY": "nr passphrase",
           "BACKUP_DIRS": f"{work}/data:data", "BACKUP_STATE_DIR": f"{work}/state",
           "MONGOC_DISABLE_SHM": "1"}

    def drop():
        os.setgroups([])
        os.setgid(GID)
        os.setuid(UID)
    return subprocess.run([lifeboat_bin(), *args], env=env, cwd=work, capture_output=True,
                          text=True, timeout=300, preexec_fn=drop if as_user else None)


def make_tree(work):
    data = os.path.join(work, "data")
    os.makedirs(os.path.join(data, "sub"))
    os.mkdir(os.path.join(work, "store"))
    for rel, body in {"mine.txt": b"the user's own\n", "sub/roots.txt": b"root's file\n",
                      "other.bin": os.urandom(50_000)}.items():
        with open(os.path.join(data, rel), "wb") as f:
            f.write(body)
    for d, dirs, files in os.walk(work):
        for n in [d] + [os.path.join(d, x) for x in dirs + files]:
            os.lchown(n, UID, GID)
    os.chown(os.path.join(data, "sub", "roots.txt"), 0, 0)
    os.chown(os.path.join(data, "other.bin"), 1, 2)
    return {rel: sha(os.path.join(data, rel)) for rel in ("mine.txt", "sub/roots.txt",
                                                          "other.bin")}


def owner_warnings(stderr):
    return [l for l in stderr.splitlines() if "cannot set owners" in l]


def test_restore_as_a_user_says_the_owners_are_lost(work):
    want = make_tree(work)
    b = run(work, ["backup"], as_user=True)  # the files are readable to the user
    assert b.returncode == 0, b.stderr
    ts = b.stdout.strip()
    data = os.path.join(work, "data")
    for rel in want:
        with open(os.path.join(data, rel), "wb") as f:
            f.write(b"wrecked\n")

    r = run(work, ["restore", ts, "--yes"], as_user=True)
    assert r.returncode == 0, r.stderr
    assert {rel: sha(os.path.join(data, rel)) for rel in want} == want
    for rel in want:
        st = os.stat(os.path.join(data, rel))
        assert (st.st_uid, st.st_gid) == (UID, GID), rel
    w = owner_warnings(r.stderr)
    assert len(w) == 1, r.stderr
    # Two entries had other owners; sorted archive order puts other.bin (1:2) first.
    assert f"'{data}': restored as uid {UID}" in w[0]
    assert "2 entries recorded with other owners" in w[0]
    assert "(first 'dirs/data/other.bin', 1:2)" in w[0]
    assert f"get the owner {UID}:{GID}" in w[0]

    # --to DIR as the user: the same, for the extracted copy.
    out = os.path.join(work, "out")
    x = run(work, ["restore", ts, "--to", out], as_user=True)
    assert x.returncode == 0, x.stderr
    w = owner_warnings(x.stderr)
    assert len(w) == 1 and f"'{out}'" in w[0] and "2 entries" in w[0], x.stderr


def test_restore_as_root_keeps_owners_and_says_nothing(work):
    make_tree(work)
    b = run(work, ["backup"], as_user=False)
    assert b.returncode == 0, b.stderr
    data = os.path.join(work, "data")
    os.chown(os.path.join(data, "sub", "roots.txt"), UID, GID)
    r = run(work, ["restore", b.stdout.strip(), "--yes"], as_user=False)
    assert r.returncode == 0, r.stderr
    assert owner_warnings(r.stderr) == []
    st = os.stat(os.path.join(data, "sub", "roots.txt"))
    assert (st.st_uid, st.st_gid) == (0, 0)
    st = os.stat(os.path.join(data, "other.bin"))
    assert (st.st_uid, st.st_gid) == (1, 2)

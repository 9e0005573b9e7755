"""Nothing left behind: gpg homes and .partial files of dead runs go, those of live runs stay.

Whether a leftover is stale is decided by a lock its owner holds (an flock the kernel
drops when the owner dies), not by whether a process with the pid in its name exists:
in a restarted container that pid often belongs to a live process.
"""

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import parse_ts_stdout


def wait_for(pred, timeout=60, what="condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def short_tmp():
    # gpg needs a short TMPDIR (socket paths); Lifeboat ignores one longer than 48.
    d = tempfile.mkdtemp(prefix="lbt", dir="/tmp")
    yield d
    for n in os.listdir(d):
        if n.startswith("lbgpg."):
            subprocess.run(["gpgconf", "--homedir", os.path.join(d, n), "--kill", "gpg-agent"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(d, ignore_errors=True)


def gpg_homes(d):
    return sorted(n for n in os.listdir(d) if n.startswith("lbgpg."))


def partials(lb):
    if not lb.backup_dir.exists():
        return []
    return sorted(n for n in os.listdir(lb.backup_dir) if n.endswith(".partial"))


def test_killed_runs_gpg_home_is_removed_by_the_next_run(lb, short_tmp):
    env = {"TMPDIR": short_tmp}
    lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "crypt.homedir:kill"}, check=-9)
    left = gpg_homes(short_tmp)
    assert len(left) == 1, left
    # As after a container restart: the dead run's pid is a live process's now.
    os.rename(os.path.join(short_tmp, left[0]),
              os.path.join(short_tmp, f"lbgpg.{os.getpid()}.{left[0].split('.')[-1]}"))
    os.mkdir(os.path.join(short_tmp, "lbgpg.1.Abc123"), 0o700)  # pid 1 is always alive
    # A home that a live run uses (and so holds locked) is never touched.
    live = os.path.join(short_tmp, f"lbgpg.{os.getpid()}.inuse")
    os.mkdir(live, 0o700)
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        ts = lb.backup(env)
        assert gpg_homes(short_tmp) == [os.path.basename(live)]
    finally:
        os.close(fd)
    lb.run(["verify", ts], env)
    assert gpg_homes(short_tmp) == [], "verify removes the stale one it now can lock"


def test_partial_with_a_live_pid_is_removed_when_unlocked(lb):
    lb.backup_dir.mkdir(parents=True, exist_ok=True)
    old_style = lb.backup_dir / f".{lb.NAME}-2026-01-01-000000.tar.gz.gpg.{os.getpid()}.partial"
    old_style.write_bytes(b"half an archive")
    pid1 = lb.backup_dir / f".{lb.NAME}-2026-01-01-000001.tar.gz.gpg.1.partial"
    pid1.write_bytes(b"half an archive")
    new_style = lb.backup_dir / f".{lb.NAME}-2026-01-01-000002.partial"
    new_style.write_bytes(b"half an archive")
    other = lb.backup_dir / f".{lb.NAME}-x-2026-01-01-000003.partial"  # not ours by name
    other.write_bytes(b"someone else's")
    ts = lb.backup()
    assert partials(lb) == [other.name]
    assert sorted(os.listdir(lb.backup_dir)) == sorted(
        [other.name, f"{lb.NAME}-{ts}.tar.gz.gpg"])


def test_partial_of_a_running_backup_is_never_removed(lb):
    """A backup stopped mid-write (SIGSTOP) keeps its .partial through another run."""
    with open(lb.src / "big" / "slow.bin", "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    a = lb.popen(["backup"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: partials(lb), what="the first run's .partial")
        a.send_signal(signal.SIGSTOP)
        mine = partials(lb)
        # Another run that does not share the state directory (so not the run lock).
        res = lb.run(["backup"], {"BACKUP_STATE_DIR": str(lb.tmp / "state2"),
                                  "BACKUP_DIRS": None})
        b_ts = parse_ts_stdout(res)
        assert partials(lb) == mine, "a live run's .partial was removed"
        a.send_signal(signal.SIGCONT)
        out, err = a.communicate(timeout=300)
    finally:
        if a.poll() is None:
            a.send_signal(signal.SIGCONT)
            a.kill()
            a.wait()
    assert a.returncode == 0, err.decode(errors="replace")
    a_ts = out.decode().strip()
    assert a_ts != b_ts
    assert partials(lb) == []
    lb.run(["verify", a_ts])
    lb.run(["verify", b_ts], {"BACKUP_DIRS": None})


def test_same_second_in_another_runs_store_takes_the_next_second(lb):
    """A run writing a timestamp (its locked .partial) makes another take a later one."""
    lb.backup_dir.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    claimed, fds = [], []
    try:
        for t in range(now, now + 3):
            ts = time.strftime("%Y-%m-%d-%H%M%S", time.gmtime(t))
            p = lb.backup_dir / f".{lb.NAME}-{ts}.partial"
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            fds.append(fd)
            claimed.append(ts)
        ts = lb.backup(timeout=60)
        assert ts not in claimed and ts > claimed[-1], (ts, claimed)
        assert partials(lb) == sorted(f".{lb.NAME}-{c}.partial" for c in claimed)
        lb.run(["verify", ts])
    finally:
        for fd in fds:
            os.close(fd)
    # Unlocked now: the next run sweeps them.
    lb.backup()
    assert partials(lb) == []

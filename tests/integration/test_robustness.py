"""Signals, special files, odd names, mount points and rollback.

These cover the promises that a failed or interrupted run leaves nothing
behind and that a restore either completes or changes nothing.
"""

import os
import signal
import socket
import subprocess

import pytest

from conftest import (EXIT_SOURCE, assert_same_tree, need_root, need_tool, snapshot,
                      wreck_tree)
from waiting import HANG, wait_until

EXIT_INTERRUPTED = 130


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def store_entries(lb):
    return sorted(os.listdir(lb.backup_dir)) if lb.backup_dir.exists() else []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_backup_leaves_no_archive(lb, sig):
    write_random(lb.src / "big" / "huge.bin", 400 << 20)
    p = lb.popen(["backup"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: any(n.endswith(".partial") for n in store_entries(lb)),
                   "the .partial file")
        p.send_signal(sig)
        out, err = p.communicate(timeout=HANG)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == EXIT_INTERRUPTED, err.decode(errors="replace")
    assert out.strip() == b"", "an interrupted backup must not print a timestamp"
    assert store_entries(lb) == [], "an interrupted backup must leave nothing in the store"


def test_partial_of_a_killed_run_is_removed_by_the_next(lb):
    write_random(lb.src / "big" / "huge.bin", 300 << 20)
    p = lb.popen(["backup"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: any(n.endswith(".partial") for n in store_entries(lb)),
               "the .partial file")
    p.kill()  # SIGKILL: no chance to clean up
    p.wait(timeout=HANG)
    leftovers = store_entries(lb)
    assert leftovers and all(n.startswith(".") for n in leftovers), leftovers
    # list never shows it
    assert lb.run(["list", "--json"]).stdout.strip() == "[]"
    (lb.src / "big" / "huge.bin").unlink()
    ts = lb.backup()
    assert store_entries(lb) == [f"{lb.NAME}-{ts}.tar.gz.gpg"]


def test_sigint_during_restore_countdown_changes_nothing(lb):
    ts = lb.backup()
    wreck_tree(lb.src)
    before = lb.snap_all()
    p = lb.popen(["restore", ts], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The countdown starts after the archive was staged and verified (which may take
        # long on a loaded machine); once it shows, the signal goes at once, well inside
        # its 10 s.
        buf = b""
        os.set_blocking(p.stderr.fileno(), False)

        def counting_down():
            nonlocal buf
            buf += p.stderr.read() or b""
            return b"restoring in" in buf or p.poll() is not None
        wait_until(counting_down, "the restore countdown")
        assert b"restoring in" in buf, buf
        p.send_signal(signal.SIGINT)
        p.wait(timeout=HANG)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == EXIT_INTERRUPTED
    assert lb.snap_all() == before, "a cancelled restore must change nothing"
    leftovers = [n for n in os.listdir(lb.src) if n.startswith(".lifeboat-")]
    assert leftovers == [], leftovers


def test_special_files_are_skipped(lb):
    need_tool("mkfifo")
    os.mkfifo(lb.src / "a-fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(lb.src / "a-socket"))
    try:
        orig = lb.snap()
        res = lb.run(["backup"])
        ts = res.stdout.strip()
        warnings = [l for l in res.stderr.splitlines() if "warning" in l]
        assert any("a-fifo" in l for l in warnings), res.stderr
        assert any("a-socket" in l for l in warnings), res.stderr
    finally:
        s.close()
    wreck_tree(lb.src)
    lb.restore(ts)
    # The restored tree equals the source without the special files.
    for name in ("a-fifo", "a-socket"):
        del orig["src"][name]
    assert lb.snap() == orig


def test_non_utf8_file_names_round_trip(lb):
    raw = os.fsencode(str(lb.src)) + b"/lat\xe9n-\xff.bin"
    with open(raw, "wb") as f:
        f.write(b"latin-1 named content\n")
    orig = lb.snap()
    ts = lb.backup()
    os.unlink(raw)
    lb.restore(ts)
    assert lb.snap() == orig
    with open(raw, "rb") as f:
        assert f.read() == b"latin-1 named content\n"


def test_restore_into_a_mount_point(lb, tmpfs_mount):
    """Docker volumes are mount points: they cannot be renamed, only filled."""
    target = tmpfs_mount(lb.tmp / "volume", size="64m")
    (target / "sub").mkdir()
    (target / "sub" / "f.txt").write_bytes(b"volume content\n")
    (target / "top.bin").write_bytes(os.urandom(4096))
    env = {"BACKUP_DIRS": f"{target}:vol", "BACKUP_FILES": None}
    orig = snapshot(target)
    ts = lb.backup(env)
    (target / "sub" / "f.txt").write_bytes(b"changed\n")
    (target / "new.txt").write_bytes(b"new\n")
    (target / "top.bin").unlink()
    lb.restore(ts, env)
    assert os.path.ismount(target), "the mount point must stay a mount point"
    assert_same_tree(orig, snapshot(target), "restored volume")


def test_restore_rolls_back_when_a_later_swap_fails(lb, tmp_path):
    """The dir source swaps first; the file source cannot be replaced (it is a
    bind mount), so the dir source must be put back as it was."""
    need_root("bind mounts")
    ts = lb.backup()
    wreck_tree(lb.src)
    lb.single.write_bytes(b"wrecked single\n")
    other = tmp_path / "bind-source"
    other.write_bytes(b"wrecked single\n")
    p = subprocess.run(["mount", "--bind", str(other), str(lb.single)], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    try:
        before = snapshot(lb.src)
        res = lb.restore(ts, check=EXIT_SOURCE)
        assert "mount point" in res.stderr, res.stderr
        assert_same_tree(before, snapshot(lb.src), "dir source after a rolled-back restore")
        assert lb.single.read_bytes() == b"wrecked single\n"
        leftovers = [n for n in os.listdir(lb.src) if n.startswith(".lifeboat-")]
        leftovers += [n for n in os.listdir(lb.single_dir) if n.startswith(".lifeboat-")]
        assert leftovers == [], leftovers
    finally:
        subprocess.run(["umount", "-l", str(lb.single)], capture_output=True)

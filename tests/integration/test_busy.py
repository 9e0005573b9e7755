"""Busy directories: entries deleted while the walker is at them are a warning, not a failure.

The test build's fault point "walk.before_open" really deletes the entry the walker has just
stat'ed, before it opens it: the moment a busy application's delete lands there.
"""

import os
import shutil

from conftest import snapshot


def _tree(root, names):
    os.makedirs(root)
    for rel in names:
        p = root / rel
        if rel.endswith("/"):
            p.mkdir(parents=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(rel.encode() * 3)
    return root


def _round_trip(lb, root, nth, gone):
    """Back up with the Nth entry deleted at the fault point; restore; compare."""
    env = {"BACKUP_DIRS": f"{root}:busy", "BACKUP_FILES": None}
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": f"walk.before_open@{nth}:fail"})
    ts = res.stdout.strip()
    assert f"'{root / gone}' vanished while being backed up" in res.stderr, res
    assert not os.path.lexists(root / gone)
    expected = snapshot(root)
    lb.run(["verify", ts], env)
    shutil.rmtree(root)
    os.mkdir(root)
    (root / "later.txt").write_bytes(b"written after the backup")
    lb.restore(ts, env)
    got = snapshot(root)
    got.pop("", None)
    assert got == expected
    assert gone not in got


def test_file_deleted_between_stat_and_open_is_a_warning(lb):
    root = _tree(lb.tmp / "busy", ["a.txt", "b.txt", "c.txt", "d/x.txt"])
    _round_trip(lb, root, 2, "b.txt")  # a.txt, then b.txt


def test_directory_deleted_between_stat_and_open_is_a_warning(lb):
    root = _tree(lb.tmp / "busy", ["a.txt", "b-empty/", "c/y.txt"])
    _round_trip(lb, root, 2, "b-empty")


def test_symlink_deleted_between_stat_and_readlink_is_a_warning(lb):
    root = _tree(lb.tmp / "busy", ["a.txt", "c/y.txt"])
    os.symlink("a.txt", root / "b-link")
    _round_trip(lb, root, 2, "b-link")


def _changed_while_read(lb, point):
    root = _tree(lb.tmp / "busy", ["a.txt", "c.txt"])
    data = bytes(range(256)) * 64  # 16 KiB
    (root / "b.bin").write_bytes(data)
    env = {"BACKUP_DIRS": f"{root}:busy", "BACKUP_FILES": None}
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": f"{point}@2:fail"})  # a.txt, b.bin
    ts = res.stdout.strip()
    lb.run(["verify", ts], env)
    shutil.rmtree(root)
    lb.restore(ts, env)
    return res, data, (root / "b.bin").read_bytes()


def test_file_that_shrinks_while_read_is_padded_as_gnu_tar_does(lb):
    res, data, got = _changed_while_read(lb, "walk.shrink")
    assert "shrank while being read; padded with zeros" in res.stderr, res
    assert got == data[:len(data) // 2] + bytes(len(data) - len(data) // 2)


def test_file_that_grows_while_read_is_archived_at_its_size_when_opened(lb):
    _, data, got = _changed_while_read(lb, "walk.grow")
    assert got == data

"""Backup -> damage -> restore round trips."""

import datetime
import hashlib
import os
import re
import shutil
import stat
import subprocess
import time

import pytest

from conftest import (EXIT_NOT_FOUND, MTIME_BASE_NS, all_entries, assert_same_tree,
                      assert_untouched, entry_info, read_json_list,
                      sha256_file, snapshot, table_timestamps, wreck_tree)


def only_archive(lb, ts, suffix=".tar.gz.gpg"):
    """The backup dir holds exactly the archive of ts (nothing hidden, no .partial)."""
    names = sorted(os.listdir(lb.backup_dir))
    assert names == [lb.archive(ts, suffix).name], f"unexpected store content: {names}"
    return lb.archive(ts, suffix)


def test_roundtrip(lb):
    orig = lb.snap()
    single_bytes = lb.single.read_bytes()
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    res = lb.run(["backup"])
    after = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    ts = res.stdout.strip()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{6}", ts), repr(res)
    assert res.stdout.strip().count("\n") == 0, repr(res)
    when = datetime.datetime.strptime(ts, "%Y-%m-%d-%H%M%S")
    assert before - datetime.timedelta(seconds=2) <= when <= after + datetime.timedelta(seconds=2), \
        f"timestamp {ts} is not 'now' in UTC ({before}..{after})"

    # archive name, mode, no leftovers
    arch = only_archive(lb, ts)
    assert stat.S_IMODE(os.stat(arch).st_mode) == 0o600
    assert all_entries(lb.store) == sorted([lb.NAME, os.path.join(lb.NAME, arch.name)])
    # backing up must not have modified the sources
    assert lb.snap() == orig

    # list (table): header + one row whose first column is the timestamp
    assert table_timestamps(lb.run(["list"])) == [ts]
    # list --json
    data = read_json_list(lb.run(["list", "--json"]))
    assert len(data) == 1, data
    e = data[0]
    assert e["timestamp"] == ts
    assert os.path.basename(e["file"]) == arch.name
    assert e["size"] == os.path.getsize(arch)
    assert e["stores"] == ["local"]
    assert isinstance(e["age_seconds"], (int, float))
    assert -2 <= e["age_seconds"] <= 120, e

    # wreck and restore
    wreck_tree(lb.src)
    lb.single.write_bytes(b"changed\n")
    os.chmod(lb.single, 0o666)
    assert lb.snap() != orig
    lb.restore(ts)
    assert_same_tree(orig["src"], snapshot(lb.src), "restored dir source")
    assert lb.single.read_bytes() == single_bytes
    assert entry_info(lb.single) == orig["single"], "single file mode/mtime/content"
    # outside target of the symlink untouched, nothing extra next to the sources
    assert lb.outside_file.read_bytes() == b"must never be touched\n"
    assert sorted(os.listdir(lb.root)) == ["etc", "src"]
    assert sorted(os.listdir(lb.single_dir)) == ["single.conf"]
    # restoring does not alter the store
    only_archive(lb, ts)


def test_restore_sets_the_directory_own_mode_and_times(lb):
    """The source directory itself (not only its content) gets back its mode and times,
    after the staged and old copies inside it were removed."""
    os.chmod(lb.src, 0o750)
    os.utime(lb.src, ns=(MTIME_BASE_NS, MTIME_BASE_NS))
    before = os.stat(lb.src)
    ts = lb.backup()
    os.chmod(lb.src, 0o755)
    (lb.src / "created-after-the-backup").write_text("x")
    lb.restore(ts)
    after = os.stat(lb.src)
    assert stat.S_IMODE(after.st_mode) == 0o750
    # mtimes are stored in whole seconds: the sub-second part is dropped, not rounded
    assert after.st_mtime_ns == before.st_mtime_ns // 10**9 * 10**9
    assert not (lb.src / "created-after-the-backup").exists()


def test_archive_mode_0600_even_with_umask_0(lb):
    ts = lb.backup(umask=0)
    arch = only_archive(lb, ts)
    assert stat.S_IMODE(os.stat(arch).st_mode) == 0o600


def test_partial_name_while_writing(lb):
    """While the backup runs, the archive exists only as .<something>.partial."""
    # ~48 MB of incompressible data so the write takes a noticeable time
    big = lb.src / "big" / "slow.bin"
    with open(big, "wb") as f:
        for _ in range(48):
            f.write(os.urandom(1 << 20))
    proc = lb.popen(["backup"], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    seen = set()
    final_seen_running = []
    while proc.poll() is None:
        if lb.backup_dir.is_dir():
            for n in os.listdir(lb.backup_dir):
                seen.add(n)
                if n.endswith(".tar.gz.gpg"):
                    try:
                        final_seen_running.append((n, os.path.getsize(lb.backup_dir / n)))
                    except FileNotFoundError:
                        pass
        time.sleep(0.002)
    out, err = proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")
    ts = out.decode().strip()
    arch = only_archive(lb, ts)
    final = arch.name
    others = {n for n in seen if n != final}
    assert others, "never saw a temporary file while the backup was running"
    for n in others:
        assert n.startswith(".") and n.endswith(".partial"), \
            f"temporary name {n!r} is not hidden '.…partial'"
    size = os.path.getsize(arch)
    for n, s in final_seen_running:
        assert s == size, "final archive name was visible before it was complete"


def test_restore_type_changes_and_symlink_attacks(lb):
    """Entries whose type changed since the backup come back with the old type;
    restore never writes through a symlink planted in the target."""
    orig = snapshot(lb.src)
    outside_before = snapshot(lb.outside)
    ts = lb.backup()
    src = lb.src
    # file -> symlink pointing outside
    (src / "mode640.txt").unlink()
    os.symlink(str(lb.outside_file), src / "mode640.txt")
    # dir -> symlink pointing to an outside dir
    shutil.rmtree(src / "restricted")
    os.symlink(str(lb.outside), src / "restricted")
    # empty dir -> regular file
    os.rmdir(src / "empty/nested/deeper")
    (src / "empty/nested/deeper").write_bytes(b"now a file")
    # file -> directory
    (src / "zero.bin").unlink()
    (src / "zero.bin").mkdir()
    (src / "zero.bin/inner").write_bytes(b"x")
    # symlink -> regular file, dangling symlink -> dir
    (src / "link_out").unlink()
    (src / "link_out").write_bytes(b"not a link any more")
    (src / "dangling").unlink()
    (src / "dangling").mkdir()
    # symlink retargeted
    (src / "link_to_dir").unlink()
    os.symlink("/", src / "link_to_dir")
    lb.restore(ts)
    assert_same_tree(orig, snapshot(src), "restored dir source")
    assert_same_tree(outside_before, snapshot(lb.outside), "outside dir")


def test_restore_same_size_same_mtime_modification(lb):
    """A file changed in place keeping size and mtime still gets the old bytes."""
    orig = snapshot(lb.src)
    ts = lb.backup()
    p = lb.src / "big" / "random.bin"
    st = os.stat(p)
    with open(p, "r+b") as f:
        f.seek(st.st_size // 2)
        b = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    lb.restore(ts)
    assert_same_tree(orig, snapshot(lb.src), "restored dir source")


def test_restore_deleted_source_dir_and_file(lb):
    orig = lb.snap()
    ts = lb.backup()
    shutil.rmtree(lb.src)
    lb.single.unlink()
    lb.restore(ts)
    assert_same_tree(orig["src"], snapshot(lb.src), "recreated dir source")
    assert entry_info(lb.single) == orig["single"]


def test_restore_uses_configured_path_never_recorded(lb, tmp_path):
    orig = lb.snap()
    ts = lb.backup()
    wreck_tree(lb.src)
    wrecked = snapshot(lb.src)
    # 1) name 'data' configured now at another path -> restored there
    new = tmp_path / "elsewhere" / "newsrc"
    new.mkdir(parents=True)
    lb.restore(ts, {"BACKUP_DIRS": f"{new}:data"})
    assert_same_tree(orig["src"], snapshot(new), "restore into the configured path")
    assert_same_tree(wrecked, snapshot(lb.src), "old path must not be touched")
    # 2) name 'data' not configured -> skipped: the path recorded in the backup is untouched
    lb.restore(ts, {"BACKUP_DIRS": None})
    assert_same_tree(wrecked, snapshot(lb.src), "the recorded path of an unconfigured source")


def test_two_backups_newest_first_restore_older(lb):
    state1 = snapshot(lb.src)
    ts1 = lb.backup()
    # No pause: a run whose second is taken waits for the next free one (choose_id).
    wreck_tree(lb.src)
    state2 = snapshot(lb.src)
    ts2 = lb.backup()
    assert ts2 > ts1
    assert sorted(os.listdir(lb.backup_dir)) == sorted(
        [lb.archive(ts1).name, lb.archive(ts2).name])
    assert table_timestamps(lb.run(["list"])) == [ts2, ts1]
    data = read_json_list(lb.run(["list", "--json"]))
    assert [e["timestamp"] for e in data] == [ts2, ts1]
    assert data[0]["age_seconds"] <= data[1]["age_seconds"]
    lb.restore(ts1)
    assert_same_tree(state1, snapshot(lb.src), "restore of the older backup")
    lb.restore(ts2)
    assert_same_tree(state2, snapshot(lb.src), "restore of the newer backup")


def test_list_empty_store(lb):
    data = read_json_list(lb.run(["list", "--json"]))
    assert data == []


def test_unknown_timestamp_is_not_found(lb):
    lb.backup()
    before = lb.snap_all()
    lb.run(["restore", "1999-01-01-000000", "--yes"], check=EXIT_NOT_FOUND)
    lb.run(["verify", "1999-01-01-000000"], check=EXIT_NOT_FOUND)
    assert_untouched(before, lb.snap_all())


def test_dry_run_changes_nothing(lb):
    ts = lb.backup()
    wreck_tree(lb.src)
    before = lb.snap_all()
    store_before = snapshot(lb.store)
    res = lb.restore(ts, extra=("--dry-run",))
    assert_untouched(before, lb.snap_all())
    assert snapshot(lb.store) == store_before
    out = res.stdout + res.stderr
    # it must say what would change: the deleted and the added file
    assert "private.txt" in out, repr(res)
    assert "new_file.txt" in out, repr(res)


def test_verify_ok(lb):
    ts = lb.backup()
    wreck_tree(lb.src)
    before = lb.snap_all()
    store_before = snapshot(lb.store)
    lb.run(["verify", ts])
    assert_untouched(before, lb.snap_all())
    assert snapshot(lb.store) == store_before, "verify touched the store"


def _write_big(path, size):
    """Unique-per-MiB content that deflate still compresses fast: an 8 KiB
    random unit repeated (inside deflate's 32 KiB window), stamped with the
    block index every 64 KiB so no two MiB are alike."""
    unit = os.urandom(8192)
    block = bytearray(unit * 128)  # 1 MiB
    h = hashlib.sha256()
    written = 0
    idx = 0
    with open(path, "wb") as f:
        while written < size:
            for off in range(0, len(block), 65536):
                block[off:off + 8] = idx.to_bytes(8, "little")
            chunk = bytes(block[: min(len(block), size - written)])
            f.write(chunk)
            h.update(chunk)
            written += len(chunk)
            idx += 1
    return h.hexdigest()


@pytest.mark.slow
def test_big_file(lb, tmp_path):
    big_dir = tmp_path / "bigsrc"
    big_dir.mkdir()
    size = (1 << 30) + 12345  # 1 GiB and an odd tail
    p = big_dir / "huge.bin"
    digest = _write_big(p, size)
    os.utime(p, ns=(1_650_000_000_000_000_000,) * 2)
    env = {"BACKUP_DIRS": f"{big_dir}:big", "BACKUP_FILES": None}
    ts = lb.run(["backup"], env, timeout=900).stdout.strip()
    assert lb.archive(ts).exists()
    p.unlink()
    (big_dir / "later.bin").write_bytes(b"later")
    lb.run(["restore", ts, "--yes"], env, timeout=900)
    assert sorted(os.listdir(big_dir)) == ["huge.bin"]
    assert os.path.getsize(p) == size
    assert os.stat(p).st_mtime_ns // 10**9 == 1_650_000_000
    assert sha256_file(p) == digest

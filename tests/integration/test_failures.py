"""Failures must be clean: right exit code, no partial output, data untouched."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import (EXIT_CONFIG, EXIT_CRYPTO, EXIT_INTEGRITY, EXIT_SOURCE, EXIT_STORE,
                      assert_untouched, need_root, non_dir_entries, read_json_list,
                      snapshot, wreck_tree)


def assert_failed_cleanly(res, lb_or_store):
    store = getattr(lb_or_store, "store", lb_or_store)
    assert res.returncode != 0
    assert res.stderr_lines(), f"no error message on stderr: {res!r}"
    assert non_dir_entries(store) == [], f"files left in the store: {non_dir_entries(store)}"


def damage(path, how):
    size = os.path.getsize(path)
    if how == "truncate":
        os.truncate(path, size // 2)
    elif how == "bitflip":
        with open(path, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0x01]))
    else:
        raise ValueError(how)


# --------------------------------------------------------------------------
# wrong key
# --------------------------------------------------------------------------

def test_wrong_key(lb, tmp_path):
    ts = lb.backup()
    wreck_tree(lb.src)
    before = lb.snap_all()
    store_before = snapshot(lb.store)
    wrong_pass = "definitely-not-the-key-" + os.urandom(4).hex()
    wrong = tmp_path / "wrong.key"
    wrong.write_text(wrong_pass + "\n")
    env = {"BACKUP_ENCRYPTION_KEY_FILE": wrong}

    res = lb.restore(ts, env, check=EXIT_CRYPTO)
    assert_untouched(before, lb.snap_all())
    assert snapshot(lb.store) == store_before
    key_lines = [l for l in res.stderr_lines() if re.search(r"key|passphrase", l, re.I)]
    assert len(key_lines) == 1, f"expected one error line about the key: {res!r}"
    for secret in (wrong_pass, lb.passphrase):
        assert secret not in res.stdout + res.stderr

    res = lb.run(["verify", ts], env, check=EXIT_CRYPTO)
    assert_untouched(before, lb.snap_all())
    assert snapshot(lb.store) == store_before

    # the same with the key given directly
    lb.restore(ts, {"BACKUP_ENCRYPTION_KEY_FILE": None, "BACKUP_ENCRYPTION_KEY": wrong_pass},
               check=EXIT_CRYPTO)
    assert_untouched(before, lb.snap_all())


# --------------------------------------------------------------------------
# damaged archives
# --------------------------------------------------------------------------

def _damaged_archive_case(lb, enc, how):
    env = {} if enc == "gpg" else {"BACKUP_ENCRYPTION": "none",
                                   "BACKUP_ENCRYPTION_KEY_FILE": None}
    suffix = ".tar.gz.gpg" if enc == "gpg" else ".tar.gz"
    ts = lb.backup(env)
    arch = lb.archive(ts, suffix)
    damage(arch, how)
    wreck_tree(lb.src)
    lb.single.write_bytes(b"changed after backup\n")
    before = lb.snap_all()
    store_before = snapshot(lb.store)

    lb.run(["verify", ts], env, check=EXIT_INTEGRITY)
    assert snapshot(lb.store) == store_before
    lb.restore(ts, env, check=EXIT_INTEGRITY)
    assert_untouched(before, lb.snap_all())
    assert snapshot(lb.store) == store_before


@pytest.mark.parametrize("enc", ["gpg", "none"])
def test_truncated(lb, enc):
    _damaged_archive_case(lb, enc, "truncate")


@pytest.mark.parametrize("enc", ["gpg", "none"])
def test_bitflip(lb, enc):
    _damaged_archive_case(lb, enc, "bitflip")


# --------------------------------------------------------------------------
# store errors
# --------------------------------------------------------------------------

def _fill(path, mb):
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))


def test_disk_full(lb, tmpfs_mount, tmp_path):
    store = tmpfs_mount(tmp_path / "small", "16m")
    _fill(lb.src / "big" / "fill.bin", 40)
    res = lb.run(["backup"], {"BACKUP_LOCAL_PATH": store}, check=EXIT_STORE)
    assert_failed_cleanly(res, store)
    assert read_json_list(lb.run(["list", "--json"], {"BACKUP_LOCAL_PATH": store})) == []


def test_disk_full_keeps_earlier_backup(lb, tmpfs_mount, tmp_path):
    store = tmpfs_mount(tmp_path / "small", "16m")
    env = {"BACKUP_LOCAL_PATH": store}
    ts = lb.backup(env)
    first = store / lb.NAME / f"{lb.NAME}-{ts}.tar.gz.gpg"
    first_bytes = first.read_bytes()
    _fill(lb.src / "big" / "fill.bin", 40)
    # No pause for a new timestamp: a run whose second is taken waits for the next free
    # one itself (backup.c choose_id), so the failure cannot hide behind a name clash.
    res = lb.run(["backup"], env, check=EXIT_STORE)
    assert res.stderr_lines()
    assert non_dir_entries(store) == [f"{lb.NAME}/{first.name}"]
    assert first.read_bytes() == first_bytes
    lb.run(["verify", ts], env)


def test_store_read_only(lb, tmpfs_mount, tmp_path):
    store = tmpfs_mount(tmp_path / "ro", "16m")
    (store / lb.NAME).mkdir()
    p = subprocess.run(["mount", "-o", "remount,ro", str(store)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    res = lb.run(["backup"], {"BACKUP_LOCAL_PATH": store}, check=EXIT_STORE)
    assert_failed_cleanly(res, store)


def test_restore_disk_full_names_target_and_cause(lb, tmpfs_mount):
    """A restore that runs out of room says which file and why (exit 4), and changes nothing."""
    target = tmpfs_mount(lb.tmp / "volume", size="8m")
    (target / "keep.txt").write_bytes(b"old content\n")
    _fill(target / "new3.bin", 3)
    env = {"BACKUP_DIRS": f"{target}:data", "BACKUP_FILES": None}
    ts = lb.backup(env)
    (target / "new3.bin").unlink()
    _fill(target / "filler.bin", 6)  # about 2 MiB left: new3.bin no longer fits
    (target / "keep.txt").write_bytes(b"changed since the backup\n")
    before = snapshot(target)
    res = lb.restore(ts, env, check=EXIT_SOURCE)
    lines = res.stderr_lines()
    assert any(f"'{target}/new3.bin'" in l and "No space left on device" in l
               for l in lines), repr(res)
    assert_untouched(before, snapshot(target), "target of a restore that ran out of room")


# --------------------------------------------------------------------------
# source errors
# --------------------------------------------------------------------------

def test_file_source_is_a_directory(lb, tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    res = lb.run(["backup"], {"BACKUP_FILES": f"{d}:single"}, check=False)
    assert res.returncode in (EXIT_CONFIG, EXIT_SOURCE), repr(res)
    assert_failed_cleanly(res, lb)
    assert "BACKUP_FILES" in res.stderr, repr(res)


def test_dir_source_is_a_file(lb):
    res = lb.run(["backup"], {"BACKUP_DIRS": f"{lb.single}:data", "BACKUP_FILES": None},
                 check=False)
    assert res.returncode in (EXIT_CONFIG, EXIT_SOURCE), repr(res)
    assert_failed_cleanly(res, lb)
    assert "BACKUP_DIRS" in res.stderr, repr(res)


def test_file_source_vanished(lb):
    lb.single.unlink()
    res = lb.run(["backup"], check=False)
    assert res.returncode in (EXIT_CONFIG, EXIT_SOURCE), repr(res)
    assert_failed_cleanly(res, lb)


def test_unreadable_file_as_unprivileged_user(lb):
    """Run as 'nobody' so permissions apply: an unreadable file is a source error (4)."""
    need_root("switching to an unprivileged user")
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user")
    uid, gid = nobody.pw_uid, nobody.pw_gid
    # every ancestor of the binary must be traversable by nobody
    if subprocess.run([lb.bin, "version"], preexec_fn=lambda: (os.setgid(gid), os.setuid(uid)),
                      capture_output=True, env={"PATH": os.environ["PATH"]}).returncode != 0:
        pytest.skip("the binary is not executable by 'nobody' from its location")
    base = Path(tempfile.mkdtemp(prefix="lbn", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        src = base / "src"
        shutil.copytree(lb.src, src, symlinks=True)
        for dirpath, dirnames, filenames in os.walk(src):
            os.chmod(dirpath, 0o755)
            for n in filenames:
                if not os.path.islink(os.path.join(dirpath, n)):
                    os.chmod(os.path.join(dirpath, n), 0o644)
        store = base / "store"
        store.mkdir()
        os.chown(store, uid, gid)
        key = base / "key"
        key.write_text(lb.passphrase + "\n")
        os.chown(key, uid, gid)
        os.chown(lb.home, uid, gid)
        # Lock and state: the non-root default under HOME; the log: a file nobody owns.
        env = {"BACKUP_DIRS": f"{src}:data", "BACKUP_FILES": None,
               "BACKUP_LOCAL_PATH": store, "BACKUP_ENCRYPTION_KEY_FILE": key,
               "BACKUP_STATE_DIR": None, "BACKUP_LOG_FILE": None}

        def drop():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        # sanity: works as nobody when everything is readable
        res = lb.run(["backup"], env, preexec=drop, cwd=base)
        good = non_dir_entries(store)
        assert len(good) == 1, good
        # (no pause for a new timestamp: the binary takes the next free second itself)
        os.chmod(src / "ünïcødé" / "日本.txt", 0o000)
        res = lb.run(["backup"], env, preexec=drop, check=EXIT_SOURCE, cwd=base)
        assert res.stderr_lines()
        assert non_dir_entries(store) == good, "failed backup left files behind"
    finally:
        shutil.rmtree(base, ignore_errors=True)

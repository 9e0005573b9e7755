"""BACKUP_EXCLUDE end to end: what the archive leaves out, what a restore leaves on disk.

The rules themselves are unit-tested (tests/unit/test-exclude.c); here the walker must not
archive an excluded entry (the tar listing), `check` must show the patterns, a restore
must leave every excluded path on disk exactly as it was (bytes, modes, mtimes), also
when the backup still holds it, and a restore killed at any step of its swap must end
wholly old or wholly new with the excluded entries intact.
"""

import os
import shutil
import tarfile
from pathlib import Path

from conftest import EXIT_CONFIG, EXIT_SOURCE, MTIME_BASE_NS, snapshot

EXCLUDES = "cache/, *.tmp\n**/node_modules/,logs/*.log , data:thumbs/, other:only-other/"


def write(root, files):
    root = Path(root)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    i = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in sorted(filenames) + sorted(dirnames):
            i += 1
            full = os.path.join(dirpath, name)
            os.utime(full, ns=(MTIME_BASE_NS + i * 10**9, MTIME_BASE_NS + i * 10**9))


# rel -> excluded under EXCLUDES for source "data"?
TREE = {
    "keep.txt": False,
    "cache/a.bin": True,          # cache/ at the top
    "sub/cache/deep/b.bin": True,  # cache/ at any depth
    "sub/cache.txt": False,       # a name like it is not the pattern
    "file-named/cache": False,    # trailing '/': a file called cache stays
    "x.tmp": True,
    "sub/deeper/y.tmp": True,     # no '/': any depth
    "sub/y.tmpl": False,
    "node_modules/m.js": True,    # '**/' matches zero components
    "app/web/node_modules/n.js": True,
    "logs/now.log": True,         # anchored: '*' stays in logs/
    "logs/old/keep.log": False,   # '*' does not cross '/'
    "app/logs/other.log": False,  # anchored at the root only
    "thumbs/t.jpg": True,         # scoped to this source
    "only-other/o.txt": False,    # scoped to another source
}


def make(lb, extra=None):
    data = lb.root / "xdata"
    other = lb.root / "xother"
    for p in (data, other):
        if p.exists():
            shutil.rmtree(p)
    write(data, {rel: f"{rel} v1\n".encode() for rel in TREE} | (extra or {}))
    write(other, {"only-other/o.txt": b"o\n", "thumbs/t.jpg": b"t\n", "z.tmp": b"z\n"})
    env = {"BACKUP_DIRS": f"{data}:data,{other}:other", "BACKUP_FILES": None,
           "BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None,
           "BACKUP_EXCLUDE": EXCLUDES, "BACKUP_KEEP_LAST": "100"}
    return data, other, env


def members(lb, ts):
    with tarfile.open(lb.archive(ts, ".tar.gz"), "r:gz") as t:
        return {m.name.rstrip("/") for m in t.getmembers()}


def test_archive_lacks_excluded(lb):
    data, other, env = make(lb)
    ts = lb.backup(env)
    names = members(lb, ts)
    for rel, excluded in TREE.items():
        # An excluded directory is left out whole, itself included.
        top = rel.split("/")
        paths = {"dirs/data/" + "/".join(top[:k]) for k in range(1, len(top) + 1)}
        if excluded:
            assert f"dirs/data/{rel}" not in names, f"{rel} must be left out"
        else:
            assert paths <= names, f"{rel} must be archived"
    assert "dirs/data/cache" not in names and "dirs/data/sub/cache" not in names
    assert "dirs/data/node_modules" not in names
    assert "dirs/other/thumbs/t.jpg" in names          # data:thumbs/ is not other's
    assert "dirs/other/only-other" not in names        # other:only-other/ is
    assert "dirs/other/z.tmp" not in names             # unscoped patterns apply to both
    # Every archived file verifies (SHA256SUMS lists no excluded file).
    lb.run(["verify", ts], env)

    # check shows each pattern and its scope.
    out = lb.run(["check"], env).stdout
    assert "BACKUP_EXCLUDE       cache/  (every directory)" in out, out
    assert "data:thumbs/  (directory 'data')" in out, out
    assert "logs/*.log  (every directory)" in out, out


def test_without_exclude_everything_is_archived(lb):
    """The same tree without BACKUP_EXCLUDE: the listing above differs only by it."""
    data, other, env = make(lb)
    env["BACKUP_EXCLUDE"] = None
    names = members(lb, lb.backup(env))
    assert all(f"dirs/data/{rel}" in names for rel in TREE)


# The excluded entries of TREE (an excluded directory stands for its whole subtree).
ROOTS = ("cache", "sub/cache", "x.tmp", "sub/deeper/y.tmp", "node_modules",
         "app/web/node_modules", "logs/now.log", "thumbs")


def under(k, roots):
    return any(k == r or k.startswith(r + "/") for r in roots)


def test_restore_keeps_excluded_on_disk(lb):
    data, other, env = make(lb)
    ts = lb.backup(env)
    backed = snapshot(data)
    # After the backup: every file changes, excluded ones too, and new excluded paths
    # appear, one under a directory the backup does not have.
    for rel in TREE:
        (data / rel).write_bytes(f"{rel} v2 changed after the backup\n".encode())
    write(data / "newdir", {"cache/kept.bin": os.urandom(5000), "plain.txt": b"goes\n"})
    (data / "sub" / "fresh.tmp").write_bytes(b"new tmp\n")
    os.chmod(data / "cache" / "a.bin", 0o600)
    roots = ROOTS + ("newdir/cache", "sub/fresh.tmp")
    on_disk = snapshot(data)
    keep_before = {k: v for k, v in on_disk.items() if under(k, roots)}
    assert "newdir/cache/kept.bin" in keep_before and "cache/a.bin" in keep_before

    lb.restore(ts, env)
    now = snapshot(data)
    for k, v in keep_before.items():
        assert now.get(k) == v, f"excluded '{k}' changed: {v} -> {now.get(k)}"
    # Everything else is the backup's, exactly (the kept entries' parents included:
    # carrying them over keeps the restored directories' times).
    rest = {k: v for k, v in now.items() if not under(k, roots) and k != "newdir"}
    want = {k: v for k, v in backed.items() if not under(k, roots)}
    assert rest == want, sorted(set(rest.items()) ^ set(want.items()))
    # A parent the backup lacks is made as it was (mode, times); nothing else of it stays.
    assert not (data / "newdir" / "plain.txt").exists()
    assert now["newdir"] == on_disk["newdir"]
    assert not [n for n in os.listdir(data) if n.startswith(".lifeboat")]
    # The next backup archives what is on disk minus the excluded entries, as before.
    names = members(lb, lb.backup(env))
    assert "dirs/data/newdir/cache" not in names and "dirs/data/sub/fresh.tmp" not in names


def test_restore_of_old_archive_leaves_newly_excluded(lb):
    """An archive made before a pattern was set holds the path: the restore skips it."""
    data, other, env = make(lb)
    env_all = dict(env, BACKUP_EXCLUDE=None)
    ts = lb.backup(env_all)
    assert "dirs/data/cache/a.bin" in members(lb, ts)
    (data / "cache" / "a.bin").write_bytes(b"live cache, newer than the backup\n")
    (data / "keep.txt").write_bytes(b"changed\n")
    before = snapshot(data)["cache/a.bin"]
    lb.restore(ts, env)
    assert snapshot(data)["cache/a.bin"] == before
    assert (data / "keep.txt").read_bytes() == b"keep.txt v1\n"
    # Without the pattern, the same archive restores the path too.
    lb.restore(ts, env_all)
    assert (data / "cache" / "a.bin").read_bytes() == b"cache/a.bin v1\n"


def test_dry_run_lists_no_excluded_path(lb):
    data, other, env = make(lb)
    ts = lb.backup(env)
    (data / "cache" / "new.bin").write_bytes(b"n")
    (data / "stray.txt").write_bytes(b"s")
    out = lb.run(["restore", ts, "--dry-run"], env).stdout
    assert f"{data}/stray.txt" in out and out.split()[0] == "remove", out
    assert "cache" not in out and ".tmp" not in out, out


def test_conflict_fails_before_anything_changes(lb):
    """The backup has a file where an excluded entry's parent directory is now."""
    data, other, env = make(lb, {"conflict": b"a file in the backup\n"})
    ts = lb.backup(env)
    (data / "conflict").unlink()
    write(data / "conflict", {"cache/c.bin": b"kept?"})
    before = snapshot(data)
    res = lb.restore(ts, env, check=EXIT_SOURCE)
    assert "conflict/cache" in res.stderr and "BACKUP_EXCLUDE" in res.stderr, res
    assert snapshot(data) == before
    assert not [n for n in os.listdir(data) if n.startswith(".lifeboat")]


def test_bad_patterns_exit_3(lb):
    data, other, env = make(lb)
    for value, why in (("!cache", "negation"), ("a//b", "empty path component"),
                       ("[abc", "'['"), ("x/**y", "'**'"), ("nosuch:cache/", "nosuch"),
                       ("../up", "'..'")):
        res = lb.run(["check"], dict(env, BACKUP_EXCLUDE=value), check=EXIT_CONFIG)
        lines = res.stderr_lines()
        assert len(lines) == 1 and lines[0].count("BACKUP_EXCLUDE") >= 1, res
        assert why in lines[0], res
        lb.run(["backup"], dict(env, BACKUP_EXCLUDE=value), check=EXIT_CONFIG)


def count_passes(trace):
    counts = {}
    for line in Path(trace).read_text().splitlines():
        counts[line] = counts.get(line, 0) + 1
    return counts


def test_killed_restore_keeps_excluded(lb):
    """SIGKILL at every step of the swap: the next command ends it wholly old or wholly
    new, and the excluded entries are on disk as they were in both cases."""
    data, other, env = make(lb)
    ts = lb.backup(env)
    for rel in TREE:
        (data / rel).write_bytes(f"{rel} old on disk\n".encode())
    write(data / "newdir", {"cache/kept.bin": b"kept across a crash\n"})
    pristine = lb.tmp / "pristine"
    shutil.copytree(data, pristine, symlinks=True)
    old = snapshot(data)
    kept = {k: v for k, v in old.items() if under(k, ROOTS + ("newdir/cache",))}

    trace = lb.tmp / "trace"
    lb.run(["restore", ts, "--yes"], dict(env, LIFEBOAT_FAULT_TRACE=str(trace)))
    new = snapshot(data)
    passes = count_passes(trace)
    assert passes.get("restore.keep", 0) >= 4, passes

    def reset():
        shutil.rmtree(data)
        shutil.copytree(pristine, data, symlinks=True)
        assert snapshot(data) == old

    cases = [(p, k) for p in ("restore.keep", "journal.write", "restore.swap")
             for k in range(1, passes.get(p, 0) + 1)]
    seen = set()
    for point, k in cases:
        reset()
        res = lb.run(["restore", ts, "--yes"], dict(env, LIFEBOAT_FAULT=f"{point}@{k}:kill"),
                     check=False)
        assert res.returncode == -9, (point, k, res)
        rec = lb.run(["prune"], env)  # any command recovers first
        now = snapshot(data)
        assert now in (old, new), (point, k, rec.stderr, sorted(set(now.items()) ^ set(new.items()))[:6])
        seen.add("old" if now == old else "new")
        for rel, v in kept.items():
            assert now.get(rel) == v, (point, k, rel)
        assert not [n for n in os.listdir(data) if n.startswith(".lifeboat")], (point, k)
    assert seen == {"old", "new"}, seen

    # A failing move in the carry-over rolls the whole restore back.
    reset()
    res = lb.run(["restore", ts, "--yes"], dict(env, LIFEBOAT_FAULT="restore.keep@2:fail"),
                 check=EXIT_SOURCE)
    assert snapshot(data) == old, res

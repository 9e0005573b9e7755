"""The walker's system calls for small files, and its way back when an entry changed type.

An entry that readdir calls a regular file is opened without an fstatat first: a small
file costs openat, fstat, one read and close. An entry replaced by a symlink between the
readdir and the open (the test build's fault point "walk.to_symlink") is archived as the
symlink it has become.
"""
import os
import re
import subprocess
import tarfile

from conftest import need_tool


def _small_files(lb, n=50):
    d = lb.src / "many"
    d.mkdir()
    for i in range(n):
        (d / f"small-{i:03d}.txt").write_bytes(b"small file %d\n" % i * 40)
    return d


def test_a_small_file_costs_four_system_calls(lb):
    need_tool("strace")
    _small_files(lb)
    trace = lb.tmp / "strace.txt"
    env = lb.env({"BACKUP_ENCRYPTION": "none"})
    # LeakSanitizer (an ASan build) cannot run under ptrace; the rest of ASan can.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "detect_leaks=0"]))
    p = subprocess.run(["strace", "-f", "-qq", "-y", "-o", str(trace),
                        "-e", "trace=openat,newfstatat,fstat,statx,read,pread64,close",
                        str(lb.bin), "backup"], env=env, capture_output=True, text=True,
                       timeout=300, cwd=str(lb.tmp))
    assert p.returncode == 0, p.stderr
    calls = {}
    for line in trace.read_text().splitlines():
        m = re.search(r"small-(\d{3})\.txt", line)
        if m:
            name = re.search(r"^\d+\s+(\w+)\(", line).group(1)
            calls.setdefault(m.group(1), []).append(name)
    assert len(calls) == 50, sorted(calls)
    for f, names in calls.items():
        # by name: openat; by descriptor: fstat (newfstatat with AT_EMPTY_PATH), read, close
        assert sorted(names) == ["close", "newfstatat", "openat", "read"], (f, names)


def test_a_file_replaced_by_a_symlink_before_its_open_is_archived_as_the_link(lb, tmp_path):
    d = _small_files(lb, 3)
    # passes: the tree's entries in walk order; the fault hits the first regular file that
    # readdir listed, whichever it is
    res = lb.run(["backup"], {"BACKUP_ENCRYPTION": "none",
                              "LIFEBOAT_FAULT": "walk.to_symlink@1:fail"})
    ts = res.stdout.strip().splitlines()[-1]
    arch = lb.archive(ts, ".tar.gz")
    links = {}
    with tarfile.open(arch) as t:
        for m in t:
            if m.issym():
                links[m.name] = m.linkname
    replaced = [n for n, target in links.items() if target == "target"]
    assert len(replaced) == 1, links
    # what the walk found on disk is what was archived: a link where the file was
    rel = replaced[0].split("/", 2)[2]
    assert os.readlink(lb.src / rel) == "target"
    assert "vanished" not in res.stderr and "cannot" not in res.stderr, res.stderr

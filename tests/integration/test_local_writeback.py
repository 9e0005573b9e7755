"""The local store starts the archive's writeback while the backup runs (sync_file_range
every 16 MiB), so the fsync before the rename has little left to write; a write error
that writeback reports fails the run like any write error of the store."""
import os
import subprocess

import pytest

from conftest import EXIT_STORE, assert_no_archive, assert_same_tree, need_tool, snapshot

MIB = 1024 * 1024


def big_source(lb):
    # 40 MiB that gzip cannot shrink: the archive passes the 16 MiB chunk twice.
    (lb.src / "big.bin").write_bytes(os.urandom(40 * MIB))


def strace_run(lb, args, extra=(), env_extra=None):
    need_tool("strace")
    env = lb.env(env_extra)
    # LeakSanitizer (an ASan build) cannot run under ptrace; the rest of ASan can.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "detect_leaks=0"]))
    out = lb.tmp / "strace.txt"
    res = subprocess.run(["strace", "-f", "-qq", "-o", str(out), "-e", "trace=sync_file_range",
                          *extra, str(lb.bin), *args], env=env, capture_output=True, text=True,
                         timeout=300, cwd=str(lb.tmp))
    return res, out.read_text()


def test_writeback_starts_during_the_backup_and_the_archive_restores(lb):
    """Every 16 MiB of archive written asks for writeback (at least twice for 40 MiB),
    and the archive still restores the tree exactly."""
    big_source(lb)
    before = snapshot(lb.src)
    res, trace = strace_run(lb, ["backup"])
    assert res.returncode == 0, res.stderr
    calls = [l for l in trace.splitlines() if "sync_file_range(" in l]
    assert len(calls) >= 2, f"expected writeback started during the run: {trace}"
    assert all("SYNC_FILE_RANGE_WRITE" in l and "= 0" in l for l in calls), trace
    ts = res.stdout.strip()
    (lb.src / "big.bin").write_bytes(b"changed")
    lb.restore(ts)
    assert_same_tree(before, snapshot(lb.src))


@pytest.mark.parametrize("how", ["strace-eio", "fault"])
def test_writeback_error_fails_the_run(lb, how):
    """A write error reported when writeback starts (EIO injected into sync_file_range,
    or the local.writeback fault point) fails the backup with exit 5 naming the archive,
    and leaves no archive and no .partial in the store."""
    big_source(lb)
    if how == "fault":
        res = lb.run(["backup"], {"LIFEBOAT_FAULT": "local.writeback@1:fail"}, check=EXIT_STORE)
    else:
        res, _ = strace_run(lb, ["backup"], ["-e", "inject=sync_file_range:error=EIO"])
        assert res.returncode == EXIT_STORE, res.stderr
    assert "cannot write '" in res.stderr and "Input/output error" in res.stderr, res.stderr
    assert_no_archive(lb)
    assert lb.run(["list"]).stdout.strip() == "", "a failed run must list nothing"


def test_a_file_system_without_sync_file_range_still_backs_up(lb):
    """sync_file_range refused as unsupported (EINVAL injected): the run goes on, with the
    fsync before the rename doing the writing, and the archive restores."""
    big_source(lb)
    before = snapshot(lb.src)
    res, trace = strace_run(lb, ["backup"], ["-e", "inject=sync_file_range:error=EINVAL"])
    assert res.returncode == 0, res.stderr
    calls = [l for l in trace.splitlines() if "sync_file_range(" in l]
    assert len(calls) == 1, f"expected one refused call, then none: {trace}"
    ts = res.stdout.strip()
    (lb.src / "big.bin").unlink()
    lb.restore(ts)
    assert_same_tree(before, snapshot(lb.src))

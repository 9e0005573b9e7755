"""The passphrase never shows up in output or in any process' command line."""

import os
import subprocess
import threading

from conftest import wreck_tree


def _scan_cmdlines(needle, own_pid):
    """Return (pids whose cmdline contains needle, whether own_pid was readable)."""
    hits, saw_own = [], False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if int(pid) == own_pid and b"backup" in cmd:
            saw_own = True
        if needle in cmd:
            hits.append((int(pid), cmd.replace(b"\0", b" ")[:200]))
    return hits, saw_own


def test_key_not_leaked_debug_output(lb):
    key = "Very-Secret-" + os.urandom(8).hex()
    for env in ({"BACKUP_DEBUG": "true"},
                {"BACKUP_DEBUG": "true", "BACKUP_ENCRYPTION_KEY_FILE": None,
                 "BACKUP_ENCRYPTION_KEY": key}):
        res = lb.run(["backup"], env)
        ts = res.stdout.strip()
        out = res.stdout + res.stderr
        assert lb.passphrase not in out and key not in out
        assert res.stderr.strip(), "BACKUP_DEBUG=true printed no log at all"
        for args in (["list"], ["list", "--json"], ["check"], ["verify", ts],
                     ["restore", ts, "--yes", "--dry-run"]):
            res = lb.run(args, env)
            out = res.stdout + res.stderr
            assert lb.passphrase not in out and key not in out, args
        # (the next run takes the next free second itself: no pause needed)
    wreck_tree(lb.src)
    res = lb.run(["restore", ts, "--yes"], {"BACKUP_DEBUG": "true",
                                             "BACKUP_ENCRYPTION_KEY_FILE": None,
                                             "BACKUP_ENCRYPTION_KEY": key})
    assert key not in res.stdout + res.stderr


def test_key_not_in_any_cmdline(lb):
    key = "Cmdline-Secret-" + os.urandom(8).hex()
    big = lb.src / "big" / "slow.bin"
    with open(big, "wb") as f:
        for _ in range(48):
            f.write(os.urandom(1 << 20))
    needle_env = key.encode()
    needle_file = lb.passphrase.encode()

    for env in ({"BACKUP_DEBUG": "true", "BACKUP_ENCRYPTION_KEY_FILE": None,
                 "BACKUP_ENCRYPTION_KEY": key},
                {"BACKUP_DEBUG": "true"}):
        proc = lb.popen(["backup"], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        scans, saw_own, hits = 0, False, []
        # read output in the background so the pipes never fill
        bufs = {}

        def reader(name, stream):
            bufs[name] = stream.read()
        threads = [threading.Thread(target=reader, args=("out", proc.stdout)),
                   threading.Thread(target=reader, args=("err", proc.stderr))]
        for t in threads:
            t.start()
        while proc.poll() is None:
            for needle in (needle_env, needle_file):
                h, own = _scan_cmdlines(needle, proc.pid)
                hits += h
                saw_own = saw_own or own
            scans += 1
        for t in threads:
            t.join()
        assert proc.returncode == 0, bufs.get("err", b"").decode(errors="replace")
        assert not hits, f"passphrase visible in a command line: {hits}"
        assert scans >= 3 and saw_own, \
            f"backup too fast to observe (scans={scans}); the scan proved nothing"
        out = bufs["out"] + bufs["err"]
        assert needle_env not in out and needle_file not in out

"""Progress on long work (issue 17): a live line on a terminal's stderr during backup,
restore and verify, with the estimate from the last backup's size; a log line at an
interval without a terminal; nothing in --json output or on stdout."""

import json
import os
import pty
import subprocess
import threading

from conftest import parse_ts_stdout, snapshot

WIPE = "\r\x1b[K"


def run_on_pty(lb, args, env_extra=None):
    """Run lifeboat with stderr on a pseudo-terminal (stdout a pipe): rc, stdout, terminal."""
    master, slave = pty.openpty()
    chunks = []

    def drain():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: every slave end is closed
                return
            if not b:
                return
            chunks.append(b)
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    p = subprocess.Popen([lb.bin] + list(args), env=lb.env(env_extra), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave, cwd=str(lb.tmp))
    os.close(slave)
    out, _ = p.communicate(timeout=300)
    t.join(timeout=60)
    os.close(master)
    return p.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


def test_progress_line_on_a_terminal(lb):
    first = lb.backup()  # no terminal: no progress line at all
    rc, out, term = run_on_pty(lb, ["backup"])
    assert rc == 0, term
    ts = out.strip()
    assert ts > first and "\n" not in ts  # stdout is the timestamp only
    # Drawn in place, with bytes, files, elapsed and the estimate from the first backup.
    assert WIPE + "backup: " in term, term
    line = term.split(WIPE + "backup: ")[1].split("\r")[0]
    assert " of ~" in line and " files" in line and " elapsed" in line, line
    # Log lines wipe it first, so no log line starts in the middle of a progress line.
    for l in term.replace("\r\n", "\n").split("\n"):
        if " lifeboat[" in l:
            assert l.startswith(WIPE) or l[:4].isdigit(), repr(l)

    rc, out, term = run_on_pty(lb, ["verify", ts])
    assert rc == 0, term
    assert WIPE + "verify: " in term
    before = snapshot(lb.src)
    rc, out, term = run_on_pty(lb, ["restore", ts, "--yes"])
    assert rc == 0, term
    assert WIPE + "restore: " in term
    assert snapshot(lb.src) == before


def test_no_progress_without_terminal_by_default(lb):
    ts = lb.backup()
    res = lb.run(["verify", ts])
    for r in (res,):
        assert "\x1b[K" not in r.stderr
        assert "verify: " not in r.stderr


def test_progress_log_line_without_terminal(lb):
    """The 30 s interval, shortened by the test build's knob."""
    knob = {"LIFEBOAT_TEST_PROGRESS_INTERVAL_MS": "50"}
    res = lb.run(["backup"], knob)
    parse_ts_stdout(res)
    assert "\x1b" not in res.stderr
    lines = [l for l in res.stderr.splitlines() if " info: backup: " in l]
    assert lines and " files" in lines[0] and " elapsed" in lines[0], res
    assert " info: backup: " in (lb.tmp / "backup.log").read_text()


def test_never_in_json_output(lb):
    ts = lb.backup()
    for args in (["ls", ts, "--json"], ["list", "--json"]):
        rc, out, term = run_on_pty(lb, args, {"LIFEBOAT_TEST_PROGRESS_INTERVAL_MS": "50"})
        assert rc == 0, term
        json.loads(out)
        assert "\x1b[K" not in term and "restore: " not in term and "verify: " not in term

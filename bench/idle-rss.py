#!/usr/bin/env python3
"""Idle memory of `lifeboat run` (issue #18: idle daemon <= 6 MiB RSS).

Starts `lifeboat run` with a daily schedule, waits until it has recorded its next run in
the state file (it is then past its start-up and idle), and reads VmRSS, RssAnon,
RssFile and RssShmem from /proc/PID/status. Three configurations: files only
(BACKUP_DIRS + BACKUP_FILES, local store), the same with BACKUP_METRICS_ADDR (after one
scrape of /metrics), and with a PostgreSQL source (LB_PG_HOST/PORT/USER/PASSWORD of a
running server; skipped without them). Each binary given with --bin is measured in turn,
alternated, for --rounds rounds; the median and the spread are printed (KiB).

  python3 bench/idle-rss.py --bin build/lifeboat --bin /tmp/old/lifeboat --rounds 5
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid):
    """user+sys of the process so far (its start-up, before and after the exec)."""
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(binary, mode, tmp):
    tmp = Path(tempfile.mkdtemp(dir=tmp))
    (tmp / "src").mkdir()
    (tmp / "src" / "a.txt").write_text("hello\n")
    (tmp / "single.conf").write_text("x = 1\n")
    (tmp / "store").mkdir()
    (tmp / "key").write_text("bench-passphrase\n")
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp), "TZ": "UTC",
        "BACKUP_NAME": "idle", "BACKUP_LOCAL_PATH": str(tmp / "store"),
        "BACKUP_ENCRYPTION_KEY_FILE": str(tmp / "key"),
        "BACKUP_DIRS": f"{tmp / 'src'}:data", "BACKUP_FILES": f"{tmp / 'single.conf'}:single",
        "BACKUP_STATE_DIR": str(tmp / "state"), "BACKUP_LOG_FILE": str(tmp / "log"),
        "BACKUP_SCHEDULE": "0 3 * * *", "MONGOC_DISABLE_SHM": "1",
    }
    port = None
    if mode == "metrics":
        port = free_port()
        env["BACKUP_METRICS_ADDR"] = f"127.0.0.1:{port}"
    if mode == "postgres":
        env["BACKUP_POSTGRES"] = (f"postgresql://{os.environ['LB_PG_USER']}:"
                                  f"{os.environ['LB_PG_PASSWORD']}@{os.environ['LB_PG_HOST']}:"
                                  f"{os.environ['LB_PG_PORT']}/postgres")
    proc = subprocess.Popen([binary, "run"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = tmp / "state" / "idle.state.json"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                sys.exit(f"{binary} run exited {proc.returncode}: {proc.stderr.read().decode()}")
            try:
                if json.loads(state.read_text()).get("next_run"):
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                sys.exit("no next_run in the state file after 120 s")
            time.sleep(0.05)
        if port:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
                r.read()
        # Settled: the same figure twice in a row, 0.2 s apart.
        prev = None
        while True:
            cur = status_kib(proc.pid)
            if cur == prev:
                cur["cpu"] = cpu_seconds(proc.pid)
                return cur
            prev = cur
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--modes", default="files,metrics,postgres")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",")
             if m != "postgres" or os.environ.get("LB_PG_HOST")]
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for mode in modes:
                for b in args.bin:
                    res.setdefault((b, mode), []).append(measure(b, mode, tmp))
    print(f"load average: {os.getloadavg()}")
    print(f"{'binary':40} {'config':9} {'VmRSS':>16} {'RssAnon':>8} {'RssFile':>8} "
          f"{'RssShmem':>8}  (KiB)  start-up CPU s")
    for (b, mode), runs in res.items():
        rss = [r["VmRSS"] for r in runs]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{b:40} {mode:9} {med['VmRSS']:>7.0f} ({min(rss)}-{max(rss)}) "
              f"{med['RssAnon']:>8.0f} {med['RssFile']:>8.0f} {med['RssShmem']:>8.0f}"
              f"   = {med['VmRSS'] / 1024:.1f} MiB  {med['cpu']:.2f}")
    for mode in modes:
        if len(args.bin) > 1:
            ratios = [a["VmRSS"] / b["VmRSS"] for a, b in
                      zip(res[(args.bin[0], mode)], res[(args.bin[1], mode)])]
            print(f"{mode}: VmRSS {args.bin[0]} / {args.bin[1]}: median "
                  f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()

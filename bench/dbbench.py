"""Shared by the database dump benchmarks (mysql-dump.py, redis-dump.py, pg-dump.py).

Each round runs every command once, in the same order (the plain tool first, then each
Lifeboat binary and setting), so a loaded machine slows all of them alike; the result per
Lifeboat row is its speed relative to the plain tool *in the same round* (plain seconds /
lifeboat seconds), and the report gives the median of those ratios over the rounds, their
spread (min-max), the median seconds, and the load average before and after.
"""

import os
import statistics
import subprocess
import sys
import time


def lifeboat_env(base, store, comp, key=True):
    """Lifeboat's environment for one row: BACKUP_COMPRESSION=comp, gpg (default) or none."""
    env = dict(base, BACKUP_LOCAL_PATH=str(store), BACKUP_COMPRESSION=comp,
               BACKUP_KEEP_LAST="1")
    if key:
        env["BACKUP_ENCRYPTION_KEY"] = "bench-passphrase"
    else:
        env["BACKUP_ENCRYPTION"] = "none"
    return env


def timed(argv, env=None, ok=None, stdout=subprocess.DEVNULL):
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    if p.returncode != 0 and not (ok and ok(p)):
        sys.exit(f"{argv[0]} failed: {p.stderr.decode(errors='replace')[-2000:]}")
    return dt


def rounds(cmds, n, before_each=None):
    """cmds: list of (name, fn() -> seconds); the first is the plain tool. Returns times."""
    times = {name: [] for name, _ in cmds}
    for r in range(n):
        for name, fn in cmds:
            if before_each:
                before_each()
            times[name].append(fn())
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
              flush=True)
    return times


def report(times, nbytes, what, goal=0.9):
    names = list(times)
    plain = times[names[0]]
    print(f"\n{what}: {nbytes / 1e6:.1f} MB, {len(plain)} rounds, alternated; "
          f"load average {load0} -> {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"| row | median s | MB/s | speed / {names[0]} (median) | spread (min-max) |")
    print("|---|---|---|---|---|")
    for k in names:
        med = statistics.median(times[k])
        if k == names[0]:
            print(f"| {k} | {med:.2f} | {nbytes / 1e6 / med:.1f} | 1 | |")
            continue
        ratios = [p / t for p, t in zip(plain, times[k])]
        m = statistics.median(ratios)
        print(f"| {k} | {med:.2f} | {nbytes / 1e6 / med:.1f} | **{m:.2f}** "
              f"({'met' if m >= goal else 'not met'}, goal >= {goal}) | "
              f"{min(ratios):.2f}-{max(ratios):.2f} |")


load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())

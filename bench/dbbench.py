"""Shared by the database dump benchmarks (mysql-dump.py, redis-dump.py, pg-dump.py).

Each round runs every command once, in the same order (the plain tool first, then each
Lifeboat binary and setting), so a loaded machine slows all of them alike; the result per
Lifeboat row is its speed relative to the plain tool *in the same round* (plain seconds /
lifeboat seconds), and the report gives the median of those ratios over the rounds, their
spread (min-max), the median seconds, and the load average before and after.

CPU seconds are measured per command, since they barely move with the load while wall
seconds do: the command's own (user+sys of it and every child it reaped: getrusage
RUSAGE_CHILDREN before and after; for Lifeboat that is lifeboat + the dump tool + gzip/gpg
children, for the plain row the tool alone) and the database server's (utime+stime+cutime+
cstime of its main process from /proc/PID/stat before and after: its threads, and the
backends or fork children it reaped; "after" waits until every child started during the
command is reaped, since redis-server reaps its snapshot fork up to a cron tick later).
"""

import os
import resource
import statistics
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")

# Lifeboat's rows: (name, BACKUP_COMPRESSION, encrypted with gpg?).
SETTINGS = (("default", "gzip", True), ("zstd", "zstd", True), ("none", "none", True),
            ("none/none", "none", False))


def lifeboat_env(base, store, comp, key=True):
    """Lifeboat's environment for one row: BACKUP_COMPRESSION=comp, gpg (default) or none."""
    env = dict(base, BACKUP_LOCAL_PATH=str(store), BACKUP_COMPRESSION=comp,
               BACKUP_KEEP_LAST="1")
    if key:
        env["BACKUP_ENCRYPTION_KEY"] = "bench-passphrase"
    else:
        env["BACKUP_ENCRYPTION"] = "none"
    return env


def lifeboat_rows(bins, base, store):
    """(row name, fn) for each --bin LABEL=PATH and each of SETTINGS."""
    out = []
    for b in bins:
        label, _, path = b.rpartition("=")
        for name, comp, key in SETTINGS:
            env = lifeboat_env(base, store, comp, key)
            out.append((f"{label} {name}",
                        lambda p=path, env=env: timed([p, "backup"], env)))
    return out


def proc_cpu(pid):
    """CPU seconds of process pid and the children it reaped, or 0 without one."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17
    return sum(int(x) for x in fields[11:15]) / TICK


def proc_children(pid):
    """The pids of pid's children (all its threads')."""
    kids = set()
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                kids.update(f.read().split())
    except OSError:
        pass
    return kids


def settled_cpu(pid, before, limit=30.0):
    """proc_cpu(pid) once every child pid started since `before` is gone (reaped: its
    CPU is in cutime then), e.g. redis-server's snapshot fork, which the server reaps
    up to a cron tick after the client ended; waits at most `limit` seconds."""
    if not pid:
        return 0.0
    end = time.monotonic() + limit
    while proc_children(pid) - before and time.monotonic() < end:
        time.sleep(0.02)
    return proc_cpu(pid)


server_pid = None  # set by the benchmark: the database server's main process


def timed(argv, env=None, ok=None, stdout=subprocess.DEVNULL):
    """Run argv; (wall s, CPU s of it and its children, CPU s of the server)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    kids = proc_children(server_pid) if server_pid else set()
    s0 = settled_cpu(server_pid, kids)
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    s1 = settled_cpu(server_pid, kids)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0 and not (ok and ok(p)):
        sys.exit(f"{argv[0]} failed: {p.stderr.decode(errors='replace')[-2000:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return dt, cpu, s1 - s0


def rounds(cmds, n, before_each=None):
    """cmds: list of (name, fn() -> timed()); the first is the plain tool."""
    res = {name: [] for name, _ in cmds}
    for r in range(n):
        for name, fn in cmds:
            if before_each:
                before_each()
            res[name].append(fn())
        print(f"round {r + 1} (load {os.getloadavg()[0]:.1f}): " +
              ", ".join(f"{k} {v[-1][0]:.2f}s cpu {v[-1][1]:.2f}+{v[-1][2]:.2f}"
                        for k, v in res.items()), flush=True)
    return res


def report(res, nbytes, what, goal=0.9):
    names = list(res)
    plain = [x[0] for x in res[names[0]]]
    print(f"\n{what}: {nbytes / 1e6:.1f} MB, {len(plain)} rounds, alternated; "
          f"load average {load0} -> {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"| row | median s | MB/s | speed / {names[0]} (median) | spread (min-max) "
          f"| CPU s: command + children | CPU s: server | CPU s: both |")
    print("|---|---|---|---|---|---|---|---|")
    for k in names:
        wall = [x[0] for x in res[k]]
        cpu = statistics.median(x[1] for x in res[k])
        srv = statistics.median(x[2] for x in res[k])
        both = statistics.median(x[1] + x[2] for x in res[k])
        med = statistics.median(wall)
        cpus = f"{cpu:.2f} | {srv:.2f} | {both:.2f}"
        if k == names[0]:
            print(f"| {k} | {med:.2f} | {nbytes / 1e6 / med:.1f} | 1 | | {cpus} |")
            continue
        ratios = [p / t for p, t in zip(plain, wall)]
        m = statistics.median(ratios)
        print(f"| {k} | {med:.2f} | {nbytes / 1e6 / med:.1f} | **{m:.2f}** "
              f"({'met' if m >= goal else 'not met'}, goal >= {goal}) | "
              f"{min(ratios):.2f}-{max(ratios):.2f} | {cpus} |")
    print(f"\nCPU seconds are medians over the rounds. On {os.cpu_count()} cores a row whose "
          f"CPU s (both) exceed {os.cpu_count()} x its wall s is CPU-bound.")


load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())

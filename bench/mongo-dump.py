#!/usr/bin/env python3
"""MongoDB dump speed: `lifeboat backup` of a BACKUP_MONGODB source against a plain cursor
scan of the same collection (issue #18, "dump speed", goal >= 0.8), in the same run.

Starts a private FerretDB (tests/lbservers.py; --backend sqlite, as the tests run it, or
postgresql, on a private PostgreSQL from scripts/pg-test-server.sh), fills one collection
with --mb MB of BSON (documents of about 1 KiB: strings, numbers, a date, an array, a
sub-document), then runs --rounds rounds, each running, in this order:

  scan             bench/mongo-scan.c: find({}) over the collection with libmongoc's
                   defaults (the server's batch size), every document discarded
  mongodump        mongodump --db bench --collection c --archive=/dev/null (built from
                   mongo-tools like the tests' mongorestore, cached in LB_TEST_CACHE)
  LABEL default    lifeboat backup of BACKUP_MONGODB=…/bench with the default settings
                   (gzip, gpg), into a local store
  LABEL none       the same with BACKUP_COMPRESSION=none (gpg still on)
  LABEL raw        BACKUP_COMPRESSION=none BACKUP_ENCRYPTION=none: the dump alone

for each --bin LABEL=PATH (default: new=build/lifeboat). It prints, per row, the median
seconds, the median of the per-round speed ratios (scan seconds / row seconds; goal >= 0.8)
with their spread and the load average (bench/dbbench.py), then the CPU seconds (user +
system) of the command and its children (getrusage) and of the server processes in the
same interval (/proc/PID/stat: FerretDB, and PostgreSQL's postmaster with its backends).

    python3 bench/mongo-dump.py --mb 50 --rounds 5 --bin old=/tmp/lb-old --bin new=build/lifeboat
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
import dbbench  # noqa: E402
import lbservers  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def mongodump_bin():
    """mongodump from the same mongo-tools pin as the tests' mongorestore, built once."""
    def build(out):
        nosum = {"GONOSUMDB": "github.com/mongodb/mongo-tools"}
        tmp = lbservers.module_copy(f"github.com/mongodb/mongo-tools@{lbservers.MONGO_TOOLS_VERSION}",
                                    lbservers.MONGO_TOOLS_SUM, nosum)
        try:
            shutil.rmtree(os.path.join(tmp, "vendor"), ignore_errors=True)
            lbservers.go_run(["build", "-o", str(out), "./mongodump/main"], cwd=tmp,
                             env_extra={**nosum, "GOFLAGS": "-mod=mod -buildvcs=false"})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return lbservers.cached_build("mongodump", lbservers.MONGO_TOOLS_VERSION, build)


def proc_cpu(pid, children=False):
    """CPU seconds of one process (utime + stime; with its reaped children's if asked)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / TICK


def tree_cpu(root):
    """CPU seconds of `root` (with the children it reaped) and of its live children."""
    total = proc_cpu(root, children=True)
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if open(p / "stat").read().rsplit(")", 1)[1].split()[1] == str(root):
                    total += proc_cpu(p.name)
            except OSError:
                pass
    return total


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Ferret(lbservers.FerretDB):
    def __init__(self, pg_url=None):
        super().__init__()
        if pg_url:
            self.argv = [a for a in self.argv if not a.startswith(("--handler", "--sqlite-url"))]
            self.argv += ["--handler=postgresql", f"--postgresql-url={pg_url}"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--bin", action="append", help="LABEL=PATH (repeatable)")
    ap.add_argument("--rows", default="default,none,raw",
                    help="Lifeboat rows to run (comma-separated: default, none, raw)")
    a = ap.parse_args()

    import bson
    import pymongo

    work = Path(tempfile.mkdtemp(prefix="lb-mongo-bench."))
    pg = srv = None
    try:
        scan = work / "mongo-scan"
        subprocess.run(["cc", "-O2", "-o", str(scan), str(REPO / "bench/mongo-scan.c"),
                        *subprocess.check_output(["pkg-config", "--cflags", "--libs",
                                                  "libmongoc-1.0"], text=True).split()],
                       check=True)
        dump = mongodump_bin()
        servers = []  # (name, pid, with children)
        if a.backend == "postgresql":
            pg = lbservers.Postgres().start()
            pgpw = urllib.parse.quote(pg.password, safe="")
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1",
                            f"postgresql://postgres:{pgpw}@127.0.0.1:{pg.port}/postgres", "-c",
                            "CREATE DATABASE ferretdb"], check=True)
            srv = Ferret(f"postgres://postgres:{pgpw}@127.0.0.1:{pg.port}/ferretdb").start()
            postmaster = int((pg.workdir / "srv/data/postmaster.pid").read_text().split()[0])
            servers.append(("postgres", postmaster))
        else:
            srv = Ferret().start()
        servers.insert(0, ("ferretdb", srv.proc.pid))

        client = pymongo.MongoClient(srv.uri)
        coll = client.bench.c
        coll.drop()
        filler = "lorem ipsum dolor sit amet " * 30
        n, nbytes, batch = 0, 0, []
        t0 = time.monotonic()
        while nbytes < a.mb * 1e6:
            doc = {"_id": n, "name": f"user {n}", "email": f"user{n}@example.com",
                   "n": n, "f": n / 7, "at": time.time(), "tags": ["a", "b", str(n % 97)],
                   "addr": {"street": f"{n} Main Street", "city": "Springfield", "zip": n % 99999},
                   "text": filler[: 700 + n % 200]}
            batch.append(doc)
            nbytes += len(bson.encode(doc))
            n += 1
            if len(batch) == 1000:
                coll.insert_many(batch, ordered=False)
                batch = []
        if batch:
            coll.insert_many(batch, ordered=False)
        out = subprocess.run([str(scan), "bench", "c"], env=dict(os.environ, MONGO_SCAN_URI=srv.uri),
                             capture_output=True, text=True, check=True).stdout.split()
        ndocs, nbytes = int(out[0]), int(out[2])
        print(f"filled {ndocs} documents, {nbytes / 1e6:.1f} MB of BSON in "
              f"{time.monotonic() - t0:.0f} s (FerretDB, {a.backend})", flush=True)

        pw = urllib.parse.quote(srv.password, safe="")
        uri = f"mongodb://{srv.user}:{pw}@{srv.hostport}/bench?authSource=admin"
        cfgfile = work / "mongodump.yaml"
        cfgfile.write_text(f"uri: '{srv.uri}'\n")
        store = work / "store"
        base = {"PATH": os.environ["PATH"], "HOME": str(work), "BACKUP_NAME": "bench",
                "BACKUP_MONGODB": uri, "BACKUP_STATE_DIR": str(work / "state"),
                "BACKUP_LOG_FILE": str(work / "log"), "MONGOC_DISABLE_SHM": "1"}
        cpu = {}

        def measured(name, argv, env=None):
            def run():
                c0 = children_cpu()
                s0 = [tree_cpu(pid) for _, pid in servers]
                dt = dbbench.timed(argv, env)
                s1 = [tree_cpu(pid) for _, pid in servers]
                cpu.setdefault(name, []).append(
                    [children_cpu() - c0] + [y - x for x, y in zip(s0, s1)])
                return dt
            return (name, run)

        def fresh():
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir()

        cmds = [measured("scan", [str(scan), "bench", "c"],
                         dict(os.environ, MONGO_SCAN_URI=srv.uri)),
                measured("mongodump", [str(dump), f"--config={cfgfile}", "--quiet", "--db=bench",
                                       "--collection=c", "--archive=/dev/null"])]
        settings = {"default": ("gzip", True), "none": ("none", True), "raw": ("none", False)}
        for b in a.bin or [f"new={REPO / 'build' / 'lifeboat'}"]:
            label, _, path = b.rpartition("=")
            label = label or Path(path).name
            for row in a.rows.split(","):
                comp, key = settings[row]
                env = dbbench.lifeboat_env(base, store, comp, key)
                cmds.append(measured(f"{label} {row}", [path, "backup"], env))
        times = dbbench.rounds(cmds, a.rounds, fresh)
        dbbench.report(times, nbytes, f"MongoDB dump of {ndocs} documents (FerretDB, "
                       f"{a.backend})", goal=0.8)
        names = [s for s, _ in servers]
        print("\nCPU seconds per run (median over the rounds; the command with its children, "
              "then each server process in the same interval):")
        print("| row | command CPU s | " + " | ".join(f"{s} CPU s" for s in names) +
              " | total CPU s |")
        print("|---|---|" + "---|" * len(names) + "---|")
        for k, v in cpu.items():
            cols = [statistics.median(x[i] for x in v) for i in range(len(v[0]))]
            tot = statistics.median(sum(x) for x in v)
            print(f"| {k} | " + " | ".join(f"{c:.2f}" for c in cols) + f" | {tot:.2f} |")
        client.close()
    finally:
        if srv:
            srv.cleanup()
        if pg:
            pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

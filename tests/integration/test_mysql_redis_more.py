"""MySQL/MariaDB and Redis sources, the parts of issue 14 test_mysql.py and test_redis.py do
not cover: BACKUP_MYSQL_FILE (good and bad files, the password in no argv, environment,
log or message), BACKUP_MYSQL_DUMP's auto/local/exec choice as far as it can be seen without
a Docker engine, `restore --only` / `--to` with several MySQL sources, and the per-source
metrics and webhook bodies of MySQL and Redis sources.

Against the real servers of tests/lbservers.py (Debian's mariadb-server and redis-server).
Rows are compared by ordered checksums of every table (test_mysql.fingerprint), Redis keys
by DUMP and PEXPIRETIME (test_redis.Rd.keys).
"""

import json
import tarfile
import os
import socket
import socketserver
import subprocess
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import lbservers
from conftest import (EXIT_CONFIG, EXIT_NOT_FOUND, EXIT_SOURCE, assert_no_archive,
                      gpg_decrypt_pipe_tar, need_tool)
from test_mysql import fingerprint, my, my_env  # noqa: F401 (my: the fixture)
from test_daemon import Hooks, hook_env, parse_prom, stop
from test_redis import rd  # noqa: F401 (rd: the fixture)
from waiting import HANG, wait_until


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def tool_shims(tmp_path, tools=("mariadb-dump", "mariadb")):
    """A directory of wrappers, first in PATH: each records, as the process the real tool
    becomes (the wrapper execs it, so the pid, argv and environment are the tool's), its
    /proc/PID/cmdline and /proc/PID/environ, then execs the real tool. Returns
    (PATH, record directory)."""
    shim = tmp_path / "shim"
    rec = tmp_path / "shim-records"
    shim.mkdir()
    rec.mkdir()
    for t in tools:
        real = need_tool(t)
        (shim / t).write_text(
            "#!/bin/sh\n"
            f"d={rec}/{t}.$$\n"
            # What the tool is exec'd with: this shell's arguments ("$0" is the shim path,
            # replaced by the real one at the exec, nothing else changes) and environment.
            "printf '%s\\0' \"$0\" \"$@\" > \"$d.argv\"\n"
            "cat /proc/$$/environ > \"$d.environ\"\n"
            f"exec {real} \"$@\"\n")
        os.chmod(shim / t, 0o755)
    return f"{shim}:{os.environ['PATH']}", rec


def shim_runs(rec, tool, with_version=False):
    """[(argv list, environ dict)] of each run of `tool` the shims recorded; --version
    probes (which carry no connection settings) left out unless asked for."""
    out = []
    for a in sorted(rec.glob(f"{tool}.*.argv")):
        argv = a.read_bytes().split(b"\0")[:-1]
        env = dict(kv.split(b"=", 1) for kv in
                   a.with_suffix(".environ").read_bytes().split(b"\0") if b"=" in kv)
        if with_version or b"--version" not in argv:
            out.append((argv, env))
    return out


def secrets_of(password):
    return [password.encode(), urllib.parse.quote(password, safe="").encode()]


class ProcScan:
    """Scan /proc while a command runs: every process below `root` (lifeboat included)
    whose argv or environment holds a needle, and which of `tools` were seen running."""

    def __init__(self, root, needles, tools):
        self.root, self.needles, self.tools = root, needles, tools
        self.seen, self.hits = {}, []

    def below(self, pid):
        p = pid
        for _ in range(64):
            if p == self.root:
                return True
            try:
                stat = Path(f"/proc/{p}/stat").read_text()
            except OSError:
                return False
            p = int(stat[stat.rindex(")") + 2:].split()[1])
            if p <= 1:
                return False
        return False

    def scan(self):
        for d in os.listdir("/proc"):
            if not d.isdigit() or not self.below(int(d)):
                continue
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
                env = Path(f"/proc/{d}/environ").read_bytes()
            except OSError:
                continue
            prog = os.path.basename(cmd.split(b"\0")[0]).decode(errors="replace")
            if prog in self.tools and b"--version" not in cmd:
                self.seen.setdefault(prog, cmd)
            self.hits += [(d, prog, where) for n in self.needles
                          for where, blob in (("argv", cmd), ("environ", env)) if n in blob]


def error_lines(res):
    return [l for l in res.stderr_lines() if "error:" in l]


# --------------------------------------------------------------------------
# 1. BACKUP_MYSQL_FILE
# --------------------------------------------------------------------------

def uri_file(tmp_path, text, name="mysql-uris"):
    f = tmp_path / name
    f.write_text(text)
    os.chmod(f, 0o600)
    return f


def test_mysql_uri_from_file_backup_restore_and_no_secret_anywhere(lb, my, tmp_path):
    """BACKUP_MYSQL_FILE holds the URIs (with the percent-encoded password; one trailing
    newline, as a Docker secret file has): backup and restore work as with BACKUP_MYSQL.
    While mariadb-dump runs (held on a locked table) and while the restore runs, no process
    below lifeboat, lifeboat itself included (its environment names only the file), has
    the password in its argv or environment (/proc/PID/cmdline and environ); the PATH
    shims' records of exactly what each tool was exec'd with show the password in neither,
    --defaults-extra-file=/dev/fd/3 first, and no MYSQL_PWD; neither the log nor the
    output holds it."""
    db = my.new_db("file")
    my.sql(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), b BLOB) ENGINE=InnoDB;"
               "INSERT INTO t SELECT seq, CONCAT('zeile ✓ ', seq), UNHEX(SHA2(seq, 256)) "
               "FROM seq_1_to_60000;"
               "CREATE TABLE m (n INT) ENGINE=MyISAM; INSERT INTO m SELECT seq FROM seq_1_to_99")
    before = fingerprint(my, db)
    f = uri_file(tmp_path, my.uri(db) + "\n")
    path, rec = tool_shims(tmp_path)
    env = my_env([], BACKUP_MYSQL=None, BACKUP_MYSQL_FILE=str(f), PATH=path,
                 BACKUP_MYSQL_DUMP="local")
    needles = secrets_of(my.password)

    outputs = []
    # The backup: mariadb-dump is held (deterministically, not by speed) on a table another
    # session has locked, and scanned while it waits there; then the lock goes.
    locker = subprocess.Popen(my.client_args(db) + ["--unbuffered"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=my.env())
    proc = None
    try:
        locker.stdin.write(b"LOCK TABLES t WRITE; SELECT 'locked';\n")
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == b"locked"
        proc = lb.popen(["backup"], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        scan = ProcScan(proc.pid, needles, {"mariadb-dump"})
        waiting = (f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{db}' AND "
                   "INFO LIKE '%FROM `t`%' AND INFO NOT LIKE '%PROCESSLIST%'")
        wait_until(lambda: proc.poll() is not None or my.sql(None, waiting) == "1",
                   "mariadb-dump to wait for the locked table")
        assert proc.poll() is None, proc.communicate()
        wait_until(lambda: scan.scan() or "mariadb-dump" in scan.seen,
                   "the waiting mariadb-dump in /proc")
        locker.stdin.write(b"UNLOCK TABLES;\n")
        locker.stdin.close()
        while proc.poll() is None:
            scan.scan()
    finally:
        if locker.poll() is None:
            locker.kill()
        locker.wait()
        if proc and proc.poll() is None:
            proc.kill()
    out, err = proc.communicate(timeout=HANG)
    outputs += [out, err]
    assert proc.returncode == 0, err
    assert b"--defaults-extra-file=/dev/fd/3" in scan.seen["mariadb-dump"]
    assert not scan.hits, scan.hits
    ts = out.decode().strip()

    # The restore: every process scanned while it runs (the client may be too quick to be
    # caught; what it was started with is in the shim's record below, whatever its speed).
    my.sql(db, "DELETE FROM t WHERE id % 2 = 0; DROP TABLE m")
    assert fingerprint(my, db) != before
    proc = lb.popen(["restore", ts, "--yes"], env, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    scan = ProcScan(proc.pid, needles, {"mariadb"})
    try:
        while proc.poll() is None:
            scan.scan()
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=HANG)
    outputs += [out, err]
    assert proc.returncode == 0, err
    assert not scan.hits, scan.hits
    assert fingerprint(my, db) == before

    # What the tools were started with, recorded by the shims as they became the tools.
    for tool in ("mariadb-dump", "mariadb"):
        runs = shim_runs(rec, tool)
        assert runs, f"{tool} did not run through the shim"
        for argv, tenv in runs:
            assert argv[1] == b"--defaults-extra-file=/dev/fd/3", argv
            blob = b"\0".join(argv) + b"\0".join(k + b"=" + v for k, v in tenv.items())
            assert not [n for n in needles if n in blob], (tool, argv)
            assert b"MYSQL_PWD" not in tenv and b"BACKUP_MYSQL" not in tenv, sorted(tenv)
            assert b"BACKUP_MYSQL_FILE" not in tenv
    log = (lb.tmp / "backup.log").read_bytes()
    for blob in [log, *outputs]:
        assert not [n for n in needles if n in blob]


def test_mysql_file_secret_in_messages(lb, my, tmp_path):
    """A URI read from BACKUP_MYSQL_FILE that fails (a wrong password, an unknown option)
    fails the run with one line naming the source, the password as ***, in neither the
    output nor the log; `check` shows the URI from the file redacted."""
    db = my.new_db("filemsg")
    wrong = "wr0ng@:/" + os.urandom(4).hex()
    for uri, code, needle in ((my.uri(db, password=wrong), EXIT_SOURCE, "Access denied"),
                              (my.uri(db, query="sslfoo=1"), EXIT_CONFIG, "unknown option")):
        f = uri_file(tmp_path, uri + "\n")
        env = my_env([], BACKUP_MYSQL=None, BACKUP_MYSQL_FILE=str(f))
        res = lb.run(["backup"], env, check=code)
        err = [l for l in error_lines(res) if needle in l]
        assert len(err) == 1 and ("MySQL" in err[0] or "BACKUP_MYSQL" in err[0]), res
        assert "***" in err[0], res
        text = res.stdout + res.stderr + (lb.tmp / "backup.log").read_text()
        for pw in (wrong, my.password):
            assert pw not in text and urllib.parse.quote(pw, safe="") not in text
        assert_no_archive(lb)
    f = uri_file(tmp_path, my.uri(db) + "\n")
    res = lb.run(["check"], my_env([], BACKUP_MYSQL=None, BACKUP_MYSQL_FILE=str(f)))
    text = res.stdout + res.stderr
    assert f"{my.user}:***@" in text and db in text, res
    assert my.password not in text and urllib.parse.quote(my.password, safe="") not in text


def bad_mysql_files(tmp_path, my):
    """(id, BACKUP_MYSQL_FILE value, extra env, what the one error line must say)."""
    big = tmp_path / "big"
    big.write_text(my.uri("x") + "\n" + "#" * (65 * 1024))
    adir = tmp_path / "a-directory"
    adir.mkdir()
    empty = uri_file(tmp_path, "", "empty")
    newline = uri_file(tmp_path, "\n", "newline")
    good = uri_file(tmp_path, my.uri("x") + "\n", "good")
    return [
        ("missing", str(tmp_path / "no-such-file"), {}, "No such file"),
        ("directory", str(adir), {}, "Is a directory"),
        ("too-big", str(big), {}, "larger than 64 KiB"),
        ("not-a-dir", str(good) + "/x", {}, "Not a directory"),
        ("empty", str(empty), {}, "is empty"),
        ("only-newline", str(newline), {}, "is empty"),
        ("uri-pasted", my.uri("x"), {}, "value redacted"),
        ("both-set", str(good), {"BACKUP_MYSQL": my.uri("x")}, "both set"),
    ]


@pytest.mark.parametrize("case", ["missing", "directory", "too-big", "not-a-dir", "empty",
                                  "only-newline", "uri-pasted", "both-set"])
def test_bad_mysql_file_one_line_exit_3_check_refuses_too(lb, my, tmp_path, case):
    """Every bad BACKUP_MYSQL_FILE: `backup` and `check` both exit 3 with the same one
    line naming BACKUP_MYSQL_FILE (and BACKUP_MYSQL when both are set), nothing stored,
    no password shown (also when the URI itself was pasted in place of a path)."""
    cid, value, extra, needle = {c[0]: c for c in bad_mysql_files(tmp_path, my)}[case]
    env = my_env([], **{"BACKUP_MYSQL": None, "BACKUP_MYSQL_FILE": value, **extra})
    lines = {}
    for cmd in ("backup", "check"):
        res = lb.run([cmd], env, check=EXIT_CONFIG)
        err = error_lines(res)
        assert len(err) == 1, res
        assert "BACKUP_MYSQL_FILE" in err[0] and needle in err[0], err
        if case == "both-set":
            assert "BACKUP_MYSQL and BACKUP_MYSQL_FILE" in err[0], err
        text = res.stdout + res.stderr
        assert my.password not in text and urllib.parse.quote(my.password, safe="") not in text
        lines[cmd] = err[0].split("error:", 1)[1]
    assert lines["backup"] == lines["check"]
    assert_no_archive(lb)


# --------------------------------------------------------------------------
# 2. BACKUP_MYSQL_DUMP=auto|local|exec without a Docker engine
# --------------------------------------------------------------------------

class FakeEngine:
    """A unix socket where DOCKER_HOST points: it records every request line it gets,
    answers GET /version as an engine (API 1.43) and everything else 404, as an engine
    that runs no container of that name would. Whether Lifeboat asked it for the URI's host
    (`/containers/127.0.0.1/json`) tells whether it looked for the database's container
    (the rest is the sidecar looking for its own Compose project, as every run does)."""

    def __init__(self, path):
        self.path = str(path)
        self.requests = []
        eng = self

        class H(socketserver.StreamRequestHandler):
            def handle(self):
                line = self.rfile.readline().decode(errors="replace").strip()
                eng.requests.append(line)
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                if " /version " in line:
                    status, body = b"200 OK", b'{"ApiVersion":"1.43","MinAPIVersion":"1.12"}'
                else:
                    status, body = b"404 Not Found", b'{"message":"no such container"}'
                self.wfile.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json"
                                 b"\r\nConnection: close\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)

        self.server = socketserver.ThreadingUnixStreamServer(self.path, H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"unix://{self.path}"

    def asked_for(self, name):
        return [r for r in self.requests if f"/containers/{name}/json" in r]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class VersionProxy:
    """A TCP forwarder to the MariaDB server that rewrites the version string of the
    server's greeting (the first packet) to a MySQL one: to the client the server is
    MySQL 8, which is what makes BACKUP_MYSQL_DUMP=auto look for its container."""

    def __init__(self, port, version=b"8.0.36"):
        self.target = ("127.0.0.1", int(port))
        prx = self

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                up = socket.create_connection(prx.target)
                try:
                    head = self.recv_exact(up, 4)
                    n = int.from_bytes(head[:3], "little")
                    pkt = self.recv_exact(up, n)
                    assert pkt[0] == 10, "not a v10 greeting"
                    end = pkt.index(b"\0", 1)
                    pkt = pkt[:1] + version + pkt[end:]
                    self.request.sendall(len(pkt).to_bytes(3, "little") + head[3:4] + pkt)
                    t = threading.Thread(target=self.pump, args=(up, self.request), daemon=True)
                    t.start()
                    self.pump(self.request, up)
                    t.join()
                finally:
                    up.close()

            @staticmethod
            def recv_exact(s, n):
                b = b""
                while len(b) < n:
                    c = s.recv(n - len(b))
                    if not c:
                        raise EOFError
                    b += c
                return b

            @staticmethod
            def pump(a, b):
                try:
                    while (c := a.recv(65536)):
                        b.sendall(c)
                except OSError:
                    pass
                finally:
                    try:
                        b.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine(tmp_path):
    e = FakeEngine(Path("/tmp") / f"lbeng.{os.getpid()}.{os.urandom(3).hex()}.sock")
    yield e
    e.close()
    os.unlink(e.path)


def small_db(my, prefix):
    db = my.new_db(prefix)
    my.sql(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;"
               "INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_3000;"
               "CREATE VIEW c AS SELECT COUNT(*) AS n FROM t")
    return db


@pytest.mark.parametrize("mode", ["local", "auto"])
def test_dump_mode_local_and_auto_on_mariadb_run_the_local_tools(lb, my, tmp_path, engine,
                                                                 mode):
    """`local`, and `auto` against a MariaDB server (whose tools this image carries): the
    backup and the restore run this machine's mariadb-dump and mariadb (the PATH shims
    saw them) and never ask the Docker engine anything, even with DOCKER_HOST set."""
    db = small_db(my, "mode")
    before = fingerprint(my, db)
    path, rec = tool_shims(tmp_path)
    env = my_env([my.uri(db)], PATH=path, DOCKER_HOST=engine.url,
                 **({"BACKUP_MYSQL_DUMP": "local"} if mode == "local" else {}))
    ts = lb.backup(env)
    my.sql(db, "DELETE FROM t WHERE id > 10; DROP VIEW c")
    lb.restore(ts, env)
    assert fingerprint(my, db) == before
    assert len(shim_runs(rec, "mariadb-dump")) == 1, shim_runs(rec, "mariadb-dump")
    assert len(shim_runs(rec, "mariadb")) >= 1
    assert engine.asked_for("127.0.0.1") == [], engine.requests


def test_dump_mode_auto_on_mysql_tries_the_container_then_local(lb, my, tmp_path, engine):
    """`auto` against a server that says it is MySQL (a proxy rewrites MariaDB's greeting):
    Lifeboat asks the Docker engine for the server's container; there is none, so it logs
    why and dumps and restores with this machine's tools, the data intact."""
    db = small_db(my, "automy")
    before = fingerprint(my, db)
    proxy = VersionProxy(my.port)
    try:
        pw = urllib.parse.quote(my.password, safe="")
        uri = f"mysql://{my.user}:{pw}@127.0.0.1:{proxy.port}/{db}"
        path, rec = tool_shims(tmp_path)
        env = my_env([uri], PATH=path, DOCKER_HOST=engine.url)
        res = lb.run(["backup"], env)
        ts = res.stdout.strip()
        asked = engine.asked_for("127.0.0.1")
        assert asked, engine.requests
        assert "the server is MySQL, but its container cannot run the dump" in res.stderr
        assert len(shim_runs(rec, "mariadb-dump")) == 1
        my.sql(db, "DELETE FROM t WHERE id > 10; DROP VIEW c")
        lb.restore(ts, env)
        assert len(engine.asked_for("127.0.0.1")) > len(asked), "the restore did not look"
    finally:
        proxy.close()
    assert fingerprint(my, db) == before
    assert my.password not in res.stderr


def test_dump_mode_exec_without_the_container_fails_with_one_line(lb, my, tmp_path, engine):
    """`exec` where the engine has no such container: the run fails (exit 4) with one line
    naming the source and the container, no archive, and the local tools never ran; an
    unknown mode exits 3 naming BACKUP_MYSQL_DUMP."""
    db = small_db(my, "exec")
    path, rec = tool_shims(tmp_path)
    env = my_env([my.uri(db)], PATH=path, DOCKER_HOST=engine.url, BACKUP_MYSQL_DUMP="exec")
    res = lb.run(["backup"], env, check=EXIT_SOURCE)
    err = [l for l in error_lines(res) if "MySQL" in l]
    assert len(err) == 1 and "container '127.0.0.1'" in err[0] and "***" in err[0], res
    assert my.password not in res.stderr
    assert engine.asked_for("127.0.0.1"), engine.requests
    assert shim_runs(rec, "mariadb-dump", with_version=True) == []
    assert_no_archive(lb)
    res = lb.run(["backup"], dict(env, BACKUP_MYSQL_DUMP="docker"), check=EXIT_CONFIG)
    err = error_lines(res)
    assert len(err) == 1 and "BACKUP_MYSQL_DUMP 'docker' is invalid" in err[0], res


# --------------------------------------------------------------------------
# 3. restore --only and --to with MySQL sources
# --------------------------------------------------------------------------

def three_dbs(my):
    """Databases a and b (configured), c (never configured), each with its own rows."""
    dbs = [my.new_db(p) for p in ("onlya", "onlyb", "onlyc")]
    for i, db in enumerate(dbs):
        my.sql(db, f"""
CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(30), b BLOB) ENGINE=InnoDB;
INSERT INTO t SELECT seq, CONCAT('{db} ✓ ', seq), UNHEX(SHA2(seq + {i}, 256))
  FROM seq_1_to_{2000 + i * 500};
CREATE TABLE m (n INT) ENGINE=MyISAM; INSERT INTO m SELECT seq FROM seq_1_to_{10 + i};
CREATE VIEW s AS SELECT SUM(id) AS total FROM t;
CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.v = UPPER(NEW.v);
""")
    return dbs


def wreck_db(my, db):
    my.sql(db, "DELETE FROM t WHERE id % 2 = 1; DROP VIEW s; CREATE TABLE later (x INT);"
               "INSERT INTO m VALUES (-1)")


def test_restore_only_one_mysql_source_leaves_the_others_untouched(lb, my):
    """Two MySQL sources and a directory in one archive: `restore --only A` gives A back
    exactly (every table's ordered checksum, every object); B, a database no source names,
    and the directory stay exactly as they were after the backup changed them. Then
    `--only B` does the same for B. A name the backup does not hold exits 8, one it holds
    but that is not configured now exits 3; neither changes anything."""
    a, b, c = three_dbs(my)
    env = my_env([my.uri(a), my.uri(b)], BACKUP_DIRS=f"{lb.src}:data")
    fp_a, fp_b = fingerprint(my, a), fingerprint(my, b)
    ts = lb.backup(env)
    for db in (a, b, c):
        wreck_db(my, db)
    (lb.src / "after-backup.txt").write_text("not in the backup\n")
    wrecked = {db: fingerprint(my, db) for db in (a, b, c)}
    assert wrecked[a] != fp_a and wrecked[b] != fp_b
    files = lb.snap_all()
    dbs = my.databases()

    lb.restore(ts, env, extra=("--only", a))
    assert fingerprint(my, a) == fp_a
    assert fingerprint(my, b) == wrecked[b] and fingerprint(my, c) == wrecked[c]
    assert lb.snap_all() == files
    assert my.databases() == dbs

    for only, code in (("no-such-source", EXIT_NOT_FOUND), (b, EXIT_CONFIG)):
        res = lb.run(["restore", ts, "--yes", "--only", only], my_env([my.uri(a)]),
                     check=code)
        assert only in res.stderr, res
        assert fingerprint(my, a) == fp_a and fingerprint(my, b) == wrecked[b]
        assert my.databases() == dbs and lb.snap_all() == files

    lb.restore(ts, env, extra=("--only", b))
    assert fingerprint(my, b) == fp_b and fingerprint(my, a) == fp_a
    assert fingerprint(my, c) == wrecked[c] and lb.snap_all() == files
    assert my.databases() == dbs


def test_restore_to_extracts_a_mysql_dump_that_loads_under_another_name(lb, my, tmp_path):
    """`restore --to DIR --only A` changes nothing on the server (every database's
    checksums the same, no database created or left) and writes mysql/A/A.sql (mode
    0600), which `mariadb NEWDB < A.sql` loads into a database of another name with
    exactly A's rows and objects at the backup. Without --only every source is extracted:
    both dumps and the directory."""
    a, b, c = three_dbs(my)
    env = my_env([my.uri(a), my.uri(b)], BACKUP_DIRS=f"{lb.src}:data")
    fp_a = fingerprint(my, a)
    ts = lb.backup(env)
    for db in (a, b):
        wreck_db(my, db)
    now = {db: fingerprint(my, db) for db in (a, b, c)}
    dbs = my.databases()

    out = tmp_path / "out"
    lb.run(["restore", ts, "--to", str(out), "--only", a], env)
    assert {db: fingerprint(my, db) for db in (a, b, c)} == now
    assert my.databases() == dbs
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == \
        ["mysql", f"mysql/{a}", f"mysql/{a}/{a}.sql"]
    dump = out / "mysql" / a / f"{a}.sql"
    assert dump.stat().st_mode & 0o777 == 0o600
    other = my.new_db("renamed")
    with open(dump, "rb") as f:
        p = subprocess.run(my.client_args(other), stdin=f, capture_output=True, env=my.env(),
                           timeout=HANG)
    assert p.returncode == 0, p.stderr
    assert fingerprint(my, other) == fp_a

    every = tmp_path / "every"
    lb.run(["restore", ts, "--to", str(every)], env)
    assert (every / "mysql" / a / f"{a}.sql").read_bytes() == dump.read_bytes()
    assert (every / "mysql" / b / f"{b}.sql").is_file()
    assert (every / "dirs" / "data").is_dir()
    assert {db: fingerprint(my, db) for db in (a, b, c)} == now
    assert my.databases() == dbs | {other}


# --------------------------------------------------------------------------
# 4. metrics and webhooks of MySQL and Redis sources
# --------------------------------------------------------------------------

class Metrics:
    """`lifeboat run` serving /metrics (it reads the state file at each scrape, so the
    separate `lifeboat backup` runs of the test show there)."""

    def __init__(self, lb, env):
        self.port = lbservers.free_port()
        self.name = lb.NAME
        self.proc = lb.popen(["run"], {**env, "BACKUP_METRICS_ADDR": f"127.0.0.1:{self.port}"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def scrape(self):
        def get():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                            timeout=HANG) as r:
                    return r.read().decode()
            except OSError:
                return None
        return parse_prom(wait_until(get, "the metrics endpoint"))

    def source(self, m, metric, source, kind=None):
        """A per-source series; a database source's also has its kind."""
        extra = f',kind="{kind}"' if kind else ""
        return m.get(f'{metric}{{name="{self.name}",source="{source}"{extra}}}')

    def close(self):
        stop(self.proc)


def archived_sizes(lb, ts):
    """{archive path: size} of every regular member."""
    with tarfile.open(lb.archive(ts, ".tar.gz"), "r:gz") as t:
        return {m.name: m.size for m in t.getmembers() if m.isreg()}


def test_metrics_and_webhooks_name_mysql_and_redis_sources(rd, my):
    """A backup of a MySQL database, a Redis server and a directory: /metrics has per-source
    lifeboat_source_files, _bytes (the archived dump's and snapshot's size) and
    _last_success_timestamp_seconds series for the MySQL source (named after its database)
    and the Redis one (after its host), as for the directory; the success webhook reports
    the archive. Then a failing MySQL source and a failing Redis source (wrong passwords):
    each failure webhook's error names that source with its password as ***, the run counts
    as a failure, and the sources keep the last success's figures."""
    lb = rd.lb
    db = small_db(my, "metrics")
    rd.fill("v1", n=3000)
    hooks = Hooks()
    env = {**rd.env, "BACKUP_MYSQL": my.uri(db), "BACKUP_DIRS": f"{lb.src}:data",
           **hook_env(hooks)}
    met = Metrics(lb, env)
    try:
        m0 = met.scrape()
        assert met.source(m0, "lifeboat_source_bytes", db, "mysql") is None
        ts = lb.backup(env)
        sizes = archived_sizes(lb, ts)
        m1 = met.scrape()
        for src, kind, member in ((db, "mysql", f"mysql/{db}/{db}.sql"),
                                  (rd.name, "redis", f"redis/{rd.name}/dump.rdb")):
            assert met.source(m1, "lifeboat_source_files", src, kind) == 1, (src, m1)
            assert met.source(m1, "lifeboat_source_bytes", src, kind) == sizes[member] > 0, src
            assert met.source(m1, "lifeboat_source_last_success_timestamp_seconds", src,
                              kind) == \
                m1[f'lifeboat_last_success_timestamp_seconds{{name="{lb.NAME}"}}'] > 0
        assert met.source(m1, "lifeboat_source_bytes", "data") > 0
        ok = hooks.bodies("/0f1e2d3c-secret-token-4b5a")
        assert len(ok) == 1 and ok[0]["status"] == "success", hooks.requests
        assert ok[0]["file"] == lb.archive(ts, ".tar.gz").name and ok[0]["error"] is None
        assert ok[0]["size"] == lb.archive(ts, ".tar.gz").stat().st_size

        wrong_my = my.uri(db, password="wrong-my-pw")
        wrong_rd = f"redis://:wrong-rd-pw@127.0.0.1:{rd.server.port}"
        for bad, kind, shown in (({"BACKUP_MYSQL": wrong_my}, "MySQL",
                                  f"mysql://{my.user}:***@127.0.0.1:{my.port}/{db}"),
                                 ({"BACKUP_REDIS": wrong_rd}, "Redis",
                                  f"redis://:***@127.0.0.1:{rd.server.port}")):
            before = len(hooks.bodies("/0f1e2d3c-secret-token-4b5a/fail"))
            lb.run(["backup"], {**env, **bad}, check=EXIT_SOURCE)
            fails = hooks.bodies("/0f1e2d3c-secret-token-4b5a/fail")
            assert len(fails) == before + 1, hooks.requests
            f = fails[-1]
            assert f["status"] == "failure" and f["file"] is None and f["stores"] == []
            assert f"{kind} {shown}" in f["error"], f["error"]
            raw = json.dumps(f)
            for pw in ("wrong-my-pw", "wrong-rd-pw", my.password, rd.server.password):
                assert pw not in raw and urllib.parse.quote(pw, safe="") not in raw
        m2 = met.scrape()
        assert m2[f'lifeboat_runs_total{{name="{lb.NAME}",outcome="failure"}}'] == 2
        assert m2[f'lifeboat_runs_total{{name="{lb.NAME}",outcome="success"}}'] == 1
        assert m2[f'lifeboat_last_run_success{{name="{lb.NAME}"}}'] == 0
        for src, kind in ((db, "mysql"), (rd.name, "redis"), ("data", None)):
            for metric in ("lifeboat_source_bytes", "lifeboat_source_files",
                           "lifeboat_source_last_success_timestamp_seconds"):
                assert met.source(m2, metric, src, kind) == met.source(m1, metric, src, kind)
    finally:
        met.close()
        hooks.close()


def test_metrics_keep_a_directory_and_a_database_of_one_name_apart(lb, my):
    """README allows a directory and a database source of the same name (WordPress's
    files and its database, both `wordpress`): each keeps its own per-source series (the
    database's with kind="mysql"), neither overwriting the other's figures, and the
    directory's series is the same as without the database."""
    db = small_db(my, "same")
    env = my_env([my.uri(db)], BACKUP_DIRS=f"{lb.src}:{db}")
    met = Metrics(lb, env)
    try:
        ts = lb.backup(env)
        m = met.scrape()
    finally:
        met.close()
    out = gpg_decrypt_pipe_tar(lb.archive(ts), lb.keyfile, lb.tmp / "x")
    dump = (out / "mysql" / db / f"{db}.sql").stat().st_size
    tree = [p for p in (out / "dirs" / db).rglob("*") if p.is_file() and not p.is_symlink()]
    series = sorted(k for k in m if k.startswith("lifeboat_source_bytes{"))
    assert series == sorted([
        f'lifeboat_source_bytes{{name="{lb.NAME}",source="{db}"}}',
        f'lifeboat_source_bytes{{name="{lb.NAME}",source="{db}",kind="mysql"}}']), series
    assert met.source(m, "lifeboat_source_bytes", db, "mysql") == dump
    assert met.source(m, "lifeboat_source_files", db, "mysql") == 1
    assert met.source(m, "lifeboat_source_bytes", db) == sum(p.stat().st_size for p in tree)
    assert met.source(m, "lifeboat_source_files", db) == len(tree)

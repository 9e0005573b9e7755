"""Redis sources against a real redis-server (Debian's 7.0, tests/lbservers.py).

The backup is the server's RDB snapshot (`redis-cli --rdb -`), archived as
redis/NAME/dump.rdb; the restore places it in the server's data directory while the
server is stopped (here the test stops and starts the redis-server process, as a
Compose project's restore stops and starts the container; the e2e suite covers that
path). Every comparison is on DUMP (the serialized value) and PEXPIRETIME (the absolute
expiry) of every key in every database.
"""

import json
import os
import stat
import subprocess
import tarfile
import urllib.parse
from pathlib import Path

import pytest

from conftest import EXIT_SOURCE, need_tool

N_KEYS = 100_000
FAR = 4_102_444_800_000  # 2100-01-01 in ms: a TTL that does not run out during the test


class Rd:
    def __init__(self, lb, server):
        self.lb = lb
        self.server = server
        need_tool("redis-cli")
        pw = urllib.parse.quote(server.password, safe="")
        self.uri = f"redis://:{pw}@127.0.0.1:{server.port}"
        self.env = {"BACKUP_REDIS": self.uri, "BACKUP_DIRS": None, "BACKUP_FILES": None,
                    "BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None,
                    "BACKUP_REDIS_DATA_DIR": str(server.data), "BACKUP_KEEP_LAST": "100"}
        self.name = "127.0.0.1"

    def client(self):
        return self.server.client()

    def fill(self, tag="v1", n=N_KEYS):
        c = self.client()
        try:
            for db in range(16):
                c.call("SELECT", db)
                c.call("FLUSHDB")
            c.call("SELECT", 0)
            c.call("SET", "str", f"plain {tag}")
            c.call("SET", b"bin\x00key\xff", bytes(range(256)) * 4)
            c.call("HSET", "hash", "f1", "a", "f2", tag, "emoji", "\U0001F600")
            c.call("RPUSH", "list", *[f"{tag}-{i}" for i in range(500)])
            c.call("SADD", "set", *[f"m{i}" for i in range(300)])
            c.call("ZADD", "zset", *[x for i in range(300) for x in (i * 1.5, f"z{i}")])
            for i in range(50):
                c.call("XADD", "stream", f"{1000 + i}-1", "n", i, "tag", tag)
            c.call("XGROUP", "CREATE", "stream", "grp", "0")
            c.call("XREADGROUP", "GROUP", "grp", "consumer", "COUNT", "5", "STREAMS",
                   "stream", ">")
            c.call("SET", "ttl:abs", "expires later", "PXAT", FAR)
            c.call("HSET", "ttl:hash", "a", "b")
            c.call("PEXPIREAT", "ttl:hash", FAR + 12345)
            c.call("SET", "intkey", "12345")  # an int-encoded string
            c.pipeline([("SET", f"k:{i:06d}", f"{tag}:{i}") for i in range(n)]
                       + [("PEXPIREAT", f"k:{i:06d}", FAR + i) for i in range(0, n, 97)])
            c.call("SELECT", 3)
            c.call("SET", "in-db-3", tag)
        finally:
            c.close()

    def keys(self):
        """{(db, key): (type, value, DUMP, PEXPIRETIME)} of every key of every database.

        The value is read back type by type (members sorted where Redis keeps no order);
        DUMP, the serialized value, is compared as well except for a hashtable-encoded
        set or hash, whose serialization follows the hash table's iteration order, which
        a reload may change without changing the data.
        """
        out = {}
        c = self.client()
        try:
            for db in range(16):
                c.call("SELECT", db)
                cursor, keys = b"0", []
                while True:
                    cursor, batch = c.call("SCAN", cursor, "COUNT", 5000)
                    keys += batch
                    if cursor == b"0":
                        break
                meta = c.pipeline([x for k in keys for x in
                                   (("TYPE", k), ("OBJECT", "ENCODING", k), ("DUMP", k),
                                    ("PEXPIRETIME", k))])
                reads = []
                for i, k in enumerate(keys):
                    t = meta[4 * i]
                    reads.append({"string": ("GET", k), "list": ("LRANGE", k, 0, -1),
                                  "set": ("SMEMBERS", k), "hash": ("HGETALL", k),
                                  "zset": ("ZRANGE", k, 0, -1, "WITHSCORES"),
                                  "stream": ("XRANGE", k, "-", "+")}[t])
                values = c.pipeline(reads)
                for i, k in enumerate(keys):
                    t, enc, dump, exp = meta[4 * i:4 * i + 4]
                    v = values[i]
                    if t in ("set", "hash"):
                        v = sorted(v) if t == "set" else sorted(zip(v[::2], v[1::2]))
                    if t == "stream":
                        groups = c.call("XINFO", "GROUPS", k)
                        pending = c.call("XPENDING", k, "grp") if groups else None
                        v = (v, repr(groups), repr(pending))
                    if enc == b"hashtable":
                        dump = None
                    out[(db, k)] = (t, repr(v), dump, exp)
        finally:
            c.close()
        return out

    def archive_rdb(self, ts):
        with tarfile.open(self.lb.archive(ts, ".tar.gz"), "r:gz") as t:
            names = t.getnames()
            data = t.extractfile(f"redis/{self.name}/dump.rdb").read()
            manifest = json.loads(t.extractfile("manifest.json").read())
        return names, data, manifest


@pytest.fixture
def rd(lb, redis_server):
    r = Rd(lb, redis_server)
    if redis_server.appendonly or not redis_server.ping():
        redis_server.restart(appendonly=False)
    yield r
    # The next test gets a running server without AOF.
    if redis_server.appendonly or redis_server.proc.poll() is not None:
        redis_server.restart(appendonly=False)


def save(rd):
    """SAVE, once the snapshot a backup's replication forked has finished."""
    import time
    c = rd.client()
    try:
        end = time.monotonic() + 300
        while True:
            try:
                return c.call("SAVE")
            except RuntimeError as e:
                if "in progress" not in str(e) or time.monotonic() > end:
                    raise
            time.sleep(0.1)
    finally:
        c.close()


def wipe(d):
    for n in os.listdir(d):
        p = d / n
        p.unlink() if p.is_file() else subprocess.run(["rm", "-rf", str(p)], check=True)


def data_dir_entries(server):
    return sorted(os.listdir(server.data))


def test_backup_is_the_servers_snapshot(rd, tmp_path):
    rd.fill()
    ts = rd.lb.backup(rd.env)
    names, data, manifest = rd.archive_rdb(ts)
    assert f"redis/{rd.name}/dump.rdb" in names
    assert data[:5] == b"REDIS" and data[-9] == 0xFF, "an RDB file ends with 0xFF and CRC64"
    # The server's version is in the manifest.
    info = rd.client().call("INFO", "server").decode()
    version = [l.split(":", 1)[1].strip() for l in info.splitlines()
               if l.startswith("redis_version:")][0]
    src = [s for s in manifest["sources"] if s["kind"] == "redis"]
    assert src and src[0]["server_version"] == version, manifest
    assert "***" in src[0]["path"] and rd.server.password not in json.dumps(manifest)
    # redis-check-rdb accepts the archived file, and it holds every key.
    f = tmp_path / "dump.rdb"
    f.write_bytes(data)
    p = subprocess.run(["redis-check-rdb", str(f)], capture_output=True, text=True)
    assert p.returncode == 0 and "RDB looks OK" in p.stdout, p.stdout + p.stderr
    assert f"{N_KEYS + 11} keys read" in p.stdout, p.stdout
    # The same bytes redis-cli writes to a file (which it can truncate) would hold the same
    # keys: checked by restoring below; here the file is complete and nothing trails it.
    rd.lb.run(["verify", ts], rd.env)


def test_restore_gives_back_every_key_value_and_ttl(rd):
    rd.fill("v1")
    before = rd.keys()
    assert len(before) == N_KEYS + 11
    ts = rd.lb.backup(rd.env)
    rd.fill("v2", n=1000)  # other data afterwards
    assert rd.keys() != before
    rd.server.shutdown()
    res = rd.lb.restore(ts, rd.env)
    assert "restored redis '127.0.0.1' into" in res.stderr, res
    rd.server.start()
    after = rd.keys()
    assert after == before
    # Nothing of ours is left in the data directory.
    entries = data_dir_entries(rd.server)
    assert "dump.rdb" in entries and not [n for n in entries if n.startswith(".lifeboat")]
    st = os.stat(rd.server.data / "dump.rdb")
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_restore_with_appendonly(rd):
    """appendonly yes: Redis 7 loads the AOF directory, not dump.rdb; the restore replaces
    it with one whose base is the snapshot, so the restore is not silently ignored."""
    rd.server.restart(appendonly=True)
    rd.fill("v1", n=2000)
    before = rd.keys()
    ts = rd.lb.backup(rd.env)
    rd.fill("v2", n=500)
    rd.server.shutdown()
    assert "appendonlydir" in data_dir_entries(rd.server)
    rd.lb.restore(ts, rd.env)
    rd.server.start()
    assert rd.keys() == before
    # The server goes on appending to the restored AOF: a restart keeps the data.
    c = rd.client()
    c.call("SET", "after-restore", "x")
    c.close()
    rd.server.restart()
    now = rd.keys()
    assert now.pop((0, b"after-restore"))[0] is not None
    assert now == before
    assert not [n for n in data_dir_entries(rd.server) if n.startswith(".lifeboat")]


def test_restore_refuses_a_running_server(rd):
    rd.fill("v1", n=100)
    ts = rd.lb.backup(rd.env)
    rd.fill("v2", n=100)
    before = rd.keys()
    files = data_dir_entries(rd.server)
    res = rd.lb.restore(ts, rd.env, check=EXIT_SOURCE)
    assert "is running" in res.stderr and "***" in res.stderr, res
    assert rd.server.password not in res.stderr
    assert rd.keys() == before
    assert data_dir_entries(rd.server) == files


def test_killed_restore_is_old_or_new(rd):
    """SIGKILL at each rename of the swap: the next command finishes or undoes it, and
    the server then starts with the old data or the backup's, never a mix or nothing."""
    rd.server.shutdown()  # a data directory of dump.rdb only, as every case below starts
    wipe(rd.server.data)
    rd.server.start()
    rd.fill("v1", n=300)
    new = rd.keys()
    ts = rd.lb.backup(rd.env)
    rd.fill("v2", n=200)
    old = rd.keys()
    save(rd)  # the old data on disk, as a stopped container leaves it
    rd.server.shutdown()
    pristine = (rd.server.data / "dump.rdb").read_bytes()
    trace = rd.lb.tmp / "trace"
    rd.lb.run(["restore", ts, "--yes"], dict(rd.env, LIFEBOAT_FAULT_TRACE=str(trace)))
    lines = Path(trace).read_text().splitlines()
    assert lines.count("redis.swap") >= 2, lines
    cases = [(p, k) for p in ("redis.swap", "journal.write") for k in range(1, lines.count(p) + 1)]
    seen = set()
    for point, k in cases:
        wipe(rd.server.data)
        (rd.server.data / "dump.rdb").write_bytes(pristine)
        res = rd.lb.run(["restore", ts, "--yes"],
                        dict(rd.env, LIFEBOAT_FAULT=f"{point}@{k}:kill"), check=False)
        assert res.returncode == -9, (k, res)
        rd.lb.run(["prune"], rd.env)  # recovers first
        assert not [n for n in data_dir_entries(rd.server) if n.startswith(".lifeboat")], k
        rd.server.start()
        now = rd.keys()
        assert now in (old, new), k
        seen.add("old" if now == old else "new")
        rd.server.shutdown()
    assert "old" in seen and "new" in seen, seen
    # A rename that fails in the swap rolls the restore back: the old data stays.
    wipe(rd.server.data)
    (rd.server.data / "dump.rdb").write_bytes(pristine)
    rd.lb.run(["restore", ts, "--yes"], dict(rd.env, LIFEBOAT_FAULT="redis.swap@2:fail"),
              check=EXIT_SOURCE)
    assert data_dir_entries(rd.server) == ["dump.rdb"]
    rd.server.start()
    assert rd.keys() == old


def test_manual_recovery_with_standard_tools(rd, tmp_path):
    """README's by-hand path: take dump.rdb out of the archive with tar, put it into the
    stopped server's data directory, start it."""
    rd.fill("v1", n=5000)
    before = rd.keys()
    ts = rd.lb.backup(rd.env)
    rd.fill("v2", n=10)
    rd.server.shutdown()
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "xzf", str(rd.lb.archive(ts, ".tar.gz")), "-C", str(out),
                    f"redis/{rd.name}/dump.rdb"], check=True)
    os.replace(out / "redis" / rd.name / "dump.rdb", rd.server.data / "dump.rdb")
    rd.server.start()
    assert rd.keys() == before


def test_wrong_password_one_line(rd):
    uri = f"redis://:{urllib.parse.quote('wrong-' + rd.server.password, safe='')}@127.0.0.1:{rd.server.port}"
    res = rd.lb.run(["backup"], dict(rd.env, BACKUP_REDIS=uri), check=EXIT_SOURCE)
    lines = [l for l in res.stderr_lines() if "Redis" in l]
    assert len(lines) == 1, res
    assert "***" in lines[0] and "password" in lines[0], res
    assert "wrong-" not in res.stderr and rd.server.password not in res.stderr
    assert not (rd.lb.backup_dir.exists() and os.listdir(rd.lb.backup_dir))


def test_password_never_in_argv(rd, tmp_path):
    """A redis-cli shim records its argv and the names of its environment: the password is
    only in REDISCLI_AUTH."""
    real = need_tool("redis-cli")
    shim = tmp_path / "bin"
    shim.mkdir()
    log = tmp_path / "argv.log"
    (shim / "redis-cli").write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$*\" >> {log}\n"
        f"[ -n \"$REDISCLI_AUTH\" ] && echo auth-in-env >> {log}\n"
        f"exec {real} \"$@\"\n")
    os.chmod(shim / "redis-cli", 0o755)
    rd.fill("v1", n=10)
    rd.lb.run(["backup"], dict(rd.env, PATH=f"{shim}:{os.environ['PATH']}"))
    text = log.read_text()
    assert "--rdb -" in text and "INFO server" in text, text
    assert text.count("auth-in-env") == 2, text
    assert rd.server.password not in text
    assert urllib.parse.quote(rd.server.password, safe="") not in text


def test_restore_needs_the_data_dir(rd):
    rd.fill("v1", n=10)
    ts = rd.lb.backup(rd.env)
    rd.server.shutdown()
    res = rd.lb.restore(ts, dict(rd.env, BACKUP_REDIS_DATA_DIR=None), check=3)
    assert "BACKUP_REDIS_DATA_DIR" in res.stderr, res
    rd.server.start()


def test_check_shows_redacted(rd):
    out = rd.lb.run(["check"], rd.env)
    text = out.stdout + out.stderr
    assert "***" in text and rd.server.password not in text
    assert "BACKUP_REDIS_DATA_DIR" in text


def test_acl_user(rd):
    """redis://user:password@…: an ACL user (redis-cli --user, the password still only in
    REDISCLI_AUTH) backs up and restores like the default user."""
    c = rd.client()
    pw = "acl@:/" + os.urandom(4).hex()
    c.call("ACL", "SETUSER", "lbuser", "reset", "on", f">{pw}", "~*", "&*", "+@all")
    c.close()
    uri = f"redis://lbuser:{urllib.parse.quote(pw, safe='')}@127.0.0.1:{rd.server.port}"
    env = dict(rd.env, BACKUP_REDIS=uri)
    rd.fill("v1", n=1000)
    c = rd.client()
    c.call("ACL", "SETUSER", "lbuser", "reset", "on", f">{pw}", "~*", "&*", "+@all")
    c.close()
    before = rd.keys()
    ts = rd.lb.backup(env)
    rd.fill("v2", n=10)
    rd.server.shutdown()
    rd.lb.restore(ts, env)
    rd.server.start()
    assert rd.keys() == before
    # A user without the right to take a snapshot fails the run with one line.
    c = rd.client()
    c.call("ACL", "SETUSER", "lbuser", "reset", "on", f">{pw}", "~*", "+@read")
    c.close()
    res = rd.lb.run(["backup"], env, check=EXIT_SOURCE)
    assert "***" in res.stderr and pw not in res.stderr, res


def test_tls_backup_and_restore(lb, redis_tls_server):
    """rediss:// with ?cacert= (the server's CA): backup and restore, every key compared by
    DUMP; a wrong CA or none (the system's store does not know the test CA) fails the run
    with one line naming the server and the TLS failure, no archive, no secret."""
    srv = redis_tls_server
    rd = Rd(lb, srv)
    pw = urllib.parse.quote(srv.password, safe="")
    base = f"rediss://:{pw}@127.0.0.1:{srv.port}"
    rd.env["BACKUP_REDIS"] = f"{base}?cacert={urllib.parse.quote(str(srv.tls_ca))}"
    rd.fill("v1", n=20_000)
    before = rd.keys()
    ts = lb.backup(rd.env)
    _, data, _ = rd.archive_rdb(ts)
    assert data[:5] == b"REDIS" and data[-9] == 0xFF
    rd.fill("v2", n=100)
    srv.shutdown()
    lb.restore(ts, rd.env)
    srv.start()
    assert rd.keys() == before
    for uri in (f"{base}?cacert={srv.other_ca}", base):
        res = lb.run(["backup"], dict(rd.env, BACKUP_REDIS=uri), check=EXIT_SOURCE)
        lines = [l for l in res.stderr_lines() if "error:" in l and "Redis" in l]
        assert len(lines) == 1 and "certificate verify failed" in lines[0], res
        assert "rediss://:***@" in lines[0] and srv.password not in res.stderr
        assert pw not in res.stderr
    assert sorted(os.listdir(lb.backup_dir)) == sorted(
        n for n in os.listdir(lb.backup_dir) if ts in n), "only the first run's archive"


def test_tls_options_need_rediss(rd):
    uri = rd.uri + "?cacert=/etc/ssl/certs/ca-certificates.crt"
    res = rd.lb.run(["backup"], dict(rd.env, BACKUP_REDIS=uri), check=3)
    assert "TLS option" in res.stderr and "rediss://" in res.stderr, res
    assert rd.server.password not in res.stderr


def test_uri_from_file_only_and_to(rd, tmp_path):
    """BACKUP_REDIS_FILE holds the URI (the secret); `restore --only` restores the Redis
    source alone (a directory source in the same archive is left as it is), and `--to`
    extracts the snapshot as redis/NAME/dump.rdb, the archived bytes."""
    f = tmp_path / "redis-uri"
    f.write_text(rd.uri + "\n")
    os.chmod(f, 0o600)
    env = dict(rd.env, BACKUP_REDIS=None, BACKUP_REDIS_FILE=str(f),
               BACKUP_DIRS=f"{rd.lb.src}:data")
    rd.fill("v1", n=2000)
    before = rd.keys()
    ts = rd.lb.backup(env)
    _, data, _ = rd.archive_rdb(ts)
    rd.fill("v2", n=10)
    (rd.lb.src / "after-backup.txt").write_text("left alone\n")
    files = rd.lb.snap()
    rd.server.shutdown()
    rd.lb.restore(ts, env, extra=("--only", rd.name))
    rd.server.start()
    assert rd.keys() == before
    assert rd.lb.snap() == files
    out = tmp_path / "out"
    rd.lb.run(["restore", ts, "--to", str(out), "--only", rd.name], env)
    assert (out / "redis" / rd.name / "dump.rdb").read_bytes() == data
    assert not (out / "dirs").exists()

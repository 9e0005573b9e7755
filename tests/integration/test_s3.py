"""S3 storage against a real S3 server (MinIO, started by ./test.sh).

The server's endpoint and credentials come from LB_S3_ENDPOINT,
LB_S3_ACCESS_KEY and LB_S3_SECRET_KEY; LB_MINIO_BIN, LB_MINIO_DATA and
LB_MINIO_PIDFILE let the fault test stop and restart it. boto3 is only used
to create buckets and to look at what the server holds.  Under CI=true a
missing server is a failure, never a skip.
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.request
import uuid

import pytest

from conftest import (EXIT_CONFIG, EXIT_OK, EXIT_STORE, IN_CI, assert_same_tree,
                      read_json_list, table_timestamps, wreck_tree)
from waiting import HANG, file_contains, wait_until


def need_s3():
    try:
        import boto3  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("boto3 is not installed")
        pytest.skip("boto3 is not installed")
    return os.environ["LB_S3_ENDPOINT"]


def client():
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=os.environ["LB_S3_ENDPOINT"],
                        aws_access_key_id=os.environ["LB_S3_ACCESS_KEY"],
                        aws_secret_access_key=os.environ["LB_S3_SECRET_KEY"],
                        region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 2}))


@pytest.fixture
def s3(lb, minio_server):
    """A fresh bucket; returns (boto3 client, bucket, env for lifeboat)."""
    need_s3()
    c = client()
    bucket = "lb-" + uuid.uuid4().hex[:16]
    c.create_bucket(Bucket=bucket)
    env = {
        "BACKUP_S3_BUCKET": bucket,
        "BACKUP_S3_ENDPOINT": os.environ["LB_S3_ENDPOINT"],
        "BACKUP_S3_ACCESS_KEY": os.environ["LB_S3_ACCESS_KEY"],
        "BACKUP_S3_SECRET_KEY": os.environ["LB_S3_SECRET_KEY"],
    }
    return c, bucket, env


def objects(c, bucket):
    out = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def uploads(c, bucket):
    return c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def object_bytes(c, bucket, key):
    return c.get_object(Bucket=bucket, Key=key)["Body"].read()


def key_of(lb, ts):
    return f"{lb.NAME}/{lb.NAME}-{ts}.tar.gz.gpg"


def one_line_error(res):
    """The cause, on one line (besides the run's own "no archive was stored" summary)."""
    errs = [l for l in res.stderr.splitlines()
            if " error: " in l and "no archive was stored" not in l]
    assert len(errs) == 1, f"expected one error line: {res!r}"
    return errs[0]


# --------------------------------------------------------------------------

def test_roundtrip_local_and_s3(lb, s3):
    c, bucket, env = s3
    orig = lb.snap()
    ts = lb.backup(env)
    local = lb.archive(ts)
    assert local.is_file()
    # the same bytes in both stores, nothing left in progress
    assert objects(c, bucket) == {key_of(lb, ts): local.stat().st_size}
    assert object_bytes(c, bucket, key_of(lb, ts)) == local.read_bytes()
    assert uploads(c, bucket) == []

    res = lb.run(["list"], env)
    assert table_timestamps(res) == [ts]
    assert res.stdout.splitlines()[1].split()[3] == "both", repr(res)
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [e["stores"] for e in data] == [["local", "s3"]]

    # restore prefers local; --from s3 streams from the bucket
    wreck_tree(lb.src)
    lb.restore(ts, env, extra=["--from", "s3"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from s3")
    wreck_tree(lb.src)
    lb.restore(ts, env, extra=["--from", "local"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from local")


def test_s3_only(lb, s3):
    c, bucket, env = s3
    env = dict(env, BACKUP_LOCAL_PATH=None)
    orig = lb.snap()
    ts = lb.backup(env)
    assert list(lb.store.iterdir()) == []
    assert list(objects(c, bucket)) == [key_of(lb, ts)]
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [(e["timestamp"], e["stores"]) for e in data] == [(ts, ["s3"])]
    assert data[0]["size"] == objects(c, bucket)[key_of(lb, ts)]
    lb.run(["verify", ts], env)
    wreck_tree(lb.src)
    lb.restore(ts, env)
    assert_same_tree(orig["src"], lb.snap()["src"])
    # --from local with no local store configured is a usage/config error
    res = lb.run(["restore", ts, "--yes", "--from", "local"], env, check=False)
    assert res.returncode == EXIT_CONFIG, repr(res)


def test_disaster_recovery_from_s3(lb, s3):
    """The local directory is lost: a fresh one with the same .env lists and restores."""
    c, bucket, env = s3
    orig = lb.snap()
    single = lb.single.read_bytes()
    ts1 = lb.backup(env)
    ts2 = lb.backup(env)  # a later second: the binary skips one taken in any store
    shutil.rmtree(lb.store)
    lb.store.mkdir()
    res = lb.run(["list"], env)
    assert table_timestamps(res) == [ts2, ts1]
    assert all(l.split()[3] == "s3" for l in res.stdout.splitlines()[1:]), repr(res)
    shutil.rmtree(lb.src)
    lb.single.unlink()
    lb.restore(ts2, env)  # no local copy: taken from S3
    assert_same_tree(orig["src"], lb.snap()["src"])
    assert lb.single.read_bytes() == single
    assert list(lb.store.iterdir()) == [], "restore must not download the archive to disk"


@pytest.mark.slow
def test_many_parts(lb, s3):
    """~60 MiB of incompressible data with 5 MiB parts: a dozen parts, bytes verified."""
    c, bucket, env = s3
    big = lb.src / "big" / "huge.bin"
    with open(big, "wb") as f:
        for _ in range(60):
            f.write(os.urandom(1 << 20))
    orig = lb.snap()
    ts = lb.backup(dict(env, BACKUP_S3_PART_SIZE="5M"))
    local = lb.archive(ts)
    size = local.stat().st_size
    assert size > 12 * 5 * 1024 * 1024
    head = c.head_object(Bucket=bucket, Key=key_of(lb, ts))
    # a multipart object's ETag ends in -<number of parts>
    parts = int(head["ETag"].strip('"').split("-")[1])
    assert parts == -(-size // (5 * 1024 * 1024)), head["ETag"]
    assert head["ContentLength"] == size
    assert object_bytes(c, bucket, key_of(lb, ts)) == local.read_bytes()
    os.unlink(local)
    wreck_tree(lb.src)
    lb.restore(ts, env)
    assert_same_tree(orig["src"], lb.snap()["src"])


def gone(pid):
    """The process has exited (a zombie of ours counts: it serves nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def minio_stop():
    pidfile = os.environ["LB_MINIO_PIDFILE"]
    pid = int(open(pidfile).read())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gone(pid), f"MinIO (pid {pid}) to exit after SIGKILL")


def minio_start():
    env = dict(os.environ, MINIO_ROOT_USER=os.environ["LB_S3_ACCESS_KEY"],
               MINIO_ROOT_PASSWORD=os.environ["LB_S3_SECRET_KEY"], MINIO_BROWSER="off")
    addr = os.environ["LB_S3_ENDPOINT"].split("://", 1)[1]
    with open(os.environ["LB_MINIO_DATA"] + ".log", "ab") as log:
        p = subprocess.Popen([os.environ["LB_MINIO_BIN"], "server", "--quiet", "--address",
                              addr, os.environ["LB_MINIO_DATA"]], env=env,
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    with open(os.environ["LB_MINIO_PIDFILE"], "w") as f:
        f.write(str(p.pid))
    url = os.environ["LB_S3_ENDPOINT"] + "/minio/health/live"

    def live():
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status == 200
        except OSError:
            return False
    wait_until(live, "MinIO to come back", interval=0.1)


@pytest.mark.slow
def test_server_dies_mid_upload(lb, s3):
    """Kill the server during the upload: exit 5 with one clear line, the local copy
    is kept, and once the server is back no upload or object is left."""
    c, bucket, env = s3
    big = lb.src / "big" / "huge.bin"
    with open(big, "wb") as f:
        for _ in range(150):
            f.write(os.urandom(1 << 20))
    # BACKUP_DEBUG: the log shows each retry, so the test sees where the run is.
    proc = lb.popen(["backup"], dict(env, BACKUP_S3_PART_SIZE="5M", BACKUP_DEBUG="true"),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}
    t = threading.Thread(target=lambda: out.update(zip(("o", "e"), proc.communicate())))
    t.start()
    try:
        wait_until(lambda: uploads(c, bucket) or proc.poll() is not None,
                   "a multipart upload", interval=0.02)
        assert proc.poll() is None, "lifeboat ended before the upload began"
        minio_stop()
        # The server comes back only once the part's retries are spent and the run, at its
        # end, is retrying to abort the upload (it keeps at that for 60 s): seen in the log,
        # not guessed with a sleep, so a slow machine cannot make the part succeed late
        # or the abort give up early.
        wait_until(file_contains(lb.tmp / "backup.log", "s3: abort the upload of"),
                   "lifeboat to give up the upload and retry aborting it")
    finally:
        minio_start()
    t.join(timeout=HANG)
    assert not t.is_alive(), "lifeboat did not finish"
    stderr = out["e"].decode(errors="replace")
    assert proc.returncode == EXIT_STORE, stderr
    errs = [l for l in stderr.splitlines() if " error: " in l]
    assert len(errs) == 1, stderr
    assert "s3" in errs[0] and "kept in local" in errs[0], stderr
    assert "s3" in errs[0]
    c = client()
    assert uploads(c, bucket) == [], "an unfinished multipart upload was left behind"
    assert objects(c, bucket) == {}
    # the local copy completed and is kept and listed (local only)
    ts = out["o"].decode().strip()
    assert lb.archive(ts).is_file()
    res = lb.run(["list", "--json"], env)
    assert [(e["timestamp"], e["stores"]) for e in read_json_list(res)] == [(ts, ["local"])]
    lb.run(["verify", ts, "--from", "local"], env)


@pytest.mark.parametrize("point", ["walk.before_open", "s3.complete"])
def test_upload_of_a_killed_run_is_aborted_by_the_next(lb, s3, point):
    """Killed with its multipart upload begun: while the sources are read, or with every
    part uploaded and the upload not completed (fault points). The unfinished upload stays
    in the bucket (invisible, but stored and billed); the next backup of this sidecar
    aborts it and says so, and the archives finished before and after are whole."""
    c, bucket, env = s3
    orig = lb.snap()
    first = lb.backup(env)
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": f"{point}:kill"}, check=False)
    assert res.returncode == -signal.SIGKILL, repr(res)
    left = uploads(c, bucket)
    assert len(left) == 1 and left[0]["Key"].startswith(f"{lb.NAME}/{lb.NAME}-"), left
    res = lb.run(["backup"], env)
    last = res.stdout.strip()
    assert uploads(c, bucket) == [], "the killed run's upload is still there"
    assert sorted(objects(c, bucket)) == sorted(key_of(lb, ts) for ts in (first, last))
    for ts in (first, last):
        assert object_bytes(c, bucket, key_of(lb, ts)) == lb.archive(ts).read_bytes()
    name = left[0]["Key"].split("/", 1)[1]
    said = f"removed the unfinished upload '{name}' an interrupted run left in the s3 store"
    assert said in res.stderr, repr(res)
    wreck_tree(lb.src)
    lb.restore(first, env, extra=["--from", "s3"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from s3")


def test_wrong_secret_key(lb, s3):
    c, bucket, env = s3
    env = dict(env, BACKUP_S3_SECRET_KEY="not-the-secret-key", BACKUP_LOCAL_PATH=None)
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = one_line_error(res)
    assert "SignatureDoesNotMatch" in line and "BACKUP_S3_SECRET_KEY" in line
    assert "not-the-secret-key" not in res.stderr + res.stdout
    assert objects(c, bucket) == {} and uploads(c, bucket) == []
    res = lb.run(["list"], env, check=EXIT_STORE)
    assert "SignatureDoesNotMatch" in one_line_error(res)


def test_wrong_access_key(lb, s3):
    c, bucket, env = s3
    res = lb.run(["list"], dict(env, BACKUP_S3_ACCESS_KEY="NOSUCHKEY"), check=EXIT_STORE)
    assert "InvalidAccessKeyId" in one_line_error(res)


def test_missing_bucket(lb, s3):
    c, bucket, env = s3
    env = dict(env, BACKUP_S3_BUCKET="lb-no-such-bucket-" + uuid.uuid4().hex[:8])
    res = lb.run(["list"], env, check=EXIT_STORE)
    assert "NoSuchBucket" in one_line_error(res)
    # local + missing bucket: the local archive is kept, the run fails naming s3
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = one_line_error(res)
    assert "s3" in line and "NoSuchBucket" in line
    ts = res.stdout.strip()
    assert lb.archive(ts).is_file()


def test_unreachable_endpoint(lb, s3):
    c, bucket, env = s3
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    bad = dict(env, BACKUP_S3_ENDPOINT=f"http://127.0.0.1:{port}")
    # Every request to a closed port is retried with backoff (7.5 s each): a backup spends
    # about a minute in those sleeps alone, so these runs get the hang guard, not 120 s.
    res = lb.run(["backup"], dict(bad, BACKUP_LOCAL_PATH=None), check=EXIT_STORE,
                 timeout=HANG)
    line = one_line_error(res)
    assert f"127.0.0.1:{port}" in line
    # with a local store too: the local copy is kept, and restoring it needs no S3
    orig = lb.snap()
    res = lb.run(["backup"], bad, check=EXIT_STORE, timeout=HANG)
    ts = res.stdout.strip()
    assert lb.archive(ts).is_file()
    wreck_tree(lb.src)
    lb.run(["restore", ts, "--yes"], bad, timeout=HANG)
    assert_same_tree(orig["src"], lb.snap()["src"])
    # list still shows the local backups while S3 is down, and exits 5 to say it is partial
    res = lb.run(["list", "--json"], bad, check=EXIT_STORE, timeout=HANG)
    assert [e["timestamp"] for e in json.loads(res.stdout)] == [ts]
    assert f"127.0.0.1:{port}" in one_line_error(res)


class StalledServer:
    """Accepts TCP connections and never answers (nor reads): a hung S3 endpoint."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        # Small buffers, as on a slow link: the client sees its bytes leave at the
        # link's pace, not fill megabytes of loopback buffers at once and then wait.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)

    def close(self):
        self.stop = True
        self.thread.join(timeout=10)
        for c in self.held:
            c.close()
        self.sock.close()


def _closed_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


@pytest.mark.parametrize("kind", ["stalled", "closed"])
def test_dead_endpoint_fails_within_s3_timeout(lb, kind):
    """A hung or closed S3 endpoint fails the run after BACKUP_S3_TIMEOUT without progress
    (here 4 s; by default 2 minutes), exit 5, with the local copy complete and listed.
    Before, a hung endpoint held the run for about 400 s: past this test's timeout."""
    server = StalledServer() if kind == "stalled" else None
    port = server.port if server else _closed_port()
    env = {"BACKUP_S3_BUCKET": "lb-dead-endpoint", "BACKUP_S3_ENDPOINT": f"http://127.0.0.1:{port}",
           "BACKUP_S3_ACCESS_KEY": "AKIDEXAMPLE", "BACKUP_S3_SECRET_KEY": "dead-endpoint-secret",
           "BACKUP_S3_TIMEOUT": "4"}
    try:
        res = lb.run(["backup"], env, check=EXIT_STORE, timeout=150)
    finally:
        if server:
            server.close()
    line = one_line_error(res)
    assert "s3" in line and "kept in local" in line and f"127.0.0.1:{port}" in line, line
    ts = res.stdout.strip()
    assert lb.archive(ts).is_file()
    assert [n for n in os.listdir(lb.backup_dir) if n.endswith(".partial")] == []
    res = lb.run(["list", "--json"], dict(env, BACKUP_S3_BUCKET=None), check=True)
    assert [e["timestamp"] for e in read_json_list(res)] == [ts]
    orig = lb.snap()
    wreck_tree(lb.src)
    lb.restore(ts, dict(env, BACKUP_S3_BUCKET=None))
    assert_same_tree(orig["src"], lb.snap()["src"])


def test_check_redacts_secrets(lb, s3):
    c, bucket, env = s3
    res = lb.run(["check"], env)
    assert bucket in res.stdout
    assert env["BACKUP_S3_SECRET_KEY"] not in res.stdout + res.stderr
    assert env["BACKUP_S3_ACCESS_KEY"] not in res.stdout + res.stderr


def test_config_errors(lb, s3):
    c, bucket, env = s3
    for extra in ({"BACKUP_S3_SECRET_KEY": None}, {"BACKUP_S3_PART_SIZE": "1M"},
                  {"BACKUP_S3_ENDPOINT": "ftp://x"}, {"BACKUP_S3_PATH_STYLE": "maybe"},
                  {"BACKUP_S3_BUCKET": "s3://x/y"}):
        res = lb.run(["check"], dict(env, **extra), check=EXIT_CONFIG)
        assert len([l for l in res.stderr.splitlines() if " error: " in l]) == 1, repr(res)
    # secrets from files
    keyfile = lb.tmp / "s3secret"
    keyfile.write_text(env["BACKUP_S3_SECRET_KEY"] + "\n")
    res = lb.run(["list"], dict(env, BACKUP_S3_SECRET_KEY=None,
                                BACKUP_S3_SECRET_KEY_FILE=str(keyfile)))
    assert res.returncode == EXIT_OK


@pytest.mark.slow
def test_sigterm_mid_upload_aborts(lb, s3):
    """SIGTERM during the upload: the run stops (130) and aborts the multipart upload."""
    c, bucket, env = s3
    big = lb.src / "big" / "huge.bin"
    with open(big, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    proc = lb.popen(["backup"], dict(env, BACKUP_S3_PART_SIZE="5M", BACKUP_LOCAL_PATH=None),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def parts_uploaded():
        # Mid upload: the upload exists and holds a part, so parts are in flight.
        for u in uploads(c, bucket):
            if c.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts"):
                return True
        return proc.poll() is not None
    wait_until(parts_uploaded, "a multipart upload with a part", interval=0.02)
    assert proc.poll() is None, "lifeboat ended before the upload was under way"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 130, err.decode(errors="replace")
    assert uploads(c, bucket) == [], "the multipart upload was not aborted"
    assert objects(c, bucket) == {}


@pytest.fixture
def tls_minio(tmp_path, minio_server):
    """A second MinIO serving HTTPS with a throwaway self-signed certificate."""
    need_s3()
    binary = str(minio_server.binary)
    certs = tmp_path / "certs"
    certs.mkdir()
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(certs / "private.key"), "-out", str(certs / "public.crt"),
                        "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
    assert p.returncode == 0, p.stderr
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    data = tmp_path / "tls-data"
    data.mkdir()
    env = dict(os.environ, MINIO_ROOT_USER=os.environ["LB_S3_ACCESS_KEY"],
               MINIO_ROOT_PASSWORD=os.environ["LB_S3_SECRET_KEY"], MINIO_BROWSER="off")
    log = open(tmp_path / "tls-minio.log", "wb")
    proc = subprocess.Popen([binary, "server", "--quiet", "--certs-dir", str(certs),
                             "--address", f"127.0.0.1:{port}", str(data)], env=env,
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    endpoint = f"https://127.0.0.1:{port}"
    import ssl
    ctx = ssl.create_default_context(cafile=str(certs / "public.crt"))
    def live():
        try:
            with urllib.request.urlopen(endpoint + "/minio/health/live", timeout=10,
                                        context=ctx) as r:
                return r.status == 200
        except OSError:
            return proc.poll() is not None
    try:
        wait_until(live, "the TLS MinIO to start", interval=0.1)
        assert proc.poll() is None, "the TLS MinIO exited: " + \
            (tmp_path / "tls-minio.log").read_text(errors="replace")[-2000:]
        yield endpoint, certs / "public.crt"
    finally:
        proc.kill()
        proc.wait()
        log.close()


def test_https_is_verified(lb, tls_minio):
    endpoint, ca = tls_minio
    import boto3
    c = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=os.environ["LB_S3_ACCESS_KEY"],
                     aws_secret_access_key=os.environ["LB_S3_SECRET_KEY"],
                     region_name="us-east-1", verify=str(ca))
    c.create_bucket(Bucket="tls-bucket")
    env = {"BACKUP_S3_BUCKET": "tls-bucket", "BACKUP_S3_ENDPOINT": endpoint,
           "BACKUP_S3_ACCESS_KEY": os.environ["LB_S3_ACCESS_KEY"],
           "BACKUP_S3_SECRET_KEY": os.environ["LB_S3_SECRET_KEY"], "BACKUP_LOCAL_PATH": None}
    # an unknown CA is refused by default
    res = lb.run(["list"], env, check=EXIT_STORE)
    assert endpoint.split("://")[1] in one_line_error(res)
    assert c.list_objects_v2(Bucket="tls-bucket").get("KeyCount", 0) == 0
    # trusted through BACKUP_S3_CA_FILE: a full round trip over HTTPS
    env["BACKUP_S3_CA_FILE"] = str(ca)
    orig = lb.snap()
    ts = lb.backup(env)
    assert [o["Key"] for o in c.list_objects_v2(Bucket="tls-bucket")["Contents"]] == \
        [key_of(lb, ts)]
    wreck_tree(lb.src)
    lb.restore(ts, env)
    assert_same_tree(orig["src"], lb.snap()["src"])


def test_retention_prunes_s3_and_local_alike(lb, s3):
    """After a successful run, each store keeps exactly what the rules keep."""
    c, bucket, env = s3
    env = {**env, "BACKUP_KEEP_LAST": "2"}
    stamps = []
    for _ in range(3):
        stamps.append(lb.backup(env))  # each in a second of its own (choose_id)
    keep = sorted(stamps)[-2:]
    want_local = sorted(f"{lb.NAME}-{ts}.tar.gz.gpg" for ts in keep)
    assert sorted(os.listdir(lb.backup_dir)) == want_local
    assert sorted(objects(c, bucket)) == sorted(f"{lb.NAME}/{n}" for n in want_local)
    # A foreign object under the same prefix is never touched.
    c.put_object(Bucket=bucket, Key=f"{lb.NAME}/notes.txt", Body=b"mine")
    lb.backup(env)
    assert f"{lb.NAME}/notes.txt" in objects(c, bucket)
    assert len([k for k in objects(c, bucket) if k.endswith(".tar.gz.gpg")]) == 2


def test_metrics_per_store(lb, s3):
    """A run whose S3 copy fails counts against the s3 store only."""
    import socket
    c, bucket, env = s3
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = lb.popen(["run"], {**env, "BACKUP_METRICS_ADDR": f"127.0.0.1:{port}"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=HANG) as r:
                return r.read().decode()
        except OSError:
            return None

    def scrape():
        text = wait_until(get, "the metrics endpoint", interval=0.1)
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def series(metric, store):
        return f'{metric}{{name="{lb.NAME}",store="{store}"}}'

    try:
        bad = {**env, "BACKUP_S3_SECRET_KEY": "wrong-" + env["BACKUP_S3_SECRET_KEY"]}
        lb.run(["backup"], bad, check=EXIT_STORE)
        m = scrape()
        assert m[series("lifeboat_store_failures_total", "s3")] == 1
        assert m[series("lifeboat_store_failures_total", "local")] == 0
        assert m[series("lifeboat_store_last_success_timestamp_seconds", "s3")] == 0
        assert m[series("lifeboat_store_last_success_timestamp_seconds", "local")] > 0
        lb.backup(env)
        m = scrape()
        assert m[series("lifeboat_store_last_success_timestamp_seconds", "s3")] > 0
        assert m[series("lifeboat_store_failures_total", "s3")] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=HANG)

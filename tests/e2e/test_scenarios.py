"""The spec's scenarios, run with docker-compose against the real engine.

Scenario 1 uses the repository's own example stack (docker-compose.example.yml: an app
writing uploads, SQLite and PostgreSQL; PostgreSQL; the Lifeboat sidecar), each test in a
compose project of its own with its own .env and backup directory.
"""

import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import IN_CI, REPO

DB_PASSWORD = "db p@ss:w/rd"


def compose_cmd():
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    msg = "neither 'docker compose' nor docker-compose is installed"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


class Stack:
    def __init__(self, tmp_path, compose_file, env):
        self.project = "lbe2e" + uuid.uuid4().hex[:8]
        self.dir = tmp_path
        self.backups = tmp_path / "backups"
        self.backups.mkdir()
        self.env_file = tmp_path / "stack.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.base = compose_cmd() + ["-p", self.project, "-f", str(compose_file)]
        self.proc_env = dict(os.environ, LIFEBOAT_ENV_FILE=str(self.env_file),
                             BACKUP_HOST_DIR=str(self.backups), DB_PASSWORD=DB_PASSWORD)

    def run(self, *args, check=True, timeout=900, input=None):
        p = subprocess.run(self.base + list(args), capture_output=True, text=True,
                           env=self.proc_env, cwd=str(REPO), timeout=timeout, input=input)
        if check:
            assert p.returncode == 0, f"{' '.join(args)} failed ({p.returncode}):\n" \
                                      f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        return p

    def exec(self, service, *cmd, check=True):
        return self.run("exec", "-T", service, *cmd, check=check)

    def container_state(self, service):
        cid = self.run("ps", "-q", service).stdout.strip()
        if not cid:
            return None
        p = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", cid],
                           capture_output=True, text=True)
        return p.stdout.strip()

    def down(self):
        self.run("down", "-v", "--remove-orphans", check=False, timeout=300)


def psql(stack, sql):
    return stack.exec("db", "psql", "-X", "-U", "postgres", "-d", "app", "-Atc", sql).stdout.strip()


def wait_for(pred, what, timeout=300, stack=None):
    """Poll pred until true; the deadline is a hang guard for a loaded machine."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (AssertionError, ValueError) as e:
            last = e
        time.sleep(1)
    logs = stack.run("logs", "--tail=30", check=False).stdout[-4000:] if stack else ""
    pytest.fail(f"timed out waiting for {what} (last error: {last})\n{logs}")


def app_state(stack):
    """Everything the example app wrote: PostgreSQL rows, uploads, SQLite rows."""
    pg_rows = psql(stack, "SELECT count(*) || ':' || md5(string_agg(id || note, ',' ORDER BY id)) "
                          "FROM events")
    uploads = stack.exec("backup", "sh", "-c",
                         "cd /app/uploads && ls -A | sort | xargs -r sha256sum").stdout
    sqlite = stack.run("run", "--rm", "--no-deps", "app", "python3", "-c",
                       "import sqlite3; d = sqlite3.connect('/app/db/app.db'); "
                       "print(d.execute('PRAGMA integrity_check').fetchone()[0], "
                       "d.execute(\"SELECT count(*), group_concat(note, ',') FROM "
                       "(SELECT note FROM events ORDER BY id)\").fetchone())",
                       check=False)
    sqlite = (sqlite.stdout + sqlite.stderr[-300:] if sqlite.returncode else sqlite.stdout).strip()
    return {"postgres": pg_rows, "uploads": uploads, "sqlite": sqlite}


@pytest.fixture
def example_stack(image, tmp_path):
    pg_uri = "postgresql://postgres:" + DB_PASSWORD.replace(" ", "%20").replace(
        "@", "%40").replace(":", "%3A").replace("/", "%2F") + "@db:5432/app"
    env = {
        "BACKUP_NAME": "example",
        "BACKUP_LOCAL_PATH": "/backups-local",
        "BACKUP_ENCRYPTION_KEY": "e2e scenario passphrase",
        "BACKUP_DIRS": "/app/uploads:uploads",
        "BACKUP_FILES": "/app/db/app.db:appdb",
        "BACKUP_POSTGRES": pg_uri,
        "TZ": "UTC",
    }
    stack = Stack(tmp_path, REPO / "docker-compose.example.yml", env)
    try:
        stack.run("up", "-d", "--build", timeout=1800)
        yield stack
    finally:
        stack.down()


def test_scenario_1_web_app_postgres_uploads(example_stack):
    """Spec scenario 1: web app + PostgreSQL + uploads, local store; backup, wreck,
    restore.sh TIMESTAMP, data identical, services running."""
    s = example_stack
    wait_for(lambda: int(psql(s, "SELECT count(*) FROM events") or 0) >= 3,
             "the app to write to PostgreSQL", stack=s)
    # A fixed point to compare against: the app pauses while we back up.
    s.run("stop", "app")
    before = app_state(s)
    assert before["postgres"].split(":")[0] != "0"
    assert before["sqlite"].startswith("ok")

    b = s.exec("backup", "/backup-scripts/backup-now.sh")
    ts = b.stdout.strip().splitlines()[-1]
    archive = s.backups / "example" / f"example-{ts}.tar.gz.gpg"
    assert archive.is_file()
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert ts in s.exec("backup", "/backup-scripts/list-backups.sh").stdout

    # Wreck all three kinds of data.
    psql(s, "TRUNCATE events; CREATE TABLE junk (x int)")
    s.exec("backup", "sh", "-c", "rm -f /app/uploads/upload-000001.txt; "
                                 "echo wrecked > /app/uploads/upload-000002.txt; "
                                 "echo junk > /app/uploads/junk.txt; "
                                 "echo garbage > /app/db/app.db; rm -f /app/db/app.db-wal")
    assert app_state(s) != before

    r = s.exec("backup", "/backup-scripts/restore.sh", ts, "--yes")
    assert "error" not in r.stderr.lower(), r.stderr
    assert app_state(s) == before
    assert psql(s, "SELECT count(*) FROM pg_tables WHERE tablename = 'junk'") == "0"

    s.run("start", "app")
    for svc in ("app", "db", "backup"):
        wait_for(lambda svc=svc: s.container_state(svc) == "running", f"{svc} running")
    n = int(before["postgres"].split(":")[0])
    wait_for(lambda: int(psql(s, "SELECT count(*) FROM events")) > n,
             "the app to write again after the restore")


# --------------------------------------------------------------------------
# scenarios 5 and 6: the scheduler in the container, health, bad configuration
# --------------------------------------------------------------------------

def docker_ok(*args, timeout=600):
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"docker {' '.join(args)}: {p.stderr}"
    return p.stdout.strip()


@pytest.fixture
def network():
    name = "lbnet" + uuid.uuid4().hex[:8]
    docker_ok("network", "create", name)
    containers = []
    try:
        yield name, containers
    finally:
        for c in containers:
            subprocess.run(["docker", "rm", "-f", c], capture_output=True)
        subprocess.run(["docker", "network", "rm", name], capture_output=True)


@pytest.fixture(scope="session")
def hooks_image(image):
    tag = "lifeboat-e2e-hooks"
    docker_ok("build", "-q", "-t", tag, str(REPO / "tests" / "e2e" / "hooks"), timeout=1800)
    return tag


def start_hooks(network, hooks_image, out_dir):
    net, containers = network
    name = "hooks" + uuid.uuid4().hex[:6]
    out_dir.mkdir(exist_ok=True)
    docker_ok("run", "-d", "--name", name, "--network", net, "--network-alias", "hooks",
              "-v", f"{out_dir}:/out", hooks_image)
    containers.append(name)
    return out_dir / "hooks.jsonl"


def read_hooks(path):
    import json
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def health(name):
    import json
    st = json.loads(docker_ok("inspect", name))[0]["State"]
    return st.get("Health", {}).get("Status"), st


def test_scenario_5_schedule_retention_health(image, network, tmp_path):
    """A seconds-field schedule backs up on its own, retention prunes, health turns
    healthy, and unhealthy once the runs start failing."""
    net, containers = network
    data = tmp_path / "data"
    (data / "src").mkdir(parents=True)
    (data / "src" / "f.txt").write_text("scheduled\n")
    backups = tmp_path / "backups"
    backups.mkdir()
    name = "lbsched" + uuid.uuid4().hex[:6]
    env = {"BACKUP_NAME": "sched", "BACKUP_LOCAL_PATH": "/backups-local",
           "BACKUP_ENCRYPTION_KEY": "e2e", "BACKUP_DIRS": "/data/src:src",
           "BACKUP_SCHEDULE": "*/4 * * * * *", "BACKUP_KEEP_LAST": "2"}
    args = ["run", "-d", "--name", name, "--network", net, "--health-interval", "2s",
            "--health-start-period", "1s", "--health-retries", "1",
            "-v", f"{data}:/data", "-v", f"{backups}:/backups-local"]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    docker_ok(*args, image)
    containers.append(name)
    store = backups / "sched"

    def archives():
        return sorted(n for n in os.listdir(store) if n.endswith(".tar.gz.gpg")) \
            if store.exists() else []
    seen = set()

    def three_runs():
        seen.update(archives())
        return len(seen) >= 4
    wait_for(three_runs, "four scheduled backups")
    # No pause needed: at any moment there are the two kept plus at most the newest one,
    # committed and not pruned yet; without retention all four would be there.
    assert len(archives()) <= 3, archives()  # KEEP_LAST=2 (+ one run in flight at most)
    wait_for(lambda: health(name)[0] == "healthy", "healthy")

    # Force failures: the source disappears.
    shutil.rmtree(data / "src")
    wait_for(lambda: health(name)[0] == "unhealthy", "unhealthy after failed runs")
    st = health(name)[1]
    assert st["Running"], st
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
    assert "/data/src" in logs and "error" in logs


@pytest.mark.parametrize("case", ["missing_name", "bad_schedule"])
def test_scenario_6_bad_configuration_stops_the_container(image, tmp_path, case):
    env = {"BACKUP_NAME": "bad", "BACKUP_LOCAL_PATH": "/tmp", "BACKUP_ENCRYPTION_KEY": "k",
           "BACKUP_DIRS": "/etc:etc", "BACKUP_SCHEDULE": "0 2 * * *"}
    if case == "missing_name":
        del env["BACKUP_NAME"]
        needle = "BACKUP_NAME"
    else:
        env["BACKUP_SCHEDULE"] = "61 * * * *"
        needle = "BACKUP_SCHEDULE"
    args = ["run", "--rm"]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    p = subprocess.run(["docker", *args, image], capture_output=True, text=True, timeout=600)
    assert p.returncode == 3, (p.returncode, p.stderr)
    errors = [l for l in p.stderr.splitlines() if "error" in l]
    assert len(errors) == 1 and needle in errors[0], p.stderr


def test_scenario_6_unreachable_database_reports_through_the_webhook(image, hooks_image,
                                                                      network, tmp_path):
    net, containers = network
    hooks = start_hooks(network, hooks_image, tmp_path / "hooks")
    name = "lbbaddb" + uuid.uuid4().hex[:6]
    secret = "s3cr3t-" + uuid.uuid4().hex[:6]
    env = {"BACKUP_NAME": "baddb", "BACKUP_LOCAL_PATH": "/tmp", "BACKUP_ENCRYPTION_KEY": "k",
           "BACKUP_POSTGRES": f"postgresql://postgres:{secret}@nowhere-db:5432/app",
           "BACKUP_SCHEDULE": "*/3 * * * * *",
           "BACKUP_FAILURE_WEBHOOK": "http://hooks:8080/fail",
           "BACKUP_SUCCESS_WEBHOOK": "http://hooks:8080/ok"}
    args = ["run", "-d", "--name", name, "--network", net]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    docker_ok(*args, image)
    containers.append(name)
    wait_for(lambda: any(h["path"] == "/fail" for h in read_hooks(hooks)),
             "a failure webhook")
    fail = [h for h in read_hooks(hooks) if h["path"] == "/fail"][0]
    assert "nowhere-db" in fail["body"] and "***" in fail["body"], fail
    assert secret not in fail["body"]
    assert not any(h["path"] == "/ok" for h in read_hooks(hooks))
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    assert secret not in logs.stdout + logs.stderr
    assert health(name)[1]["Running"]


# --------------------------------------------------------------------------
# scenarios 3 and 4: PostgreSQL + MongoDB + dirs + files, S3 and local, webhooks
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def service_images(image, hooks_image, go_binaries, tmp_path_factory):
    """MinIO and FerretDB images from the binaries built with Go into the test cache."""
    for name, tag in (("minio", "lifeboat-e2e-minio"), ("ferretdb", "lifeboat-e2e-ferretdb")):
        ctx = tmp_path_factory.mktemp(name)
        shutil.copy(REPO / "tests" / "e2e" / "images" / name / "Dockerfile", ctx)
        shutil.copy(go_binaries[name], ctx / name)
        docker_ok("build", "-q", "-t", tag, str(ctx), timeout=1800)
    return image


def published(stack, service, port):
    out = stack.run("port", service, str(port)).stdout.strip()
    return out.rsplit(":", 1)[0].replace("0.0.0.0", "127.0.0.1"), int(out.rsplit(":", 1)[1])


def pg_quote(pw):
    import urllib.parse
    return urllib.parse.quote(pw, safe="")


class FullStack(Stack):
    S3_KEY, S3_SECRET = "lbe2eaccess", "lbe2e-secret-" + uuid.uuid4().hex[:8]

    def __init__(self, tmp_path, image):
        self.s3_dir = tmp_path / "s3"
        self.s3_dir.mkdir()
        self.hooks_dir = tmp_path / "hooks"
        self.hooks_dir.mkdir()
        env = {
            "BACKUP_NAME": "fullstack",
            "BACKUP_LOCAL_PATH": "/backups-local",
            "BACKUP_ENCRYPTION_KEY": "scenario three passphrase",
            "BACKUP_POSTGRES": f"postgresql://postgres:{pg_quote(DB_PASSWORD)}@db:5432/maindb",
            "BACKUP_MONGODB": "mongodb://mongo:27017/shop",
            "BACKUP_DIRS": "/config:config,/uploads:uploads",
            "BACKUP_FILES": "/secrets/api-key.txt:apikey",
            "BACKUP_S3_BUCKET": "backups",
            "BACKUP_S3_ENDPOINT": "http://minio:9000",
            "BACKUP_S3_ACCESS_KEY": self.S3_KEY,
            "BACKUP_S3_SECRET_KEY": self.S3_SECRET,
            "BACKUP_SUCCESS_WEBHOOK": "http://hooks:8080/success",
            "BACKUP_FAILURE_WEBHOOK": "http://hooks:8080/failure",
            "TZ": "UTC",
        }
        super().__init__(tmp_path, REPO / "tests" / "e2e" / "scenario3.yml", env)
        self.proc_env.update(S3_ACCESS_KEY=self.S3_KEY, S3_SECRET_KEY=self.S3_SECRET,
                             S3_HOST_DIR=str(self.s3_dir), HOOKS_HOST_DIR=str(self.hooks_dir),
                             LIFEBOAT_IMAGE=image)

    def up(self):
        self.run("up", "-d", "--build", timeout=1800)
        wait_for(lambda: psql_main(self, "SELECT 1") == "1", "PostgreSQL", stack=self)
        self.mongo = self.mongo_client()

        def ping():
            import pymongo.errors
            try:
                return self.mongo.admin.command("ping")["ok"] == 1
            except pymongo.errors.PyMongoError:
                return False  # not up yet: polled again
        wait_for(ping, "FerretDB", stack=self)

    def mongo_client(self):
        try:
            import pymongo
        except ImportError:
            if IN_CI:
                pytest.fail("pymongo is not installed (./test.sh installs it)")
            pytest.skip("pymongo is not installed")
        host, port = published(self, "mongo", 27017)
        # A hang guard: a busy machine may keep FerretDB from answering for long.
        return pymongo.MongoClient(host, port, serverSelectionTimeoutMS=60000)

    def s3(self):
        try:
            import boto3
        except ImportError:
            pytest.fail("boto3 is not installed (./test.sh installs it)")
        host, port = published(self, "minio", 9000)
        return boto3.client("s3", endpoint_url=f"http://{host}:{port}",
                            aws_access_key_id=self.S3_KEY,
                            aws_secret_access_key=self.S3_SECRET, region_name="us-east-1")


def psql_main(stack, sql):
    return stack.exec("db", "psql", "-X", "-U", "postgres", "-d", "maindb", "-Atc",
                      sql).stdout.strip()


def populate_full(s):
    psql_main(s, "CREATE TABLE orders (id serial PRIMARY KEY, who text, total numeric); "
                 "INSERT INTO orders (who, total) SELECT 'kunde ' || g || ' ü', g * 3.5 "
                 "FROM generate_series(1, 2000) g")
    db = s.mongo.shop
    db.products.insert_many([{"_id": i, "name": f"produkt {i} ä", "tags": ["a", str(i % 5)],
                              "spec": {"w": i * 0.5, "dims": [i, i + 1]}} for i in range(500)])
    db.products.create_index([("name", 1)], unique=True)
    db.reviews.insert_many([{"product": i % 50, "stars": i % 5 + 1} for i in range(300)])
    s.exec("backup", "sh", "-c",
           "mkdir -p /config/app /uploads/2026/11 && echo 'debug = false' > /config/app/app.ini"
           " && head -c 300000 /dev/urandom > /uploads/2026/11/photo.jpg"
           " && printf 'ünïcode name\\n' > '/uploads/2026/11/notiz ü.txt'"
           " && printf 'api-key-123\\n' > /secrets/api-key.txt && chmod 600 /secrets/api-key.txt")


def full_state(s):
    files = s.exec("backup", "sh", "-c",
                   # /secrets itself is not backed up (only the file in it is).
                   "cd / && find config uploads secrets/api-key.txt -print0 | sort -z | "
                   "xargs -0 stat -c '%n %a %s %Y' && find config uploads secrets -type f "
                   "-print0 | sort -z | xargs -0 sha256sum").stdout
    mongo = {c: sorted(map(repr, s.mongo.shop[c].find({}, sort=[("_id", 1)])))
             for c in sorted(s.mongo.shop.list_collection_names())}
    indexes = sorted(repr(sorted(v.items())) for k, v in
                     s.mongo.shop.products.index_information().items() if k != "_id_")
    return {"postgres": psql_main(s, "SELECT count(*) || ':' || md5(string_agg(id || who || "
                                     "total, ',' ORDER BY id)) FROM orders"),
            "mongo": mongo, "mongo_indexes": indexes, "files": files}


def wreck_full(s):
    psql_main(s, "DELETE FROM orders WHERE id % 2 = 0")
    s.mongo.shop.products.delete_many({"_id": {"$lt": 250}})
    s.mongo.shop.reviews.drop()
    s.exec("backup", "sh", "-c", "rm -rf /uploads/2026 && echo hacked > /config/app/app.ini"
                                 " && echo leaked > /secrets/api-key.txt")


@pytest.fixture
def full_stack(service_images, tmp_path):
    s = FullStack(tmp_path, service_images)
    try:
        s.up()
        s.s3().create_bucket(Bucket="backups")
        yield s
    finally:
        s.down()


def test_scenario_3_everything_to_s3_and_local_with_webhooks(full_stack):
    s = full_stack
    populate_full(s)
    before = full_state(s)
    ts = s.exec("backup", "/backup-scripts/backup-now.sh").stdout.strip().splitlines()[-1]
    listing = s.exec("backup", "/backup-scripts/list-backups.sh").stdout
    row = [l for l in listing.splitlines() if l.startswith(ts)]
    assert row and "both" in row[0], listing
    keys = [o["Key"] for o in s.s3().list_objects_v2(Bucket="backups").get("Contents", [])]
    assert keys == [f"fullstack/fullstack-{ts}.tar.gz.gpg"], keys
    hooks = read_hooks(s.hooks_dir / "hooks.jsonl")
    assert [h["path"] for h in hooks] == ["/success"], hooks
    assert ts in hooks[0]["body"]

    # The local copy is lost; the data is wrecked; restore comes from S3.
    for f in (s.backups / "fullstack").iterdir():
        f.unlink()
    wreck_full(s)
    assert full_state(s) != before
    r = s.exec("backup", "/backup-scripts/restore.sh", ts, "--yes")
    assert "from the s3 store" in r.stderr, r.stderr
    assert full_state(s) == before


def test_scenario_4_disaster_recovery_from_s3(full_stack):
    """`docker compose down -v`, fresh volumes, the same .env: list and restore from S3."""
    s = full_stack
    populate_full(s)
    before = full_state(s)
    ts = s.exec("backup", "/backup-scripts/backup-now.sh").stdout.strip().splitlines()[-1]

    s.run("down", "-v", timeout=300)
    shutil.rmtree(s.backups)  # the host lost its local copies too
    s.backups.mkdir()
    s.up()
    assert psql_main(s, "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'") == "0"
    listing = s.exec("backup", "/backup-scripts/list-backups.sh").stdout
    assert any(l.startswith(ts) and "s3" in l for l in listing.splitlines()), listing
    s.exec("backup", "/backup-scripts/restore.sh", ts, "--yes")
    assert full_state(s) == before


# --------------------------------------------------------------------------
# PostgreSQL through docker exec (issue 5): forced, and the automatic switch
# --------------------------------------------------------------------------

def pg_stack(tmp_path, **extra):
    pg_uri = "postgresql://postgres:" + pg_quote(DB_PASSWORD) + "@db:5432/app"
    env = {"BACKUP_NAME": "pgexec", "BACKUP_LOCAL_PATH": "/backups-local",
           "BACKUP_ENCRYPTION_KEY": "e2e exec passphrase", "BACKUP_POSTGRES": pg_uri,
           "TZ": "UTC", **extra}
    return Stack(tmp_path, REPO / "docker-compose.example.yml", env)


def roundtrip_pg(s):
    wait_for(lambda: int(psql(s, "SELECT count(*) FROM events") or 0) >= 3,
             "the app to write to PostgreSQL", stack=s)
    s.run("stop", "app")
    before = psql(s, "SELECT count(*) || ':' || md5(string_agg(id || note, ',' ORDER BY id)) "
                     "FROM events")
    b = s.exec("backup", "/backup-scripts/backup-now.sh")
    ts = b.stdout.strip().splitlines()[-1]
    psql(s, "DELETE FROM events WHERE id % 2 = 0")
    r = s.exec("backup", "/backup-scripts/restore.sh", ts, "--yes")
    assert psql(s, "SELECT count(*) || ':' || md5(string_agg(id || note, ',' ORDER BY id)) "
                   "FROM events") == before
    return b.stderr + r.stderr


def test_pg_dump_exec_in_the_database_container(image, tmp_path):
    s = pg_stack(tmp_path, BACKUP_POSTGRES_DUMP="exec")
    try:
        s.run("up", "-d", "--build", timeout=1800)
        logs = roundtrip_pg(s)
        assert "running the client tools in container 'db'" in logs, logs
        assert DB_PASSWORD not in logs and pg_quote(DB_PASSWORD) not in logs
    finally:
        s.down()


def test_pg_client_older_than_server_switches_to_exec(image, tmp_path):
    """The sidecar's pg_dump/pg_restore claim version 9.6 (wrappers in front of the real
    ones that refuse to do anything else): with the default BACKUP_POSTGRES_DUMP=auto the
    backup and the restore must run in the database's container instead."""
    extra = tmp_path / "extra"
    extra.mkdir()
    for prog in ("pg_dump", "pg_restore"):
        f = extra / prog
        f.write_text("#!/bin/sh\n"
                     f"if [ \"$1\" = --version ]; then echo '{prog} (PostgreSQL) 9.6.24'; "
                     "exit 0; fi\n"
                     "echo 'the old local client must not be used' >&2; exit 1\n")
        f.chmod(0o755)
    s = pg_stack(tmp_path, PATH="/opt/lifeboat-extra:/usr/local/sbin:/usr/local/bin:"
                                "/usr/sbin:/usr/bin:/sbin:/bin")
    s.proc_env["LIFEBOAT_EXTRA_DIR"] = str(extra)
    try:
        s.run("up", "-d", "--build", timeout=1800)
        assert s.exec("backup", "pg_dump", "--version").stdout.strip().endswith("9.6.24")
        logs = roundtrip_pg(s)
        assert "newer than this pg_dump (9)" in logs, logs
        assert "newer than this pg_restore (9)" in logs, logs
    finally:
        s.down()


# --------------------------------------------------------------------------
# scenario 2: SQLite app stopped by container_name
# --------------------------------------------------------------------------

def inspect_state(name):
    import json
    return json.loads(docker_ok("inspect", name))[0]["State"]


def docker_ns(s):
    """Docker's RFC 3339 time ('...T20:10:05.1234Z', trailing zeros trimmed) in integer
    nanoseconds: two instants inside one second compare right (as strings they may not)."""
    import calendar
    import datetime
    base, _, frac = s.rstrip("Z").partition(".")
    secs = calendar.timegm(datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").timetuple())
    return secs * 10**9 + int((frac or "0").ljust(9, "0")[:9])


def sqlite_rows(path):
    import sqlite3
    db = sqlite3.connect(str(path))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return db.execute("SELECT id, note FROM events ORDER BY id").fetchall()
    finally:
        db.close()


def test_scenario_2_sqlite_app_stopped_by_container_name(image, tmp_path):
    from conftest import docker as _d  # noqa: F401  (engine checked by `image`)
    import subprocess as sp
    app_name = "lbapp" + uuid.uuid4().hex[:8]
    env = {"BACKUP_NAME": "sqliteapp", "BACKUP_LOCAL_PATH": "/backups-local",
           "BACKUP_ENCRYPTION_KEY": "scenario two", "BACKUP_FILES": "/app/db/app.db:appdb",
           "BACKUP_STOP_SERVICES": app_name, "BACKUP_STOP_WAIT": "1",
           "BACKUP_START_WAIT": "1", "TZ": "UTC"}
    s = Stack(tmp_path, REPO / "tests" / "e2e" / "scenario2.yml", env)
    s.proc_env.update(APP_NAME=app_name, LIFEBOAT_IMAGE=image)
    try:
        s.run("up", "-d", "--build", timeout=1800)
        wait_for(lambda: "started" in docker_ok("logs", app_name) or
                 "started" in sp.run(["docker", "logs", app_name], capture_output=True,
                                     text=True).stdout, "the app", stack=s)
        # The app has committed three rows (was: a 2 s sleep that hoped so).
        wait_for(lambda: int(docker_ok(
            "exec", app_name, "python3", "-c",
            "import sqlite3; print(sqlite3.connect('/app/db/app.db')"
            ".execute('SELECT count(*) FROM events').fetchone()[0])")) >= 3,
            "three rows from the app", stack=s)
        before = inspect_state(app_name)
        b = s.exec("backup", "/backup-scripts/backup-now.sh")
        ts = b.stdout.strip().splitlines()[-1]
        after = inspect_state(app_name)
        # Stopped and started again by the backup, and running now.
        assert after["Running"], after
        started, finished = docker_ns(after["StartedAt"]), docker_ns(after["FinishedAt"])
        assert started > docker_ns(before["StartedAt"]), (before, after)
        assert docker_ns(before["StartedAt"]) < finished < started, after
        assert f"stopping" in b.stderr.lower() and app_name in b.stderr, b.stderr

        # The archive's database, read with standard tools.
        out = gpg_tar_x(s.backups / "sqliteapp" / f"sqliteapp-{ts}.tar.gz.gpg",
                        "scenario two", tmp_path / "x")
        backed_up = sqlite_rows(out / "files" / "appdb" / "app.db")
        assert len(backed_up) >= 3

        # Wreck the live database, then restore (the sidecar stops the app around it).
        s.exec("backup", "sh", "-c", "echo garbage > /app/db/app.db; rm -f /app/db/app.db-wal")
        r = s.exec("backup", "/backup-scripts/restore.sh", ts, "--yes")
        assert app_name in r.stderr, r.stderr
        wait_for(lambda: inspect_state(app_name)["Running"], "the app running again")
        s.run("stop", "app")
        restored = sqlite_rows_from_volume(s)
        n = len(backed_up)
        assert restored[:n] == backed_up
        assert [i for i, _ in restored[n:]] == list(range(backed_up[-1][0] + 1,
                                                          backed_up[-1][0] + 1 +
                                                          len(restored) - n))
    finally:
        s.down()


def gpg_tar_x(archive, passphrase, dest):
    """gpg -d ARCHIVE | tar xz -C DEST, as a user would."""
    import tempfile
    home = tempfile.mkdtemp(prefix="g", dir="/tmp")
    os.chmod(home, 0o700)
    dest.mkdir()
    pw = dest.parent / "pw"
    pw.write_text(passphrase + "\n")
    try:
        g = subprocess.Popen(["gpg", "--homedir", home, "--batch", "--pinentry-mode",
                              "loopback", "--passphrase-file", str(pw), "-d", str(archive)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t = subprocess.run(["tar", "xz", "-C", str(dest)], stdin=g.stdout, capture_output=True)
        g.stdout.close()
        assert g.wait() == 0 and t.returncode == 0, (g.stderr.read(), t.stderr)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"],
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    return dest


def sqlite_rows_from_volume(s):
    p = s.run("run", "--rm", "--no-deps", "app", "python3", "-c",
              "import sqlite3, json; d = sqlite3.connect('/app/db/app.db'); "
              "assert d.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'; "
              "print(json.dumps(d.execute('SELECT id, note FROM events ORDER BY id')"
              ".fetchall()))")
    import json
    return [tuple(r) for r in json.loads(p.stdout.strip().splitlines()[-1])]


def test_stopping_the_database_being_dumped_is_refused(image, tmp_path):
    s = pg_stack(tmp_path, BACKUP_STOP_SERVICES="app,db")
    try:
        s.run("up", "-d", "--build", timeout=1800)
        wait_for(lambda: psql(s, "SELECT 1") == "1", "PostgreSQL", stack=s)
        r = s.exec("backup", "/backup-scripts/backup-now.sh", check=False)
        assert r.returncode == 3, r.stderr
        err = [l for l in r.stderr.splitlines() if "error:" in l and "BACKUP_STOP_SERVICES" in l]
        assert len(err) == 1 and "'db'" in err[0] and "***" in err[0], r.stderr
        assert DB_PASSWORD not in r.stderr and pg_quote(DB_PASSWORD) not in r.stderr
        for svc in ("app", "db"):
            assert s.container_state(svc) == "running", svc
        store = s.backups / "pgexec"
        assert not store.exists() or not list(store.iterdir())
    finally:
        s.down()

"""The real servers of the test suites, as session fixtures' building blocks.

Each server the integration and end-to-end tests talk to (MinIO, FerretDB, PostgreSQL,
OpenSSH's sshd, Apache with mod_dav, rclone serve webdav, Azurite, a Docker engine) is
started here on a free loopback port, waited for with a generous deadline, and stopped by
its own pid. Servers that Debian does not package are built once from their Go modules
(Azurite: installed from the npm registry) into a cache outside the clone
(``$LB_TEST_CACHE``, default ``~/.cache/lifeboat-test``), one per pinned version, and
reused by every later run and every clone.

``python3 tests/lbservers.py build`` builds every cached binary (``./test.sh`` does it as
its own stage, so the time shows in its table); the fixtures build on demand too, so
``pytest tests/integration/test_s3.py`` works on its own.

Under ``CI=true`` (``./test.sh`` always sets it) a server that cannot be had is a test
failure; otherwise a skip.
"""

import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
CACHE = Path(os.environ.get("LB_TEST_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lifeboat-test")

# A server start is a wait, never a verdict on speed: generous on a loaded machine.
START_DEADLINE = 180

MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
FERRETDB_VERSION = "v1.24.2"
# mongo-tools tags are not Go versions: a pseudo-version of master (100.12.x, July 2025).
MONGO_TOOLS_VERSION = "v0.0.0-20250715155915-887641268977"
MONGO_TOOLS_SUM = "h1:J9wFLko0N7sbovyHahuRw1NyfMUsNhaauLK87wQ3ruc="
# The Azure Storage emulator, from the npm registry (Node.js: Debian's nodejs and npm).
AZURITE_VERSION = "3.37.0"


class Unavailable(Exception):
    """A server or tool the tests need cannot be had on this machine."""


def unavailable(msg):
    """Fail under CI, skip otherwise (only to be called from a test or fixture)."""
    import pytest
    if IN_CI:
        pytest.fail(msg + " (CI=true: a missing server is a failure)", pytrace=False)
    pytest.skip(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_secret(n=12):
    return base64.b64encode(os.urandom(n)).decode().translate({ord(c): None for c in "/+="})


# --------------------------------------------------------------------------
# Go builds, cached outside the clone
# --------------------------------------------------------------------------

def go_bin():
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(go, os.X_OK):
        raise Unavailable("Go is needed to build the test servers (install Go 1.24+)")
    return go


@contextlib.contextmanager
def cache_lock(name):
    """One builder per binary at a time (parallel pytest workers, two clones)."""
    (CACHE / "bin").mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def go_run(args, cwd=None, env_extra=None):
    env = {**os.environ, "GOFLAGS": os.environ.get("GOFLAGS", "-buildvcs=false"), **(env_extra or {})}
    p = subprocess.run([go_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise Unavailable(f"go {' '.join(args)} failed:\n{p.stderr[-3000:]}")
    return p.stdout


def go_module_dir(mod, want_sum=None, env_extra=None):
    d = json.loads(go_run(["mod", "download", "-json", mod], env_extra=env_extra))
    if d.get("Error"):
        raise Unavailable(f"{mod}: {d['Error']}")
    if want_sum and d.get("Sum") != want_sum:
        raise Unavailable(f"{mod}: checksum {d.get('Sum')} is not the pinned {want_sum}")
    return d["Dir"]


def cached_build(name, version, build):
    """Path of CACHE/bin/NAME-VERSION, running build(out_path) first if it is missing."""
    out = CACHE / "bin" / f"{name}-{version}"
    if out.is_file() and os.access(out, os.X_OK):
        return out
    with cache_lock(name):
        if not out.is_file():
            print(f"building {name} {version} into {out} (once per machine)", file=sys.stderr)
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            build(tmp)
            os.replace(tmp, out)
    return out


def module_copy(mod, want_sum=None, env_extra=None):
    """A writable copy of a module's source (module cache files are read-only)."""
    src = go_module_dir(mod, want_sum, env_extra)
    tmp = tempfile.mkdtemp(prefix="lb-gosrc.")
    shutil.copytree(src, tmp, dirs_exist_ok=True)
    for root, dirs, files in os.walk(tmp):
        for n in dirs + files:
            p = os.path.join(root, n)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o200)
    return tmp


def minio_bin():
    def build(out):
        gobin = tempfile.mkdtemp(prefix="lb-gobin.")
        try:
            go_run(["install", f"github.com/minio/minio@{MINIO_VERSION}"], env_extra={"GOBIN": gobin})
            shutil.move(os.path.join(gobin, "minio"), out)
        finally:
            shutil.rmtree(gobin, ignore_errors=True)
    return cached_build("minio", MINIO_VERSION, build)


def ferretdb_bin():
    def build(out):
        tmp = module_copy(f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}")
        try:
            # `go install` leaves out build/version/version.txt, without which FerretDB panics.
            Path(tmp, "build/version/version.txt").write_text(FERRETDB_VERSION + "\n")
            go_run(["build", "-o", str(out), "./cmd/ferretdb"], cwd=tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return cached_build("ferretdb", FERRETDB_VERSION, build)


def mongorestore_bin():
    def build(out):
        # The checksum database has no entry for this pseudo-version: the pinned sum checks it.
        nosum = {"GONOSUMDB": "github.com/mongodb/mongo-tools"}
        tmp = module_copy(f"github.com/mongodb/mongo-tools@{MONGO_TOOLS_VERSION}", MONGO_TOOLS_SUM, nosum)
        try:
            # Its vendor/ directory is incomplete in the module zip: build from go.sum instead.
            shutil.rmtree(os.path.join(tmp, "vendor"), ignore_errors=True)
            go_run(["build", "-o", str(out), "./mongorestore/main"], cwd=tmp,
                   env_extra={**nosum, "GOFLAGS": "-mod=mod -buildvcs=false"})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return cached_build("mongorestore", MONGO_TOOLS_VERSION, build)


# ntfy is not served by the Go module proxy: it is built from a git checkout of its source
# (LB_NTFY_GIT, a git directory; default the session's mirror), its dependencies from the proxy.
NTFY_COMMIT = "81a486adc11fe24efcbedefb28ae946028597c2f"
NTFY_GIT = os.environ.get("LB_NTFY_GIT") or "/work/.mirror/binwiederhier+ntfy/repo"


def ntfy_bin():
    stubs = {"server/site/index.html": "<html></html>\n", "server/docs/index.html": "<html></html>\n"}
    return cached_build("ntfy", NTFY_COMMIT[:12],
                        lambda out: git_source_build("ntfy", NTFY_GIT, NTFY_COMMIT, stubs, out))


# Gotify/server, likewise (LB_GOTIFY_GIT).
GOTIFY_COMMIT = "d543a8aad22fcbebf25e76d201b4317882b5e148"
GOTIFY_GIT = os.environ.get("LB_GOTIFY_GIT") or "/work/.mirror/gotify+server/repo"


def git_source_build(name, git_dir, commit, stubs, out):
    """Build the Go main package at the root of `commit` of `git_dir` into `out`; `stubs`
    are files the package embeds (a web UI we do not need), written first."""
    if not os.path.isdir(git_dir):
        raise Unavailable(f"no {name} source at {git_dir} (set LB_{name.upper()}_GIT to a "
                          "git directory of its repository)")
    tmp = tempfile.mkdtemp(prefix=f"lb-{name}src.")
    try:
        arch = subprocess.run(["git", "--git-dir", git_dir, "archive", commit], capture_output=True)
        if arch.returncode != 0:
            raise Unavailable(f"{name} source: {arch.stderr.decode(errors='replace')[-500:]}")
        subprocess.run(["tar", "-x", "-C", tmp], input=arch.stdout, check=True)
        for f, text in stubs.items():
            Path(tmp, f).parent.mkdir(parents=True, exist_ok=True)
            Path(tmp, f).write_text(text)
        go_run(["build", "-o", str(out), "."], cwd=tmp, env_extra={"CGO_ENABLED": "1"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def gotify_bin():
    stubs = {"ui/build/index.html": "<html></html>\n", "ui/build/manifest.json": "{}\n",
             "ui/build/static/stub.js": "\n"}
    return cached_build("gotify", GOTIFY_COMMIT[:12],
                        lambda out: git_source_build("gotify", GOTIFY_GIT, GOTIFY_COMMIT, stubs, out))


def azurite_bin():
    """CACHE/npm/azurite-VERSION/.../azurite-blob, `npm install`ed there first if missing."""
    out = CACHE / "npm" / f"azurite-{AZURITE_VERSION}"
    blob = out / "node_modules" / ".bin" / "azurite-blob"
    if blob.exists():
        return blob
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        raise Unavailable("Azurite needs Node.js and npm (apt-get install nodejs npm)")
    with cache_lock("azurite"):
        if not blob.exists():
            print(f"installing azurite {AZURITE_VERSION} into {out} (once per machine)",
                  file=sys.stderr)
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            p = subprocess.run([npm, "install", "--prefix", str(tmp), "--no-audit", "--no-fund",
                                "--save-exact", "--loglevel=error", f"azurite@{AZURITE_VERSION}"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise Unavailable(f"npm install azurite@{AZURITE_VERSION} failed:\n"
                                  f"{p.stderr[-3000:]}")
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
    return blob


BUILDS = {"minio": minio_bin, "ferretdb": ferretdb_bin, "mongorestore": mongorestore_bin,
          "ntfy": ntfy_bin, "gotify": gotify_bin, "azurite": azurite_bin}


# --------------------------------------------------------------------------
# one loopback server
# --------------------------------------------------------------------------

def wait_until(cond, what, deadline=START_DEADLINE, proc=None, log=None, step=0.2):
    """Poll cond() until it is true; raise Unavailable past the deadline or if proc died."""
    end = time.monotonic() + deadline
    while True:
        try:
            if cond():
                return
        except Exception:
            pass
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"{what} exited with {proc.returncode}" + log_tail(log))
        if time.monotonic() > end:
            raise Unavailable(f"{what} did not answer within {deadline} s" + log_tail(log))
        time.sleep(step)


def log_tail(log, n=20):
    if not log or not os.path.exists(log):
        return ""
    with open(log, "rb") as f:
        lines = f.read().decode(errors="replace").splitlines()[-n:]
    return ":\n" + "\n".join(lines)


class Server:
    """A process in its own session, logging to a file, stopped by its pid."""

    def __init__(self, name, argv, env=None, workdir=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = env
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"lb-{name}."))
        self.log = self.workdir / f"{name}.log"
        self.pidfile = self.workdir / f"{name}.pid"
        self.proc = None

    def start(self, ready):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.pidfile.write_text(str(self.proc.pid))
        try:
            wait_until(ready, self.name, proc=self.proc, log=self.log)
        except Unavailable:
            self.stop()
            raise
        return self

    def stop(self):
        """SIGTERM, then SIGKILL after 15 s; the pid in the pidfile (a test may restart it)."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait
            while time.monotonic() < end:
                if self.proc is not None and self.proc.pid == pid:
                    if self.proc.poll() is not None:
                        break
                else:
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                time.sleep(0.05)
            else:
                continue
            break
        with contextlib.suppress(OSError):
            self.pidfile.unlink()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def http_ok(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


# --------------------------------------------------------------------------
# the servers
# --------------------------------------------------------------------------

class Minio(Server):
    """MinIO with fresh root credentials; endpoint, access_key, secret_key, data."""

    def __init__(self):
        binary = minio_bin()
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key = "lbtest" + random_secret(4)
        self.secret_key = random_secret(18)
        super().__init__("minio", [])
        self.binary = binary
        self.data = self.workdir / "data"
        self.data.mkdir()
        self.argv = [str(binary), "server", "--quiet", "--address", f"127.0.0.1:{self.port}", str(self.data)]
        self.env = dict(os.environ, MINIO_ROOT_USER=self.access_key,
                        MINIO_ROOT_PASSWORD=self.secret_key, MINIO_BROWSER="off")

    def start(self):
        return super().start(lambda: http_ok(self.endpoint + "/minio/health/live"))

    def environ(self):
        """The variables the S3 tests read (and LB_MINIO_* to stop and restart it)."""
        return {"LB_S3_ENDPOINT": self.endpoint, "LB_S3_ACCESS_KEY": self.access_key,
                "LB_S3_SECRET_KEY": self.secret_key, "LB_MINIO_BIN": str(self.binary),
                "LB_MINIO_DATA": str(self.data), "LB_MINIO_PIDFILE": str(self.pidfile)}


class FerretDB(Server):
    """FerretDB (SQLite backend, authentication on) with a user whose password needs
    percent-encoding."""

    def __init__(self):
        binary = ferretdb_bin()
        self.port = free_port()
        self.user = "lbroot"
        self.password = "p@ss:w/rd%" + random_secret(12)
        self.hostport = f"127.0.0.1:{self.port}"
        quoted = urllib.parse.quote(self.password, safe="")
        self.uri = f"mongodb://{self.user}:{quoted}@{self.hostport}/?authSource=admin"
        super().__init__("ferretdb", [])
        self.binary = binary
        (self.workdir / "db").mkdir()
        self.argv = [str(binary), "--handler=sqlite", f"--sqlite-url=file:{self.workdir}/db/",
                     f"--state-dir={self.workdir}", f"--listen-addr={self.hostport}",
                     "--debug-addr=-", "--telemetry=disable", "--log-level=warn",
                     "--test-enable-new-auth", "--setup-database=admin",
                     f"--setup-username={self.user}"]
        self.env = dict(os.environ, FERRETDB_SETUP_PASSWORD=self.password)

    def start(self):
        def ping():
            import pymongo
            c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=1000)
            try:
                c.admin.command("ping")
                return True
            finally:
                c.close()
        return super().start(ping)

    def environ(self):
        return {"LB_MONGO_URI": self.uri, "LB_MONGO_USER": self.user,
                "LB_MONGO_PASSWORD": self.password, "LB_MONGO_HOSTPORT": self.hostport,
                "LB_FERRETDB_BIN": str(self.binary)}


class Ntfy(Server):
    """An ntfy server with access control: user `user` (password `password`) may publish
    and read; everyone else is denied."""

    def __init__(self):
        binary = ntfy_bin()
        self.port = free_port()
        self.user = "lbuser"
        self.password = "pw:" + random_secret(10)
        super().__init__("ntfy", [])
        self.binary = binary
        self.base = f"http://127.0.0.1:{self.port}"
        self.auth_file = self.workdir / "user.db"
        self.argv = [str(binary), "serve", f"--listen-http=127.0.0.1:{self.port}",
                     f"--base-url={self.base}", f"--cache-file={self.workdir}/cache.db",
                     f"--auth-file={self.auth_file}", "--auth-default-access=deny-all"]
        self.env = dict(os.environ)

    def start(self):
        super().start(lambda: http_ok(self.base + "/v1/health"))
        p = subprocess.run([str(self.binary), "user", f"--auth-file={self.auth_file}", "add",
                            "--role=admin", self.user], capture_output=True, text=True,
                           env=dict(os.environ, NTFY_PASSWORD=self.password))
        if p.returncode != 0:
            self.stop()
            raise Unavailable("ntfy user add failed: " + p.stderr[-1000:])
        return self

    def messages(self, topic):
        """The topic's cached messages, read back through ntfy's API as the user."""
        req = urllib.request.Request(f"{self.base}/{topic}/json?poll=1")
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        with urllib.request.urlopen(req, timeout=10) as r:
            return [json.loads(l) for l in r.read().decode().splitlines() if l.strip()]


class Gotify(Server):
    """A Gotify server (SQLite) with an admin user and one application, whose token
    (`token`) publishes; messages are read back as the admin."""

    def __init__(self):
        binary = gotify_bin()
        self.port = free_port()
        self.admin = ("lbadmin", "pw-" + random_secret(10))
        super().__init__("gotify", [str(binary)])
        self.base = f"http://127.0.0.1:{self.port}"
        w = self.workdir
        self.env = dict(os.environ, GOTIFY_SERVER_PORT=str(self.port),
                        GOTIFY_SERVER_LISTENADDR="127.0.0.1", GOTIFY_DATABASE_DIALECT="sqlite3",
                        GOTIFY_DATABASE_CONNECTION=f"{w}/gotify.db",
                        GOTIFY_DEFAULTUSER_NAME=self.admin[0], GOTIFY_DEFAULTUSER_PASS=self.admin[1],
                        GOTIFY_UPLOADEDIMAGESDIR=f"{w}/images", GOTIFY_PLUGINSDIR=f"{w}/plugins")
        self.token = self.app_id = None

    def _call(self, method, path, body=None):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Authorization", "Basic " + base64.b64encode(
            f"{self.admin[0]}:{self.admin[1]}".encode()).decode())
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def start(self):
        super().start(lambda: http_ok(self.base + "/health"))
        app = self._call("POST", "/application", {"name": "lifeboat-tests"})
        self.token, self.app_id = app["token"], app["id"]
        return self

    def messages(self):
        """The application's messages, newest first, read back through Gotify's API."""
        return self._call("GET", f"/application/{self.app_id}/message")["messages"]


class Smtp(Server):
    """aiosmtpd (PyPI) on loopback with STARTTLS required (a self-signed certificate,
    cert.pem) and AUTH (user / password); each message lands as a JSON file in mail/."""

    def __init__(self):
        try:
            import aiosmtpd  # noqa: F401
        except ImportError:
            raise Unavailable("aiosmtpd is not installed (pip install aiosmtpd)")
        self.port = free_port()
        self.user = "lbmail"
        self.password = "p@ss:" + random_secret(10)
        super().__init__("smtp", [])
        self.mail = self.workdir / "mail"
        self.mail.mkdir()
        self.cert = self.workdir / "cert.pem"
        key = self.workdir / "key.pem"
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", str(key), "-out", str(self.cert)], capture_output=True, text=True)
        if p.returncode != 0:
            raise Unavailable("openssl cannot make a certificate: " + p.stderr[-1000:])
        self.argv = [sys.executable, str(Path(__file__).resolve()), "smtp-serve", str(self.port),
                     str(self.mail), str(self.cert), str(key), self.user]
        self.env = dict(os.environ, LB_SMTP_PASSWORD=self.password)

    def start(self):
        def banner():
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(100).startswith(b"220")
        return super().start(banner)

    def messages(self):
        """Every message received so far: {"from", "to", "data"} in arrival order."""
        return [json.loads(p.read_text()) for p in sorted(self.mail.glob("*.json"))]


def smtp_serve(port, maildir, cert, key, user):
    """The Smtp class's process: aiosmtpd until SIGTERM."""
    import ssl
    import threading
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
    password = os.environ["LB_SMTP_PASSWORD"].encode()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    counter = iter(range(1, 1 << 30))

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            n = next(counter)
            rec = {"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                   "data": envelope.original_content.decode("utf-8", errors="replace"),
                   "tls": session.ssl is not None}
            tmp = Path(maildir, f".{n:06d}.tmp")
            tmp.write_text(json.dumps(rec))
            os.replace(tmp, Path(maildir, f"{n:06d}.json"))
            return "250 Message accepted for delivery"

    def auth(server, session, envelope, mechanism, data):
        ok = data.login == user.encode() and data.password == password
        return AuthResult(success=ok, handled=False)

    c = Controller(Handler(), hostname="127.0.0.1", port=int(port), tls_context=ctx,
                   require_starttls=True, authenticator=auth, auth_required=True,
                   auth_require_tls=True)
    c.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    c.stop()


class Postgres:
    """A private PostgreSQL (Debian's packages, scripts/pg-test-server.sh) whose superuser
    password has characters that need percent-encoding."""

    def __init__(self):
        if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
            raise Unavailable("no PostgreSQL server installed (apt-get install postgresql)")
        self.workdir = Path(tempfile.mkdtemp(prefix="lb-pg."))
        os.chmod(self.workdir, 0o755)
        self.port = free_port()
        self.password = "pg@:/" + random_secret(9)

    def start(self):
        p = subprocess.run([str(REPO / "scripts/pg-test-server.sh"), "start", str(self.workdir / "srv"),
                            str(self.port), self.password], capture_output=True, text=True)
        if p.returncode != 0:
            self.cleanup()
            raise Unavailable("PostgreSQL did not start: " + p.stderr[-2000:])
        return self

    def cleanup(self):
        subprocess.run([str(REPO / "scripts/pg-test-server.sh"), "stop", str(self.workdir / "srv")],
                       capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def environ(self):
        return {"LB_PG_HOST": "127.0.0.1", "LB_PG_PORT": str(self.port), "LB_PG_USER": "postgres",
                "LB_PG_PASSWORD": self.password}


SSHD_USER = "lbsftp"          # password and key authentication, a directory of its own
SSHD_JAIL_USER = "lbsftpjail"  # SFTP only, chrooted: what a Storage Box gives


def sshd_bin():
    # sshd re-executes itself and insists on an absolute path.
    path = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.access(path, os.X_OK):
        raise Unavailable("no sshd (apt-get install openssh-server)")
    return os.path.abspath(path)


def sshd_users():
    """The test's two unix accounts, made once per machine (we are root), and their
    passwords, kept in the cache so every worker and every run agrees on them."""
    import pwd
    if os.geteuid() != 0:
        raise Unavailable("the sshd test server needs root: it creates unix users")
    path = CACHE / "sshd-users.json"
    with cache_lock("sshd-users"):
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        for user in (SSHD_USER, SSHD_JAIL_USER):
            try:
                pwd.getpwnam(user)
                exists = True
            except KeyError:
                exists = False
            if not exists:
                p = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                                    "/nonexistent", "--shell", "/usr/sbin/nologin", user],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    raise Unavailable(f"useradd {user} failed: {p.stderr.strip()}")
            if not exists or user not in known:
                # Characters a URL or a config line would need quoted, on purpose.
                known[user] = "sftp@:/%" + random_secret(12)
                p = subprocess.run(["chpasswd"], input=f"{user}:{known[user]}\n",
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    raise Unavailable(f"chpasswd {user} failed: {p.stderr.strip()}")
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(known))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    return known


def chroot_base():
    """A directory a ChrootDirectory may lie in: every component owned by root and
    writable by no one else (so not /tmp)."""
    for base in (CACHE / "sshd-jails", Path("/run/lifeboat-test-sshd")):
        base.mkdir(parents=True, exist_ok=True)
        os.chmod(base, 0o755)
        if all(p.stat().st_uid == 0 and not p.stat().st_mode & 0o022
               for p in [base, *base.parents]):
            return base
    raise Unavailable("no root-owned, not group- or world-writable directory for the "
                      "chroot (LB_TEST_CACHE lies below a writable directory)")


def ssh_keygen(*args):
    p = subprocess.run(["ssh-keygen", "-q", *map(str, args)], capture_output=True, text=True)
    if p.returncode != 0:
        raise Unavailable(f"ssh-keygen {' '.join(map(str, args))} failed: {p.stderr.strip()}")
    return p.stdout


class Sshd(Server):
    """Debian's OpenSSH server from a private sshd_config on a free loopback port, with
    its own ed25519 host key. Two accounts, SFTP only:

    - ``user`` (lbsftp): password or key (``key``, unencrypted; ``key_pass``, encrypted
      with ``key_passphrase``); writes in ``home``, a directory of its own given by
      absolute path (``remote_home``).
    - ``jail_user`` (lbsftpjail): chrooted like a Storage Box; sees ``/backups``
      (``jail_home`` here), password or the same keys.

    ``known_hosts`` holds the host key for ``[127.0.0.1]:port``; ``fingerprint`` is it as
    ``ssh-keygen -l`` prints it (``SHA256:...``), ``host_key_b64`` its base64 blob.
    ``kill_sessions()`` drops every connection (the listener stays), ``kill()`` the whole
    server, ``start()`` again brings it back on the same port."""

    def __init__(self):
        binary = sshd_bin()
        passwords = sshd_users()
        import pwd
        super().__init__("sshd", [])
        os.chmod(self.workdir, 0o755)  # the user must reach its directory below it
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user, self.password = SSHD_USER, passwords[SSHD_USER]
        self.jail_user, self.jail_password = SSHD_JAIL_USER, passwords[SSHD_JAIL_USER]
        w = self.workdir
        ssh_keygen("-t", "ed25519", "-N", "", "-C", "lbtest-host", "-f", w / "host_ed25519")
        self.host_key_b64 = (w / "host_ed25519.pub").read_text().split()[1]
        self.fingerprint = ssh_keygen("-l", "-E", "sha256", "-f", w / "host_ed25519.pub").split()[1]
        self.known_hosts = w / "known_hosts"
        self.known_hosts.write_text(f"[{self.host}]:{self.port} ssh-ed25519 {self.host_key_b64}\n")
        (w / "client").mkdir(mode=0o700)
        self.key = w / "client/id_ed25519"
        self.key_pass = w / "client/id_ed25519_pass"
        self.key_passphrase = "key pass:" + random_secret(8)
        ssh_keygen("-t", "ed25519", "-N", "", "-C", "lbtest-client", "-f", self.key)
        ssh_keygen("-t", "ed25519", "-N", self.key_passphrase, "-C", "lbtest-client2", "-f",
                   self.key_pass)
        (w / "authorized_keys").mkdir()
        pubs = (Path(str(self.key) + ".pub").read_text() + Path(str(self.key_pass) + ".pub").read_text())
        for u in (self.user, self.jail_user):
            (w / "authorized_keys" / u).write_text(pubs)
        self.uid = pwd.getpwnam(self.user).pw_uid
        self.jail_uid = pwd.getpwnam(self.jail_user).pw_uid
        self.home = w / "home"
        self.home.mkdir(mode=0o700)
        os.chown(self.home, self.uid, -1)
        self.remote_home = str(self.home)
        self.jail = Path(tempfile.mkdtemp(prefix="lb-jail.", dir=chroot_base()))
        os.chmod(self.jail, 0o755)
        self.jail_home = self.jail / "backups"
        self.jail_home.mkdir(mode=0o700)
        os.chown(self.jail_home, self.jail_uid, -1)
        self.jail_remote_home = "/backups"
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation
        self.config = w / "sshd_config"
        self.config.write_text(f"""\
ListenAddress {self.host}:{self.port}
HostKey {w}/host_ed25519
PidFile {w}/sshd-own.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile {w}/authorized_keys/%u
StrictModes no
PermitRootLogin no
AllowUsers {self.user} {self.jail_user}
AllowTcpForwarding no
X11Forwarding no
MaxStartups 64
LogLevel VERBOSE
Subsystem sftp internal-sftp
ForceCommand internal-sftp
Match User {self.jail_user}
    ChrootDirectory {self.jail}
""")
        self.argv = [binary, "-D", "-e", "-f", str(self.config)]

    def banner(self):
        with socket.create_connection((self.host, self.port), timeout=2) as s:
            return s.recv(64).startswith(b"SSH-2.0-")

    def start(self):
        return super().start(self.banner)

    def descendants(self):
        """Pids of the listener's children and theirs: one group per connection."""
        try:
            root = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return []
        parent = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        out, todo = [], [root]
        while todo:
            p = todo.pop()
            kids = [c for c, pp in parent.items() if pp == p]
            out += kids
            todo += kids
        return out

    def kill_sessions(self):
        """SIGKILL every connection's processes; the listener keeps accepting."""
        for pid in self.descendants():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill(self):
        """SIGKILL the whole server, as a crash or a power cut would."""
        self.kill_sessions()
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int(self.pidfile.read_text()), signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.pidfile.unlink()

    def stop(self):
        self.kill_sessions()
        super().stop()

    def cleanup(self):
        super().cleanup()
        shutil.rmtree(self.jail, ignore_errors=True)

    def url(self, jail=False, path=None, user=None):
        u = user or (self.jail_user if jail else self.user)
        p = path or (self.jail_remote_home if jail else self.remote_home)
        return f"sftp://{u}@{self.host}:{self.port}{p}"

    def environ(self):
        return {"LB_SSHD_HOST": self.host, "LB_SSHD_PORT": str(self.port),
                "LB_SSHD_USER": self.user, "LB_SSHD_PASSWORD": self.password,
                "LB_SSHD_HOME": self.remote_home, "LB_SSHD_KEY": str(self.key),
                "LB_SSHD_KNOWN_HOSTS": str(self.known_hosts),
                "LB_SSHD_FINGERPRINT": self.fingerprint,
                "LB_SSHD_JAIL_USER": self.jail_user, "LB_SSHD_JAIL_PASSWORD": self.jail_password,
                "LB_SSHD_JAIL_HOME": self.jail_remote_home}

class Resp:
    """A minimal Redis client (RESP2 over a socket): enough for the tests, no dependency."""

    def __init__(self, port, password, host="127.0.0.1", user=None, tls_ca=None):
        self.sock = socket.create_connection((host, port), timeout=60)
        if tls_ca is not None:
            import ssl
            self.sock = ssl.create_default_context(cafile=str(tls_ca)).wrap_socket(
                self.sock, server_hostname=host)
        self.buf = b""
        if password is not None:
            self.call(*(["AUTH", user, password] if user else ["AUTH", password]))

    def close(self):
        self.sock.close()

    def send(self, *cmds):
        out = bytearray()
        for args in cmds:
            out += b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"bad reply {line!r}")

    def call(self, *args):
        self.send(args)
        return self.reply()

    def pipeline(self, cmds, batch=1000):
        out = []
        for i in range(0, len(cmds), batch):
            part = cmds[i:i + batch]
            self.send(*part)
            out += [self.reply() for _ in part]
        return out


class Redis(Server):
    """Debian's redis-server on a free loopback port, a private data directory, a password
    that needs percent-encoding; a test may stop it (SHUTDOWN NOSAVE) and start it again."""

    def __init__(self):
        exe = shutil.which("redis-server")
        if exe is None or shutil.which("redis-cli") is None:
            raise Unavailable("no redis-server/redis-cli (apt-get install redis-server redis-tools)")
        self.port = free_port()
        self.password = "rd@:/" + random_secret(9)
        super().__init__("redis", [exe], workdir=None)
        self.data = self.workdir / "data"
        self.data.mkdir()
        self.appendonly = False
        self.tls_ca = None  # RedisTLS: the CA file that signed the server's certificate

    def command(self):
        return [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data), "--requirepass", self.password, "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no",
                "--logfile", "", "--protected-mode", "no"]

    def ping(self):
        c = self.client()
        try:
            return c.call("PING") == "PONG"
        finally:
            c.close()

    def start(self):
        self.argv = self.command()
        return super().start(self.ping)

    def shutdown(self):
        """Stop it without saving (a container being stopped, as the restore expects)."""
        with contextlib.suppress(Exception):
            c = self.client()
            c.send(("SHUTDOWN", "NOSAVE"))
            with contextlib.suppress(Exception):
                c.reply()
            c.close()
        if self.proc is not None:
            self.proc.wait(timeout=START_DEADLINE)
        with contextlib.suppress(OSError):
            self.pidfile.unlink()

    def restart(self, appendonly=None):
        self.shutdown()
        if appendonly is not None:
            self.appendonly = appendonly
        return self.start()

    def client(self):
        return Resp(self.port, self.password, tls_ca=self.tls_ca)

    def environ(self):
        return {"LB_REDIS_PORT": str(self.port), "LB_REDIS_PASSWORD": self.password,
                "LB_REDIS_DATA": str(self.data)}


def make_test_ca(w, name):
    """A CA of its own (w/NAME-ca.pem) and a certificate it signed for 127.0.0.1
    (w/NAME.pem, w/NAME.key); returns the three paths."""
    ca, crt, key = w / f"{name}-ca.pem", w / f"{name}.pem", w / f"{name}.key"
    (w / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", w / f"{name}-ca.key",
         "-out", ca, "-days", "3", "-subj", f"/CN=lifeboat test CA {name}"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", w / f"{name}.csr",
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", w / f"{name}.csr", "-CA", ca, "-CAkey", w / f"{name}-ca.key",
         "-CAcreateserial", "-out", crt, "-days", "3", "-extfile", w / "san.cnf"],
    ):
        p = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
        if p.returncode != 0:
            raise Unavailable("openssl failed: " + p.stderr[-2000:])
    return ca, crt, key


class RedisTLS(Redis):
    """The same redis-server on TLS only (tls-port; Debian's build has TLS): a CA of its
    own signed its certificate for 127.0.0.1 (.tls_ca); clients need no certificate.
    .other_ca is a second CA that signed nothing this server shows (a wrong CA)."""

    def __init__(self):
        if shutil.which("openssl") is None:
            raise Unavailable("no openssl (apt-get install openssl)")
        super().__init__()
        self.tls_ca, self.cert, self.key = make_test_ca(self.workdir, "redis")
        self.other_ca = make_test_ca(self.workdir, "other")[0]

    def command(self):
        argv = super().command()
        i = argv.index("--port")
        argv[i + 1] = "0"
        return argv + ["--tls-port", str(self.port), "--tls-cert-file", str(self.cert),
                       "--tls-key-file", str(self.key), "--tls-ca-cert-file", str(self.tls_ca),
                       "--tls-auth-clients", "no"]
class MariaDB(Server):
    """A private MariaDB (Debian's mariadb-server): mariadb-install-db into a datadir of its
    own, mariadbd on a free loopback port with grants on, its socket in the private
    directory. root's password and the test user's need percent-encoding in a URI."""

    def __init__(self):
        for tool in ("mariadbd", "mariadb-install-db", "mariadb"):
            if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
                raise Unavailable(f"no {tool} (apt-get install mariadb-server mariadb-client)")
        self.port = free_port()
        self.password = "my@:/" + random_secret(9)
        self.user = "lbtest"
        self.user_password = "u%#" + random_secret(9)
        workdir = Path(tempfile.mkdtemp(prefix="lb-mariadb."))
        os.chmod(workdir, 0o755)
        self.datadir = workdir / "data"
        self.socket = workdir / "mysqld.sock"
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.ca = workdir / "ca.pem"
        super().__init__("mariadb", [
            mariadbd, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
            "--bind-address=127.0.0.1", f"--port={self.port}", f"--pid-file={workdir}/mysqld.pid",
            "--user=root" if os.geteuid() == 0 else f"--user={os.getuid()}",
            "--skip-log-bin", "--innodb-buffer-pool-size=64M", "--max-allowed-packet=64M",
            "--event-scheduler=OFF", "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci", "--log-error=" + str(workdir / "mariadb.log"),
            f"--ssl-ca={self.ca}", f"--ssl-cert={workdir}/server.pem",
            f"--ssl-key={workdir}/server.key",
        ], workdir=workdir)
        self.log = workdir / "mariadb.log"

    def client(self, sql, user="root", password=None, database=None, check=True):
        """Run SQL as root over the private socket (the password in the environment is
        fine for the test's own client)."""
        args = ["mariadb", "--no-defaults", f"--socket={self.socket}", f"--user={user}",
                "--batch", "--skip-column-names", "--default-character-set=utf8mb4"]
        if database:
            args.append(database)
        env = dict(os.environ, MYSQL_PWD=self.password if password is None else password)
        p = subprocess.run(args, input=sql, capture_output=True, text=True, env=env, timeout=600)
        if check and p.returncode != 0:
            raise Unavailable(f"mariadb client failed: {p.stderr[-2000:]}")
        return p

    def make_certs(self):
        """A CA of its own and a server certificate for 127.0.0.1 (TLS tests)."""
        w = self.workdir
        (w / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        for args in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", w / "ca.key", "-out",
             self.ca, "-days", "3", "-subj", "/CN=lifeboat test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", w / "server.key", "-out",
             w / "server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", w / "server.csr", "-CA", self.ca, "-CAkey", w / "ca.key",
             "-CAcreateserial", "-out", w / "server.pem", "-days", "3", "-extfile", w / "san.cnf"],
        ):
            p = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
            if p.returncode != 0:
                raise Unavailable("openssl failed: " + p.stderr[-2000:])

    def start(self):
        try:
            self.make_certs()
        except Unavailable:
            self.cleanup()
            raise
        p = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                            "--auth-root-authentication-method=normal", "--skip-test-db",
                            "--user=root" if os.geteuid() == 0 else f"--user={os.getuid()}"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.cleanup()
            raise Unavailable("mariadb-install-db failed: " + (p.stderr + p.stdout)[-2000:])

        def ready():
            return subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={self.socket}",
                                   "--user=root", "--connect-timeout=2", "ping"],
                                  capture_output=True, env=dict(os.environ, MYSQL_PWD="")
                                  ).returncode == 0
        try:
            super().start(ready)
            pw = self.password.replace("\\", "\\\\").replace("'", "\\'")
            upw = self.user_password.replace("\\", "\\\\").replace("'", "\\'")
            self.client(f"ALTER USER root@localhost IDENTIFIED BY '{pw}';"
                        f"CREATE OR REPLACE USER root@'127.0.0.1' IDENTIFIED BY '{pw}';"
                        "GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;"
                        f"CREATE OR REPLACE USER {self.user}@'%' IDENTIFIED BY '{upw}';"
                        f"GRANT ALL ON *.* TO {self.user}@'%';", password="")
        except Unavailable:
            self.cleanup()
            raise
        return self

    def environ(self):
        return {"LB_MYSQL_HOST": "127.0.0.1", "LB_MYSQL_PORT": str(self.port),
                "LB_MYSQL_USER": "root", "LB_MYSQL_PASSWORD": self.password,
                "LB_MYSQL_SOCKET": str(self.socket), "LB_MYSQL_CA": str(self.ca)}


class DockerEngine:
    """The engine the end-to-end tests drive: the one that answers, or a dockerd started
    here (stopped again at the end), plus the debootstrap-built base image."""

    def __init__(self):
        self.proc = None
        self.log = REPO / "build-results" / "dockerd.log"

    @staticmethod
    def answers():
        return subprocess.run(["docker", "info"], capture_output=True).returncode == 0

    def start(self):
        if shutil.which("docker") is None:
            raise Unavailable("no docker client (apt-get install docker.io)")
        if not self.answers():
            if shutil.which("dockerd") is None:
                raise Unavailable("no Docker engine answers and dockerd is not installed "
                                  "(apt-get install docker.io)")
            self.log.parent.mkdir(exist_ok=True)
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(["dockerd"], stdout=log, stderr=log,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
            wait_until(self.answers, "dockerd", proc=self.proc, log=self.log, step=0.5)
        p = subprocess.run([str(REPO / "scripts/docker-base-image.sh")], capture_output=True, text=True,
                           env=dict(os.environ, LIFEBOAT_CACHE=str(CACHE)))
        if p.returncode != 0:
            raise Unavailable("cannot build the base image debian:bookworm-slim: " + p.stderr[-2000:])
        return self

    def cleanup(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


APACHE_MODULES = ["mpm_event", "authz_core", "authn_core", "authn_file", "auth_basic", "authz_user",
                  "dav", "dav_fs"]


def apache_bin():
    for p in ("/usr/sbin/apache2", shutil.which("apache2") or "", shutil.which("httpd") or ""):
        if p and os.access(p, os.X_OK):
            return p
    raise Unavailable("no Apache httpd (apt-get install apache2 apache2-utils)")


class Apache(Server):
    """Apache httpd with mod_dav on a free loopback port: a DAV directory behind basic auth
    (a password that needs care in a URL), from a private ServerRoot and configuration;
    with tls=True over HTTPS with a self-signed certificate (its PEM is `ca_file`).

    `dav` is the served directory; the DAV URL is `url`. Restartable (start() again after
    stop()) on the same port and data, for the tests that kill it mid-upload.
    """

    def __init__(self, tls=False):
        binary = apache_bin()
        self.modules = Path(os.environ.get("LB_APACHE_MODULES", "/usr/lib/apache2/modules"))
        for m in APACHE_MODULES + (["ssl"] if tls else []):
            if not (self.modules / f"mod_{m}.so").is_file():
                raise Unavailable(f"Apache module mod_{m} is missing (apt-get install apache2)")
        self.tls = tls
        self.port = free_port()
        self.user = "lbdav"
        self.password = "dav p@ss:/" + random_secret(9)
        scheme = "https" if tls else "http"
        host = "localhost" if tls else "127.0.0.1"
        self.origin = f"{scheme}://{host}:{self.port}"
        self.url = f"{self.origin}/dav"
        super().__init__("apache-tls" if tls else "apache", [])
        os.chmod(self.workdir, 0o755)
        self.dav = self.workdir / "www" / "dav"
        self.dav.mkdir(parents=True)
        (self.workdir / "lock").mkdir()
        self.ca_file = None
        self.htpasswd = self.workdir / "htpasswd"
        self._write_htpasswd()
        self.conf = self.workdir / "httpd.conf"
        self._write_conf()
        self.argv = [binary, "-f", str(self.conf), "-DFOREGROUND"]
        self.env = dict(os.environ, APACHE_RUN_DIR=str(self.workdir), APACHE_LOCK_DIR=str(self.workdir))

    def _write_htpasswd(self):
        # bcrypt through htpasswd when it is there (stdin, never argv), else Apache's
        # {SHA} scheme, which it reads as well.
        tool = shutil.which("htpasswd")
        if tool:
            p = subprocess.run([tool, "-i", "-c", "-B", str(self.htpasswd), self.user],
                               input=self.password, text=True, capture_output=True)
            if p.returncode == 0:
                return
        import hashlib
        digest = base64.b64encode(hashlib.sha1(self.password.encode()).digest()).decode()
        self.htpasswd.write_text(f"{self.user}:{{SHA}}{digest}\n")

    def _write_conf(self):
        w = self.workdir
        lines = [f"ServerRoot {w}", "ServerName localhost", f"Listen 127.0.0.1:{self.port}",
                 f"PidFile {w}/httpd.pid", f"ErrorLog {w}/error.log", "LogLevel warn",
                 # mod_dav_fs reads the whole body; no limit on a PUT's size
                 "LimitRequestBody 0", "Timeout 60", "KeepAlive On"]
        mods = APACHE_MODULES + (["ssl"] if self.tls else [])
        lines += [f"LoadModule {m}_module {self.modules}/mod_{m}.so" for m in mods]
        if os.geteuid() == 0:
            # As root Apache serves as another user: the DAV tree must be that user's.
            import pwd
            try:
                pw = pwd.getpwnam("www-data")
            except KeyError:
                pw = pwd.getpwnam("nobody")
            lines += [f"LoadModule unixd_module {self.modules}/mod_unixd.so"] \
                if (self.modules / "mod_unixd.so").is_file() else []
            lines += [f"User {pw.pw_name}", f"Group #{pw.pw_gid}"]
            for d in (self.dav, w / "lock"):
                os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(self.htpasswd, 0o644)
        if self.tls:
            crt, key = w / "server.crt", w / "server.key"
            p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj",
                                "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise Unavailable("openssl cannot make a test certificate: " + p.stderr[-500:])
            self.ca_file = str(crt)
            lines += ["SSLEngine on", f"SSLCertificateFile {crt}", f"SSLCertificateKeyFile {key}"]
        lines += [f"DavLockDB {w}/lock/DavLock", f"DocumentRoot {w}/www"]
        lines += [f'<Directory "{self.dav}">', "  Dav On", "  AuthType Basic", "  AuthName lifeboat",
                  f"  AuthUserFile {self.htpasswd}", "  Require valid-user", "</Directory>"]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self):
        def ready():
            import ssl
            req = urllib.request.Request(self.url + "/", method="OPTIONS")
            ctx = ssl.create_default_context(cafile=self.ca_file) if self.tls else None
            try:
                urllib.request.urlopen(req, timeout=2, context=ctx)
            except urllib.error.HTTPError as e:
                return e.code == 401  # up, and asking for the password
            return False
        return super().start(ready)

    def environ(self):
        return {}


class RcloneWebdav(Server):
    """`rclone serve webdav` of a private directory on a free loopback port, with basic auth
    from an htpasswd file: a second WebDAV implementation beside Apache's (.url, .user,
    .password, .dav like Apache's)."""

    def __init__(self):
        binary = shutil.which("rclone")
        if not binary:
            raise Unavailable("no rclone (apt-get install rclone)")
        self.port = free_port()
        self.user = "lbdav"
        self.password = "rc p@ss:/" + random_secret(9)
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__("rclone-serve", [])
        self.dav = self.workdir / "dav"
        self.dav.mkdir()
        self.htpasswd = self.workdir / "htpasswd"
        Apache._write_htpasswd(self)
        self.argv = [binary, "serve", "webdav", "--addr", f"127.0.0.1:{self.port}",
                     "--htpasswd", str(self.htpasswd), str(self.dav)]
        self.env = dict(os.environ, RCLONE_CONFIG=str(self.workdir / "none.conf"))

    def start(self):
        def ready():
            req = urllib.request.Request(self.url + "/", method="PROPFIND")
            try:
                urllib.request.urlopen(req, timeout=2)
            except urllib.error.HTTPError as e:
                return e.code == 401
            return False
        return super().start(ready)

    def environ(self):
        return {}


class Azurite(Server):
    """Azurite's blob service on a free loopback port, its data in a private directory, no
    telemetry. Its account is the emulator's well-known devstoreaccount1 (and key), which
    rclone's azureblob `use_emulator = true` uses; rclone 1.60 then takes `endpoint` as the
    whole account URL (.endpoint), so a free port works (without use_emulator it builds
    https://ACCOUNT.ENDPOINT, which cannot name an emulator)."""

    ACCOUNT = "devstoreaccount1"

    def __init__(self):
        binary = azurite_bin()
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{self.ACCOUNT}"
        super().__init__("azurite", [])
        self.data = self.workdir / "data"
        self.data.mkdir()
        self.argv = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                     "--location", str(self.data), "--silent", "--disableTelemetry",
                     "--skipApiVersionCheck"]
        self.env = dict(os.environ)
        self.env.pop("AZURITE_ACCOUNTS", None)  # the well-known account, nothing else

    def start(self):
        def ready():  # any answer: an unauthenticated listing is refused
            try:
                urllib.request.urlopen(f"{self.endpoint}?comp=list", timeout=2)
            except urllib.error.HTTPError:
                return True
            return True
        return super().start(ready)

    def rclone_conf(self, name):
        """An rclone.conf section for a remote NAME of type azureblob on this emulator."""
        return (f"[{name}]\ntype = azureblob\nuse_emulator = true\n"
                f"endpoint = {self.endpoint}\n")

    def environ(self):
        return {}


@contextlib.contextmanager
def running(server, env=True):
    """Start a server for a session fixture, export its variables, stop it at the end."""
    try:
        server.start()
    except Unavailable as e:
        unavailable(str(e))
    saved = {}
    if env and hasattr(server, "environ"):
        for k, v in server.environ().items():
            saved[k] = os.environ.get(k)
            os.environ[k] = v
    try:
        yield server
    finally:
        server.cleanup()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def make(cls):
    """Construct a server (its binary may need building); Unavailable → fail or skip."""
    try:
        return cls()
    except Unavailable as e:
        unavailable(str(e))


def server_fixture(name, cls, doc):
    """A session fixture `name` that starts `cls` on first use and stops it at the end: a
    new server for the tests is one class here and one line in a conftest."""
    import pytest

    @pytest.fixture(scope="session", name=name)
    def fixture():
        with running(make(cls)) as s:
            yield s
    fixture.__doc__ = doc
    return fixture


def main(argv):
    if argv[1:2] == ["smtp-serve"]:
        smtp_serve(*argv[2:7])
        return 0
    if argv[1:2] != ["build"]:
        print("usage: lbservers.py build [NAME...]", file=sys.stderr)
        return 2
    names = argv[2:] or list(BUILDS)
    for n in names:
        try:
            print(f"{n}: {BUILDS[n]()}")
        except Unavailable as e:
            print(f"lbservers: {n}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

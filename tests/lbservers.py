"""The real servers of the test suites, as session fixtures' building blocks.

Each server the integration and end-to-end tests talk to (MinIO, FerretDB, PostgreSQL, Apache
with mod_dav, rclone serve webdav, a Docker engine) is started here on a free loopback
port, waited for with a generous deadline, and stopped by its own pid. Servers that Debian does not package are built once
from their Go modules into a cache outside the clone (``$LB_TEST_CACHE``, default
``~/.cache/lifeboat-test``), one binary per pinned version, and reused by every later run
and every clone.

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


BUILDS = {"minio": minio_bin, "ferretdb": ferretdb_bin, "mongorestore": mongorestore_bin}


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

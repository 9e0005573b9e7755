"""The SFTP store against a real server: Debian's OpenSSH sshd (tests/lbservers.py's Sshd,
started by the session fixture on a loopback port with its own host key).

Every test gets a directory of its own on the server; the archive's bytes there, the
restored trees and the listings are what is checked. Faults are deterministic: the
server is killed while lifeboat is stopped mid-upload at a fault point
(LIFEBOAT_FAULT=sftp.upload@N:stop), and the full disk is a small tmpfs behind the
server. Under CI=true a missing sshd is a failure, never a skip.
"""

import hashlib
import http.server
import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (EXIT_CONFIG, EXIT_NOT_FOUND, EXIT_STORE, EXIT_USAGE, assert_same_tree,
                      gpg_decrypt, read_json_list, table_timestamps, wreck_tree)
from waiting import HANG, wait_until

import lbservers


class Remote:
    """One test's directory on the server: for the login user or the chrooted one."""

    def __init__(self, srv, local_dir, remote_dir, user, password, uid):
        self.srv, self.dir, self.remote, self.user = srv, local_dir, remote_dir, user
        self.password, self.uid = password, uid

    def url(self, path=None):
        return f"sftp://{self.user}@{self.srv.host}:{self.srv.port}{path or self.remote}"

    def files(self, name):
        d = self.dir / name
        return sorted(os.listdir(d)) if d.exists() else []


def make_remote(srv, jail=False):
    sub = "t-" + uuid.uuid4().hex[:12]
    base = srv.jail_home if jail else srv.home
    d = base / sub
    d.mkdir(mode=0o700)
    uid = srv.jail_uid if jail else srv.uid
    os.chown(d, uid, -1)
    remote = f"{srv.jail_remote_home if jail else srv.remote_home}/{sub}"
    return Remote(srv, d, remote, srv.jail_user if jail else srv.user,
                  srv.jail_password if jail else srv.password, uid)


def password_env(lb, r):
    pw = lb.tmp / "sftp-password"
    pw.write_text(r.password + "\n")
    os.chmod(pw, 0o600)
    return {"BACKUP_SFTP_URL": r.url(), "BACKUP_SFTP_PASSWORD_FILE": str(pw),
            "BACKUP_SFTP_KNOWN_HOSTS": str(r.srv.known_hosts)}


@pytest.fixture
def sftp(lb, sshd_server):
    """A fresh directory for the login user; (Remote, env with password + known_hosts)."""
    r = make_remote(sshd_server)
    return r, password_env(lb, r)


@pytest.fixture
def jail(lb, sshd_server):
    """A fresh directory for the chrooted account (as a Storage Box gives)."""
    r = make_remote(sshd_server, jail=True)
    return r, password_env(lb, r)


def archive_name(lb, ts):
    return f"{lb.NAME}-{ts}.tar.gz.gpg"


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(res):
    """The cause, on one line (besides the run's own "no archive was stored" summary)."""
    errs = [l for l in res.stderr.splitlines()
            if " error: " in l and "no archive was stored" not in l]
    assert len(errs) == 1, f"expected one error line: {res!r}"
    return errs[0]


def assert_no_secret(lb, res, *secrets):
    log = (lb.tmp / "backup.log").read_text(errors="replace") \
        if (lb.tmp / "backup.log").exists() else ""
    for s in secrets:
        assert s not in res.stderr and s not in res.stdout, f"a secret in the output: {res!r}"
        assert s not in log, "a secret in the log file"


# --------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------

def test_local_and_sftp_list_restore_verify(lb, sftp):
    r, env = sftp
    orig = lb.snap()
    ts = lb.backup(env)
    name = archive_name(lb, ts)
    # The same bytes on the server as in the local store, under the final name only.
    assert r.files(lb.NAME) == [name]
    assert sha(r.dir / lb.NAME / name) == sha(lb.archive(ts))
    assert oct(os.stat(r.dir / lb.NAME / name).st_mode & 0o777) == "0o600"

    res = lb.run(["list"], env)
    assert table_timestamps(res) == [ts]
    assert res.stdout.splitlines()[1].split()[3] == "both", repr(res)
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [(e["timestamp"], e["stores"]) for e in data] == [(ts, ["local", "sftp"])]
    assert data[0]["size"] == lb.archive(ts).stat().st_size

    # Only on the server now: list says so, restore and verify read it from there.
    lb.archive(ts).unlink()
    res = lb.run(["list"], env)
    assert res.stdout.splitlines()[1].split()[3] == "sftp", repr(res)
    lb.run(["verify", ts, "--from", "sftp"], env)
    wreck_tree(lb.src)
    lb.restore(ts, env, extra=["--from", "sftp"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from sftp")
    # --from local: not there any more.
    lb.run(["restore", ts, "--yes", "--from", "local"], env, check=EXIT_NOT_FOUND)
    res = lb.run(["restore", ts, "--yes", "--from", "webdav2"], env, check=EXIT_USAGE)
    assert "'local', 's3' or 'sftp'" in res.stderr or "'sftp'" in res.stderr, repr(res)


def test_sftp_only_with_an_encrypted_key_and_a_pinned_fingerprint(lb, sftp):
    r, _ = sftp
    srv = r.srv
    phrase = lb.tmp / "key-passphrase"
    phrase.write_text(srv.key_passphrase + "\n")
    env = {"BACKUP_LOCAL_PATH": None, "BACKUP_SFTP_URL": r.url(),
           "BACKUP_SFTP_IDENTITY_FILE": str(srv.key_pass),
           "BACKUP_SFTP_IDENTITY_PASSPHRASE_FILE": str(phrase),
           "BACKUP_SFTP_HOST_KEY": srv.fingerprint}
    orig = lb.snap()
    ts = lb.backup(env)
    assert list(lb.store.iterdir()) == []
    assert r.files(lb.NAME) == [archive_name(lb, ts)]
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [(e["timestamp"], e["stores"]) for e in data] == [(ts, ["sftp"])]
    assert data[0]["size"] == (r.dir / lb.NAME / archive_name(lb, ts)).stat().st_size
    wreck_tree(lb.src)
    lb.restore(ts, env)  # the only store: no --from needed
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from sftp")
    res = lb.run(["check"], env)
    assert "BACKUP_SFTP_URL      " + r.url() in res.stdout, res.stdout
    assert f"archives in        {r.url()}/{lb.NAME}/" in res.stdout, res.stdout
    assert srv.key_passphrase not in res.stdout + res.stderr


def test_unencrypted_key_and_the_host_key_given_whole(lb, sftp):
    r, _ = sftp
    srv = r.srv
    env = {"BACKUP_SFTP_URL": r.url(), "BACKUP_SFTP_IDENTITY_FILE": str(srv.key),
           "BACKUP_SFTP_HOST_KEY": f"ssh-ed25519 {srv.host_key_b64} root@server"}
    ts = lb.backup(env)
    assert sha(r.dir / lb.NAME / archive_name(lb, ts)) == sha(lb.archive(ts))


def test_chrooted_account_like_a_storage_box(lb, jail):
    r, env = jail
    assert r.remote.startswith("/backups/")
    orig = lb.snap()
    ts = lb.backup(env)
    assert r.files(lb.NAME) == [archive_name(lb, ts)]
    assert sha(r.dir / lb.NAME / archive_name(lb, ts)) == sha(lb.archive(ts))
    lb.archive(ts).unlink()
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [(e["timestamp"], e["stores"]) for e in data] == [(ts, ["sftp"])]
    wreck_tree(lb.src)
    lb.restore(ts, env)
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from the chrooted account")


def test_retention_prunes_the_sftp_store_on_its_own_listing(lb, sftp):
    r, env = sftp
    env = {**env, "BACKUP_KEEP_LAST": "2"}
    stamps = [lb.backup(env) for _ in range(3)]
    keep = sorted(archive_name(lb, ts) for ts in sorted(stamps)[-2:])
    assert r.files(lb.NAME) == keep
    assert sorted(os.listdir(lb.backup_dir)) == keep
    # A foreign file there is never touched; an archive only the server has is pruned
    # by the server's own listing.
    (r.dir / lb.NAME / "notes.txt").write_bytes(b"mine")
    lb.archive(sorted(stamps)[-1]).unlink()
    lb.run(["prune"], {**env, "BACKUP_KEEP_LAST": "1"})
    assert r.files(lb.NAME) == sorted([keep[-1], "notes.txt"])
    assert os.listdir(lb.backup_dir) == [keep[0]]


# --------------------------------------------------------------------------
# bad input: exit 5, one line, nothing partial there, the local copy kept
# --------------------------------------------------------------------------

def check_failed_copy(lb, r, res, *needles):
    """The sftp copy failed, the local one is whole, the server shows nothing."""
    line = one_line_error(res)
    assert "sftp" in line, line
    for n in needles:
        assert n in line, line
    ts = res.stdout.strip()
    assert lb.archive(ts).is_file(), "the local copy must be kept"
    lb.run(["verify", ts, "--from", "local"])
    assert [f for f in r.files(lb.NAME) if not f.startswith(".")] == []
    return line


def test_wrong_password(lb, sftp):
    r, env = sftp
    (lb.tmp / "sftp-password").write_text("wrong-" + r.password)
    res = lb.run(["backup"], env, check=EXIT_STORE)
    check_failed_copy(lb, r, res, r.url(), "refused the login", "BACKUP_SFTP_PASSWORD_FILE")
    assert r.files(lb.NAME) == []
    assert_no_secret(lb, res, r.password, "wrong-" + r.password)
    # Alone, the same failure stores nothing anywhere.
    res = lb.run(["backup"], {**env, "BACKUP_LOCAL_PATH": None}, check=EXIT_STORE)
    assert "refused the login" in one_line_error(res)
    assert "no archive was stored" in res.stderr


def test_wrong_passphrase(lb, sftp):
    r, _ = sftp
    env = {"BACKUP_SFTP_URL": r.url(), "BACKUP_SFTP_IDENTITY_FILE": str(r.srv.key_pass),
           "BACKUP_SFTP_IDENTITY_PASSPHRASE": "not-the-passphrase",
           "BACKUP_SFTP_KNOWN_HOSTS": str(r.srv.known_hosts)}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    check_failed_copy(lb, r, res, r.url(), "BACKUP_SFTP_IDENTITY_PASSPHRASE")
    assert_no_secret(lb, res, "not-the-passphrase", r.srv.key_passphrase)


def other_host_key(lb):
    path = lb.tmp / "other_host_key"
    lbservers.ssh_keygen("-t", "ed25519", "-N", "", "-f", path)
    blob = (lb.tmp / "other_host_key.pub").read_text().split()[1]
    fp = lbservers.ssh_keygen("-l", "-E", "sha256", "-f", str(path) + ".pub").split()[1]
    return blob, fp


def test_wrong_pinned_host_key_names_the_one_seen(lb, sftp):
    r, env = sftp
    _, fp = other_host_key(lb)
    env = {**env, "BACKUP_SFTP_KNOWN_HOSTS": None, "BACKUP_SFTP_HOST_KEY": fp}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = check_failed_copy(lb, r, res, r.srv.fingerprint, "BACKUP_SFTP_HOST_KEY")
    assert "ssh-ed25519" in line
    assert r.files(lb.NAME) == [], "nothing may be written to an unverified server"


def test_changed_host_key_in_known_hosts(lb, sftp):
    r, env = sftp
    blob, _ = other_host_key(lb)
    kh = lb.tmp / "known_hosts"
    kh.write_text(f"[{r.srv.host}]:{r.srv.port} ssh-ed25519 {blob}\n")
    res = lb.run(["backup"], {**env, "BACKUP_SFTP_KNOWN_HOSTS": str(kh)}, check=EXIT_STORE)
    check_failed_copy(lb, r, res, r.srv.fingerprint, "differs", str(kh))
    assert r.files(lb.NAME) == []
    assert kh.read_text().count("\n") == 1, "known_hosts is never written"


def test_unknown_host_in_known_hosts(lb, sftp):
    r, env = sftp
    kh = lb.tmp / "known_hosts"
    kh.write_text(f"[otherhost]:{r.srv.port} ssh-ed25519 {r.srv.host_key_b64}\n")
    res = lb.run(["backup"], {**env, "BACKUP_SFTP_KNOWN_HOSTS": str(kh)}, check=EXIT_STORE)
    check_failed_copy(lb, r, res, r.srv.fingerprint, "is not in BACKUP_SFTP_KNOWN_HOSTS")
    assert r.files(lb.NAME) == []
    assert kh.read_text().count("\n") == 1, "known_hosts is never written"


def test_unreachable_host(lb, sftp):
    r, env = sftp
    port = lbservers.free_port()  # nothing listens there
    url = f"sftp://{r.user}@127.0.0.1:{port}{r.remote}"
    kh = lb.tmp / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{port} ssh-ed25519 {r.srv.host_key_b64}\n")
    res = lb.run(["backup"], {**env, "BACKUP_SFTP_URL": url,
                              "BACKUP_SFTP_KNOWN_HOSTS": str(kh)}, check=EXIT_STORE)
    check_failed_copy(lb, r, res, url, "cannot connect")


def test_missing_remote_path(lb, sftp):
    r, env = sftp
    url = r.url(r.remote + "/no/such/dir")
    res = lb.run(["backup"], {**env, "BACKUP_SFTP_URL": url}, check=EXIT_STORE)
    check_failed_copy(lb, r, res, "does not exist", r.remote + "/no/such/dir")
    assert not (r.dir / "no").exists(), "only BACKUP_NAME's directory is ever created"
    # list and restore say the same, with the same exit.
    res = lb.run(["list"], {**env, "BACKUP_SFTP_URL": url, "BACKUP_LOCAL_PATH": None},
                 check=EXIT_STORE)
    assert "does not exist" in one_line_error(res)


def test_list_and_prune_with_the_sftp_store_down(lb, sftp):
    """One unreachable store hides none of the others' archives, and is pruned on its own."""
    r, env = sftp
    stamps = [lb.backup(env) for _ in range(2)]
    (lb.tmp / "sftp-password").write_text("wrong")
    res = lb.run(["list"], env, check=EXIT_STORE)
    assert table_timestamps(res) == sorted(stamps, reverse=True)
    assert all(l.split()[3] == "local" for l in res.stdout.splitlines()[1:]), repr(res)
    assert "refused the login" in one_line_error(res)
    res = lb.run(["prune"], {**env, "BACKUP_KEEP_LAST": "1"}, check=EXIT_STORE)
    assert os.listdir(lb.backup_dir) == [archive_name(lb, max(stamps))]
    assert r.files(lb.NAME) == sorted(archive_name(lb, ts) for ts in stamps), \
        "nothing is deleted from a store that cannot be listed"


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def stopped_mid_upload(lb, env, kill):
    """Run a backup that stops itself during the upload, call kill(), let it go on."""
    # 12 MiB that gzip cannot shrink: curl takes at most 2 MiB a call (UPLOAD_BUF), so the
    # upload passes its fault point at least 6 times however the stream arrives in pieces.
    (lb.src / "upload-filler.bin").write_bytes(os.urandom(12 << 20))
    proc = lb.popen(["backup"], {**env, "LIFEBOAT_FAULT": "sftp.upload@3:stop"},
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: proc_state(proc.pid) == "T" or proc.poll() is not None,
                   "lifeboat stopped at the fault point")
        assert proc.poll() is None, "lifeboat ended before the fault point: " + \
            proc.stderr.read().decode(errors="replace")
        kill()
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(), err.decode(errors="replace")


class Res:
    def __init__(self, rc, out, err):
        self.returncode, self.stdout, self.stderr = rc, out, err

    def __repr__(self):
        return f"<rc={self.returncode}\n{self.stdout}\n{self.stderr}>"


def test_connection_killed_mid_upload_removes_the_partial(lb, sftp):
    """Every connection dies (the listener lives on): the partial upload is removed."""
    r, env = sftp
    hidden = []

    def kill():
        hidden.extend(f for f in r.files(lb.NAME) if f.endswith(".partial"))
        r.srv.kill_sessions()
    res = Res(*stopped_mid_upload(lb, env, kill))
    assert res.returncode == EXIT_STORE, repr(res)
    assert hidden and hidden[0].startswith(f".{lb.NAME}-"), "the upload goes to a hidden name"
    check_failed_copy(lb, r, res, r.url(), "the transfer broke")
    assert r.files(lb.NAME) == [], "the partial upload must be removed"


def test_server_killed_mid_upload(lb, sftp):
    """The whole server dies: the local copy is kept, the server shows no archive, and the
    hidden partial it could not remove is removed by a later backup once it is stale."""
    r, env = sftp
    res = Res(*stopped_mid_upload(lb, env, r.srv.kill))
    try:
        assert res.returncode == EXIT_STORE, repr(res)
        check_failed_copy(lb, r, res, r.url())
    finally:
        r.srv.start()
    left = r.files(lb.NAME)
    assert all(f.startswith(".") and f.endswith(".partial") for f in left), left
    data = read_json_list(lb.run(["list", "--json"], {**env, "BACKUP_LOCAL_PATH": None}))
    assert data == [], "a partial upload is never listed"
    # Another sidecar (its own state directory and run lock) never removes it while it is
    # young: it might be a run in progress.
    other = {**env, "BACKUP_STATE_DIR": str(lb.tmp / "state-b"), "BACKUP_LOCAL_PATH": None}
    ts = lb.backup(other)
    assert r.files(lb.NAME) == sorted(left + [archive_name(lb, ts)])
    # This sidecar recorded it and could not remove it: its next run does.
    ts2 = lb.backup(env)
    assert r.files(lb.NAME) == sorted([archive_name(lb, ts), archive_name(lb, ts2)])


def test_stale_unrecorded_partial_is_removed(lb, sftp):
    """A temporary no record names (a sidecar whose state directory was lost): removed once
    it is untouched for hours, kept while young."""
    r, env = sftp
    d = r.dir / lb.NAME
    d.mkdir()
    os.chown(d, r.uid, -1)
    young, old = (d / f".{lb.NAME}-2026-01-01-00000{i}.0badf00d.partial" for i in (1, 2))
    for f in (young, old):
        f.write_bytes(b"half an archive")
        os.chown(f, r.uid, -1)
    t = time.time() - 7 * 3600
    os.utime(old, (t, t))
    ts = lb.backup(env)
    assert r.files(lb.NAME) == sorted([young.name, archive_name(lb, ts)])


@pytest.mark.parametrize("point", ["sftp.upload@2", "sftp.rename"])
def test_partial_of_a_killed_run_is_removed_by_the_next(lb, sftp, point):
    """Killed mid-upload, or with the whole archive in the temporary and the rename not
    done (fault points): the hidden temporary stays on the server. The next backup of this
    sidecar removes it at once (not hours later) and says so; the finished archives are
    whole."""
    r, env = sftp
    orig = lb.snap()
    first = lb.backup(env)
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": f"{point}:kill"}, check=False)
    assert res.returncode == -signal.SIGKILL, repr(res)
    left = [f for f in r.files(lb.NAME) if f.startswith(".")]
    assert len(left) == 1 and left[0].endswith(".partial"), r.files(lb.NAME)
    if point == "sftp.rename":  # the whole archive is there, only the rename is missing
        gpg_decrypt(r.dir / lb.NAME / left[0], lb.keyfile, lb.tmp / "whole.tar.gz")
    res = lb.run(["backup"], env)
    last = res.stdout.strip()
    assert r.files(lb.NAME) == sorted(archive_name(lb, ts) for ts in (first, last))
    for ts in (first, last):
        assert sha(r.dir / lb.NAME / archive_name(lb, ts)) == sha(lb.archive(ts))
    said = f"removed the unfinished upload '{left[0]}' an interrupted run left in the sftp store"
    assert said in res.stderr, repr(res)
    wreck_tree(lb.src)
    lb.restore(first, env, extra=["--from", "sftp"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from sftp")


def test_full_remote_disk(lb, sftp, tmpfs_mount):
    r, env = sftp
    small = tmpfs_mount(r.dir / "small", size="1m")
    os.chown(small, r.uid, -1)
    os.chmod(small, 0o700)
    env = {**env, "BACKUP_SFTP_URL": r.url(r.remote + "/small")}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = one_line_error(res)
    assert "sftp" in line and r.url(r.remote + "/small") in line, line
    assert "disk or the account's quota full" in line, line
    ts = res.stdout.strip()
    assert lb.archive(ts).is_file()
    assert os.listdir(small / lb.NAME) == [], "the partial upload must be removed"


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

@pytest.mark.parametrize("extra,needle", [
    ({"BACKUP_SFTP_URL": "sftp://u:s3cr3t-pw@127.0.0.1/x"}, "must not hold the password"),
    ({"BACKUP_SFTP_URL": "https://u@127.0.0.1/x"}, "not an sftp:// URL"),
    ({"BACKUP_SFTP_URL": "sftp://127.0.0.1/x"}, "no user name"),
    ({"BACKUP_SFTP_URL": "sftp://u@127.0.0.1:99999/x"}, "BACKUP_SFTP_URL is invalid"),
    ({"BACKUP_SFTP_URL": "sftp://u@127.0.0.1/a/../b"}, "'..'"),
    ({"BACKUP_SFTP_PASSWORD_FILE": None}, "neither BACKUP_SFTP_PASSWORD"),
    ({"BACKUP_SFTP_KNOWN_HOSTS": None}, "host key is always verified"),
    ({"BACKUP_SFTP_HOST_KEY": "SHA256:" + "A" * 43}, "both set"),
    ({"BACKUP_SFTP_KNOWN_HOSTS": None, "BACKUP_SFTP_HOST_KEY": "MD5:ab:cd"},
     "BACKUP_SFTP_HOST_KEY 'MD5:ab:cd' is invalid"),
    ({"BACKUP_SFTP_KNOWN_HOSTS": "/nonexistent/known_hosts"}, "/nonexistent/known_hosts"),
    ({"BACKUP_SFTP_IDENTITY_PASSPHRASE": "x"}, "BACKUP_SFTP_IDENTITY_FILE is not"),
    ({"BACKUP_SFTP_TIMEOUT": "0"}, "BACKUP_SFTP_TIMEOUT"),
], ids=["password-in-url", "scheme", "no-user", "port", "dotdot", "no-auth", "no-host-key",
        "both-host-keys", "md5-fingerprint", "known-hosts-missing", "passphrase-alone",
        "timeout"])
def test_bad_configuration(lb, sftp, extra, needle):
    _, env = sftp
    res = lb.run(["check"], {**env, **extra}, check=EXIT_CONFIG)
    errs = [l for l in res.stderr.splitlines() if " error: " in l]
    assert len(errs) == 1 and needle in errs[0], repr(res)
    assert "s3cr3t-pw" not in res.stderr


def test_sftp_variables_without_the_url_are_ignored_with_a_warning(lb, sftp):
    _, env = sftp
    res = lb.run(["check"], {**env, "BACKUP_SFTP_URL": None})
    assert "BACKUP_SFTP_KNOWN_HOSTS is ignored because BACKUP_SFTP_URL is not set" in res.stderr


# --------------------------------------------------------------------------
# everywhere: metrics and webhooks name the sftp store
# --------------------------------------------------------------------------

class Hooks:
    def __init__(self):
        self.bodies = []
        hooks = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                hooks.bodies.append((self.path, json.loads(self.rfile.read(n))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_name_the_sftp_store(lb, sftp):
    r, env = sftp
    hooks = Hooks()
    try:
        env = {**env, "BACKUP_START_WEBHOOK": hooks.url("/start"),
               "BACKUP_SUCCESS_WEBHOOK": hooks.url("/ok"),
               "BACKUP_FAILURE_WEBHOOK": hooks.url("/fail")}
        lb.backup(env)
        (lb.tmp / "sftp-password").write_text("wrong")
        lb.run(["backup"], env, check=EXIT_STORE)
    finally:
        hooks.close()
    got = [(p, b["stores"]) for p, b in hooks.bodies]
    assert got == [("/start", ["local", "sftp"]), ("/ok", ["local", "sftp"]),
                   ("/start", ["local", "sftp"]), ("/fail", ["local"])], got
    fail = hooks.bodies[-1][1]
    assert "sftp" in fail["error"] and "refused the login" in fail["error"]
    assert r.password not in json.dumps(hooks.bodies)


def test_metrics_per_store_name_sftp(lb, sftp):
    import urllib.request
    r, env = sftp
    port = lbservers.free_port()
    proc = lb.popen(["run"], {**env, "BACKUP_METRICS_ADDR": f"127.0.0.1:{port}"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def scrape():
        def get():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                            timeout=HANG) as resp:
                    return resp.read().decode()
            except OSError:
                return None
        out = {}
        for line in wait_until(get, "the metrics endpoint", interval=0.1).splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def series(metric, store):
        return f'{metric}{{name="{lb.NAME}",store="{store}"}}'

    try:
        (lb.tmp / "sftp-password").write_text("wrong")
        lb.run(["backup"], env, check=EXIT_STORE)
        m = scrape()
        assert m[series("lifeboat_store_failures_total", "sftp")] == 1
        assert m[series("lifeboat_store_failures_total", "local")] == 0
        assert m[series("lifeboat_store_last_success_timestamp_seconds", "sftp")] == 0
        (lb.tmp / "sftp-password").write_text(r.password)
        lb.backup(env)
        m = scrape()
        assert m[series("lifeboat_store_last_success_timestamp_seconds", "sftp")] > 0
        assert m[series("lifeboat_store_failures_total", "sftp")] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=HANG)

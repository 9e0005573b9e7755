"""The rclone store against real remotes: an rclone remote of type webdav on the test
Apache, one of type sftp on the test sshd, and one of type azureblob on Azurite (the Azure
Storage emulator, installed from npm into the test cache; all in tests/lbservers.py).

rclone itself comes from Debian (test.sh installs it, 1.60). What the remote holds is read
from Apache's DAV directory or sshd's home, or through rclone (a config of the test's own)
for Azurite.
"""

import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import (EXIT_CONFIG, EXIT_STORE, assert_same_tree, need_tool, read_json_list,
                      table_timestamps, wreck_tree)
import lbservers
from waiting import wait_until


def obscure(secret):
    """rclone's reversible obscuring of a password in its config (stdin, never argv)."""
    p = subprocess.run(["rclone", "obscure", "-"], input=secret, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def dav_conf(server, password=None):
    return (f"[dav]\ntype = webdav\nurl = {server.url}\nvendor = other\n"
            f"user = {server.user}\npass = {obscure(password or server.password)}\n")


@pytest.fixture
def remote(lb, apache_server, tmp_path):
    """A fresh directory on the Apache behind an rclone webdav remote; returns (its path
    on disk, env for lifeboat, the config text)."""
    need_tool("rclone")
    base = "r-" + uuid.uuid4().hex[:12]
    path = apache_server.dav / base
    path.mkdir()
    os.chown(path, apache_server.dav.stat().st_uid, apache_server.dav.stat().st_gid)
    conf = dav_conf(apache_server)
    conf_file = tmp_path / "rclone.conf"
    conf_file.write_text(conf)
    os.chmod(conf_file, 0o600)
    env = {"BACKUP_RCLONE_REMOTE": f"dav:{base}", "BACKUP_RCLONE_CONFIG_FILE": str(conf_file)}
    return path, env, conf


def held(path, lb):
    d = path / lb.NAME
    return sorted(os.listdir(d)) if d.exists() else []


def local_archives(lb):
    return [n for n in os.listdir(lb.backup_dir) if not n.startswith(".")]


# --------------------------------------------------------------------------

def test_roundtrip_local_and_rclone_webdav(lb, remote):
    path, env, _ = remote
    orig = lb.snap()
    ts = lb.backup(env)
    local = lb.archive(ts)
    assert held(path, lb) == [local.name]
    assert (path / lb.NAME / local.name).read_bytes() == local.read_bytes()

    res = lb.run(["list"], env)
    assert table_timestamps(res) == [ts]
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [e["stores"] for e in data] == [["local", "rclone"]]

    wreck_tree(lb.src)
    lb.restore(ts, env, extra=["--from", "rclone"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from rclone")


def test_rclone_only_and_prune(lb, remote):
    path, env, _ = remote
    env = {**env, "BACKUP_LOCAL_PATH": None, "BACKUP_KEEP_LAST": "2"}
    orig = lb.snap()
    stamps = [lb.backup(env) for _ in range(3)]
    keep = sorted(stamps)[-2:]
    assert held(path, lb) == sorted(f"{lb.NAME}-{ts}.tar.gz.gpg" for ts in keep)
    (path / lb.NAME / "notes.txt").write_bytes(b"mine")
    lb.backup(env)
    assert (path / lb.NAME / "notes.txt").read_bytes() == b"mine"
    wreck_tree(lb.src)
    lb.restore(keep[-1], env)
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from rclone alone")


def test_config_never_on_argv(lb, remote, apache_server):
    """While rclone uploads, its command line holds neither the config nor a password; it
    reads a private 0600 copy (in a 0700 directory) named by RCLONE_CONFIG, removed after."""
    path, env, conf = remote
    env = {**env, "LIFEBOAT_FAULT": "rclone.write@2:stop"}
    p = lb.popen(["backup"], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def stopped():
            with open(f"/proc/{p.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "T"
        wait_until(stopped, "lifeboat to stop at the fault point")
        kids = [int(k) for k in open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()]
        rclones = [k for k in kids if open(f"/proc/{k}/cmdline", "rb").read().startswith(b"rclone\0")]
        assert len(rclones) == 1, kids
        argv = open(f"/proc/{rclones[0]}/cmdline", "rb").read().split(b"\0")
        assert argv[:2] == [b"rclone", b"rcat"], argv
        obscured = conf.split("pass = ")[1].split()[0]
        for secret in (apache_server.password, obscured):
            assert secret.encode() not in b" ".join(argv)
        environ = dict(e.split(b"=", 1) for e in open(f"/proc/{rclones[0]}/environ", "rb").read().split(b"\0") if b"=" in e)
        conf_path = environ[b"RCLONE_CONFIG"].decode()
        assert not any(k.startswith(b"BACKUP_") for k in environ), environ.keys()
        assert os.stat(conf_path).st_mode & 0o777 == 0o600
        assert os.stat(os.path.dirname(conf_path)).st_mode & 0o777 == 0o700
        assert open(conf_path).read() == conf.rstrip("\n")  # _FILE: one newline dropped
    finally:
        os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert not os.path.exists(conf_path), "the private config copy is left behind"


def test_wrong_password_keeps_local_copy(lb, remote, apache_server, tmp_path):
    path, env, _ = remote
    bad = tmp_path / "bad.conf"
    bad.write_text(dav_conf(apache_server, "wrong-" + apache_server.password))
    env = {**env, "BACKUP_RCLONE_CONFIG_FILE": str(bad)}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    lines = [l for l in res.stderr.splitlines() if "rclone" in l and " error: " in l]
    assert lines and "the rclone copy failed (kept in local)" in lines[0], repr(res)
    assert apache_server.password not in res.stderr
    assert len(local_archives(lb)) == 1
    assert held(path, lb) == []


def test_missing_rclone_binary(lb, remote, tmp_path):
    """No rclone in PATH: exit 5, one line saying so, the local copy kept."""
    path, env, _ = remote
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("gpg", "gpg-agent", "gpgconf"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bindir / tool)
    res = lb.run(["backup"], {**env, "PATH": str(bindir)}, check=EXIT_STORE)
    assert "cannot run 'rclone': not installed or not in PATH" in res.stderr, repr(res)
    assert len(local_archives(lb)) == 1


@pytest.mark.parametrize("value", ["just-a-path", ":webdav,url=http://x:/p", "-dav:x", "da/v:x"])
def test_bad_remote(lb, value):
    res = lb.run(["check"], {"BACKUP_RCLONE_REMOTE": value}, check=EXIT_CONFIG)
    assert "BACKUP_RCLONE_REMOTE" in res.stderr, repr(res)


def test_killed_mid_upload_leaves_nothing(lb, remote, tmp_path):
    path, env, _ = remote
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**env, "TMPDIR": str(tmp)}
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "rclone.write@3:kill"}, check=False)
    assert res.returncode == -signal.SIGKILL, repr(res)
    # rclone ends with its parent (PDEATHSIG); nothing under a final name, ever
    assert [n for n in held(path, lb) if not n.startswith(".")] == []
    # the killed run's private config copy is left; the next run removes it
    assert len(list(tmp.glob("lifeboat-rclone.*"))) == 1
    assert "rclone" not in lb.run(["list", "--json"], env).stdout
    assert list(tmp.glob("lifeboat-rclone.*")) == []


def test_failed_move_deletes_temporary(lb, remote):
    path, env, _ = remote
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "rclone.move:fail"}, check=EXIT_STORE)
    assert "rclone" in res.stderr, repr(res)
    assert held(path, lb) == []
    assert len(local_archives(lb)) == 1


def test_temporary_of_a_killed_run_is_removed_by_the_next(lb, remote):
    """Killed after `rclone rcat` finished and before `rclone moveto` (a fault point): the
    whole archive stays on the remote under its hidden temporary name. The next backup of
    this sidecar removes it (`deletefile`) and says so; the finished archives are whole."""
    path, env, _ = remote
    orig = lb.snap()
    first = lb.backup(env)
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "rclone.move:kill"}, check=False)
    assert res.returncode == -signal.SIGKILL, repr(res)
    left = [n for n in held(path, lb) if n.startswith(".")]
    assert len(left) == 1 and left[0].endswith(".partial"), held(path, lb)
    res = lb.run(["backup"], env)
    last = res.stdout.strip()
    assert held(path, lb) == sorted(lb.archive(ts).name for ts in (first, last))
    for ts in (first, last):
        assert (path / lb.NAME / lb.archive(ts).name).read_bytes() == lb.archive(ts).read_bytes()
    said = f"removed the unfinished upload '{left[0]}' an interrupted run left in the rclone store"
    assert said in res.stderr, repr(res)
    wreck_tree(lb.src)
    lb.restore(first, env, extra=["--from", "rclone"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from rclone")


def test_full_remote_disk(lb, apache_server, tmp_path, tmpfs_mount):
    """The remote's directory on a 1 MiB tmpfs behind Apache, the archive larger: the
    upload fails when the server runs out of space. Exit 5, one line naming the rclone
    store, nothing of the archive (final or temporary) on the server, the local copy
    kept."""
    need_tool("rclone")
    base = "f-" + uuid.uuid4().hex[:12]
    small = tmpfs_mount(apache_server.dav / base, size="1m")
    os.chown(small, apache_server.dav.stat().st_uid, apache_server.dav.stat().st_gid)
    conf = tmp_path / "rclone.conf"
    conf.write_text(dav_conf(apache_server))
    env = {"BACKUP_RCLONE_REMOTE": f"dav:{base}", "BACKUP_RCLONE_CONFIG_FILE": str(conf)}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    errs = [l for l in res.stderr.splitlines() if " error: " in l]
    assert len(errs) == 1, repr(res)
    assert "the rclone copy failed (kept in local)" in errs[0], errs[0]
    assert "507 Insufficient Storage" in errs[0], errs[0]
    assert apache_server.password not in res.stderr
    assert lb.archive(res.stdout.strip()).is_file()
    assert held(small, lb) == [], "nothing partial may stay on the server"


def test_server_killed_mid_upload(lb, tmp_path):
    """The server behind the remote (a private Apache) killed while the archive streams to
    `rclone rcat` (Lifeboat stopped at a fault point meanwhile): exit 5, one line naming
    the rclone store, the local copy kept; after a restart nothing of that run is visible
    on the server, and the next backup there succeeds."""
    need_tool("rclone")
    s = lbservers.Apache()
    try:
        s.start()
    except lbservers.Unavailable as e:
        lbservers.unavailable(str(e))
    try:
        (s.dav / "b").mkdir()
        os.chown(s.dav / "b", s.dav.stat().st_uid, s.dav.stat().st_gid)
        conf = tmp_path / "rclone.conf"
        conf.write_text(dav_conf(s))
        env = {"BACKUP_RCLONE_REMOTE": "dav:b", "BACKUP_RCLONE_CONFIG_FILE": str(conf)}
        p = lb.popen(["backup"], {**env, "LIFEBOAT_FAULT": "rclone.write@3:stop"},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            def stopped():
                with open(f"/proc/{p.pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "T"
            wait_until(lambda: p.poll() is not None or stopped(),
                       "lifeboat to stop at the fault point")
            assert p.poll() is None, p.stderr.read().decode(errors="replace")
            s.stop()
            os.kill(p.pid, signal.SIGCONT)
            out, err = p.communicate(timeout=300)
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait()
        err = err.decode(errors="replace")
        assert p.returncode == EXIT_STORE, err
        errs = [l for l in err.splitlines() if " error: " in l]
        assert len(errs) == 1 and "the rclone copy failed (kept in local)" in errs[0], err
        assert s.password not in err
        assert lb.archive(out.decode().strip()).is_file()
        s.start()
        assert [n for n in held(s.dav / "b", lb) if not n.startswith(".")] == []
        ts = lb.backup(env)
        assert held(s.dav / "b", lb) == [lb.archive(ts).name]
    finally:
        s.cleanup()


def test_unreachable_remote_redacted(lb, tmp_path):
    need_tool("rclone")
    port = lbservers.free_port()
    conf = tmp_path / "c.conf"
    secret = "s3cr3t-" + uuid.uuid4().hex
    conf.write_text(f"[dav]\ntype = webdav\nurl = http://u:{secret}@127.0.0.1:{port}/dav\n"
                    f"vendor = other\nuser = u\npass = {obscure(secret)}\n")
    env = {"BACKUP_RCLONE_REMOTE": "dav:x", "BACKUP_RCLONE_CONFIG_FILE": str(conf),
           "BACKUP_LOCAL_PATH": None}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    assert "rclone" in res.stderr and secret not in res.stderr, repr(res)


def sftp_conf(srv, known_hosts):
    """An rclone remote of type sftp on the test sshd: password login (obscured), the host
    key checked against known_hosts; the account is SFTP-only, so no shell commands."""
    return (f"[ssh]\ntype = sftp\nhost = {srv.host}\nport = {srv.port}\nuser = {srv.user}\n"
            f"pass = {obscure(srv.password)}\nknown_hosts_file = {known_hosts}\n"
            f"shell_type = none\ndisable_hashcheck = true\n")


@pytest.fixture
def sftp_remote(lb, sshd_server, tmp_path):
    """A fresh directory on the test sshd behind an rclone sftp remote: (the directory on
    disk, env for lifeboat, the config file)."""
    need_tool("rclone")
    from test_sftp import make_remote
    r = make_remote(sshd_server)
    conf_file = tmp_path / "rclone-sftp.conf"
    conf_file.write_text(sftp_conf(sshd_server, sshd_server.known_hosts))
    os.chmod(conf_file, 0o600)
    env = {"BACKUP_RCLONE_REMOTE": f"ssh:{r.remote}", "BACKUP_RCLONE_CONFIG_FILE": str(conf_file)}
    return r.dir, env, conf_file


def test_roundtrip_local_and_rclone_sftp(lb, sftp_remote):
    """rclone's sftp backend against the test sshd: the same bytes there under the final name
    only, listed in both stores, and the tree restored from it alone."""
    path, env, _ = sftp_remote
    orig = lb.snap()
    ts = lb.backup(env)
    local = lb.archive(ts)
    assert held(path, lb) == [local.name]
    assert (path / lb.NAME / local.name).read_bytes() == local.read_bytes()
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [e["stores"] for e in data] == [["local", "rclone"]]
    wreck_tree(lb.src)
    lb.restore(ts, env, extra=["--from", "rclone"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from rclone sftp")


def test_rclone_sftp_wrong_host_key_keeps_local_copy(lb, sftp_remote, sshd_server, tmp_path):
    """A known_hosts that names another key: rclone refuses the server, exit 5, one line
    naming the rclone store; nothing reaches the server, the local copy stays."""
    path, env, conf_file = sftp_remote
    other = tmp_path / "other-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kh = tmp_path / "wrong_known_hosts"
    kh.write_text(f"[{sshd_server.host}]:{sshd_server.port} "
                  + " ".join(Path(str(other) + ".pub").read_text().split()[:2]) + "\n")
    conf_file.write_text(sftp_conf(sshd_server, kh))
    res = lb.run(["backup"], env, check=EXIT_STORE)
    errs = [l for l in res.stderr.splitlines() if " error: " in l]
    assert errs and all("rclone" in l for l in errs), res
    assert len(errs) == 1 and "key mismatch" in errs[0], errs
    assert sshd_server.password not in res.stderr
    assert held(path, lb) == []
    assert len(local_archives(lb)) == 1


# --------------------------------------------------------------------------
# azureblob on Azurite
# --------------------------------------------------------------------------

class Blob:
    """A fresh container on Azurite behind an rclone azureblob remote `az`."""

    def __init__(self, lb, server, tmp_path):
        self.server = server
        self.container = "c" + uuid.uuid4().hex[:12]
        self.conf = tmp_path / "az.conf"
        self.conf.write_text(server.rclone_conf("az"))
        os.chmod(self.conf, 0o600)
        self.dir = f"az:{self.container}/backups/{lb.NAME}"
        self.env = {"BACKUP_RCLONE_REMOTE": f"az:{self.container}/backups",
                    "BACKUP_RCLONE_CONFIG_FILE": str(self.conf)}

    def rclone(self, *args, **kw):
        """rclone with the test's own copy of the config (not through lifeboat)."""
        p = subprocess.run(["rclone", *args], env=dict(os.environ, RCLONE_CONFIG=str(self.conf)),
                           capture_output=True, timeout=120, **kw)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        return p.stdout

    def files(self):
        out = self.rclone("lsjson", "--files-only", self.dir)
        return sorted(e["Name"] for e in json.loads(out))

    def read(self, name):
        return self.rclone("cat", f"{self.dir}/{name}")


@pytest.fixture
def blob(lb, azurite_server, tmp_path):
    need_tool("rclone")
    return Blob(lb, azurite_server, tmp_path)


def test_roundtrip_list_restore_prune_rclone_azureblob(lb, blob):
    """Backup to an rclone azureblob remote on Azurite beside the local store: the same
    bytes in the container under the final name only, `list` showing rclone, a restore
    from it equal to the source, and retention pruning the container on its own listing."""
    env = blob.env
    orig = lb.snap()
    first = lb.backup(env)
    local = lb.archive(first)
    assert blob.files() == [local.name]
    assert blob.read(local.name) == local.read_bytes()
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [e["stores"] for e in data] == [["local", "rclone"]]
    only = {**env, "BACKUP_LOCAL_PATH": None}
    res = lb.run(["list"], only)
    assert table_timestamps(res) == [first]
    assert res.stdout.splitlines()[1].split()[3] == "rclone", repr(res)

    wreck_tree(lb.src)
    lb.restore(first, only)
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from azureblob")

    second = lb.backup({**env, "BACKUP_KEEP_LAST": "1"})
    assert second != first
    assert blob.files() == [lb.archive(second).name]
    assert blob.read(lb.archive(second).name) == lb.archive(second).read_bytes()
    lb.run(["verify", second], only)


def test_rclone_azureblob_wrong_key_keeps_local_copy(lb, azurite_server, tmp_path):
    """The container reached with a shared access signature whose key is wrong (a SAS URL,
    the one azureblob credential rclone 1.60 lets point at an emulator besides
    use_emulator's fixed key): exit 5, one line naming the rclone store and the refusal,
    the signature never shown, nothing in the container, the local copy kept."""
    need_tool("rclone")
    ok = Blob(lb, azurite_server, tmp_path)
    ok.rclone("mkdir", f"az:{ok.container}")
    sig = "WrongKey" + uuid.uuid4().hex
    conf = tmp_path / "bad.conf"
    conf.write_text(f"[bad]\ntype = azureblob\nsas_url = {azurite_server.endpoint}/"
                    f"{ok.container}?sv=2021-08-06&sr=c&sp=racwdl"
                    f"&se=2030-01-01T00%3A00%3A00Z&sig={sig}\n")
    env = {"BACKUP_RCLONE_REMOTE": f"bad:{ok.container}/backups",
           "BACKUP_RCLONE_CONFIG_FILE": str(conf)}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    errs = [l for l in res.stderr.splitlines() if " error: " in l]
    assert len(errs) == 1, repr(res)
    assert "rclone" in errs[0] and "kept in local" in errs[0], errs[0]
    assert "403" in errs[0] or "AuthorizationFailure" in errs[0], errs[0]
    log = (lb.tmp / "backup.log").read_text(errors="replace")
    assert sig not in res.stderr and sig not in res.stdout and sig not in log
    assert len(local_archives(lb)) == 1
    assert json.loads(ok.rclone("lsjson", "-R", "--files-only", f"az:{ok.container}")) == []

"""Every kind of store at once, against the real servers (tests/lbservers.py): local, S3
(MinIO), SFTP (sshd), WebDAV (Apache mod_dav) and an rclone remote (type webdav on the same
Apache). The issue's promises that hold for each store alike: its name everywhere a store is
named (list's WHERE and --json, webhook bodies, metrics labels, error lines), one failing
store costs only its own copy (exit 5, one line), and any one store alone restores on a
fresh machine.
"""

import os
import shutil
import subprocess
import urllib.request
import uuid

import pytest

from conftest import (EXIT_STORE, assert_same_tree, need_tool, read_json_list,
                      table_timestamps)
import lbservers
from waiting import HANG, wait_until

from test_rclone import dav_conf
from test_s3 import client, need_s3
from test_sftp import Hooks, make_remote, password_env
from test_webdav import dav_env

KINDS = ["local", "s3", "sftp", "webdav", "rclone"]


def own_dir(server, prefix):
    """A fresh directory on Apache's DAV root, owned as Apache wants it."""
    base = prefix + uuid.uuid4().hex[:12]
    (server.dav / base).mkdir()
    os.chown(server.dav / base, server.dav.stat().st_uid, server.dav.stat().st_gid)
    return base


class Stores:
    """One directory, bucket or path of each kind for this test: the env that configures
    them, what each holds (every name, hidden ones too), and the env that breaks one."""

    def __init__(self, lb, minio, sshd, apache, tmp):
        need_s3()
        need_tool("rclone")
        self.lb = lb
        self.s3 = client()
        self.bucket = "lb-" + uuid.uuid4().hex[:16]
        self.s3.create_bucket(Bucket=self.bucket)
        self.sftp = make_remote(sshd)
        self.apache = apache
        self.dav = own_dir(apache, "w-")
        self.rc = own_dir(apache, "r-")
        self.rc_conf = tmp / "rclone.conf"
        self.rc_conf.write_text(dav_conf(apache))
        os.chmod(self.rc_conf, 0o600)
        self.each = {
            "s3": {"BACKUP_S3_BUCKET": self.bucket,
                   "BACKUP_S3_ENDPOINT": os.environ["LB_S3_ENDPOINT"],
                   "BACKUP_S3_ACCESS_KEY": os.environ["LB_S3_ACCESS_KEY"],
                   "BACKUP_S3_SECRET_KEY": os.environ["LB_S3_SECRET_KEY"]},
            "sftp": password_env(lb, self.sftp),
            "webdav": dav_env(apache, self.dav),
            "rclone": {"BACKUP_RCLONE_REMOTE": f"dav:{self.rc}",
                       "BACKUP_RCLONE_CONFIG_FILE": str(self.rc_conf)},
        }
        self.env = {k: v for e in self.each.values() for k, v in e.items()}

    def only(self, kind):
        """The env with `kind` the one store configured (no local directory)."""
        return {**self.each[kind], "BACKUP_LOCAL_PATH": None}

    def held(self, kind):
        """{name: bytes} of everything `kind` holds for this backup name."""
        name = self.lb.NAME
        if kind == "local":
            d = self.lb.backup_dir
        elif kind == "sftp":
            d = self.sftp.dir / name
        elif kind == "webdav":
            d = self.apache.dav / self.dav / name
        elif kind == "rclone":
            d = self.apache.dav / self.rc / name
        else:
            out = {}
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for o in page.get("Contents", []):
                    out[o["Key"].split("/", 1)[1]] = self.s3.get_object(
                        Bucket=self.bucket, Key=o["Key"])["Body"].read()
            ups = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
            out.update({"(upload) " + u["Key"]: b"" for u in ups})
            return out
        return {n: (d / n).read_bytes() for n in sorted(os.listdir(d))} if d.exists() else {}

    def broken(self, kind, tmp):
        """The env with `kind`'s credentials (or, for local, its directory) wrong."""
        env = dict(self.env)
        if kind == "local":
            self.lb.store.mkdir(exist_ok=True)
            (self.lb.store / self.lb.NAME).write_bytes(b"a file where the directory goes")
        elif kind == "s3":
            env["BACKUP_S3_SECRET_KEY"] = "wrong-" + os.environ["LB_S3_SECRET_KEY"]
        elif kind == "sftp":
            bad = tmp / "bad-sftp-password"
            bad.write_text("wrong\n")
            env["BACKUP_SFTP_PASSWORD_FILE"] = str(bad)
        elif kind == "webdav":
            env["BACKUP_WEBDAV_PASSWORD"] = "wrong-" + self.apache.password
        else:
            bad = tmp / "bad-rclone.conf"
            bad.write_text(dav_conf(self.apache, "wrong-" + self.apache.password))
            env["BACKUP_RCLONE_CONFIG_FILE"] = str(bad)
        return env


@pytest.fixture
def stores(lb, minio_server, sshd_server, apache_server, tmp_path):
    return Stores(lb, minio_server, sshd_server, apache_server, tmp_path)


def test_every_store_named_everywhere(lb, stores):
    """Five stores at once: the same bytes in each under the final name only, and each
    store's name in list's WHERE and --json, in the webhook bodies and in the metrics."""
    hooks = Hooks()
    try:
        env = {**stores.env, "BACKUP_START_WEBHOOK": hooks.url("/start"),
               "BACKUP_SUCCESS_WEBHOOK": hooks.url("/ok")}
        ts = lb.backup(env)
    finally:
        hooks.close()
    local = lb.archive(ts)
    for kind in KINDS:
        assert stores.held(kind) == {local.name: local.read_bytes()}, kind
    res = lb.run(["list"], env)
    assert table_timestamps(res) == [ts]
    assert res.stdout.splitlines()[1].split()[3] == ",".join(KINDS), repr(res)
    assert [e["stores"] for e in read_json_list(lb.run(["list", "--json"], env))] == [KINDS]
    assert [(p, b["stores"]) for p, b in hooks.bodies] == [("/start", KINDS), ("/ok", KINDS)]

    port = lbservers.free_port()
    proc = lb.popen(["run"], {**env, "BACKUP_METRICS_ADDR": f"127.0.0.1:{port}"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def get():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                            timeout=HANG) as r:
                    return r.read().decode()
            except OSError:
                return None
        text = wait_until(get, "the metrics endpoint", interval=0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=HANG)
    m = dict(l.rsplit(" ", 1) for l in text.splitlines() if l and not l.startswith("#"))
    for kind in KINDS:
        key = f'lifeboat_store_last_success_timestamp_seconds{{name="{lb.NAME}",store="{kind}"}}'
        assert float(m[key]) > 0, (kind, text)


@pytest.mark.parametrize("kind", KINDS)
def test_one_store_fails_the_others_keep_their_copy(lb, stores, tmp_path, kind):
    """One store's credentials (local: its directory) wrong, the four others fine: exit 5,
    one error line naming the failed store and the four that kept the archive, nothing of
    it (final or temporary) in the failed store, whole copies in the others, listed
    there."""
    env = stores.broken(kind, tmp_path)
    res = lb.run(["backup"], env, check=EXIT_STORE)
    others = [k for k in KINDS if k != kind]
    errs = [l for l in res.stderr.splitlines() if " error: " in l]
    assert len(errs) == 1, repr(res)
    assert f"the {kind} copy failed (kept in {', '.join(others)})" in errs[0], errs[0]
    ts = res.stdout.strip()
    name = f"{lb.NAME}-{ts}.tar.gz.gpg"
    copies = {k: stores.held(k) for k in others}
    want = copies[others[0]]
    assert list(want) == [name], want.keys()
    for k in others:
        assert copies[k] == want, k
    if kind == "local":
        assert (lb.store / lb.NAME).read_bytes() == b"a file where the directory goes"
    else:
        assert stores.held(kind) == {}, kind
    data = read_json_list(lb.run(["list", "--json"], env, check=False))
    assert [e["stores"] for e in data] == [others], data


@pytest.mark.parametrize("kind", ["s3", "sftp", "webdav", "rclone"])
def test_disaster_recovery_from_one_store(lb, stores, kind):
    """The machine is lost (its local archives and its state directory): a fresh one with
    only this store configured lists the archive there and restores it."""
    orig = lb.snap()
    single = lb.single.read_bytes()
    ts = lb.backup(stores.env)
    shutil.rmtree(lb.store)
    shutil.rmtree(lb.tmp / "state")
    fresh = {**stores.only(kind), "BACKUP_STATE_DIR": str(lb.tmp / "fresh-state")}
    res = lb.run(["list"], fresh)
    assert table_timestamps(res) == [ts]
    assert res.stdout.splitlines()[1].split()[3] == kind, repr(res)
    shutil.rmtree(lb.src)
    lb.single.unlink()
    lb.restore(ts, fresh)
    assert_same_tree(orig["src"], lb.snap()["src"], f"restored from {kind} alone")
    assert lb.single.read_bytes() == single
    assert not lb.store.exists(), "nothing downloaded into a local store"
    for secret in (os.environ["LB_S3_SECRET_KEY"], stores.apache.password,
                   stores.sftp.password):
        assert secret not in res.stdout and secret not in res.stderr


def test_check_shows_every_store(lb, stores):
    """`lifeboat check` names where each of the five stores keeps archives, and no
    secret."""
    res = lb.run(["check"], stores.env)
    shown = [l.split("archives in", 1)[1].strip() for l in res.stdout.splitlines()
             if "archives in" in l]
    assert shown == [f"{lb.store}/{lb.NAME}/", f"s3://{stores.bucket}/{lb.NAME}/",
                     f"{stores.sftp.url()}/{lb.NAME}/",
                     f"{stores.apache.url}/{stores.dav}/{lb.NAME}/",
                     f"dav:{stores.rc}/{lb.NAME}/"], res.stdout
    for secret in (os.environ["LB_S3_SECRET_KEY"], stores.apache.password,
                   stores.sftp.password):
        assert secret not in res.stdout and secret not in res.stderr

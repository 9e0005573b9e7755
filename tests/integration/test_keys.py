"""Encryption without the secret on the server: OpenPGP public keys, age recipients, and
signed archives (issue 15).

Every key is generated here, with the real tools (gpg --quick-gen-key in a temporary home,
age-keygen, ssh-keygen). The backup runs with public keys only; the private side is given
only to restore/verify/ls. Restored trees and by-hand decryptions are compared byte for
byte with the source.
"""

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from conftest import (EXIT_CONFIG, EXIT_CRYPTO, EXIT_INTEGRITY, GpgHome, assert_no_archive,
                      assert_same_tree, assert_untouched, need_tool, snapshot, wreck_tree)
from waiting import HANG

SIGNING_PASS = "sign-pass-" + os.urandom(6).hex()
BOB_PASS = "bob-pass-" + os.urandom(6).hex()


def gpg(home, *args, input=None, check=True):
    p = subprocess.run(["gpg", "--homedir", home, "--batch", "--no-tty",
                        "--pinentry-mode", "loopback", *args],
                       input=input, capture_output=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p


def fingerprint(home, uid):
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]


def enc_subkey_id(home, uid):
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return [l.split(":")[4] for l in out.splitlines()
            if l.startswith("sub:") and "e" in l.split(":")[11]][0]


class Keys:
    """Every key the tests use, made once per module."""


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    need_tool("gpg")
    need_tool("age")
    need_tool("age-keygen")
    need_tool("ssh-keygen")
    d = tmp_path_factory.mktemp("keys")
    k = Keys()
    k.dir = d
    with GpgHome() as home:
        def gen(uid, algo="future-default", usage="default", expire="1y", passphrase="",
                extra=()):
            gpg(home, "--passphrase", passphrase, *extra, "--quick-gen-key", uid, algo, usage,
                expire)

        gen("Alice <alice@example.org>")
        gen("Bob <bob@example.org>", passphrase=BOB_PASS)
        gen("Carol <carol@example.org>")
        gen("Signer <signer@example.org>", algo="ed25519", usage="sign")
        gen("Forger <forger@example.org>", algo="ed25519", usage="sign")
        gen("Signer With Pass <sp@example.org>", algo="ed25519", usage="sign",
            passphrase=SIGNING_PASS)
        # Expired: made in 2020 with a one-day life (no sleeping until it expires).
        gen("Expired <old@example.org>", extra=("--faked-system-time", "20200101T000000"),
            expire="1d")
        gen("Revoked <rev@example.org>")
        gen("SignOnly <so@example.org>", algo="ed25519", usage="sign")

        def export_pub(uid, name):
            p = d / name
            p.write_bytes(gpg(home, "--armor", "--export", uid).stdout)
            return p

        def export_sec(uid, name, passphrase=""):
            p = d / name
            p.write_bytes(gpg(home, "--passphrase", passphrase, "--armor",
                              "--export-secret-keys", uid).stdout)
            os.chmod(p, 0o600)
            return p

        for who in ("alice", "bob", "carol", "signer", "forger", "expired", "revoked",
                    "signonly"):
            uid = {"signonly": "<so@example.org>", "expired": "<old@example.org>",
                   "revoked": "<rev@example.org>"}.get(who, f"<{who}@example.org>")
            setattr(k, who + "_pub", export_pub(uid, who + ".asc"))
            setattr(k, who + "_fpr", fingerprint(home, uid))
        k.alice_sub = enc_subkey_id(home, "<alice@example.org>")
        k.bob_sub = enc_subkey_id(home, "<bob@example.org>")
        k.alice_sec = export_sec("<alice@example.org>", "alice.sec")
        k.bob_sec = export_sec("<bob@example.org>", "bob.sec", BOB_PASS)
        k.carol_sec = export_sec("<carol@example.org>", "carol.sec")
        k.signer_sec = export_sec("<signer@example.org>", "signer.sec")
        k.forger_sec = export_sec("<forger@example.org>", "forger.sec")
        k.signer_pass_sec = export_sec("<sp@example.org>", "signer-pass.sec", SIGNING_PASS)
        k.signer_pass_pub = export_pub("<sp@example.org>", "signer-pass.asc")
        # Revoke "Revoked" with the certificate gpg made for it, then export it again.
        rev = Path(home) / "openpgp-revocs.d" / f"{k.revoked_fpr}.rev"
        cert = rev.read_text().replace(":-----BEGIN", "-----BEGIN")
        gpg(home, "--import", input=cert.encode())
        k.revoked_pub = export_pub("<rev@example.org>", "revoked.asc")
        k.secret_texts = [p.read_text() for p in
                          (k.alice_sec, k.bob_sec, k.carol_sec, k.signer_sec, k.forger_sec,
                           k.signer_pass_sec)]
    # age: two X25519 identities and an ssh-ed25519 key.
    for who in ("age1", "age2"):
        p = d / f"{who}.key"
        subprocess.run(["age-keygen", "-o", str(p)], check=True, capture_output=True)
        setattr(k, who + "_id", p)
        setattr(k, who + "_pub", subprocess.run(["age-keygen", "-y", str(p)], check=True,
                                                capture_output=True, text=True).stdout.strip())
        k.secret_texts.append(p.read_text())
    k.ssh_id = d / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@lb",
                    "-f", str(k.ssh_id)], check=True, capture_output=True)
    k.ssh_pub = (d / "id_ed25519.pub").read_text().strip()
    k.secret_texts.append(k.ssh_id.read_text())
    return k


# Environments: the backup side holds public keys only (no passphrase).
def pub_env(*files, passphrase=False):
    env = {"BACKUP_GPG_PUBLIC_KEYS": ",".join(str(f) for f in files)}
    if not passphrase:
        env["BACKUP_ENCRYPTION_KEY_FILE"] = None
    return env


def age_env(recipients):
    return {"BACKUP_ENCRYPTION": "age", "BACKUP_ENCRYPTION_KEY_FILE": None,
            "BACKUP_AGE_RECIPIENTS": recipients}


NO_KEYS = {"BACKUP_ENCRYPTION_KEY_FILE": None}


class ToolLog:
    """gpg and age wrappers first in PATH: every argv they are started with, logged."""

    def __init__(self, lb, tools=("gpg", "age")):
        self.dir = lb.tmp / "wrap"
        self.dir.mkdir()
        self.log = lb.tmp / "argv.log"
        for tool in tools:
            real = shutil.which(tool)
            w = self.dir / tool
            w.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0 $*" >> "{self.log}"\n'
                         f'exec {real} "$@"\n')
            os.chmod(w, 0o755)
        self.env = {"PATH": f"{self.dir}:{os.environ['PATH']}"}

    def text(self):
        return self.log.read_text() if self.log.exists() else ""


def secret_fragments(keys, lb):
    """Pieces of key material and passphrases that must never show in argv or logs."""
    out = [lb.passphrase, BOB_PASS, SIGNING_PASS]
    for t in keys.secret_texts:
        for line in t.splitlines():
            line = line.strip()
            if len(line) >= 40 and not line.startswith("-----") and not line.startswith("#"):
                out.append(line)
    return out


def assert_no_secrets(keys, lb, *texts):
    log = (lb.tmp / "backup.log").read_text() if (lb.tmp / "backup.log").exists() else ""
    for frag in secret_fragments(keys, lb):
        for t in texts + (log,):
            assert frag not in t, f"key material or a passphrase leaked: {frag[:12]}..."


def only(lb, suffix):
    files = [f for f in os.listdir(lb.backup_dir) if f.endswith(suffix)]
    assert len(files) == 1, os.listdir(lb.backup_dir)
    return lb.backup_dir / files[0]


def extracted_data(tar_bytes_path, dest):
    """Unpack a decrypted archive (tar + gzip) by hand; its dirs/data tree."""
    os.makedirs(dest)
    with tarfile.open(tar_bytes_path) as t:
        t.extractall(dest)
    return Path(dest) / "dirs" / "data"


# --------------------------------------------------------------------------
# OpenPGP public keys
# --------------------------------------------------------------------------

def test_public_key_backup_restore_with_private_key_only_at_restore(lb, keys):
    wrap = ToolLog(lb)
    env = {**pub_env(keys.alice_pub), **wrap.env}
    res = lb.run(["backup"], env)
    ts = res.stdout.strip()
    arch = lb.archive(ts)
    assert arch.exists()
    before = snapshot(lb.src)
    wreck_tree(lb.src)
    # The private key only now, and only for restore.
    res2 = lb.restore(ts, {**NO_KEYS, **wrap.env, "BACKUP_GPG_PRIVATE_KEY_FILE": keys.alice_sec})
    assert_same_tree(before, snapshot(lb.src), "restored tree")
    argv = wrap.text()
    assert "--recipient=" + keys.alice_fpr in argv and "--trust-model=always" in argv
    assert_no_secrets(keys, lb, argv, res.stdout + res.stderr, res2.stdout + res2.stderr)


def test_two_recipients_each_alone_decrypts_and_by_hand(lb, keys, tmp_path):
    ts = lb.backup(pub_env(keys.alice_pub, keys.bob_pub))
    src = snapshot(lb.src)
    # Each private key alone opens it, through restore's --key-file and verify's.
    lb.run(["verify", ts, "--key-file", str(keys.alice_sec)], NO_KEYS)
    lb.run(["verify", ts], {**NO_KEYS, "BACKUP_GPG_PRIVATE_KEY_FILE": keys.bob_sec,
                            "BACKUP_GPG_PRIVATE_KEY_PASSPHRASE": BOB_PASS})
    # By hand: gpg -d with each private key gives the same archive, which holds the source.
    plain = []
    for sec, pw in ((keys.alice_sec, ""), (keys.bob_sec, BOB_PASS)):
        with GpgHome() as home:
            gpg(home, "--import", str(sec))
            p = gpg(home, "--passphrase", pw, "-d", str(lb.archive(ts)))
            plain.append(p.stdout)
    assert plain[0] == plain[1] and plain[0][:2] == b"\x1f\x8b"
    (tmp_path / "a.tar.gz").write_bytes(plain[0])
    assert_same_tree(src, snapshot(extracted_data(tmp_path / "a.tar.gz", tmp_path / "hand")),
                     "gpg -d by hand")


def test_public_key_and_passphrase_either_opens(lb, keys):
    ts = lb.backup(pub_env(keys.alice_pub, passphrase=True))
    lb.run(["verify", ts])  # the passphrase (BACKUP_ENCRYPTION_KEY_FILE) alone
    lb.run(["verify", ts, "--key-file", str(keys.alice_sec)], NO_KEYS)
    res = lb.run(["check"], pub_env(keys.alice_pub, passphrase=True))
    assert keys.alice_fpr in res.stdout and "public keys and the passphrase" in res.stdout


def test_wrong_or_missing_private_key_exit_6_names_recipients(lb, keys):
    ts = lb.backup(pub_env(keys.alice_pub, keys.bob_pub))
    wreck_tree(lb.src)
    before = lb.snap_all()
    for env, extra in (({**NO_KEYS, "BACKUP_GPG_PRIVATE_KEY_FILE": keys.carol_sec}, []),
                       (NO_KEYS, []),
                       (NO_KEYS, ["--key-file", str(keys.carol_sec)])):
        res = lb.run(["restore", ts, "--yes", *extra], env, check=EXIT_CRYPTO)
        line = [l for l in res.stderr_lines() if "error" in l and "restore failed" not in l]
        assert len(line) == 1 and keys.alice_sub in line[0] and keys.bob_sub in line[0], res
        assert_untouched(before, lb.snap_all())
        assert_no_secrets(keys, lb, res.stderr)
    # Bob's key without its passphrase, or with a wrong one: exit 6, saying so.
    res = lb.run(["verify", ts, "--key-file", str(keys.bob_sec)], NO_KEYS, check=EXIT_CRYPTO)
    assert "passphrase" in res.stderr
    res = lb.run(["verify", ts, "--key-file", str(keys.bob_sec)],
                 {**NO_KEYS, "BACKUP_GPG_PRIVATE_KEY_PASSPHRASE": "not-" + BOB_PASS},
                 check=EXIT_CRYPTO)
    assert "passphrase" in res.stderr and BOB_PASS not in res.stderr


@pytest.mark.parametrize("which,word", [("expired", "expired"), ("revoked", "revoked"),
                                        ("signonly", "no usable encryption subkey")])
def test_unusable_public_key_refused_at_start(lb, keys, which, word):
    pub = getattr(keys, which + "_pub")
    fpr = getattr(keys, which + "_fpr")
    # The daemon too refuses it at its start (it would otherwise wait for its schedule).
    for cmd, extra in ((["backup"], {}), (["check"], {}), (["run"], {"BACKUP_SCHEDULE":
                                                                     "@daily"})):
        res = lb.run(cmd, {**pub_env(keys.alice_pub, pub), **extra}, check=EXIT_CONFIG,
                     timeout=HANG)
        errs = [l for l in res.stderr_lines() if "error" in l]
        assert len(errs) == 1 and "BACKUP_GPG_PUBLIC_KEYS" in errs[0] and fpr in errs[0] \
            and word in errs[0], res
    assert_no_archive(lb)


def test_bad_public_key_text_refused(lb, keys, tmp_path):
    junk = tmp_path / "junk.asc"
    junk.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n"
                    "-----END PGP PUBLIC KEY BLOCK-----\n")
    res = lb.run(["backup"], {**NO_KEYS, "BACKUP_GPG_PUBLIC_KEYS_FILE": junk},
                 check=EXIT_CONFIG)
    assert "BACKUP_GPG_PUBLIC_KEYS_FILE" in res.stderr
    # A private key where public keys belong: refused, never imported.
    res = lb.run(["backup"], {**NO_KEYS, "BACKUP_GPG_PUBLIC_KEYS_FILE": keys.alice_sec},
                 check=EXIT_CONFIG)
    assert "private key" in res.stderr
    assert_no_secrets(keys, lb, res.stderr)
    assert_no_archive(lb)


def test_check_shows_fingerprints_never_key_material(lb, keys):
    text = keys.alice_pub.read_text()
    res = lb.run(["check"], {**NO_KEYS, "BACKUP_GPG_PUBLIC_KEYS": text})
    assert keys.alice_fpr in res.stdout and keys.alice_sub in res.stdout
    for line in text.splitlines():
        if len(line) > 30 and not line.startswith("-----"):
            assert line not in res.stdout + res.stderr


def test_keys_checked_only_by_the_commands_that_use_them(lb, keys):
    """Public and verify keys are checked (gpg runs) only by backup and check, and verify
    keys by verify, restore and ls: status (the container's healthcheck), list, prune and
    version start no gpg at all, even with an expired key configured; check still refuses
    what backup refuses, and the verify side what check refuses."""
    ts = lb.backup({**pub_env(keys.alice_pub), **sign_env(keys)})
    wrap = ToolLog(lb, ("gpg", "gpgconf", "gpg-agent", "age"))
    good = {**pub_env(keys.alice_pub), **verify_env(keys), **wrap.env}
    bad_pub = {**good, **pub_env(keys.alice_pub, keys.expired_pub)}
    bad_verify = {**good, "BACKUP_VERIFY_KEYS_FILE": keys.expired_pub}
    for env in (good, bad_pub, bad_verify):
        for cmd, rc in ((["status"], 0), (["list"], 0), (["list", "--json"], 0),
                        (["version"], 0), (["prune"], 0)):
            res = lb.run(cmd, env, check=rc)
            assert " error: " not in res.stderr, res
        assert wrap.text() == "", wrap.text()
    # The commands that use them still check them, and refuse a bad one with exit 3.
    lb.run(["check"], good)
    assert "gpg" in wrap.text()
    for env, var, cmds in (
            (bad_pub, "BACKUP_GPG_PUBLIC_KEYS", (["backup"], ["check"])),
            (bad_verify, "BACKUP_VERIFY_KEYS_FILE",
             (["check"], ["verify", ts], ["ls", ts], ["restore", ts, "--yes"]))):
        for cmd in cmds:
            res = lb.run(cmd, {**env, "BACKUP_GPG_PRIVATE_KEY_FILE": keys.alice_sec},
                         check=EXIT_CONFIG)
            errs = [l for l in res.stderr_lines() if " error: " in l
                    and "failed;" not in l]
            assert len(errs) == 1 and var in errs[0] and keys.expired_fpr in errs[0] \
                and "expired" in errs[0], res
    # And verify with good keys checks the signature and decrypts.
    lb.run(["verify", ts], {**good, "BACKUP_GPG_PRIVATE_KEY_FILE": keys.alice_sec})


# --------------------------------------------------------------------------
# age
# --------------------------------------------------------------------------

def test_age_roundtrip_each_identity_and_by_hand(lb, keys, tmp_path):
    wrap = ToolLog(lb)
    recips = f"{keys.age1_pub},{keys.age2_pub}\n# a comment\n{keys.ssh_pub}\n"
    res = lb.run(["backup"], {**age_env(recips), **wrap.env})
    ts = res.stdout.strip()
    arch = lb.archive(ts, ".tar.gz.age")
    assert arch.exists()
    src = snapshot(lb.src)
    # By hand: age -d -i with each identity gives the same bytes, which hold the source.
    plains = [subprocess.run(["age", "-d", "-i", str(i), str(arch)], check=True,
                             capture_output=True).stdout
              for i in (keys.age1_id, keys.age2_id, keys.ssh_id)]
    assert plains[0] == plains[1] == plains[2]
    (tmp_path / "a.tar.gz").write_bytes(plains[0])
    assert_same_tree(src, snapshot(extracted_data(tmp_path / "a.tar.gz", tmp_path / "hand")),
                     "age -d by hand")
    wreck_tree(lb.src)
    lb.restore(ts, {**NO_KEYS, **wrap.env, "BACKUP_AGE_IDENTITY_FILE": keys.age2_id})
    assert_same_tree(src, snapshot(lb.src), "restored tree")
    # Each of the three identities alone opens it through lifeboat as well.
    for ident in (keys.age1_id, keys.age2_id, keys.ssh_id):
        lb.run(["verify", ts, "--key-file", str(ident)], NO_KEYS)
    argv = wrap.text()
    assert "--recipients-file=/dev/fd/3" in argv and keys.age1_pub not in argv
    assert_no_secrets(keys, lb, argv, res.stderr)


def test_age_zstd_and_none_suffixes(lb, keys):
    for comp, suffix in (("zstd", ".tar.zst.age"), ("none", ".tar.age")):
        ts = lb.backup({**age_env(keys.age1_pub), "BACKUP_COMPRESSION": comp})
        assert lb.archive(ts, suffix).exists()
        lb.run(["verify", ts, "--key-file", str(keys.age1_id)], NO_KEYS)


def test_age_wrong_or_missing_identity_exit_6(lb, keys, tmp_path):
    ts = lb.backup(age_env(f"{keys.age1_pub}\n{keys.ssh_pub}"))
    wreck_tree(lb.src)
    before = lb.snap_all()
    for env in ({**NO_KEYS, "BACKUP_AGE_IDENTITY_FILE": keys.age2_id}, NO_KEYS):
        res = lb.restore(ts, env, check=EXIT_CRYPTO)
        errs = [l for l in res.stderr_lines() if "error" in l and "restore failed" not in l]
        assert len(errs) == 1 and "X25519" in errs[0] and "ssh-ed25519" in errs[0], res
        assert_untouched(before, lb.snap_all())


def test_age_malformed_recipient_and_passphrase_mode_refused(lb, keys):
    res = lb.run(["backup"], age_env(f"{keys.age1_pub}\nage1notakey\n"), check=EXIT_CONFIG)
    assert "BACKUP_AGE_RECIPIENTS line 2" in res.stderr and "age1notakey" in res.stderr
    res = lb.run(["backup"], {**age_env(keys.age1_pub), "BACKUP_ENCRYPTION_KEY_FILE":
                              lb.keyfile}, check=EXIT_CONFIG)
    assert "terminal" in res.stderr
    assert lb.passphrase not in res.stderr
    res = lb.run(["backup"], {"BACKUP_ENCRYPTION": "age", **NO_KEYS}, check=EXIT_CONFIG)
    assert "BACKUP_AGE_RECIPIENTS" in res.stderr
    assert_no_archive(lb)


def test_every_kind_listed_verified_and_pruned_whatever_is_configured(lb, keys):
    made = {
        "gpg": lb.backup(),
        "pub": lb.backup(pub_env(keys.alice_pub)),
        "age": lb.backup(age_env(keys.age1_pub)),
        "none": lb.backup({"BACKUP_ENCRYPTION": "none", **NO_KEYS}),
    }
    # Configured now: age only. Every archive is still listed and each one opens.
    now_env = {**age_env(keys.age1_pub)}
    res = lb.run(["list", "--json"], now_env)
    enc = {o["timestamp"]: o["encryption"] for o in json.loads(res.stdout)}
    assert enc == {made["gpg"]: "gpg", made["pub"]: "gpg", made["age"]: "age",
                   made["none"]: "none"}
    lb.run(["verify", made["age"], "--key-file", str(keys.age1_id)], now_env)
    lb.run(["verify", made["pub"], "--key-file", str(keys.alice_sec)], now_env)
    lb.run(["verify", made["none"]], now_env)
    lb.run(["verify", made["gpg"]], {"BACKUP_ENCRYPTION_KEY_FILE": lb.keyfile})
    # Retention counts them all: keep the newest only.
    lb.run(["prune"], {**now_env, "BACKUP_KEEP_LAST": "1"})
    assert os.listdir(lb.backup_dir) == [f"{lb.NAME}-{made['none']}.tar.gz"]


# --------------------------------------------------------------------------
# signatures
# --------------------------------------------------------------------------

def sign_env(keys, sec=None):
    return {"BACKUP_SIGNING_KEY_FILE": sec or keys.signer_sec}


def verify_env(keys):
    return {"BACKUP_VERIFY_KEYS_FILE": keys.signer_pub}


def test_signed_archive_verified_and_by_hand(lb, keys):
    ts = lb.backup({**pub_env(keys.alice_pub), **sign_env(keys)})
    arch = lb.archive(ts)
    sig = Path(str(arch) + ".sig")
    assert sig.exists()
    before = snapshot(lb.src)
    wreck_tree(lb.src)
    lb.restore(ts, {**NO_KEYS, **verify_env(keys), "BACKUP_GPG_PRIVATE_KEY_FILE":
                    keys.alice_sec})
    assert_same_tree(before, snapshot(lb.src), "restored tree")
    # By hand: gpg --verify ARCHIVE.sig ARCHIVE with the signer's public key.
    with GpgHome() as home:
        gpg(home, "--import", str(keys.signer_pub))
        p = gpg(home, "--status-fd", "1", "--verify", str(sig), str(arch))
        assert f"VALIDSIG" in p.stdout.decode() and keys.signer_fpr in p.stdout.decode()
    # `list` shows the archive once, not its signature.
    res = lb.run(["list", "--json"])
    assert [o["file"] for o in json.loads(res.stdout)] == [arch.name]


def test_tampered_archive_refused_before_anything_is_touched(lb, keys):
    ts = lb.backup(sign_env(keys))
    arch = lb.archive(ts)
    data = bytearray(arch.read_bytes())
    data[len(data) // 2] ^= 0x01
    arch.write_bytes(bytes(data))
    wreck_tree(lb.src)
    before, store_before = lb.snap_all(), snapshot(lb.store)
    for cmd in (["restore", ts, "--yes"], ["verify", ts], ["ls", ts]):
        res = lb.run(cmd, verify_env(keys), check=EXIT_INTEGRITY)
        assert "does not match its signature" in res.stderr, res
        assert_untouched(before, lb.snap_all())
        assert snapshot(lb.store) == store_before


def test_archive_resigned_by_another_key_refused(lb, keys):
    ts = lb.backup(sign_env(keys))
    arch = lb.archive(ts)
    # An attacker who can write the store signs the archive with a key of their own.
    with GpgHome() as home:
        gpg(home, "--import", str(keys.forger_sec))
        sig = gpg(home, "--detach-sign", "-o", "-", str(arch)).stdout
    Path(str(arch) + ".sig").write_bytes(sig)
    wreck_tree(lb.src)
    before = lb.snap_all()
    res = lb.restore(ts, verify_env(keys), check=EXIT_INTEGRITY)
    assert "not in BACKUP_VERIFY_KEYS" in res.stderr
    assert_untouched(before, lb.snap_all())
    # And a backup made by the forger's own key from the start: refused the same way.
    ts2 = lb.backup(sign_env(keys, keys.forger_sec))
    lb.run(["verify", ts2], verify_env(keys), check=EXIT_INTEGRITY)


def test_unsigned_archive_refused_when_verify_keys_set(lb, keys):
    ts = lb.backup()
    wreck_tree(lb.src)
    before = lb.snap_all()
    res = lb.restore(ts, verify_env(keys), check=EXIT_INTEGRITY)
    assert "has no signature" in res.stderr
    assert_untouched(before, lb.snap_all())
    lb.run(["verify", ts])  # without verify keys the same archive is accepted


def test_signing_key_with_passphrase(lb, keys):
    res = lb.run(["backup"], sign_env(keys, keys.signer_pass_sec), check=EXIT_CRYPTO)
    assert "passphrase" in res.stderr
    assert_no_archive(lb)
    ts = lb.backup({**sign_env(keys, keys.signer_pass_sec),
                    "BACKUP_SIGNING_KEY_PASSPHRASE": SIGNING_PASS})
    lb.run(["verify", ts], {"BACKUP_VERIFY_KEYS_FILE": keys.signer_pass_pub})
    assert_no_secrets(keys, lb, res.stderr)


def test_failed_signature_write_leaves_no_archive(lb, keys):
    res = lb.run(["backup"], {**sign_env(keys), "LIFEBOAT_FAULT": "fanout.sidecar@1:fail"},
                 check=False)
    assert res.returncode != 0
    assert_no_archive(lb)


def test_prune_removes_signature_with_archive(lb, keys):
    old = lb.backup(sign_env(keys))
    new = lb.backup(sign_env(keys))
    lb.run(["prune"], {"BACKUP_KEEP_LAST": "1"})
    names = sorted(os.listdir(lb.backup_dir))
    assert names == [f"{lb.NAME}-{new}.tar.gz.gpg", f"{lb.NAME}-{new}.tar.gz.gpg.sig"]


def test_signature_in_s3_written_verified_and_pruned(lb, keys, minio_server):
    """The sidecar op of the S3 store: ARCHIVE.sig beside the archive, read back, deleted."""
    from test_s3 import client, need_s3, objects
    import uuid
    need_s3()
    c = client()
    bucket = "lb-" + uuid.uuid4().hex[:16]
    c.create_bucket(Bucket=bucket)
    env = {"BACKUP_S3_BUCKET": bucket, "BACKUP_LOCAL_PATH": None,
           "BACKUP_S3_ENDPOINT": os.environ["LB_S3_ENDPOINT"],
           "BACKUP_S3_ACCESS_KEY": os.environ["LB_S3_ACCESS_KEY"],
           "BACKUP_S3_SECRET_KEY": os.environ["LB_S3_SECRET_KEY"]}
    old = lb.backup({**env, **age_env(keys.age1_pub), **sign_env(keys)})
    key = f"{lb.NAME}/{lb.NAME}-{old}.tar.gz.age"
    assert set(objects(c, bucket)) == {key, key + ".sig"}
    lb.run(["verify", old, "--key-file", str(keys.age1_id)], {**env, **verify_env(keys)})
    # A forged signature in the bucket: refused.
    with GpgHome() as home:
        gpg(home, "--import", str(keys.forger_sec))
        forged = gpg(home, "--detach-sign", "-o", "-", input=c.get_object(
            Bucket=bucket, Key=key)["Body"].read()).stdout
    good = c.get_object(Bucket=bucket, Key=key + ".sig")["Body"].read()
    c.put_object(Bucket=bucket, Key=key + ".sig", Body=forged)
    lb.run(["verify", old, "--key-file", str(keys.age1_id)], {**env, **verify_env(keys)},
           check=EXIT_INTEGRITY)
    c.put_object(Bucket=bucket, Key=key + ".sig", Body=good)
    new = lb.backup({**env, **sign_env(keys)})
    lb.run(["prune"], {**env, "BACKUP_KEEP_LAST": "1"})
    nkey = f"{lb.NAME}/{lb.NAME}-{new}.tar.gz.gpg"
    assert set(objects(c, bucket)) == {nkey, nkey + ".sig"}


def sig_store(kind, lb, request):
    """A fresh directory in a store of this kind, alone (no local copy): (env, the store's
    directory for this backup name on disk)."""
    if kind == "sftp":
        from test_sftp import make_remote, password_env
        r = make_remote(request.getfixturevalue("sshd_server"))
        return {**password_env(lb, r), "BACKUP_LOCAL_PATH": None}, r.dir / lb.NAME
    srv = request.getfixturevalue("apache_server")
    base = "k-" + uuid.uuid4().hex[:12]
    (srv.dav / base).mkdir()
    os.chown(srv.dav / base, srv.dav.stat().st_uid, srv.dav.stat().st_gid)
    if kind == "webdav":
        from test_webdav import dav_env
        return {**dav_env(srv, base), "BACKUP_LOCAL_PATH": None}, srv.dav / base / lb.NAME
    need_tool("rclone")
    from test_rclone import dav_conf
    conf = lb.tmp / "rclone.conf"
    conf.write_text(dav_conf(srv))
    os.chmod(conf, 0o600)
    return ({"BACKUP_RCLONE_REMOTE": f"dav:{base}", "BACKUP_RCLONE_CONFIG_FILE": str(conf),
             "BACKUP_LOCAL_PATH": None}, srv.dav / base / lb.NAME)


@pytest.mark.parametrize("kind", ["sftp", "webdav", "rclone"])
def test_signature_in_remote_store_written_verified_and_pruned(lb, keys, kind, request):
    """put_small of the SFTP, WebDAV and rclone stores: ARCHIVE.sig beside the archive (no
    temporary left), checked by verify --from that store, a forged or missing one refused
    (exit 7), deleted by prune with its archive."""
    env, d = sig_store(kind, lb, request)
    old = lb.backup({**env, **sign_env(keys)})
    arch = f"{lb.NAME}-{old}.tar.gz.gpg"
    assert sorted(os.listdir(d)) == [arch, arch + ".sig"]
    good = (d / (arch + ".sig")).read_bytes()
    with GpgHome() as home:
        gpg(home, "--import", str(keys.signer_pub))
        gpg(home, "--verify", str(d / (arch + ".sig")), str(d / arch))
    # `list` shows the archive once, not its signature.
    res = lb.run(["list", "--json"], env)
    assert [o["file"] for o in json.loads(res.stdout)] == [arch]
    venv = {**env, **verify_env(keys)}
    lb.run(["verify", old, "--from", kind], venv)
    # A forged signature in the store: refused.
    with GpgHome() as home:
        gpg(home, "--import", str(keys.forger_sec))
        forged = gpg(home, "--detach-sign", "-o", "-", str(d / arch)).stdout
    (d / (arch + ".sig")).write_bytes(forged)
    res = lb.run(["verify", old, "--from", kind], venv, check=EXIT_INTEGRITY)
    assert "not in BACKUP_VERIFY_KEYS" in res.stderr, res
    # A missing one: refused, and restore touches nothing.
    (d / (arch + ".sig")).unlink()
    res = lb.run(["verify", old, "--from", kind], venv, check=EXIT_INTEGRITY)
    assert "has no signature" in res.stderr, res
    wreck_tree(lb.src)
    before = lb.snap_all()
    lb.restore(old, venv, check=EXIT_INTEGRITY)
    assert_untouched(before, lb.snap_all())
    (d / (arch + ".sig")).write_bytes(good)
    new = lb.backup({**env, **sign_env(keys)})
    lb.run(["prune"], {**env, "BACKUP_KEEP_LAST": "1"})
    narch = f"{lb.NAME}-{new}.tar.gz.gpg"
    assert sorted(os.listdir(d)) == [narch, narch + ".sig"]


# --------------------------------------------------------------------------
# the exit 6 line from a streamed store
# --------------------------------------------------------------------------

def stream_store(kind, lb, request):
    """A fresh store of this kind beside the local one (a backup goes to both): env."""
    if kind == "s3":
        request.getfixturevalue("minio_server")
        from test_s3 import client, need_s3
        need_s3()
        bucket = "lb-" + uuid.uuid4().hex[:16]
        client().create_bucket(Bucket=bucket)
        return {"BACKUP_S3_BUCKET": bucket,
                "BACKUP_S3_ENDPOINT": os.environ["LB_S3_ENDPOINT"],
                "BACKUP_S3_ACCESS_KEY": os.environ["LB_S3_ACCESS_KEY"],
                "BACKUP_S3_SECRET_KEY": os.environ["LB_S3_SECRET_KEY"]}
    env, _ = sig_store(kind, lb, request)
    return {k: v for k, v in env.items() if k != "BACKUP_LOCAL_PATH"}


def exit6_line(res):
    """The one error line of a failed run, without its time and pid."""
    errs = [l.split(" error: ", 1)[1] for l in res.stderr_lines() if " error: " in l
            and "restore failed" not in l and "verify failed" not in l]
    assert len(errs) == 1, res
    return errs[0]


@pytest.mark.parametrize("tool,kind", [("age", "s3"), ("age", "sftp"), ("gpg", "s3"),
                                       ("gpg", "sftp")])
def test_wrong_key_from_streamed_store_names_recipients_as_local(lb, keys, tool, kind,
                                                                 request):
    """A store that streams the archive (a pipe, not a file) gives the same exit 6 line as
    the local store, for a wrong key and for none: for age the stanzas the header shows
    (an ssh key's tag, the count of anonymous X25519 ones), for gpg the key ids; nothing
    restored. The right key then restores the same tree from that store."""
    env = stream_store(kind, lb, request)
    if tool == "age":
        ts = lb.backup({**env, **age_env(f"{keys.age1_pub}\n{keys.ssh_pub}")})
        wrong, right = {"BACKUP_AGE_IDENTITY_FILE": keys.age2_id}, keys.ssh_id
        must = ["1 X25519 recipient", "ssh-ed25519 key tag "]
    else:
        ts = lb.backup({**env, **pub_env(keys.alice_pub, keys.bob_pub)})
        wrong, right = {"BACKUP_GPG_PRIVATE_KEY_FILE": keys.carol_sec}, keys.alice_sec
        must = [keys.alice_sub, keys.bob_sub]
    src = snapshot(lb.src)
    wreck_tree(lb.src)
    before = lb.snap_all()
    for key_env in (wrong, {}):
        lines = {}
        for store in ("local", kind):
            for cmd in (["restore", ts, "--yes"], ["verify", ts]):
                res = lb.run([*cmd, "--from", store], {**env, **NO_KEYS, **key_env},
                             check=EXIT_CRYPTO)
                lines[store, cmd[0]] = exit6_line(res)
                assert_untouched(before, lb.snap_all())
        for m in must:
            assert m in lines["local", "restore"], lines
        for cmd in ("restore", "verify"):
            assert lines[kind, cmd] == lines["local", cmd], lines
    lb.restore(ts, {**env, **NO_KEYS}, extra=["--from", kind, "--key-file", str(right)])
    assert_same_tree(src, snapshot(lb.src), f"restored from {kind}")

"""The archive must be readable with standard tools (gpg, tar, sha256sum)."""

import gzip
import json
import os
import re
import subprocess
import tarfile

from conftest import (GpgHome, assert_same_tree, entry_info, gpg_decrypt, gpg_decrypt_pipe_tar,
                      need_tool, read_json_list, snapshot, wreck_tree)
from waiting import HANG

SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def _norm(p):
    return os.path.normpath(p)


def check_extracted(lb, ts, dest):
    """Common checks on an archive extracted into dest."""
    need_tool("sha256sum")
    # manifest
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["name"] == lb.NAME
    assert manifest["timestamp"] == ts
    srcs = {(s["kind"], s["name"]): s["path"] for s in manifest["sources"]}
    assert srcs == {("dir", "data"): str(lb.src), ("file", "single"): str(lb.single)}, manifest

    # content equals the source
    assert_same_tree(snapshot(lb.src), snapshot(dest / "dirs" / "data"),
                     "dirs/data in the archive")
    assert sorted(os.listdir(dest / "files" / "single")) == ["single.conf"]
    restored_single = dest / "files" / "single" / "single.conf"
    assert restored_single.read_bytes() == lb.single.read_bytes()
    assert entry_info(restored_single)[:3] == entry_info(lb.single)[:3]
    assert sorted(os.listdir(dest)) == ["SHA256SUMS", "dirs", "files", "manifest.json"]
    # the link pointing outside was stored as a link, the outside file was not archived
    assert os.path.islink(dest / "dirs/data/link_out")
    for dirpath, _, filenames in os.walk(dest):
        for n in filenames:
            full = os.path.join(dirpath, n)
            if not os.path.islink(full):
                assert b"must never be touched" not in open(full, "rb").read(), full

    # SHA256SUMS: sha256sum -c passes, one line per regular file incl. manifest.json
    p = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=dest,
                       capture_output=True)
    assert p.returncode == 0, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    listed = []
    for line in (dest / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        m = SUM_LINE.match(line)
        assert m, f"not a GNU sha256sum line: {line!r}"
        assert not os.path.isabs(m.group(2)), line
        listed.append(_norm(m.group(2)))
    regular = []
    for dirpath, dirnames, filenames in os.walk(dest):
        for n in filenames:
            full = os.path.join(dirpath, n)
            if os.path.isfile(full) and not os.path.islink(full):
                regular.append(_norm(os.path.relpath(full, dest)))
    regular.remove("SHA256SUMS")
    assert sorted(listed) == sorted(regular)
    assert len(listed) == len(set(listed)), "duplicate lines in SHA256SUMS"


def check_member_order(tar_gz_path):
    with tarfile.open(tar_gz_path, "r:gz") as t:
        names = [_norm(m.name) for m in t.getmembers()]
    for n in names:
        assert not n.startswith("/") and not n.startswith(".."), n
        assert (n in ("manifest.json", "SHA256SUMS", "dirs", "files")
                or n.startswith("dirs/") or n.startswith("files/")), n
    assert names[-1] == "SHA256SUMS", f"SHA256SUMS must be the last member, got {names[-1:]}"
    assert "manifest.json" in names


def test_manual_recovery(lb, tmp_path):
    ts = lb.backup()
    arch = lb.archive(ts)
    dest = gpg_decrypt_pipe_tar(arch, lb.keyfile, tmp_path / "x")
    check_extracted(lb, ts, dest)
    tgz = gpg_decrypt(arch, lb.keyfile, tmp_path / "plain.tar.gz")
    check_member_order(tgz)
    # the passphrase is not stored anywhere in the archive
    with open(tgz, "rb") as f:
        raw = gzip.decompress(f.read())
    assert lb.passphrase.encode() not in raw


def test_archive_is_encrypted(lb):
    ts = lb.backup()
    data = lb.archive(ts).read_bytes()
    assert not data.startswith(b"\x1f\x8b"), "archive is a bare gzip, not OpenPGP"
    # the compressible log in the tree would be visible if not encrypted
    assert b"INFO line of a compressible log" not in data
    assert b"manifest.json" not in data


def test_encryption_none(lb, tmp_path):
    need_tool("tar")
    env = {"BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None}
    orig = lb.snap()
    ts = lb.backup(env)
    names = os.listdir(lb.backup_dir)
    assert names == [f"{lb.NAME}-{ts}.tar.gz"], names
    arch = lb.archive(ts, ".tar.gz")
    assert oct(os.stat(arch).st_mode & 0o777) == oct(0o600)
    dest = tmp_path / "x"
    dest.mkdir()
    p = subprocess.run(["tar", "xzf", str(arch), "-C", str(dest)], capture_output=True)
    assert p.returncode == 0, p.stderr
    check_extracted(lb, ts, dest)
    check_member_order(arch)
    # list shows it, verify and restore work
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [e["timestamp"] for e in data] == [ts]
    assert os.path.basename(data[0]["file"]) == arch.name
    lb.run(["verify", ts], env)
    wreck_tree(lb.src)
    lb.single.write_bytes(b"x")
    lb.restore(ts, env)
    assert lb.snap() == orig


def test_key_file_trailing_newline_stripped(lb):
    """Key file 'P\\n' and key 'P' are the same passphrase."""
    orig = lb.snap()
    ts = lb.backup()
    wreck_tree(lb.src)
    env = {"BACKUP_ENCRYPTION_KEY_FILE": None, "BACKUP_ENCRYPTION_KEY": lb.passphrase}
    lb.run(["verify", ts], env)
    lb.restore(ts, env)
    assert lb.snap() == orig


def test_key_from_env_readable_with_gpg(lb, tmp_path):
    """A backup made with BACKUP_ENCRYPTION_KEY opens with gpg and that passphrase."""
    key = "env-only passphrase with spaces ü"
    env = {"BACKUP_ENCRYPTION_KEY_FILE": None, "BACKUP_ENCRYPTION_KEY": key}
    ts = lb.backup(env)
    kf = tmp_path / "k2"
    kf.write_text(key + "\n", encoding="utf-8")
    dest = gpg_decrypt_pipe_tar(lb.archive(ts), kf, tmp_path / "x")
    assert json.loads((dest / "manifest.json").read_text())["timestamp"] == ts


def test_passphrase_key_uses_the_strongest_s2k_count(lb):
    """AES-256 with SHA-512 S2K at the largest iteration count OpenPGP encodes, the same on
    every machine (gpg's own calibration would cost a second per run and vary)."""
    ts = lb.backup()
    with GpgHome() as home:
        p = subprocess.run(["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback",
                            "--passphrase-file", str(lb.keyfile), "--list-packets",
                            str(lb.archive(ts))], capture_output=True, text=True, timeout=HANG)
    out = p.stdout + p.stderr
    assert "cipher 9" in out and "hash 10" in out, out[:2000]
    assert "count 65011712" in out, out[:2000]


def ustar_fits(name):
    """Can a ustar header hold `name` (100 bytes, or a 155-byte prefix split at a '/')?"""
    if not name.isascii():
        return False
    if len(name) <= 100:
        return True
    return any(name[i] == "/" and i <= 155 and len(name) - i - 1 <= 100
               for i in range(len(name)))


def test_entries_carry_only_what_a_restore_sets(lb, tmp_path):
    """Issue 18, many small files: an entry whose name, link and ids fit ustar gets a plain
    header with no pax record. The mtime is stored in whole seconds (as GNU tar's default
    format keeps it), so a sub-second part no longer costs a pax header per file; names that
    need one (non-ASCII, longer than ustar holds, a long link target) still get it, and the
    archive still reads with GNU tar, Python's tarfile and restores the same tree."""
    need_tool("tar")
    long_dir = lb.src / ("long-directory-name-" * 4)
    long_dir.mkdir()
    (long_dir / ("a-file-with-a-long-name-" * 5 + ".txt")).write_bytes(b"long\n")
    os.symlink("t" * 150, lb.src / "long-link")
    os.utime(long_dir, ns=(1_600_000_000_987_654_321, 1_600_000_000_987_654_321))
    env = {"BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None}
    src_ns = {}
    for dirpath, dirnames, filenames in os.walk(lb.src):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            if not os.path.islink(full):
                src_ns[os.path.relpath(full, lb.src)] = os.lstat(full).st_mtime_ns
    assert any(ns % 10**9 for ns in src_ns.values())  # the tree has sub-second mtimes
    orig = lb.snap()
    ts = lb.backup(env)
    arch = lb.archive(ts, ".tar.gz")

    plain = needing = 0
    with tarfile.open(arch, "r:gz") as t:
        for m in t:
            assert not {"mtime", "atime", "ctime"} & set(m.pax_headers), (m.name, m.pax_headers)
            assert m.mtime == int(m.mtime), (m.name, m.mtime)
            fits = ustar_fits(m.name) and len(m.linkname) <= 100 and m.linkname.isascii()
            if fits:
                assert not m.pax_headers, (m.name, m.pax_headers)
                plain += 1
            else:
                assert set(m.pax_headers) & {"path", "linkpath"}, (m.name, m.pax_headers)
                needing += 1
    assert plain > 20 and needing >= 4, (plain, needing)

    # GNU tar reads it (no warnings) and gives back the tree, mtimes to the second
    dest = tmp_path / "x"
    dest.mkdir()
    p = subprocess.run(["tar", "xzf", str(arch), "-C", str(dest)], capture_output=True)
    assert p.returncode == 0 and not p.stderr, p.stderr
    assert_same_tree(snapshot(lb.src), snapshot(dest / "dirs" / "data"), "GNU tar's extract")

    # Lifeboat's restore: the same tree, each mtime the source's whole seconds
    wreck_tree(lb.src)
    lb.restore(ts, env)
    assert lb.snap() == orig
    for rel, ns in src_ns.items():
        got = os.lstat(lb.src / rel).st_mtime_ns
        assert got == ns // 10**9 * 10**9, (rel, ns, got)

"""BACKUP_COMPRESSION: parallel gzip (default), zstd and none, read back by standard tools."""

import gzip
import json
import os
import subprocess
import zlib

import pytest

from conftest import (EXIT_CONFIG, gpg_decrypt, gpg_decrypt_pipe_tar, need_tool,
                      read_json_list, wreck_tree)
from test_archive_format import check_extracted, check_member_order


def big_file(lb, size=12 * 1024 * 1024 + 12345):
    """Spans many 1 MiB blocks (members), text runs and short-period noise."""
    chunk = b"".join(b"%08d lifeboat block-edge text line\n" % n for n in range(4000))
    data = bytearray()
    seed = 7
    while len(data) < size:
        data += chunk
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        data += seed.to_bytes(4, "little") * 2000  # short-period noise
    p = lb.src / "big" / "mixed.bin"
    p.write_bytes(bytes(data[:size]))
    return p


GZIP_BLOCK = 1024 * 1024  # pgzip.h PGZIP_BLOCK: uncompressed bytes per member


def gzip_members(raw):
    """Decompress a gzip file member by member with zlib (each member's CRC-32 and length
    checked, nothing after the last); return the data and the number of members."""
    out, members = b"", 0
    while True:
        assert raw[:4] == b"\x1f\x8b\x08\x00", "not a plain gzip member header"
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += d.decompress(raw) + d.flush()
        assert d.eof, "gzip member is truncated"
        members += 1
        raw = d.unused_data
        if not raw:
            return out, members


def standard_gzip(raw):
    """One gzip file, a member per block, that zlib and Python's gzip read the same way."""
    out, members = gzip_members(raw)
    assert members == max(1, -(-len(out) // GZIP_BLOCK))
    assert gzip.decompress(raw) == out
    return out


def manifest_of(dest):
    return json.loads((dest / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("threads", ["1", "2", "4"])
def test_gzip_parallel_standard_tools(lb, tmp_path, threads):
    need_tool("gzip")
    big = big_file(lb)
    orig = lb.snap()
    env = {"BACKUP_COMPRESSION_THREADS": threads}
    ts = lb.backup(env)
    arch = lb.archive(ts)  # .tar.gz.gpg: the default name
    assert sorted(os.listdir(lb.backup_dir)) == [arch.name]
    # gpg -d | tar xz, as the README tells users
    dest = gpg_decrypt_pipe_tar(arch, lb.keyfile, tmp_path / "x")
    check_extracted(lb, ts, dest)
    assert (dest / "dirs/data/big/mixed.bin").read_bytes() == big.read_bytes()
    assert manifest_of(dest)["compression"] == "gzip"
    # gzip -t accepts it; zlib inflates it, a member per block, to a tar, as Python does
    tgz = gpg_decrypt(arch, lb.keyfile, tmp_path / "plain.tar.gz")
    p = subprocess.run(["gzip", "-t", str(tgz)], capture_output=True)
    assert p.returncode == 0, p.stderr
    raw = standard_gzip(tgz.read_bytes())
    assert len(raw) > 12 * GZIP_BLOCK
    p = subprocess.run(["gzip", "-dc", str(tgz)], capture_output=True)
    assert p.returncode == 0 and p.stdout == raw
    check_member_order(tgz)
    # restore puts back the exact bytes
    wreck_tree(lb.src)
    big.write_bytes(b"overwritten")
    lb.restore(ts, env)
    assert lb.snap() == orig
    assert big.read_bytes() == (dest / "dirs/data/big/mixed.bin").read_bytes()


def test_gzip_level_changes_output(lb, tmp_path):
    big_file(lb)
    ts1 = lb.backup({"BACKUP_COMPRESSION_LEVEL": "1"})
    ts9 = lb.backup({"BACKUP_COMPRESSION_LEVEL": "9"})
    a1 = gpg_decrypt(lb.archive(ts1), lb.keyfile, tmp_path / "1.tar.gz")
    a9 = gpg_decrypt(lb.archive(ts9), lb.keyfile, tmp_path / "9.tar.gz")
    assert os.path.getsize(a9) < os.path.getsize(a1)
    # both are standard gzip files of the same kind of tar
    assert len(standard_gzip(a1.read_bytes())) == len(standard_gzip(a9.read_bytes()))


def test_zstd_standard_tools(lb, tmp_path):
    need_tool("zstd")
    need_tool("tar")
    big = big_file(lb)
    orig = lb.snap()
    env = {"BACKUP_COMPRESSION": "zstd"}
    ts = lb.backup(env)
    arch = lb.archive(ts, ".tar.zst.gpg")
    assert sorted(os.listdir(lb.backup_dir)) == [arch.name]
    # gpg -d | zstd -d | tar x
    zst = gpg_decrypt(arch, lb.keyfile, tmp_path / "plain.tar.zst")
    assert zst.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    dest = tmp_path / "x"
    dest.mkdir()
    zd = subprocess.Popen(["zstd", "-dc", str(zst)], stdout=subprocess.PIPE)
    tar = subprocess.run(["tar", "x", "-C", str(dest)], stdin=zd.stdout, capture_output=True)
    zd.stdout.close()
    assert zd.wait() == 0 and tar.returncode == 0, tar.stderr
    check_extracted(lb, ts, dest)
    assert (dest / "dirs/data/big/mixed.bin").read_bytes() == big.read_bytes()
    assert manifest_of(dest)["compression"] == "zstd"
    lb.run(["verify", ts])
    wreck_tree(lb.src)
    big.write_bytes(b"overwritten")
    lb.restore(ts)  # restore needs no BACKUP_COMPRESSION: the name says what it is
    assert lb.snap() == orig


def test_zstd_level_and_threads(lb, tmp_path):
    orig = lb.snap()
    env = {"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "19",
           "BACKUP_COMPRESSION_THREADS": "1"}
    ts = lb.backup(env)
    wreck_tree(lb.src)
    lb.restore(ts)
    assert lb.snap() == orig


def test_none_encrypted_is_plain_tar(lb, tmp_path):
    need_tool("tar")
    orig = lb.snap()
    ts = lb.backup({"BACKUP_COMPRESSION": "none"})
    arch = lb.archive(ts, ".tar.gpg")
    assert sorted(os.listdir(lb.backup_dir)) == [arch.name]
    plain = gpg_decrypt(arch, lb.keyfile, tmp_path / "plain.tar")
    assert plain.read_bytes()[257:262] == b"ustar"
    dest = tmp_path / "x"
    dest.mkdir()
    p = subprocess.run(["tar", "xf", str(plain), "-C", str(dest)], capture_output=True)
    assert p.returncode == 0, p.stderr
    check_extracted(lb, ts, dest)
    assert manifest_of(dest)["compression"] == "none"
    wreck_tree(lb.src)
    lb.restore(ts)
    assert lb.snap() == orig


@pytest.mark.parametrize("comp,suffix", [("gzip", ".tar.gz"), ("zstd", ".tar.zst"),
                                         ("none", ".tar")])
def test_unencrypted_kinds(lb, tmp_path, comp, suffix):
    env = {"BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None,
           "BACKUP_COMPRESSION": comp}
    orig = lb.snap()
    ts = lb.backup(env)
    arch = lb.archive(ts, suffix)
    assert sorted(os.listdir(lb.backup_dir)) == [arch.name]
    dest = tmp_path / "x"
    dest.mkdir()
    # GNU tar recognises each compression by itself
    p = subprocess.run(["tar", "xf", str(arch), "-C", str(dest)], capture_output=True)
    assert p.returncode == 0, p.stderr
    check_extracted(lb, ts, dest)
    wreck_tree(lb.src)
    lb.restore(ts, env)
    assert lb.snap() == orig


def test_list_prune_restore_every_kind(lb):
    orig = lb.snap()
    made = {}
    for comp in ("gzip", "zstd", "none"):
        made[comp] = lb.backup({"BACKUP_COMPRESSION": comp})
    suffix = {"gzip": ".tar.gz.gpg", "zstd": ".tar.zst.gpg", "none": ".tar.gpg"}
    data = read_json_list(lb.run(["list", "--json"]))
    listed = {e["timestamp"]: os.path.basename(e["file"]) for e in data}
    assert listed == {ts: f"{lb.NAME}-{ts}{suffix[c]}" for c, ts in made.items()}
    text = lb.run(["list"]).stdout
    for ts in made.values():
        assert ts in text
    # restore each kind with the default configuration (gzip)
    for comp, ts in made.items():
        wreck_tree(lb.src)
        lb.restore(ts)
        assert lb.snap() == orig, comp
    # retention counts every kind: keep the newest one only
    lb.run(["prune"], {"BACKUP_KEEP_LAST": "1"})
    assert sorted(os.listdir(lb.backup_dir)) == [f"{lb.NAME}-{made['none']}.tar.gpg"]


@pytest.mark.parametrize("var,value,needle", [
    ("BACKUP_COMPRESSION", "bzip2", "BACKUP_COMPRESSION 'bzip2' is invalid"),
    ("BACKUP_COMPRESSION", "gz", "BACKUP_COMPRESSION 'gz' is invalid"),
    ("BACKUP_COMPRESSION_LEVEL", "10", "BACKUP_COMPRESSION_LEVEL '10' is invalid"),
    ("BACKUP_COMPRESSION_LEVEL", "fast", "BACKUP_COMPRESSION_LEVEL 'fast' is invalid"),
    ("BACKUP_COMPRESSION_THREADS", "0", "BACKUP_COMPRESSION_THREADS '0' is invalid"),
])
def test_bad_values_one_line(lb, var, value, needle):
    res = lb.run(["backup"], {var: value}, check=EXIT_CONFIG)
    lines = res.stderr_lines()
    assert len(lines) == 1, res
    assert needle in lines[0], res
    assert not os.path.exists(lb.backup_dir) or not os.listdir(lb.backup_dir)


def test_zstd_level_range(lb):
    lb.backup({"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "12"})
    res = lb.run(["backup"], {"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "20"},
                 check=EXIT_CONFIG)
    assert "expected 1 to 19 for zstd" in res.stderr


def test_check_describes_compression(lb):
    res = lb.run(["check"], {"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_THREADS": "2"})
    assert "zstd, level 3, 2 threads" in res.stdout + res.stderr


@pytest.mark.parametrize("comp,suffix", [("gzip", ".tar.gz"), ("zstd", ".tar.zst")])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_compressed_stream(lb, comp, suffix, damage):
    """Damage in the compressed stream fails the restore (exit 7) and changes nothing."""
    big_file(lb)
    env = {"BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None,
           "BACKUP_COMPRESSION": comp}
    ts = lb.backup(env)
    arch = lb.archive(ts, suffix)
    data = bytearray(arch.read_bytes())
    if damage == "truncate":
        data = data[:len(data) * 2 // 3]
    else:
        data[len(data) // 2] ^= 0x55
    arch.write_bytes(bytes(data))
    wreck_tree(lb.src)
    before = lb.snap_all()
    res = lb.restore(ts, env, check=7)
    err = res.stderr.lower()
    assert "damaged" in err or "truncated" in err or "corrupt" in err or "crc" in err, res
    assert lb.snap_all() == before


def test_one_timestamp_names_one_backup_whatever_its_kind(lb):
    """Back-to-back backups of different kinds (fast enough to share a second) still get
    different timestamps: restore and retention address a backup by its timestamp."""
    seen = set()
    for comp in ("gzip", "none", "zstd", "none"):
        ts = lb.backup({"BACKUP_COMPRESSION": comp})
        assert ts not in seen, (comp, ts, sorted(seen), sorted(os.listdir(lb.backup_dir)))
        seen.add(ts)
    assert len(os.listdir(lb.backup_dir)) == 4

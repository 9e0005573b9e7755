"""Every name a Linux file system can hold backs up, verifies and restores as the same bytes.

The tree is compared by bytes: names from os.listdir(bytes), walked with directory
fds (os.fwalk), so paths longer than PATH_MAX from / are fine. The same archive is
also extracted by GNU tar and checked with sha256sum -c, as the README's manual
recovery does.
"""

import hashlib
import os
import shutil
import stat
import subprocess
import unicodedata

from conftest import EXIT_OK, GpgHome, need_tool

NFD = unicodedata.normalize("NFD", "café").encode()  # b'cafe\xcc\x81'
NFC = unicodedata.normalize("NFC", "café").encode()  # b'caf\xc3\xa9'
HANGUL_NFD = unicodedata.normalize("NFD", "한국어").encode()  # conjoining jamo

# (relative path as bytes, content); directories are made as needed.
NAMES = [
    (NFD + b".txt", b"decomposed"),
    (NFC + b".txt", b"composed"),
    (HANGUL_NFD + b".txt", b"jamo"),
    (unicodedata.normalize("NFC", "한국어").encode() + b".txt", b"hangul syllables"),
    (b"A\xcc\x8a-angstrom-nfd", b"A with ring above, decomposed"),
    (b"\xe2\x84\xab-angstrom-sign", b"U+212B, which NFC maps to U+00C5"),
    (b"latin1-\xe9t\xe9", b"not UTF-8 at all"),
    (b"\xff\xfe", b"invalid bytes only"),
    (b"cesu-\xed\xa0\x80\xed\xb0\x80", b"a surrogate pair, CESU-8"),
    (b"overlong-\xc0\xaf", b"an overlong slash"),
    (b"mixed-" + NFD + b"-\xff", b"decomposed and invalid"),
    (b"new\nline", b"newline in the name"),
    (b"back\\slash", b"backslash"),
    (b"carriage\rreturn", b"carriage return"),
    (b"\\n-literally", b"looks like an escape"),
    (b"\x1b[31mred\x1b[0m", b"an ANSI escape sequence"),
    (b"%s%n%x", b"printf directives"),
    (b"$(echo hi)`id`", b"shell"),
    (b"-rf", b"leading dash"),
    (b"tab\there", b"tab"),
    (b" ", b"a single space"),
    (b"x" * 255, b"255-byte ASCII component"),
    ("é".encode() * 127 + b"x", b"255-byte UTF-8 component"),
    (NFD * 42 + b"xyz", b"255-byte decomposed component"),
    (NFD + b"-dir/" + NFD + b"-inside", b"inside a decomposed directory"),
    (b"\xff-dir/" + HANGUL_NFD, b"inside an invalid-bytes directory"),
]

# A path near PATH_MAX: 15 components of 250 bytes (decomposed and ASCII, alternating)
# plus a file, 3,900 bytes below the source, so dirs/data/... stays under 4096 bytes
# for GNU tar and sha256sum, which open paths whole.
DEEP = b"/".join((NFD * 41 + b"d%02d" % i)[:250] if i % 2 else b"%03d" % i + b"y" * 247
                 for i in range(15)) + b"/" + NFD * 10 + b".leaf"
NAMES.append((DEEP, b"deep leaf"))
LINKS = [
    (NFD + b"-link", NFD + b".txt"),
    (b"link-to-invalid", b"latin1-\xe9t\xe9"),
    (b"link\nnewline", b"new\nline"),
    (b"dangling-" + HANGUL_NFD, b"no/such/" + HANGUL_NFD),
]


def make_tree(root):
    root = os.fsencode(root)
    os.makedirs(root)
    for rel, data in NAMES:
        full = os.path.join(root, rel)
        parent = os.path.dirname(rel)
        if parent:
            # os.makedirs would pass the whole (too long) path to mkdir.
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
            for comp in parent.split(b"/"):
                try:
                    os.mkdir(comp, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = nfd
            with open(os.open(os.path.basename(rel), os.O_WRONLY | os.O_CREAT, 0o644,
                              dir_fd=fd), "wb") as f:
                f.write(data)
            os.close(fd)
        else:
            with open(full, "wb") as f:
                f.write(data)
    for rel, target in LINKS:
        os.symlink(target, os.path.join(root, rel))
    return root


def tree_sig(root):
    """{relpath bytes: (type, mode, size, sha256 or link target)} below root, by fds."""
    out = {}
    root = os.fsencode(root)
    for dirpath, dirnames, filenames, dfd in os.fwalk(root):
        rel = os.path.relpath(dirpath, root) if dirpath != root else b""
        for name in dirnames + filenames:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            key = os.path.join(rel, name) if rel else name
            if stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(name, dir_fd=dfd))
            elif stat.S_ISDIR(st.st_mode):
                out[key] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                fd = os.open(name, os.O_RDONLY, dir_fd=dfd)
                with open(fd, "rb") as f:
                    data = f.read()
                out[key] = ("file", stat.S_IMODE(st.st_mode), len(data),
                            hashlib.sha256(data).hexdigest())
    return out


def expected_names():
    names = set()
    for rel, _ in NAMES + LINKS:
        parts = rel.split(b"/")
        for i in range(1, len(parts) + 1):
            names.add(b"/".join(parts[:i]))
    return names


def setup_names(lb):
    src = lb.tmp / "names-src"
    make_tree(src)
    sig = tree_sig(src)
    assert set(sig) == expected_names()  # the file system holds them all
    # A file source whose own base name is decomposed, too.
    single = os.path.join(os.fsencode(lb.root), b"etc", NFD + b".conf")
    with open(single, "wb") as f:
        f.write(b"decomposed file source\n")
    return src, os.fsdecode(single), sig


def test_every_name_round_trips_exactly(lb):
    src, single, sig = setup_names(lb)
    env = {"BACKUP_DIRS": f"{src}:data", "BACKUP_FILES": f"{single}:single"}
    ts = lb.backup(env)
    lb.run(["verify", ts], env)

    # Wipe the source and put something else there: the restore brings back the bytes.
    shutil.rmtree(src)
    os.mkdir(src)
    (src / "intruder").write_bytes(b"not in the backup")
    os.unlink(single)
    lb.run(["restore", ts, "--dry-run"], env)
    res = lb.restore(ts, env)
    assert res.returncode == EXIT_OK
    got = tree_sig(src)
    missing = sorted(set(sig) - set(got))
    extra = sorted(set(got) - set(sig))
    assert not missing and not extra, f"names differ: missing {missing}, extra {extra}"
    assert got == sig
    assert sorted(os.listdir(os.fsencode(src))) == sorted(
        {r.split(b"/")[0] for r, _ in NAMES + LINKS})
    with open(single, "rb") as f:
        assert f.read() == b"decomposed file source\n"


def test_gnu_tar_and_sha256sum_read_the_same_names(lb):
    need_tool("tar")
    need_tool("sha256sum")
    src, single, sig = setup_names(lb)
    env = {"BACKUP_DIRS": f"{src}:data", "BACKUP_FILES": f"{single}:single"}
    ts = lb.backup(env)
    for loc in ("C.UTF-8", "C"):
        dest = lb.tmp / f"by-hand-{loc}"
        dest.mkdir()
        with GpgHome() as home:
            gpg = subprocess.Popen(
                ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback",
                 "--passphrase-file", str(lb.keyfile), "-d", str(lb.archive(ts))],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            tar = subprocess.run(["tar", "xz", "-C", str(dest)], stdin=gpg.stdout,
                                 capture_output=True, env={**os.environ, "LC_ALL": loc})
            gpg.stdout.close()
            assert gpg.wait(timeout=120) == 0
        assert tar.returncode == 0, tar.stderr
        got = tree_sig(dest / "dirs" / "data")
        assert got == sig, sorted(set(sig) ^ set(got))
        with open(os.path.join(os.fsencode(dest), b"files", b"single", NFD + b".conf"),
                  "rb") as f:
            assert f.read() == b"decomposed file source\n"
        # SHA256SUMS escapes newlines and backslashes as sha256sum does: -c takes it.
        chk = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=dest,
                             capture_output=True, env={**os.environ, "LC_ALL": loc})
        assert chk.returncode == 0, chk.stdout[-2000:] + chk.stderr[-2000:]
        ok = chk.stdout.count(b": OK\n")
        assert ok == sum(1 for _, v in sig.items() if v[0] == "file") + 2  # + manifest, single


def test_a_name_that_would_not_read_back_fails_the_backup(lb):
    """Should a name not read back as its bytes either way, backup refuses, naming it."""
    from conftest import EXIT_SOURCE, assert_no_archive
    bad = lb.src / os.fsdecode(NFD + b"-unstorable.txt")
    bad.write_bytes(b"x")
    point = "backup.name_reads_back"
    res = lb.run(["backup"], {"LIFEBOAT_FAULT": f"{point}@1:fail,{point}@2:fail"},
                 check=EXIT_SOURCE)
    assert "cannot store the name of" in res.stderr and os.fsdecode(NFD) in res.stderr, res
    assert_no_archive(lb)
    # Without the fault the same tree backs up and verifies.
    ts = lb.backup()
    lb.run(["verify", ts])


def test_a_failure_naming_a_non_utf8_file_is_recorded(lb):
    """The state file (JSON, UTF-8) still records a run whose error names such a file."""
    import json
    from conftest import EXIT_SOURCE
    src = lb.tmp / "one-name"
    src.mkdir()
    (src / os.fsdecode(b"\xff\xfe-" + NFD)).write_bytes(b"x")
    point = "backup.name_reads_back"
    res = lb.run(["backup"], {"LIFEBOAT_FAULT": f"{point}@1:fail,{point}@2:fail",
                              "BACKUP_DIRS": f"{src}:data", "BACKUP_FILES": None},
                 check=EXIT_SOURCE)
    assert "cannot record" not in res.stderr, res
    state = json.loads((lb.tmp / "state" / f"{lb.NAME}.state.json").read_text())
    assert state["last"]["status"] == "failure", state
    assert "cannot store the name of" in state["last"]["error"], state
    assert "??-" + unicodedata.normalize("NFD", "café") in state["last"]["error"], state

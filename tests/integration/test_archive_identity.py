"""An archive is what its name says: manifest.json's name and timestamp must match the file name."""

import shutil

from conftest import EXIT_INTEGRITY, assert_untouched


def _later(ts, days=1):
    """The same time `days` later (a free, valid, newer timestamp)."""
    import datetime
    t = datetime.datetime.strptime(ts, "%Y-%m-%d-%H%M%S") + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%d-%H%M%S")


def test_older_archive_under_a_newer_name_is_refused(lb):
    old = lb.backup()
    (lb.src / "zero.bin").write_bytes(b"changed after the first backup")
    new = lb.backup()
    assert new != old
    fake = _later(new)
    shutil.copy2(lb.archive(old), lb.archive(fake))
    assert fake in lb.run(["list"]).stdout

    before = lb.snap_all()
    for args in (["verify", fake], ["restore", fake, "--yes"],
                 ["restore", fake, "--dry-run"]):
        res = lb.run(args, check=EXIT_INTEGRITY)
        msg = next((l for l in res.stderr_lines() if "is not the backup its name says" in l),
                   res.stderr)
        assert lb.archive(fake).name in msg and old in msg, res
        assert_untouched(before, lb.snap_all())
    # The real ones still verify.
    lb.run(["verify", old])
    lb.run(["verify", new])


def test_another_backup_names_archive_is_refused(lb):
    other = lb.backup({"BACKUP_NAME": "otherapp"})
    src = lb.store / "otherapp" / f"otherapp-{other}.tar.gz.gpg"
    assert src.exists()
    lb.backup_dir.mkdir(exist_ok=True)
    fake = _later(other, days=3)
    shutil.copy2(src, lb.archive(fake))

    before = lb.snap_all()
    for args in (["verify", fake], ["restore", fake, "--yes"]):
        res = lb.run(args, check=EXIT_INTEGRITY)
        msg = next((l for l in res.stderr_lines() if "is not the backup its name says" in l),
                   res.stderr)
        assert lb.archive(fake).name in msg and "'otherapp'" in msg and other in msg, res
        assert_untouched(before, lb.snap_all())

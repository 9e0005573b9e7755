"""Archive timestamps are local time in $TZ."""

import datetime
import os
import time
from zoneinfo import ZoneInfo

import pytest

from conftest import IN_CI, read_json_list


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "America/St_Johns", "UTC"])
def test_tz(lb, tz):
    if not os.path.exists(f"/usr/share/zoneinfo/{tz}"):
        if IN_CI:
            pytest.fail(f"tzdata for {tz} missing")
        pytest.skip(f"tzdata for {tz} missing")
    zone = ZoneInfo(tz)
    t0 = time.time()
    before = datetime.datetime.now(zone).replace(tzinfo=None, microsecond=0)
    ts = lb.backup({"TZ": tz})
    after = datetime.datetime.now(zone).replace(tzinfo=None)
    when = datetime.datetime.strptime(ts, "%Y-%m-%d-%H%M%S")
    slack = datetime.timedelta(seconds=2)
    assert before - slack <= when <= after + slack, \
        f"{ts} is not the current time in {tz} ({before} .. {after})"
    assert os.listdir(lb.backup_dir) == [f"{lb.NAME}-{ts}.tar.gz.gpg"]
    data = read_json_list(lb.run(["list", "--json"], {"TZ": tz}))
    t1 = time.time()
    assert [e["timestamp"] for e in data] == [ts]
    # No older than the time since the backup started (whole seconds: +2), however long
    # a loaded machine took; a zone offset (30 min at least) would be far outside.
    assert 0 <= data[0]["age_seconds"] <= t1 - t0 + 2, \
        f"age must not be off by the zone offset: {data[0]['age_seconds']} s"
    # the backup is found by its timestamp even when listed under another TZ
    lb.run(["verify", ts], {"TZ": "UTC"})

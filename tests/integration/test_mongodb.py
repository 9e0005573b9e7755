"""MongoDB sources against a real server: FerretDB (SQLite backend, auth on), started by ./test.sh.

The server's user has a password with '@', ':', '/' and '%', so every URI here
carries a percent-encoded password. Each test works in databases of its own.
Assertions compare what the server returns: every document as raw BSON bytes
(types, field order, nesting), index specifications and collection options,
taken before the backup and after the restore. MongoDB's own mongorestore
(built from mongo-tools by ./test.sh) must restore a Lifeboat dump too.

FerretDB 1.24 lacks some BSON types (decimal128, minKey/maxKey, JavaScript
code) and views; the tests use every type it stores.
"""

import datetime
import os
import re
import socket
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import (EXIT_CONFIG, EXIT_SOURCE, assert_no_archive,
                      gpg_decrypt_pipe_tar)
from waiting import HANG

import bson  # ships with pymongo (./test.sh installs it)
import bson.json_util
import pymongo
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

RAW = CodecOptions(document_class=RawBSONDocument)


class Mongo:
    def __init__(self):
        self.base = os.environ["LB_MONGO_URI"]  # mongodb://user:pw@host:port/?authSource=admin
        self.user = os.environ["LB_MONGO_USER"]
        self.password = os.environ["LB_MONGO_PASSWORD"]
        self.hostport = os.environ["LB_MONGO_HOSTPORT"]
        # A hang guard, not a verdict: a busy FerretDB may take long to answer; a server
        # that is down still fails each test within a minute.
        self.client = pymongo.MongoClient(self.base, serverSelectionTimeoutMS=60000)
        self.created = []

    def uri(self, db=None, password=None):
        pw = urllib.parse.quote(self.password if password is None else password, safe="")
        path = urllib.parse.quote(db, safe="") if db else ""
        return f"mongodb://{self.user}:{pw}@{self.hostport}/{path}?authSource=admin"

    def new_db(self, prefix="lb"):
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.created.append(name)
        return name

    def cleanup(self):
        for d in self.created:
            try:
                self.client.drop_database(d)
            except Exception:
                pass
        self.client.close()


@pytest.fixture
def mongo(ferretdb_server):
    m = Mongo()
    try:
        yield m
    finally:
        m.cleanup()


def populate(m, db, n=300):
    """Nested documents, every BSON type FerretDB stores, unique and compound indexes, capped."""
    d = m.client[db]
    docs = []
    for i in range(n):
        docs.append({
            "_id": i,
            "name": f"Größe № {i} 日本語 🚀",
            "nested": {"a": [1, "two", {"three": 3.0, "deep": {"deeper": [None, True, i]}}],
                       "empty": {}, "list": []},
            "i32": i - 100,
            "i64": bson.Int64(i * 10**12),
            "dbl": i / 7,
            "flag": i % 2 == 0,
            "when": datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=i, milliseconds=i),
            "oid": bson.ObjectId(),
            "bin": bson.Binary(os.urandom(16), 0),
            "uuid": bson.Binary(uuid.uuid4().bytes, 4),
            "re": bson.Regex(f"^a{i}", "im"),
            "ts": bson.Timestamp(1_600_000_000 + i, i + 1),
            "nul": None,
        })
    d.items.insert_many(docs)
    d.items.create_index([("name", 1)], unique=True, name="name_unique")
    d.items.create_index([("i64", 1), ("dbl", -1)], name="i64_dbl")
    d.create_collection("events", capped=True, size=1 << 20, max=1000)
    d.events.insert_many([{"seq": i, "msg": "e" * (i % 40)} for i in range(200)])
    d.create_collection("empty")
    d["odd name/with%chars"].insert_one({"_id": "odd", "v": 1})


def fingerprint(m, db):
    """{collection: (documents as raw BSON in _id order, index specs, options)}."""
    d = m.client.get_database(db, codec_options=RAW)
    out = {}
    for name in sorted(d.list_collection_names()):
        c = d[name]
        docs = [doc.raw for doc in c.find(sort=[("_id", 1)])]
        indexes = sorted(
            (ix["name"], tuple(ix["key"].items()), bool(ix.get("unique", False)))
            for ix in m.client[db][name].list_indexes())
        opts = dict(m.client[db][name].options())
        out[name] = (docs, indexes, opts)
    return out


def mongo_env(uris, **extra):
    env = {"BACKUP_MONGODB": "\n".join(uris), "BACKUP_DIRS": None, "BACKUP_FILES": None}
    env.update(extra)
    return env


def extract(lb, ts, tmp_path):
    return gpg_decrypt_pipe_tar(lb.archive(ts), lb.keyfile, tmp_path / "x")


def run_mongorestore(m, tmp_path, binary, args):
    """mongorestore with the URI in a config file (no password in argv)."""
    cfg = tmp_path / "mongorestore.yaml"
    cfg.write_text(f'uri: "{m.base}"\n')
    os.chmod(cfg, 0o600)
    p = subprocess.run([binary, f"--config={cfg}", *args],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"mongorestore failed:\n{p.stderr[-4000:]}"
    return p


def test_roundtrip(lb, mongo):
    db = mongo.new_db()
    populate(mongo, db)
    before = fingerprint(mongo, db)
    assert before["events"][2].get("capped") is True
    env = mongo_env([mongo.uri(db)])
    res = lb.run(["backup"], env)
    assert mongo.password not in res.stderr + res.stdout
    ts = res.stdout.strip()

    # Wreck it: fewer and changed documents, a lost index, a dropped collection, a new one.
    d = mongo.client[db]
    d.items.delete_many({"_id": {"$lt": 100}})
    d.items.update_one({"_id": 150}, {"$set": {"name": "changed"}})
    d.items.drop_index("name_unique")
    d.events.drop()
    d.create_collection("events")  # no longer capped
    res = lb.restore(ts, env)
    assert mongo.password not in res.stderr + res.stdout
    assert fingerprint(mongo, db) == before


def test_archive_layout_and_metadata(lb, mongo, tmp_path):
    db = mongo.new_db()
    populate(mongo, db, n=20)
    ts = lb.run(["backup"], mongo_env([mongo.uri(db)])).stdout.strip()
    root = extract(lb, ts, tmp_path) / "mongodb" / db / db
    names = sorted(os.listdir(root))
    assert names == sorted(["empty.bson", "empty.metadata.json", "events.bson",
                            "events.metadata.json", "items.bson", "items.metadata.json",
                            "odd+name%2Fwith%25chars.bson",
                            "odd+name%2Fwith%25chars.metadata.json"])
    meta = bson.json_util.loads((root / "events.metadata.json").read_text())
    assert meta["collectionName"] == "events" and meta["type"] == "collection"
    assert meta["options"]["capped"] is True
    assert re.fullmatch(r"[0-9a-f]{32}", meta["uuid"])
    meta = bson.json_util.loads((root / "items.metadata.json").read_text())
    assert {ix["name"] for ix in meta["indexes"]} == {"_id_", "name_unique", "i64_dbl"}
    assert (root / "empty.bson").stat().st_size == 0
    docs = bson.decode_all((root / "items.bson").read_bytes())
    assert [doc["_id"] for doc in docs] == list(range(20))


def test_mongorestore_restores_a_lifeboat_dump(lb, mongo, tmp_path, mongorestore_path):
    """MongoDB's own mongorestore reads the dump (documents and collection options).

    Indexes are left to Lifeboat's restore: mongorestore always adds the legacy
    "ns" field to index specs, which FerretDB rejects ("Index option "ns" is
    unknown"), whoever made the dump; against MongoDB that works.
    """
    db = mongo.new_db()
    populate(mongo, db)
    before = fingerprint(mongo, db)
    ts = lb.run(["backup"], mongo_env([mongo.uri(db)])).stdout.strip()
    dump = extract(lb, ts, tmp_path) / "mongodb" / db
    fresh = mongo.new_db("lbmr")
    run_mongorestore(mongo, tmp_path, mongorestore_path, ["--dir", str(dump), "--nsFrom", f"{db}.*",
                                       "--nsTo", f"{fresh}.*", "--noIndexRestore"])
    after = fingerprint(mongo, fresh)
    assert sorted(after) == sorted(before)
    for name in before:
        assert after[name][0] == before[name][0], f"documents of {name} differ"
        assert after[name][2] == before[name][2], f"options of {name} differ"


def test_all_databases_when_the_uri_names_none(lb, mongo, tmp_path):
    a, b = mongo.new_db(), mongo.new_db()
    mongo.client[a].t.insert_many([{"_id": i, "a": i} for i in range(10)])
    mongo.client[b].u.insert_one({"_id": "x", "nested": {"k": [1, 2]}})
    fa, fb = fingerprint(mongo, a), fingerprint(mongo, b)
    env = mongo_env([mongo.uri()])
    ts = lb.run(["backup"], env).stdout.strip()
    name = mongo.hostport.rsplit(":", 1)[0]
    top = extract(lb, ts, tmp_path) / "mongodb" / name
    dbs = set(os.listdir(top))
    assert {a, b} <= dbs
    assert not dbs & {"admin", "local", "config"}
    mongo.client.drop_database(a)
    mongo.client[b].u.delete_many({})
    lb.restore(ts, env)
    assert fingerprint(mongo, a) == fa
    assert fingerprint(mongo, b) == fb


def test_restore_target_that_fails_touches_nothing(lb, mongo):
    db = mongo.new_db()
    mongo.client[db].t.insert_many([{"_id": i} for i in range(5)])
    ts = lb.run(["backup"], mongo_env([mongo.uri(db)])).stdout.strip()
    mongo.client[db].t.delete_many({"_id": {"$gt": 2}})
    res = lb.restore(ts, mongo_env([mongo.uri(db, password="not-the-password")]),
                     check=EXIT_SOURCE)
    assert "not-the-password" not in res.stderr and mongo.password not in res.stderr
    assert mongo.client[db].t.count_documents({}) == 3


@pytest.mark.slow
def test_collection_over_16_mib_streams_in_parts(lb, mongo, tmp_path, mongorestore_path):
    """A 20 MiB collection: two parts in the archive, joined again on restore."""
    db = mongo.new_db()
    d = mongo.client[db]
    # Documents of ~1 MiB: one of them straddles the 16 MiB part boundary.
    for i in range(20):
        d.big.insert_one({"_id": i, "blob": bson.Binary(os.urandom(1 << 20), 0), "i": i})
    d.big.create_index([("i", 1)], unique=True, name="i_unique")
    before = fingerprint(mongo, db)
    env = mongo_env([mongo.uri(db)])
    ts = lb.run(["backup"], env, timeout=600).stdout.strip()
    root = extract(lb, ts, tmp_path) / "mongodb" / db / db
    parts = sorted(p.name for p in root.iterdir() if p.name.startswith("big.bson"))
    assert parts == ["big.bson.000000", "big.bson.000001"]
    assert (root / "big.bson.000000").stat().st_size == 16 * 1024 * 1024

    d.drop_collection("big")
    lb.run(["restore", ts, "--yes"], env, timeout=600)
    assert fingerprint(mongo, db) == before

    # By hand, as the README says: cat the parts, then mongorestore.
    with open(root / "big.bson", "wb") as out:
        for p in parts:
            out.write((root / p).read_bytes())
            (root / p).unlink()
    fresh = mongo.new_db("lbmr")
    run_mongorestore(mongo, tmp_path, mongorestore_path, ["--dir", str(root.parent), "--nsFrom", f"{db}.*",
                                       "--nsTo", f"{fresh}.*", "--noIndexRestore"])
    assert fingerprint(mongo, fresh)["big"][0] == before["big"][0]


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("case", ["unreachable", "wrong_password", "no_such_database",
                                  "malformed_encoding", "malformed_option"])
def test_bad_source_fails_the_run(lb, mongo, case):
    db = mongo.new_db()
    mongo.client[db].t.insert_one({"x": 1})
    if case == "unreachable":
        uri = f"mongodb://{mongo.user}:x%40y@127.0.0.1:{closed_port()}/{db}"
        code, needle = EXIT_SOURCE, "cannot connect"
    elif case == "wrong_password":
        uri = mongo.uri(db, password="not-the-password")
        code, needle = EXIT_SOURCE, "Authentication failed"
    elif case == "no_such_database":
        uri = mongo.uri("no_such_db_" + uuid.uuid4().hex[:6])
        code, needle = EXIT_SOURCE, "does not exist"
    elif case == "malformed_encoding":
        uri = f"mongodb://{mongo.user}:sec%zzret@{mongo.hostport}/{db}"
        code, needle = EXIT_CONFIG, "percent-encoding"
    else:
        uri = mongo.uri(db) + "&readPreference=nowhere"
        code, needle = EXIT_SOURCE, "invalid URI"
    # The directory source is fine: the bad database alone must fail the whole run.
    env = mongo_env([uri], BACKUP_DIRS=f"{lb.src}:data")
    res = lb.run(["backup"], env, check=code, timeout=HANG)
    err = [l for l in res.stderr_lines() if "error:" in l and needle in l]
    assert len(err) == 1, res
    assert "BACKUP_MONGODB" in err[0] or "MongoDB" in err[0]
    assert "not-the-password" not in res.stderr and mongo.password not in res.stderr
    assert "sec%zzret" not in res.stderr and "x%40y" not in res.stderr
    log = Path(lb.tmp / "backup.log")
    if log.exists():
        assert mongo.password not in log.read_text(errors="replace")
    assert_no_archive(lb)


def test_failed_restore_leaves_the_collections_as_they_were(lb, mongo, tmp_path):
    """Each collection is built under a staging name and renamed over the original only at
    the end: a document the server refuses half-way leaves every collection untouched."""
    import gzip
    import hashlib
    import io
    import tarfile

    db = mongo.new_db()
    d = mongo.client[db]
    d.a.insert_many([{"_id": i} for i in range(10)])
    d.b.insert_many([{"_id": i} for i in range(10)])
    env = mongo_env([mongo.uri(db)], BACKUP_ENCRYPTION="none")
    ts = lb.run(["backup"], env).stdout.strip()
    archive = lb.archive(ts, suffix=".tar.gz")

    # The server refuses this document (FerretDB 1.24 has no decimal128): put it into b.bson
    # of the archive, with a matching SHA256SUMS, so that the restore fails at 'b' after 'a'.
    bad = bson.encode({"_id": 99, "d": bson.Decimal128("1.5")})
    member = f"mongodb/{db}/{db}/b.bson"
    src = tarfile.open(archive, "r:gz")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for ti in src:
            data = src.extractfile(ti).read() if ti.isfile() else None
            if ti.name == member:
                old = hashlib.sha256(data).hexdigest()
                data += bad
                new = hashlib.sha256(data).hexdigest()
            if ti.name == "SHA256SUMS":
                lines = data.decode().splitlines(True)
                data = "".join(l.replace(old, new) if l.rstrip("\n").endswith(member) else l
                               for l in lines).encode()
            if data is not None:
                ti.size = len(data)
                dst.addfile(ti, io.BytesIO(data))
            else:
                dst.addfile(ti)
    src.close()
    archive.write_bytes(gzip.compress(out.getvalue()))

    d.a.delete_many({"_id": {"$gte": 5}})
    d.b.delete_many({"_id": {"$gte": 5}})
    res = lb.restore(ts, env, check=EXIT_SOURCE)
    assert any("error:" in l and f"cannot insert into '{db}.b'" in l
               for l in res.stderr_lines()), res
    assert sorted(x["_id"] for x in d.a.find()) == list(range(5))
    assert sorted(x["_id"] for x in d.b.find()) == list(range(5))
    assert sorted(d.list_collection_names()) == ["a", "b"]

"""matrix:// notifications (issue 17): the client-server API's send endpoint.

No homeserver can be run here, so a local receiver checks each request against the
documented shape: PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId},
`Authorization: Bearer <access token>`, a JSON event {"msgtype", "body"}; the room id
percent-encoded in the path, one transaction id per room and message, the same one when
a failed attempt is retried (the server deduplicates by it). The token is a secret: only
in the header, never in argv, logs or `check`.
"""

import http.server
import json
import os
import threading
import urllib.parse

import pytest

TOKEN = "syt_bGlmZWJvYXQ_MtrxSecret77_0a1b2c"
ROOMS = ["!AbCdEf:example.org", "!other_room:matrix.example.net"]


class Receiver:
    def __init__(self, statuses=()):
        self.requests = []
        self.statuses = list(statuses)  # answers to give first, then 200
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def handle_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rec.requests.append({"method": self.command, "path": self.path,
                                     "headers": dict(self.headers.items()), "body": body})
                status = rec.statuses.pop(0) if rec.statuses else 200
                answer = b'{"event_id":"$ev1"}' if status == 200 else b'{"errcode":"M_UNKNOWN"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_PUT = do_POST = handle_any

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def url(port, rooms=ROOMS, token=TOKEN, path=""):
    return (f"matrix://{urllib.parse.quote(token, safe='')}@127.0.0.1:{port}{path}/"
            f"?rooms={','.join(rooms)}&scheme=http")


def url_file(lb, text):
    f = lb.tmp / "notify-urls"
    f.write_text(text + "\n")
    os.chmod(f, 0o600)
    return {"BACKUP_NOTIFY_URLS_FILE": str(f)}


def test_matrix_send_event_shape(lb, receiver):
    env = dict(url_file(lb, url(receiver.port)), BACKUP_NOTIFY_LEVEL="success")
    res = lb.run(["backup"], env)
    archive = next(p.name for p in lb.backup_dir.iterdir() if not p.name.startswith("."))
    assert len(receiver.requests) == 2, receiver.requests
    txns = []
    for r, room in zip(receiver.requests, ROOMS):
        assert r["method"] == "PUT"
        prefix = (f"/_matrix/client/v3/rooms/{urllib.parse.quote(room, safe='')}"
                  "/send/m.room.message/")
        assert r["path"].startswith(prefix), r["path"]
        txn = r["path"][len(prefix):]
        assert txn and "/" not in txn and "?" not in txn
        txns.append(txn)
        assert r["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert r["headers"]["Content-Type"] == "application/json"
        assert "access_token" not in r["path"]
        j = json.loads(r["body"])
        assert set(j) == {"msgtype", "body"}
        assert j["msgtype"] == "m.notice"
        assert j["body"].startswith(f"Lifeboat: backup '{lb.NAME}' succeeded on ")
        assert archive in j["body"]
    assert txns[0] != txns[1]
    log = (lb.tmp / "backup.log").read_text()
    assert TOKEN not in res.stdout + res.stderr + log
    assert "notified matrix://***@127.0.0.1" in log


def test_matrix_retry_reuses_the_transaction_id(lb):
    rec = Receiver(statuses=[502])
    try:
        env = dict(url_file(lb, url(rec.port, rooms=ROOMS[:1], path="/hs")),
                   BACKUP_NOTIFY_LEVEL="success")
        lb.backup(env)
        assert [r["method"] for r in rec.requests] == ["PUT", "PUT"]
        assert rec.requests[0]["path"] == rec.requests[1]["path"]
        assert rec.requests[0]["path"].startswith("/hs/_matrix/client/v3/rooms/%21AbCdEf%3A")
    finally:
        rec.close()


def test_matrix_refused_token_is_logged_and_the_backup_succeeds(lb):
    rec = Receiver(statuses=[401])
    try:
        ts = lb.backup(dict(url_file(lb, url(rec.port, rooms=ROOMS[:1])),
                            BACKUP_NOTIFY_LEVEL="success"))
        assert lb.archive(ts).is_file()
        log = (lb.tmp / "backup.log").read_text()
        assert "notification not delivered" in log and "HTTP 401" in log
        assert TOKEN not in log
        assert len(rec.requests) == 1  # a 4xx is final
    finally:
        rec.close()


def test_matrix_check_hides_the_token(lb):
    res = lb.run(["check"], url_file(lb, url(8448)))
    assert f"matrix://***@127.0.0.1:8448?rooms={','.join(ROOMS)}" in res.stdout
    assert TOKEN not in res.stdout + res.stderr


@pytest.mark.parametrize("bad,want", [
    (f"matrix://{TOKEN}@hs.example.org/", "has no room"),
    (f"matrix://{TOKEN}@hs.example.org/?rooms=%23alias:example.org", "not a #alias"),
    ("matrix://hs.example.org/?rooms=!a:b", "is not of the form matrix://ACCESS_TOKEN@"),
    (f"matrix://{TOKEN}@hs.example.org/?rooms=!a:b&room=x", "unknown parameter 'room'"),
])
def test_matrix_bad_url_exits_3(lb, bad, want):
    res = lb.run(["backup"], {"BACKUP_NOTIFY_URLS": bad}, check=3)
    assert "BACKUP_NOTIFY_URLS: matrix URL" in res.stderr and want in res.stderr, res.stderr
    assert TOKEN not in res.stderr + res.stdout

"""Notifications (issue 17): BACKUP_NOTIFY_URLS delivered to real servers where one can be
had (SMTP: aiosmtpd with STARTTLS and AUTH; ntfy and Gotify built from their source), and
to a local receiver that checks each API's documented request shape (Slack, Discord,
Telegram, generic, Gotify); levels, templates, refused and killed runs, and the rule that a
notification never fails a backup."""

import email
import email.policy
import http.server
import json
import os
import shutil
import threading

import pytest

import lbservers
from conftest import snapshot
from waiting import wait_until

smtp_server = lbservers.server_fixture(
    "smtp_server", lbservers.Smtp, "aiosmtpd with STARTTLS and AUTH, for the whole session.")
ntfy_server = lbservers.server_fixture(
    "ntfy_server", lbservers.Ntfy, "An ntfy server with access control, for the whole session.")
gotify_server = lbservers.server_fixture(
    "gotify_server", lbservers.Gotify, "A Gotify server with one application, for the whole session.")


class Receiver:
    """A local HTTP server recording every request: method, path, headers, JSON body."""

    def __init__(self, status=200):
        self.requests = []
        self.status = status
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rec.requests.append({"method": "POST", "path": self.path,
                                     "headers": dict(self.headers.items()), "body": body})
                self.send_response(rec.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path):
        return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def smtp_url(s, password=None, extra="&starttls=yes"):
    from urllib.parse import quote
    return (f"smtp://{s.user}:{quote(password or s.password, safe='')}@127.0.0.1:{s.port}/"
            f"?from=lifeboat@example.org&to=ops@example.org,oncall@example.org"
            f"&cafile={s.cert}{extra}")


def mails_since(s, n):
    return s.messages()[n:]


def parse_mail(m):
    msg = email.message_from_string(m["data"], policy=email.policy.default)
    return str(msg["Subject"]), msg.get_content(), msg


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

def test_check_lists_services_with_secrets_hidden(lb):
    secrets = ["mailpw77", "ntfypw88", "GotifyTok99", "SlackTok11", "DiscordTok22",
               "TgSecret33", "GenTok44"]
    urls = ("smtp://me:mailpw77@mail.example.org:587/?from=a@example.org&to=b@example.org,"
            "c@example.org, ntfy://u:ntfypw88@ntfy.example.org/alerts\n"
            "gotify://push.example.org/GotifyTok99\n"
            "slack://hook/T0001/B0002/SlackTok11, discord://DiscordTok22@1234567\n"
            "telegram://123456:TgSecret33@telegram?chats=@ops,-100200\n"
            "generic+https://hooks.example.org/x?token=GenTok44")
    res = lb.run(["check"], {"BACKUP_NOTIFY_URLS": urls})
    out = res.stdout + res.stderr
    for s in secrets:
        assert s not in out
    for line in ["smtp://***:***@mail.example.org:587?from=a@example.org&to=b@example.org,"
                 "c@example.org", "ntfy://***:***@ntfy.example.org/***",
                 "gotify://push.example.org/***", "slack://hook/***", "discord://***@1234567",
                 "telegram://***@telegram?chats=@ops,-100200",
                 "generic+https://hooks.example.org/***"]:
        assert line in res.stdout, res
    assert "notifications        failure (and the first success after one)" in res.stdout

    # From a file (a Docker secret) too.
    f = lb.tmp / "urls"
    f.write_text(urls + "\n")
    res = lb.run(["check"], {"BACKUP_NOTIFY_URLS_FILE": str(f)})
    assert "discord://***@1234567" in res.stdout


@pytest.mark.parametrize("url,want", [
    ("smtp://u:Sekrit1@h:587/?to=a@b", "BACKUP_NOTIFY_URLS: smtp URL 'smtp://***:***@h:587' has no sender"),
    ("ntfy://u:Sekrit1@h/", "BACKUP_NOTIFY_URLS: ntfy URL 'ntfy://***:***@h' needs a topic"),
    ("discord://Sekrit1@notanid", "BACKUP_NOTIFY_URLS: discord URL"),
    ("telegram://1:Sekrit1@telegram", "has no chat"),
    ("gopher://Sekrit1@h", "BACKUP_NOTIFY_URLS: an entry is not a notification URL"),
])
def test_bad_url_exits_3_naming_variable_and_service(lb, url, want):
    res = lb.run(["backup"], {"BACKUP_NOTIFY_URLS": url}, check=3)
    assert want in res.stderr
    assert "Sekrit1" not in res.stderr + res.stdout
    assert not lb.backup_dir.exists() or not os.listdir(lb.backup_dir)


def test_bad_level_and_template(lb):
    res = lb.run(["check"], {"BACKUP_NOTIFY_LEVEL": "always"}, check=3)
    assert "BACKUP_NOTIFY_LEVEL 'always' is invalid" in res.stderr
    res = lb.run(["check"], {"BACKUP_NOTIFY_TEMPLATE": "{name} {nmae}"}, check=3)
    assert "BACKUP_NOTIFY_TEMPLATE: unknown field '{nmae}'" in res.stderr


# --------------------------------------------------------------------------
# SMTP: a real server, STARTTLS and AUTH
# --------------------------------------------------------------------------

def test_smtp_vanished_dir_failure_then_recovery(lb, smtp_server):
    """A manual backup refused at the configuration check (a BACKUP_DIRS directory that
    vanished, exit 3) mails its failure; the next good run mails that it works again; the
    one after that (default level) mails nothing."""
    env = {"BACKUP_NOTIFY_URLS": smtp_url(smtp_server)}
    n0 = len(smtp_server.messages())
    moved = lb.tmp / "moved-away"
    shutil.move(str(lb.src), str(moved))
    res = lb.run(["backup"], env, check=3)
    assert "BACKUP_DIRS" in res.stderr
    new = mails_since(smtp_server, n0)
    assert len(new) == 1, new
    m = new[0]
    assert m["tls"] is True  # STARTTLS was used (the server requires it before AUTH)
    assert m["from"] == "lifeboat@example.org"
    assert m["to"] == ["ops@example.org", "oncall@example.org"]
    subject, body, msg = parse_mail(m)
    assert subject.startswith(f"Lifeboat: backup '{lb.NAME}' failed on ")
    assert "What failed: BACKUP_DIRS: " in body and "No such file or directory" in body
    assert "Last log lines:" in body
    assert [a.addr_spec for a in msg["To"].addresses] == ["ops@example.org", "oncall@example.org"]
    assert msg["From"].addresses[0].addr_spec == "lifeboat@example.org"
    assert smtp_server.password not in m["data"]

    shutil.move(str(moved), str(lb.src))
    ts = lb.backup(env)
    new = mails_since(smtp_server, n0 + 1)
    assert len(new) == 1, new
    subject, body, _ = parse_mail(new[0])
    assert subject.startswith(f"Lifeboat: backup '{lb.NAME}' works again on ")
    archive = lb.archive(ts).name
    assert f"Archive: {archive}, " in body and "in local." in body
    assert "The run before it had failed." in body

    lb.backup(env)
    assert len(smtp_server.messages()) == n0 + 2  # a plain success: nothing at this level


def test_smtp_login_refused_does_not_fail_the_backup(lb, smtp_server):
    env = {"BACKUP_NOTIFY_URLS": smtp_url(smtp_server, password="wrong-Pw-55"),
           "BACKUP_NOTIFY_LEVEL": "success"}
    n0 = len(smtp_server.messages())
    before = snapshot(lb.src)
    ts = lb.backup(env)
    assert lb.archive(ts).is_file()
    assert len(smtp_server.messages()) == n0
    log = (lb.tmp / "backup.log").read_text()
    assert "notification not delivered (the backup result is unchanged): smtp://***:***@" in log
    assert "wrong-Pw-55" not in log
    # The archive is good: it restores what was there.
    lb.restore(ts)
    assert snapshot(lb.src) == before


def test_unreachable_services_do_not_fail_the_backup(lb):
    port = lbservers.free_port()  # nothing listens there
    env = {"BACKUP_NOTIFY_URLS": f"generic+http://127.0.0.1:{port}/hook, "
                                 f"ntfy://127.0.0.1:{port}/t?scheme=http",
           "BACKUP_NOTIFY_LEVEL": "success"}
    ts = lb.backup(env)
    assert lb.archive(ts).is_file()
    log = (lb.tmp / "backup.log").read_text()
    assert log.count("notification not delivered (the backup result is unchanged)") == 2


# --------------------------------------------------------------------------
# ntfy: the real server, read back through its API
# --------------------------------------------------------------------------

def test_ntfy_real_server_with_login(lb, ntfy_server):
    from urllib.parse import quote
    topic = "lb" + lbservers.random_secret(6)
    url = (f"ntfy://{ntfy_server.user}:{quote(ntfy_server.password, safe='')}@127.0.0.1:"
           f"{ntfy_server.port}/{topic}?scheme=http")
    ts = lb.backup({"BACKUP_NOTIFY_URLS": url, "BACKUP_NOTIFY_LEVEL": "success"})
    msgs = ntfy_server.messages(topic)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["title"].startswith(f"Lifeboat: backup '{lb.NAME}' succeeded on ")
    assert lb.archive(ts).name in m["message"]
    assert m["tags"] == ["white_check_mark"]

    # A wrong password is refused by ntfy (403): logged, the backup still succeeds.
    bad = f"ntfy://{ntfy_server.user}:nope@127.0.0.1:{ntfy_server.port}/{topic}?scheme=http"
    lb.backup({"BACKUP_NOTIFY_URLS": bad, "BACKUP_NOTIFY_LEVEL": "success"})
    assert len(ntfy_server.messages(topic)) == 1
    assert "the server answered HTTP 401" in (lb.tmp / "backup.log").read_text()


def test_gotify_real_server(lb, gotify_server):
    url = f"gotify://127.0.0.1:{gotify_server.port}/{gotify_server.token}?scheme=http"
    n0 = len(gotify_server.messages())
    res = lb.run(["backup"], {"BACKUP_NOTIFY_URLS": url, "BACKUP_POSTGRES": "postgresql://"
                                                            "127.0.0.1:1/x"}, check=False)
    assert res.returncode != 0
    msgs = gotify_server.messages()
    assert len(msgs) == n0 + 1, msgs
    m = msgs[0]
    assert m["title"].startswith(f"Lifeboat: backup '{lb.NAME}' failed on ")
    assert "What failed:" in m["message"] and "No archive was stored." in m["message"]
    assert m["priority"] == 8
    assert gotify_server.token not in (lb.tmp / "backup.log").read_text()


# --------------------------------------------------------------------------
# Slack, Discord, Telegram, Gotify, generic: the documented request shapes
# --------------------------------------------------------------------------

def test_http_services_request_shapes(lb, receiver):
    urls = ", ".join([
        "slack://hook/T0001/B0002/XyZ123",
        "discord://tokEN_1@987654321",
        "telegram://110201543:AAHdqTcvCH1v@telegram?chats=@ops,-1001",
        f"gotify://127.0.0.1:{receiver.port}/gotify/AppTok3?scheme=http",
        f"generic+http://127.0.0.1:{receiver.port}/generic/hook",
    ])
    ts = lb.backup({"BACKUP_NOTIFY_URLS": urls, "BACKUP_NOTIFY_LEVEL": "success",
                    "LIFEBOAT_TEST_NOTIFY_BASE": receiver.base})
    archive = lb.archive(ts).name
    title_start = f"Lifeboat: backup '{lb.NAME}' succeeded on "
    for r in receiver.requests:
        assert r["method"] == "POST"
        assert r["headers"]["Content-Type"] == "application/json"

    # Slack incoming webhook: POST /services/T/B/X {"text": ...}
    (s,) = receiver.at("/services/T0001/B0002/XyZ123")
    j = json.loads(s["body"])
    assert set(j) == {"text"} and j["text"].startswith("*" + title_start) and archive in j["text"]

    # Discord webhook: POST /api/webhooks/ID/TOKEN, an embed with title and description.
    (d,) = receiver.at("/api/webhooks/987654321/tokEN_1")
    j = json.loads(d["body"])
    assert j["username"] == "Lifeboat"
    (emb,) = j["embeds"]
    assert emb["title"].startswith(title_start) and archive in emb["description"]
    assert isinstance(emb["color"], int)

    # Telegram Bot API: POST /bot<token>/sendMessage, once per chat.
    tg = receiver.at("/bot110201543:AAHdqTcvCH1v/sendMessage")
    assert [json.loads(t["body"])["chat_id"] for t in tg] == ["@ops", "-1001"]
    assert all(json.loads(t["body"])["text"].startswith(title_start) for t in tg)

    # Gotify: POST /message with X-Gotify-Key, {"title", "message", "priority"}.
    (g,) = receiver.at("/gotify/message")
    assert g["headers"]["X-Gotify-Key"] == "AppTok3"
    j = json.loads(g["body"])
    assert j["title"].startswith(title_start) and archive in j["message"]
    assert j["priority"] == 5

    # generic: the webhook's JSON body, plus title and message.
    (w,) = receiver.at("/generic/hook")
    j = json.loads(w["body"])
    assert j["status"] == "success" and j["file"] == archive and j["name"] == lb.NAME
    assert j["stores"] == ["local"] and j["title"].startswith(title_start)
    assert len(receiver.requests) == 6


def test_levels(lb, receiver):
    url = f"generic+http://127.0.0.1:{receiver.port}/n"
    lb.backup({"BACKUP_NOTIFY_URLS": url})  # default: a first plain success says nothing
    assert receiver.requests == []
    lb.backup({"BACKUP_NOTIFY_URLS": url, "BACKUP_NOTIFY_LEVEL": "start"})
    assert [json.loads(r["body"])["status"] for r in receiver.requests] == ["start", "success"]


def test_template(lb, receiver):
    url = f"generic+http://127.0.0.1:{receiver.port}/t"
    tpl = "[{name}] {event} on {host}\\n{trigger} run, {file} ({size}) in {stores}; {{literal}"
    ts = lb.backup({"BACKUP_NOTIFY_URLS": url, "BACKUP_NOTIFY_LEVEL": "success",
                    "BACKUP_NOTIFY_TEMPLATE": tpl})
    (r,) = receiver.requests
    j = json.loads(r["body"])
    assert j["title"] == f"[{lb.NAME}] succeeded on {os.uname().nodename}"
    assert j["message"].startswith(f"manual run, {lb.archive(ts).name} (")
    assert j["message"].endswith(") in local; {literal}")


# --------------------------------------------------------------------------
# every failed run notifies: killed runs, refused runs (with the failure webhook)
# --------------------------------------------------------------------------

def test_killed_run_is_reported_at_the_next_start(lb, receiver):
    env = {"BACKUP_NOTIFY_URLS": f"generic+http://127.0.0.1:{receiver.port}/n",
           "BACKUP_FAILURE_WEBHOOK": f"http://127.0.0.1:{receiver.port}/fail"}
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "crypt.homedir:kill"}, check=False)
    assert res.returncode == -9, res
    assert receiver.requests == []  # the killed run itself told nobody

    state = json.loads((lb.tmp / "state" / f"{lb.NAME}.state.json").read_text())
    assert state["running_pid"] > 0 and state["running_trigger"] == "manual"
    ts = lb.backup(env)
    assert lb.archive(ts).is_file()
    # The killed run, then this one: the first success after a failure ("works again").
    n, again = receiver.at("/n")
    assert json.loads(again["body"])["title"].startswith(f"Lifeboat: backup '{lb.NAME}' works again")
    j = json.loads(n["body"])
    assert j["status"] == "interrupted"
    assert "the manual run at " in j["error"] and "was interrupted: it was killed" in j["error"]
    assert j["title"].startswith(f"Lifeboat: backup '{lb.NAME}' was interrupted on ")
    (f,) = receiver.at("/fail")
    assert json.loads(f["body"])["status"] == "interrupted"
    state = json.loads((lb.tmp / "state" / f"{lb.NAME}.state.json").read_text())
    assert state["running_pid"] == 0 and state["last"]["status"] == "success"
    assert state["runs_failure"] == 1

    # Told once: the next run finds nothing to report.
    lb.backup(env)
    assert len(receiver.requests) == 3


def test_killed_scheduled_run_is_reported_when_the_daemon_starts(lb, receiver):
    """The daemon itself killed in the middle of a run: its next start reports it."""
    env = {"BACKUP_NOTIFY_URLS": f"generic+http://127.0.0.1:{receiver.port}/n"}
    # A run recorded as in progress by a process that no longer holds the lock.
    lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "crypt.homedir:kill"}, check=False)
    p = lb.popen(["run"], env)
    try:
        wait_until(lambda: receiver.at("/n"), "the interrupted run's notification")
    finally:
        p.terminate()
        p.wait(timeout=60)
    j = json.loads(receiver.at("/n")[0]["body"])
    assert j["status"] == "interrupted" and "was killed" in j["error"]


def test_refused_manual_run_sends_failure_webhook_and_notification(lb, receiver):
    env = {"BACKUP_NOTIFY_URLS": f"generic+http://127.0.0.1:{receiver.port}/n",
           "BACKUP_FAILURE_WEBHOOK": f"http://127.0.0.1:{receiver.port}/fail",
           # another bad value: the run is refused, the report still goes out
           "BACKUP_COMPRESSION_LEVEL": "99"}
    res = lb.run(["backup"], env, check=3)
    assert "BACKUP_COMPRESSION_LEVEL '99' is invalid" in res.stderr
    (f,) = receiver.at("/fail")
    j = json.loads(f["body"])
    assert j["status"] == "failure" and "BACKUP_COMPRESSION_LEVEL" in j["error"]
    assert j["file"] is None and j["stores"] == []
    (n,) = receiver.at("/n")
    assert "BACKUP_COMPRESSION_LEVEL" in json.loads(n["body"])["message"]
    state = json.loads((lb.tmp / "state" / f"{lb.NAME}.state.json").read_text())
    assert state["last"]["status"] == "failure" and state["runs_failure"] == 1

    # Invalid notification settings: nothing can be sent; the error is the one shown.
    receiver.requests.clear()
    res = lb.run(["backup"], {**env, "BACKUP_NOTIFY_URLS": "ntfy://h/"}, check=3)
    assert "BACKUP_COMPRESSION_LEVEL" in res.stderr
    assert receiver.requests == []

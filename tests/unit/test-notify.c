/* Unit tests for notify-url.c: service URLs, redaction, the level rule, templates. */
#include "unit.h"

#include "notify-url.h"

#define V "BACKUP_NOTIFY_URLS"

static struct notify_service one(const char *url)
{
	struct notify_service s;
	struct err e = ERR_INIT;

	if (notify_url_parse(V, url, &s, &e) < 0)
		fail_msg("'%s' did not parse: %s", url, e.msg);
	return s;
}

/* The URL fails to parse; the message names the variable and `want`, never `secret`. */
static void bad(const char *url, const char *want, const char *secret)
{
	struct notify_service s;
	struct err e = ERR_INIT;

	if (notify_url_parse(V, url, &s, &e) == 0)
		fail_msg("'%s' parsed", url);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, V ": ");
	assert_contains(e.msg, want);
	if (secret)
		assert_not_contains(e.msg, secret);
}

static void test_smtp(void **state LB_UNUSED)
{
	struct notify_service s =
		one("smtp://me%40x.org:pa%3Ass@mail.example.com:587/?from=lb@x.org&"
		    "to=a@x.org,b@y.org&starttls=yes&cafile=/etc/ca.pem");
	assert_int_equal(s.kind, NOTIFY_SMTP);
	assert_string_equal(s.endpoint, "smtp://mail.example.com:587");
	assert_string_equal(s.user, "me@x.org");
	assert_string_equal(s.password, "pa:ss");
	assert_string_equal(s.from, "lb@x.org");
	assert_int_equal(s.to.nr, 2);
	assert_string_equal(s.to.v[1], "b@y.org");
	assert_int_equal(s.tls, NOTIFY_TLS_REQUIRED);
	assert_string_equal(s.ca_file, "/etc/ca.pem");
	assert_string_equal(s.shown,
			    "smtp://***:***@mail.example.com:587?from=lb@x.org&to=a@x.org,b@y.org");
	notify_service_release(&s);

	s = one("smtp://mail.local/?from=a@b&to=c@d&to=e@f");
	assert_string_equal(s.endpoint, "smtp://mail.local:25");
	assert_null(s.user);
	assert_int_equal(s.tls, NOTIFY_TLS_TRY);
	assert_int_equal(s.to.nr, 2);
	notify_service_release(&s);
	s = one("smtp://mail.local/?from=a@b&to=c@d&starttls=no");
	assert_int_equal(s.tls, NOTIFY_TLS_NONE);
	notify_service_release(&s);
	s = one("smtps://u:p@[::1]/?from=a@b&to=c@d");
	assert_string_equal(s.endpoint, "smtps://[::1]:465");
	assert_int_equal(s.tls, NOTIFY_TLS_REQUIRED);
	notify_service_release(&s);

	bad("smtp://u:hunter2@h:587/?to=c@d", "has no sender", "hunter2");
	bad("smtp://u:hunter2@h:587/?from=a@b", "has no recipient", "hunter2");
	bad("smtp://u:hunter2@h:587/?from=a@b&to=c@d&starttls=maybe", "bad 'starttls'", "hunter2");
	bad("smtp://u:hunter2@h:587/?from=a@b&to=c@d&tls=1", "unknown parameter 'tls'", "hunter2");
	bad("smtp://u:hunter2@h:99999/?from=a@b&to=c@d", "invalid port", "hunter2");
	bad("smtp://u:hunter2@h/?from=a@b&to=<c@d>", "bad recipient", "hunter2");
	bad("smtp://u:hun%zzter2@h/?from=a@b&to=c@d", "bad user name", "hun");
	bad("smtp://u:hunter2@h/x?from=a@b&to=c@d", "has a path", "hunter2");
}

static void test_http_services(void **state LB_UNUSED)
{
	struct notify_service s = one("ntfy://ntfy.sh/lifeboat-alerts");
	assert_int_equal(s.kind, NOTIFY_NTFY);
	assert_string_equal(s.endpoint, "https://ntfy.sh/");
	assert_string_equal(s.topic, "lifeboat-alerts");
	assert_string_equal(s.shown, "ntfy://ntfy.sh/***");
	assert_int_equal(s.priority, -1);
	notify_service_release(&s);
	s = one("ntfy://bob:pw@127.0.0.1:8080/sub/alerts?scheme=http&priority=5");
	assert_string_equal(s.endpoint, "http://127.0.0.1:8080/sub/");
	assert_string_equal(s.user, "bob");
	assert_string_equal(s.password, "pw");
	assert_int_equal(s.priority, 5);
	notify_service_release(&s);

	s = one("gotify://push.example.com/Aa1-b.c");
	assert_string_equal(s.endpoint, "https://push.example.com/message");
	assert_string_equal(s.key, "Aa1-b.c");
	assert_string_equal(s.shown, "gotify://push.example.com/***");
	notify_service_release(&s);
	s = one("gotify://127.0.0.1:9/gotify/TOKEN?scheme=http&priority=0");
	assert_string_equal(s.endpoint, "http://127.0.0.1:9/gotify/message");
	assert_int_equal(s.priority, 0);
	notify_service_release(&s);

	s = one("slack://hook/T0001/B0002/XyZ123");
	assert_string_equal(s.endpoint, "https://hooks.slack.com/services/T0001/B0002/XyZ123");
	assert_string_equal(s.shown, "slack://hook/***");
	notify_service_release(&s);

	s = one("discord://tok-EN_1@123456789");
	assert_string_equal(s.endpoint, "https://discord.com/api/webhooks/123456789/tok-EN_1");
	assert_string_equal(s.shown, "discord://***@123456789");
	notify_service_release(&s);

	s = one("telegram://"
		"110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@ops,-1001");
	assert_string_equal(s.endpoint,
			    "https://api.telegram.org/"
			    "bot110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage");
	assert_int_equal(s.to.nr, 2);
	assert_string_equal(s.to.v[1], "-1001");
	assert_string_equal(s.shown, "telegram://***@telegram?chats=@ops,-1001");
	notify_service_release(&s);

	s = one("generic+https://hooks.example.com:8443/x/y?token=abc");
	assert_string_equal(s.endpoint, "https://hooks.example.com:8443/x/y?token=abc");
	assert_string_equal(s.shown, "generic+https://hooks.example.com:8443/***");
	notify_service_release(&s);
	s = one("GENERIC+HTTP://127.0.0.1:1/");
	assert_string_equal(s.endpoint, "http://127.0.0.1:1/");
	notify_service_release(&s);

	bad("ntfy://host/", "needs a topic", NULL);
	bad("ntfy://host/a?priority=9", "bad 'priority'", NULL);
	bad("ntfy://host/a?scheme=ftp", "bad 'scheme'", NULL);
	bad("gotify://u:sekrit@host/tok", "has a user part", "sekrit");
	bad("slack://hook/T1/B2", "slack://hook/T.../B.../TOKEN", NULL);
	bad("slack://x/T1/B2/C3", "slack://hook/T", NULL);
	bad("discord://123", "discord://TOKEN@WEBHOOK_ID", NULL);
	bad("discord://sekrit@abc", "discord://TOKEN@WEBHOOK_ID", "sekrit");
	bad("telegram://1:sekrit@telegram", "has no chat", "sekrit");
	bad("telegram://1:sekrit@telegram?chats=x y", "spaces", "sekrit");
	bad("telegram://1:sekrit@telegram?chats=abc", "bad chat", "sekrit");
	bad("telegram://sekrit@telegram?chats=@a", "telegram://BOT_TOKEN", "sekrit");
	bad("mailto://sekrit@x", "not a notification URL", "sekrit");
	bad("sekrit", "not a notification URL", "sekrit");
	bad("ntfy://@/t", "no valid host", NULL);
}

static void test_list(void **state LB_UNUSED)
{
	struct notify_services v = { 0 };
	struct err e = ERR_INIT;

	assert_int_equal(notify_urls_parse(V,
					   "smtp://h/?from=a@b&to=c@d,e@f, ntfy://h/t\n\n"
					   "  discord://t@1 ,gotify://h/k\r\n",
					   &v, &e),
			 0);
	assert_int_equal(v.nr, 4);
	assert_int_equal(v.v[0].to.nr, 2); /* the comma inside to= stays in its URL */
	assert_int_equal(v.v[1].kind, NOTIFY_NTFY);
	assert_int_equal(v.v[2].kind, NOTIFY_DISCORD);
	assert_int_equal(v.v[3].kind, NOTIFY_GOTIFY);
	assert_int_equal(notify_urls_parse(V, "ntfy://h/t, discord://x@y", &v, &e), -1);
	assert_contains(e.msg, "discord URL");
	notify_services_release(&v);
}

static void test_level(void **state LB_UNUSED)
{
	enum notify_level l;

	assert_int_equal(notify_level_parse("Success", &l), 0);
	assert_int_equal(l, NOTIFY_LEVEL_SUCCESS);
	assert_int_equal(notify_level_parse("always", &l), -EINVAL);
	assert_true(notify_wanted(NOTIFY_LEVEL_FAILURE, "failure", false));
	assert_true(notify_wanted(NOTIFY_LEVEL_FAILURE, "interrupted", false));
	assert_false(notify_wanted(NOTIFY_LEVEL_FAILURE, "success", false));
	assert_true(notify_wanted(NOTIFY_LEVEL_FAILURE, "success", true));
	assert_false(notify_wanted(NOTIFY_LEVEL_FAILURE, "start", false));
	assert_true(notify_wanted(NOTIFY_LEVEL_SUCCESS, "success", false));
	assert_false(notify_wanted(NOTIFY_LEVEL_SUCCESS, "start", false));
	assert_true(notify_wanted(NOTIFY_LEVEL_START, "start", false));
}

static void test_template(void **state LB_UNUSED)
{
	char bad_name[48];
	struct strbuf out = STRBUF_INIT;
	const struct notify_field f[] = { { "name", "app" }, { "error", "disk full" } };

	assert_int_equal(
		notify_template_check("{name}: {error} {{x} {log}", bad_name, sizeof(bad_name)), 0);
	assert_int_equal(notify_template_check("{name} {nmae}", bad_name, sizeof(bad_name)), -1);
	assert_string_equal(bad_name, "nmae");
	assert_int_equal(notify_template_check("{name", bad_name, sizeof(bad_name)), -1);
	notify_render(&out, "[{name}] {{x}\\n{error}{size}.", f, ARRAY_SIZE(f));
	assert_string_equal(out.buf, "[app] {x}\ndisk full.");
	strbuf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp),	 cmocka_unit_test(test_http_services),
		cmocka_unit_test(test_list),	 cmocka_unit_test(test_level),
		cmocka_unit_test(test_template),
	};

	return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}

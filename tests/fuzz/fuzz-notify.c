/*
 * libFuzzer target: notification URLs and templates. Parsing any bytes must not crash;
 * an error is one line; and neither an error nor the redacted form ever contains a
 * known password placed in the user part.
 */
#include "common.h"

#include "notify-url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char secret[] = "Zq9Xk2Wv";
	char in[400], url[512], bad[48];
	struct notify_services v = { 0 };
	struct err e = ERR_INIT;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (notify_urls_parse("V", in, &v, &e) < 0 && (!e.msg[0] || strchr(e.msg, '\n')))
		abort();
	notify_services_release(&v);
	if (notify_template_check(in, bad, sizeof(bad)) == 0) {
		struct strbuf out = STRBUF_INIT;
		const struct notify_field f[] = { { "name", "n" } };
		notify_render(&out, in, f, 1);
		strbuf_release(&out);
	}

	/* A known password in the user part of each scheme: "SCHEME://u:SECRET@REST". */
	static const char *const schemes[] = { "smtp",	  "ntfy",     "gotify",	      "slack",
					       "discord", "telegram", "generic+https" };
	if (!size || memmem(data, size, secret, strlen(secret)))
		return 0;
	const char *scheme = schemes[data[0] % ARRAY_SIZE(schemes)];
	int n = snprintf(url, sizeof(url), "%s://1:%s@%s", scheme, secret, in + 1);
	if (n < 0 || (size_t)n >= sizeof(url))
		return 0;
	struct err e2 = ERR_INIT;
	if (notify_urls_parse("V", url, &v, &e2) < 0) {
		if (strstr(e2.msg, secret))
			abort();
	} else {
		for (size_t i = 0; i < v.nr; i++)
			if (strstr(v.v[i].shown, secret))
				abort();
	}
	notify_services_release(&v);
	return 0;
}

/* libFuzzer target: cron_parse on any bytes, then cron_next from a few instants in two TZs. */
#include "common.h"

#include <time.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const time_t starts[] = { 0, 1710050000, 1730610000, 4102444800 };
	static const char *const zones[] = { "America/New_York", "Europe/Berlin" };
	char expr[300];
	struct cron c;
	struct err e = ERR_INIT;
	time_t t;

	if (size >= sizeof(expr))
		return 0;
	memcpy(expr, data, size);
	expr[size] = '\0';
	if (cron_parse(expr, &c, &e) < 0) {
		/* Errors are one line of bounded length. */
		if (!e.msg[0] || strchr(e.msg, '\n'))
			abort();
		return 0;
	}
	setenv("TZ", zones[size % 2], 1);
	tzset();
	for (size_t i = 0; i < ARRAY_SIZE(starts); i++) {
		time_t prev = starts[i];
		for (int k = 0; k < 3 && cron_next(&c, prev, &t) == 0; k++) {
			if (t <= prev)
				abort();
			prev = t;
		}
	}
	return 0;
}

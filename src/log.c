/* Logging: one line per event on stderr, with time and level; escapes control bytes. */
#include "common.h"

#include <pthread.h>
#include <time.h>

#include "log.h"
#include "util.h"

static bool debug_on;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_debug(bool on)
{
	debug_on = on;
}

bool log_debug_enabled(void)
{
	return debug_on;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warning", "error" };
	struct strbuf raw = STRBUF_INIT, line = STRBUF_INIT;
	char stamp[32];
	struct tm tm;
	time_t now;
	va_list ap;

	if (level == LOG_DEBUG && !debug_on)
		return;
	va_start(ap, fmt);
	strbuf_vaddf(&raw, fmt, ap);
	va_end(ap);

	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	strbuf_addf(&line, "%s lifeboat[%d] %s: ", stamp, (int)getpid(), names[level]);
	for (size_t i = 0; i < raw.len; i++) {
		unsigned char c = (unsigned char)raw.buf[i];
		if (c == '\n')
			strbuf_addstr(&line, "\\n");
		else if (c < 0x20 || c == 0x7f)
			strbuf_addf(&line, "\\x%02x", c);
		else
			strbuf_addch(&line, (char)c);
	}
	strbuf_addch(&line, '\n');
	pthread_mutex_lock(&log_lock);
	fwrite(line.buf, 1, line.len, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
	strbuf_release(&raw);
	strbuf_release(&line);
}

/* Logging: one line per event on stderr, with time and level; escapes control bytes. */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <time.h>

#include "log.h"
#include "fs.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

static bool debug_on;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static char *tail[LOG_TAIL_LINES]; /* ring of recent lines, for webhooks */
static size_t tail_next, tail_nr;
static bool status_shown; /* a status line is on the terminal */

#define WIPE "\r\033[K"

void log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0) {
		log_warn("cannot open log file '%s': %s; logging to stderr only", path,
			 strerror(errno));
		return;
	}
	pthread_mutex_lock(&log_lock);
	close_fd(&log_fd);
	log_fd = fd;
	pthread_mutex_unlock(&log_lock);
}

void log_tail(struct strvec *out)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < tail_nr; i++)
		strvec_push(out, tail[(tail_next + LOG_TAIL_LINES - tail_nr + i) % LOG_TAIL_LINES]);
	pthread_mutex_unlock(&log_lock);
}

void log_tail_reset(void)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < LOG_TAIL_LINES; i++) {
		free(tail[i]);
		tail[i] = NULL;
	}
	tail_next = tail_nr = 0;
	pthread_mutex_unlock(&log_lock);
}

void log_status(const char *text)
{
	pthread_mutex_lock(&log_lock);
	if (text) {
		struct strbuf sb = STRBUF_INIT;
		strbuf_addstr(&sb, WIPE);
		log_escape(&sb, text, strlen(text));
		fwrite(sb.buf, 1, sb.len, stderr);
		strbuf_release(&sb);
		status_shown = true;
	} else if (status_shown) {
		fputs(WIPE, stderr);
		status_shown = false;
	}
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

void log_set_debug(bool on)
{
	debug_on = on;
}

bool log_debug_enabled(void)
{
	return debug_on;
}

void log_escape(struct strbuf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			strbuf_addstr(out, "\\n");
		else if (c < 0x20 || c == 0x7f)
			strbuf_addf(out, "\\x%02x", c);
		else
			strbuf_addch(out, (char)c);
	}
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
	log_escape(&line, raw.buf, raw.len);
	strbuf_addch(&line, '\n');
	pthread_mutex_lock(&log_lock);
	if (status_shown) {
		fputs(WIPE, stderr);
		status_shown = false;
	}
	fwrite(line.buf, 1, line.len, stderr);
	fflush(stderr);
	if (log_fd >= 0 && write_all(log_fd, line.buf, line.len) < 0)
		close_fd(&log_fd); /* a full disk must not stop the backup; stderr remains */
	if (level != LOG_DEBUG) {
		free(tail[tail_next]);
		tail[tail_next] = xstrndup(line.buf, line.len - 1);
		tail_next = (tail_next + 1) % LOG_TAIL_LINES;
		if (tail_nr < LOG_TAIL_LINES)
			tail_nr++;
	}
	pthread_mutex_unlock(&log_lock);
	strbuf_release(&raw);
	strbuf_release(&line);
}

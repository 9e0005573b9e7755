/* Levelled one-line logs to stderr, control characters escaped. */
#ifndef LB_LOG_H
#define LB_LOG_H

#include "common.h"

#include "strbuf.h"
#include "strvec.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_debug(bool on);
bool log_debug_enabled(void);
void log_msg(enum log_level level, const char *fmt, ...) LB_PRINTF(2, 3);

/*
 * Append `len` bytes of `s` as log_msg writes them on one line: a newline as
 * "\n", other control bytes (below 0x20, and 0x7f) as "\xHH"; the rest (UTF-8
 * too) as is. Pure, for tests.
 */
void log_escape(struct strbuf *out, const char *s, size_t len);

/*
 * Also append every line to `path` (opened once, O_APPEND). When it cannot be
 * opened, one warning goes to stderr and logging carries on there only.
 */
void log_open_file(const char *path);

/*
 * A status line on stderr (a terminal): drawn in place ("\r", erase line), wiped before
 * each log line (the next status redraws it); NULL wipes it. Not in the log file.
 */
void log_status(const char *line);

/* The last LOG_TAIL_LINES lines logged since log_tail_reset(), oldest first. */
#define LOG_TAIL_LINES 20
void log_tail(struct strvec *out);
void log_tail_reset(void);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif

/* The member sink: a source's members into the tar writer, cut into parts when long. */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include "fault.h"
#include "fs.h"
#include "stream/member-sink.h"
#include "xalloc.h"

void sink_init(struct member_sink *s, struct tar_writer *tar, enum source_kind kind,
	       const char *name)
{
	*s = (struct member_sink){ .tar = tar, .prefix = source_archive_prefix(kind, name) };
}

void sink_release(struct member_sink *s)
{
	free(s->rel);
	free(s->buf);
	free(s->prefix);
	*s = (struct member_sink){ 0 };
}

static bool rel_safe(const char *rel)
{
	if (!*rel || *rel == '/' || strstr(rel, "//"))
		return false;
	for (const char *p = rel; *p;) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p)
			p++;
	}
	return rel[strlen(rel) - 1] != '/';
}

int sink_begin(struct member_sink *s, const char *rel, struct err *e)
{
	if (s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "member '%s' started inside '%s'", rel, s->rel);
	if (!rel_safe(rel))
		return err_set(e, LB_EXIT_INTERNAL, "unsafe member name '%s'", rel);
	if (!s->buf)
		s->buf = xmalloc(DB_PART_SIZE);
	s->rel = xstrdup(rel);
	s->len = 0;
	s->parts = 0;
	return 0;
}

/* One part of the current member: REL when it is the only one, else REL.NNNNNN. */
static int write_part(struct member_sink *s, const unsigned char *buf, size_t len, bool last,
		      struct err *e)
{
	char *apath = last && !s->parts ? xasprintf("%s/%s", s->prefix, s->rel)
					: xasprintf("%s/%s.%06u", s->prefix, s->rel, s->parts);
	int r = 0;

	if (s->parts >= 999999)
		r = err_set(e, LB_EXIT_SOURCE, "'%s/%s' is too large (%u parts)", s->prefix, s->rel,
			    s->parts);
	if (!r)
		r = tarw_add_blob(s->tar, apath, buf, len, TARW_HASH | TARW_COUNT, e);
	free(apath);
	s->parts++;
	return r;
}

static int sink_flush_part(struct member_sink *s, bool last, struct err *e)
{
	int r = write_part(s, s->buf, s->len, last, e);
	s->len = 0;
	return r;
}

int sink_write(struct member_sink *s, const void *buf, size_t len, struct err *e)
{
	const unsigned char *p = buf;

	if (!s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "data written outside a member");
	while (len) {
		/* A full part is written once more data shows it is not the last. */
		if (s->len == DB_PART_SIZE && sink_flush_part(s, false, e) < 0)
			return -1;
		size_t n = DB_PART_SIZE - s->len;
		if (n > len)
			n = len;
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

int sink_end(struct member_sink *s, struct err *e)
{
	if (!s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "no member to end");
	int r = sink_flush_part(s, true, e);
	free(s->rel);
	s->rel = NULL;
	return r;
}

int sink_add(struct member_sink *s, const char *rel, const void *buf, size_t len, struct err *e)
{
	if (sink_begin(s, rel, e) < 0 || sink_write(s, buf, len, e) < 0) {
		free(s->rel);
		s->rel = NULL;
		return -1;
	}
	return sink_end(s, e);
}

/*
 * The pump: a reader thread filling parts from the tool's stdout, and this thread
 * writing them. A slot is handed over (ready) when it is full and the next one
 * holds `hold` bytes, or at the end: so the writer knows whether a part is the
 * last one (its name) and sees the stream's last `hold` bytes whole before any of
 * them is written.
 */
struct pump_slot {
	unsigned char *buf; /* DB_PART_SIZE bytes */
	size_t len;
	bool ready; /* the writer's until it clears it */
	bool last;
};

struct pump {
	struct process *p;
	size_t hold;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int wake[2]; /* a byte in it stops a read that waits */
	struct pump_slot slot[SINK_PUMP_PARTS];
	bool batch;   /* pipe_batch_wait() after short reads (fs.h) */
	int read_err; /* -errno of the read that failed */
	bool stop;    /* the writer gave up: the reader returns */
};

static void publish(struct pump *pm, struct pump_slot *sl, bool last)
{
	pthread_mutex_lock(&pm->lock);
	sl->ready = true;
	sl->last = last;
	pthread_cond_broadcast(&pm->cond);
	pthread_mutex_unlock(&pm->lock);
}

/* One read of the tool's stdout; -ECANCELED when the writer stopped the pump. */
static ssize_t pump_read(struct pump *pm, void *buf, size_t len)
{
	struct pollfd fds[2] = { { .fd = pm->p->out_fd, .events = POLLIN },
				 { .fd = pm->wake[0], .events = POLLIN } };
	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (fds[1].revents)
			return -ECANCELED;
		if (fds[0].revents)
			break;
	}
	ssize_t n = process_read(pm->p, buf, len);
	/* A short read: let the tool's small writes gather before the next one. */
	if (n > 0 && pm->batch && pipe_batch_wait(pm->p->out_fd, pm->wake[0], (size_t)n, len))
		return -ECANCELED;
	return n;
}

static void *pump_run(void *arg)
{
	struct pump *pm = arg;
	struct pump_slot *held = NULL; /* full, handed over once the next has `hold` bytes */
	unsigned cur = 0;

	for (;;) {
		struct pump_slot *sl = &pm->slot[cur];
		pthread_mutex_lock(&pm->lock);
		while (sl->ready && !pm->stop)
			pthread_cond_wait(&pm->cond, &pm->lock);
		bool stop = pm->stop;
		pthread_mutex_unlock(&pm->lock);
		if (stop)
			return NULL;
		size_t len = 0;
		while (len < DB_PART_SIZE) {
			ssize_t n = pump_read(pm, sl->buf + len, DB_PART_SIZE - len);
			if (n == -ECANCELED)
				return NULL;
			if (n <= 0) {
				pthread_mutex_lock(&pm->lock);
				if (n < 0) {
					pm->read_err = (int)n;
				} else {
					if (held) {
						held->ready = true;
						held->last = !len;
					}
					if (len || !held) {
						sl->len = len;
						sl->ready = sl->last = true;
					}
				}
				pthread_cond_broadcast(&pm->cond);
				pthread_mutex_unlock(&pm->lock);
				return NULL;
			}
			len += (size_t)n;
			if (held && len >= pm->hold) {
				publish(pm, held, false);
				held = NULL;
				/* fail: the tool dies (SIGKILL) once a part is handed over */
				if (FAULT("sink.tool") && !pm->p->in_container)
					child_signal(&pm->p->c, SIGKILL);
			}
		}
		sl->len = len;
		held = sl;
		cur = (cur + 1) % SINK_PUMP_PARTS;
	}
}

/* The stream's end: the last `hold` bytes (across `a` and `b`) checked and trimmed. */
static int pump_end(const struct sink_check *check, struct pump_slot *a, struct pump_slot *b,
		    uint64_t written, struct err *e)
{
	unsigned char tail[4096];
	uint64_t total = written + (a ? a->len : 0) + b->len;
	size_t n = check->hold < total ? check->hold : (size_t)total, drop = 0;

	if (!check->end)
		return 0;
	size_t from_b = n < b->len ? n : b->len;
	if (n > from_b)
		memcpy(tail, a->buf + a->len - (n - from_b), n - from_b);
	memcpy(tail + (n - from_b), b->buf + b->len - from_b, from_b);
	if (check->end(check->ctx, tail, n, total, &drop, e) < 0)
		return -1;
	if (drop > n)
		drop = n;
	size_t from_end = drop < b->len ? drop : b->len;
	b->len -= from_end;
	if (a)
		a->len -= drop - from_end;
	return 0;
}

int sink_from_process_checked(struct member_sink *s, struct process *p, const char *rel,
			      const char *tool, const char *what, const struct sink_check *check,
			      struct err *e)
{
	static const struct sink_check none = { .hold = 1 };
	struct pump pm = { .p = p, .wake = { -1, -1 } };
	pthread_t thread;
	bool running = false, first = true, begun = false, finished = false;
	uint64_t written = 0;
	unsigned take = 0;
	int ret = -1;

	if (!check)
		check = &none;
	pm.hold = check->hold ? check->hold : 1;
	pthread_mutex_init(&pm.lock, NULL);
	pthread_cond_init(&pm.cond, NULL);
	if (pm.hold > 4096) {
		err_set(e, LB_EXIT_INTERNAL, "a stream check holding %zu bytes", pm.hold);
		goto out;
	}
	if (sink_begin(s, rel, e) < 0)
		goto out;
	begun = true;
	if (pipe2(pm.wake, O_CLOEXEC) < 0) {
		err_set(e, LB_EXIT_INTERNAL, "cannot make a pipe: %s", strerror(errno));
		goto out;
	}
	pm.slot[0].buf = s->buf;
	for (unsigned i = 1; i < SINK_PUMP_PARTS; i++)
		pm.slot[i].buf = xmalloc(DB_PART_SIZE);
	/* A larger pipe where the system allows: fewer, longer reads. */
	fcntl(p->out_fd, F_SETPIPE_SZ, 1024 * 1024);
	pm.batch = pipe_batch_ok(p->out_fd);
	/* Signals stay with this thread: the reader starts with all of them blocked. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int tr = pthread_create(&thread, NULL, pump_run, &pm);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (tr) {
		err_set(e, LB_EXIT_INTERNAL, "cannot start a thread: %s", strerror(tr));
		goto out;
	}
	running = true;
	for (;;) {
		struct pump_slot *sl = &pm.slot[take];
		struct pump_slot *next = &pm.slot[(take + 1) % SINK_PUMP_PARTS];
		pthread_mutex_lock(&pm.lock);
		while (!sl->ready && !pm.read_err)
			pthread_cond_wait(&pm.cond, &pm.lock);
		int rerr = pm.read_err;
		bool end = sl->ready && (sl->last || (next->ready && next->last));
		pthread_mutex_unlock(&pm.lock);
		if (rerr) {
			err_set(e, LB_EXIT_SOURCE, "cannot read the output of %s (%s): %s", what,
				tool, strerror(-rerr));
			goto out;
		}
		if (first && check->head && check->head(check->ctx, sl->buf, sl->len, e) < 0)
			goto out;
		first = false;
		if (end) {
			struct pump_slot *a = sl->last ? NULL : sl, *b = sl->last ? sl : next;
			if (pump_end(check, a, b, written, e) < 0)
				goto out;
			if (a && write_part(s, a->buf, a->len, !b->len, e) < 0)
				goto out;
			if ((b->len || !a) && write_part(s, b->buf, b->len, true, e) < 0)
				goto out;
			break;
		}
		/* fail: as if the archive could not take the part (a failed store) */
		if (FAULT("sink.part")) {
			err_set(e, LB_EXIT_STORE, "cannot write '%s/%s': %s", s->prefix, s->rel,
				strerror(EIO));
			goto out;
		}
		if (write_part(s, sl->buf, sl->len, false, e) < 0)
			goto out;
		written += sl->len;
		pthread_mutex_lock(&pm.lock);
		sl->ready = false;
		pthread_cond_broadcast(&pm.cond);
		pthread_mutex_unlock(&pm.lock);
		take = (take + 1) % SINK_PUMP_PARTS;
	}
	pthread_join(thread, NULL);
	running = false;
	finished = true;
	ret = process_finish(p, what, e);
out:
	if (running) {
		pthread_mutex_lock(&pm.lock);
		pm.stop = true;
		pthread_cond_broadcast(&pm.cond);
		pthread_mutex_unlock(&pm.lock);
		if (write(pm.wake[1], "x", 1) < 0) {
			/* a pipe of our own with room: cannot fail */
		}
		pthread_join(thread, NULL);
	}
	if (!finished)
		process_kill(p);
	for (unsigned i = 1; i < SINK_PUMP_PARTS; i++)
		free(pm.slot[i].buf);
	close_fd(&pm.wake[0]);
	close_fd(&pm.wake[1]);
	pthread_cond_destroy(&pm.cond);
	pthread_mutex_destroy(&pm.lock);
	if (begun) {
		free(s->rel);
		s->rel = NULL;
		s->len = 0;
	}
	return ret;
}

int sink_from_process(struct member_sink *s, struct process *p, const char *rel, const char *tool,
		      const char *what, struct err *e)
{
	return sink_from_process_checked(s, p, rel, tool, what, NULL, e);
}

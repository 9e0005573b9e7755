/* Fan-out of one archive stream to several stores, which fail and commit independently. */
#include "common.h"

#include "fault.h"
#include "strbuf.h"
#include "stream/fanout.h"
#include "xalloc.h"

int fanout_begin(struct fanout *f, struct store_set *set, const char *file, struct err *e)
{
	size_t started = 0;

	f->v = xcalloc(set->nr ? set->nr : 1, sizeof(*f->v));
	f->nr = set->nr;
	for (size_t i = 0; i < f->nr; i++) {
		struct fanout_dest *d = &f->v[i];
		d->store = set->v[i];
		snprintf(d->fault, sizeof(d->fault), "fanout.write.%s", d->store->ops->kind);
		int r = d->store->ops->put_begin(d->store, file, &d->put, &d->err);
		if (r == STORE_TAKEN) {
			/* Another run writes this timestamp there: undo, the caller picks another. */
			fanout_release(f);
			return STORE_TAKEN;
		}
		if (r < 0) {
			d->failed = true;
			continue;
		}
		d->open = true;
		started++;
	}
	return started ? 0 : fanout_error(f, e);
}

int fanout_error(const struct fanout *f, struct err *e)
{
	for (size_t i = 0; i < f->nr; i++)
		if (err_isset(&f->v[i].err))
			return err_copy(e, &f->v[i].err);
	return err_set(e, LB_EXIT_STORE, "no destination left to write to");
}

int fanout_write(struct fanout *f, const void *buf, size_t len, struct err *e)
{
	size_t healthy = 0;

	for (size_t i = 0; i < f->nr; i++) {
		struct fanout_dest *d = &f->v[i];
		if (d->failed)
			continue;
		/* fail: as if the store's write had failed; stop: a transfer held at that byte */
		if (FAULT(d->fault) && err_set(&d->err, LB_EXIT_STORE,
					       "cannot write '%s' to the %s store: injected fault",
					       d->put.file, d->store->ops->kind)) {
			d->failed = true;
			continue;
		}
		if (d->store->ops->put_write(&d->put, buf, len, &d->err) < 0) {
			d->failed = true;
			continue;
		}
		healthy++;
	}
	return healthy ? 0 : fanout_error(f, e);
}

int fanout_commit(struct fanout *f, char **ret_kept, uint64_t *ret_bytes, struct err *e)
{
	struct strbuf kept = STRBUF_INIT;
	int ret = 0;

	if (f->kept_before)
		strbuf_addstr(&kept, f->kept_before);
	for (size_t i = 0; i < f->nr; i++) {
		struct fanout_dest *d = &f->v[i];
		if (d->failed)
			continue;
		uint64_t bytes = d->put.bytes;
		char *archive = f->sidecar ? xstrdup(d->put.file) : NULL;
		if (d->store->ops->put_commit(&d->put, &d->err) < 0) {
			d->failed = true;
			free(archive);
			continue;
		}
		d->open = false;
		if (f->sidecar && !d->store->ops->put_small) {
			err_set(&d->err, LB_EXIT_STORE,
				"the %s store cannot hold signatures (BACKUP_SIGNING_KEY_FILE)",
				d->store->ops->kind);
			struct err ignored = ERR_INIT;
			d->store->ops->remove(d->store, archive, &ignored);
			d->failed = true;
			free(archive);
			continue;
		}
		if (f->sidecar && ((FAULT("fanout.sidecar") &&
				    err_set(&d->err, LB_EXIT_STORE,
					    "cannot write '%s': injected fault", f->sidecar)) ||
				   d->store->ops->put_small(d->store, f->sidecar, f->sidecar_buf,
							    f->sidecar_len, &d->err) < 0)) {
			/* An archive without its signature would be refused: not kept. */
			struct err ignored = ERR_INIT;
			if (d->store->ops->remove(d->store, archive, &ignored) < 0)
				store_report(d->store, LOG_ERROR, "%s", ignored.msg);
			d->failed = true;
			free(archive);
			continue;
		}
		free(archive);
		*ret_bytes = bytes;
		strbuf_addf(&kept, "%s%s", kept.len ? ", " : "", d->store->ops->kind);
	}
	if (!kept.len) {
		strbuf_release(&kept);
		return fanout_error(f, e);
	}
	for (size_t i = 0; i < f->nr; i++) {
		struct fanout_dest *d = &f->v[i];
		if (!d->failed)
			continue;
		/* Abort now, so the failure is reported after its clean-up. */
		if (d->open)
			d->store->ops->put_abort(&d->put);
		d->open = false;
		err_set(e, LB_EXIT_STORE, "the %s copy failed (kept in %s): %s",
			d->store->ops->kind, kept.buf, d->err.msg);
		ret = -1;
	}
	*ret_kept = strbuf_detach(&kept, NULL);
	return ret;
}

void fanout_release(struct fanout *f)
{
	for (size_t i = 0; i < f->nr; i++)
		if (f->v[i].open)
			f->v[i].store->ops->put_abort(&f->v[i].put);
	free(f->v);
	f->v = NULL;
	f->nr = 0;
}

/* Retention: age, keep-last and grandfather-father-son rules, combined by "any rule keeps". */
#include "common.h"

#include "retention.h"
#include "xalloc.h"

bool retention_enabled(const struct retention_rules *r)
{
	return r->days > 0 || r->keep_last > 0 || r->keep_daily > 0 || r->keep_weekly > 0 ||
	       r->keep_monthly > 0;
}

static int newest_first(const void *a, const void *b, void *ctx)
{
	const time_t *times = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	if (times[x] != times[y])
		return times[x] > times[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

enum period { DAY, WEEK, MONTH };

/* Bucket key of a time in the current TZ: its day, ISO week or month. */
static void bucket(time_t t, enum period p, char *buf, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (p == DAY)
		strftime(buf, len, "%Y-%m-%d", &tm);
	else if (p == WEEK)
		strftime(buf, len, "%G-W%V", &tm);
	else
		strftime(buf, len, "%Y-%m", &tm);
}

/* Keep the newest backup of each of the `count` newest buckets. */
static void keep_buckets(const time_t *times, const size_t *idx, size_t n, int count, enum period p,
			 bool *keep)
{
	char last[32] = "", cur[32];
	int used = 0;

	for (size_t k = 0; k < n && used < count; k++) {
		bucket(times[idx[k]], p, cur, sizeof(cur));
		if (!strcmp(cur, last))
			continue;
		memcpy(last, cur, sizeof(last));
		keep[idx[k]] = true;
		used++;
	}
}

size_t retention_decide(const struct retention_rules *r, const time_t *times, size_t n, time_t now,
			bool *ret_delete)
{
	size_t *idx, deleted = 0;
	bool *keep;

	for (size_t i = 0; i < n; i++)
		ret_delete[i] = false;
	if (!n || !retention_enabled(r))
		return 0;
	idx = xcalloc(n, sizeof(*idx));
	keep = xcalloc(n, sizeof(*keep));
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(*idx), newest_first, (void *)times);

	keep[idx[0]] = true; /* never the newest */
	for (size_t k = 0; k < n && r->keep_last > 0 && k < (size_t)r->keep_last; k++)
		keep[idx[k]] = true;
	if (r->days > 0)
		for (size_t i = 0; i < n; i++)
			if (times[i] >= now - (time_t)r->days * 86400)
				keep[i] = true;
	if (r->keep_daily > 0)
		keep_buckets(times, idx, n, r->keep_daily, DAY, keep);
	if (r->keep_weekly > 0)
		keep_buckets(times, idx, n, r->keep_weekly, WEEK, keep);
	if (r->keep_monthly > 0)
		keep_buckets(times, idx, n, r->keep_monthly, MONTH, keep);

	for (size_t i = 0; i < n; i++) {
		ret_delete[i] = !keep[i];
		deleted += !keep[i];
	}
	free(idx);
	free(keep);
	return deleted;
}

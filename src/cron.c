/* A pure cron parser and next-fire-time search in wall-clock time, with defined DST rules. */
#include "common.h"

#include <ctype.h>

#include "cron.h"

struct field {
	const char *name;
	int lo, hi;
	const char *const *names; /* 3-letter names for lo.., or NULL */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
					   "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const day_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };
static const struct field fields[] = {
	[F_SEC] = { "second", 0, 59, NULL },	   [F_MIN] = { "minute", 0, 59, NULL },
	[F_HOUR] = { "hour", 0, 23, NULL },	   [F_DOM] = { "day-of-month", 1, 31, NULL },
	[F_MON] = { "month", 1, 12, month_names }, [F_DOW] = { "day-of-week", 0, 7, day_names },
};

/* A number or a name; advances *p. */
static int parse_value(const struct field *f, const char **p, int *ret)
{
	const char *s = *p;

	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s)) {
			v = v * 10 + (*s++ - '0');
			if (v > 1000)
				return -1;
		}
		*p = s;
		*ret = (int)v;
		return 0;
	}
	if (!f->names)
		return -1;
	for (int i = 0; f->names[i]; i++) {
		if (!strncasecmp(s, f->names[i], 3) && !isalpha((unsigned char)s[3])) {
			*p = s + 3;
			*ret = f->lo + i;
			return 0;
		}
	}
	return -1;
}

/* One comma-separated field into a bit set. */
static int parse_field(const struct field *f, const char *text, uint64_t *ret, struct err *e)
{
	uint64_t bits = 0;
	const char *p = text;

	for (;;) {
		int a, b, step = 1;
		bool star = false, ranged = false;

		if (*p == '*') {
			star = true;
			a = f->lo;
			b = f->hi;
			p++;
		} else {
			if (parse_value(f, &p, &a) < 0)
				goto bad;
			b = a;
			if (*p == '-') {
				ranged = true;
				p++;
				if (parse_value(f, &p, &b) < 0)
					goto bad;
			}
		}
		if (*p == '/') {
			const char *q = ++p;
			long v = 0;
			while (isdigit((unsigned char)*p) && v <= 1000)
				v = v * 10 + (*p++ - '0');
			if (p == q || v < 1 || v > f->hi)
				return err_set(e, LB_EXIT_CONFIG,
					       "%s field '%s': step '/%.*s' must be 1 to %d",
					       f->name, text, (int)strcspn(q, ","), q, f->hi);
			step = (int)v;
			/* "5/15" means "5-max/15", as in cronie. */
			if (!star && !ranged)
				b = f->hi;
		}
		if (*p != ',' && *p != '\0')
			goto bad;
		if (a < f->lo || a > f->hi || b < f->lo || b > f->hi)
			return err_set(e, LB_EXIT_CONFIG,
				       "%s field '%s': value %d is out of range %d-%d", f->name,
				       text, a < f->lo || a > f->hi ? a : b, f->lo, f->hi);
		if (a > b)
			return err_set(e, LB_EXIT_CONFIG,
				       "%s field '%s': range %d-%d goes backwards", f->name, text,
				       a, b);
		for (int v = a; v <= b; v += step)
			bits |= UINT64_C(1) << v;
		if (!*p)
			break;
		p++;
		if (!*p)
			goto bad;
	}
	*ret = bits;
	return 0;
bad:
	return err_set(e, LB_EXIT_CONFIG,
		       "%s field '%s' is invalid: expected *, a value %d-%d%s, a range a-b, a "
		       "step /n, or a list of those",
		       f->name, text, f->lo, f->hi, f->names ? " or a name" : "");
}

static const struct {
	const char *name;
	const char *expr;
} macros[] = {
	{ "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" },	  { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

static int days_in_month(int y, int m)
{
	static const int md[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : md[m - 1];
}

int cron_parse(const char *expr, struct cron *ret, struct err *e)
{
	struct cron c = { 0 };
	char buf[256], *words[7];
	int n = 0;

	while (isspace((unsigned char)*expr))
		expr++;
	if (*expr == '@') {
		size_t len = strcspn(expr, " \t\r\n");
		if (expr[len + strspn(expr + len, " \t\r\n")])
			return err_set(e, LB_EXIT_CONFIG, "'%.*s' takes no further fields",
				       (int)len, expr);
		for (size_t i = 0; i < ARRAY_SIZE(macros); i++)
			if (strlen(macros[i].name) == len &&
			    !strncasecmp(expr, macros[i].name, len))
				return cron_parse(macros[i].expr, ret, e);
		return err_set(e, LB_EXIT_CONFIG,
			       "unknown '%.*s': expected @hourly, @daily, @weekly, @monthly or "
			       "@yearly",
			       (int)len, expr);
	}
	if (strlen(expr) >= sizeof(buf))
		return err_set(e, LB_EXIT_CONFIG, "expression is too long");
	snprintf(buf, sizeof(buf), "%s", expr);
	for (char *p = buf; *p;) {
		p += strspn(p, " \t\r\n");
		if (!*p)
			break;
		if (n == 6)
			return err_set(
				e, LB_EXIT_CONFIG,
				"too many fields: expected 5 (minute hour day-of-month month "
				"day-of-week) or 6 with a leading seconds field");
		words[n++] = p;
		p += strcspn(p, " \t\r\n");
		if (*p)
			*p++ = '\0';
	}
	if (n < 5)
		return err_set(e, LB_EXIT_CONFIG,
			       "%d field%s: expected 5 (minute hour day-of-month month "
			       "day-of-week) or 6 with a leading seconds field",
			       n, n == 1 ? "" : "s");
	int off = n == 6 ? 0 : 1;
	uint64_t bits[6] = { 1, 0, 0, 0, 0, 0 };
	for (int i = off; i < 6; i++)
		if (parse_field(&fields[i], words[i - off], &bits[i], e) < 0)
			return -1;
	c.has_seconds = n == 6;
	c.sec = bits[F_SEC];
	c.min = bits[F_MIN];
	c.hour = (uint32_t)bits[F_HOUR];
	c.dom = (uint32_t)bits[F_DOM];
	c.mon = (uint16_t)bits[F_MON];
	c.dow = (uint8_t)((bits[F_DOW] | (bits[F_DOW] >> 7)) & 0x7f); /* 7 is Sunday too */
	c.dom_star = words[F_DOM - off][0] == '*';
	c.dow_star = words[F_DOW - off][0] == '*';

	/* "0 0 31 2 *" would never run: say so now, not at 2 AM. */
	if (!c.dom_star && c.dow_star) {
		bool possible = false;
		for (int m = 1; m <= 12 && !possible; m++)
			for (int d = 1; d <= days_in_month(2000, m) && !possible; d++)
				possible = (c.mon >> m & 1) && (c.dom >> d & 1);
		if (!possible)
			return err_set(e, LB_EXIT_CONFIG,
				       "day-of-month field '%s' never occurs in month field '%s'",
				       words[F_DOM - off], words[F_MON - off]);
	}
	*ret = c;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

struct wall {
	int y, mo, d, h, mi, s;
};

static int64_t wall_seconds(const struct wall *w)
{
	return days_from_civil(w->y, w->mo, w->d) * 86400 + w->h * 3600 + w->mi * 60 + w->s;
}

static bool day_matches(const struct cron *c, const struct wall *w)
{
	int64_t days = days_from_civil(w->y, w->mo, w->d);
	int wd = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	bool dom = c->dom >> w->d & 1, dow = c->dow >> wd & 1;

	/* Vixie: if either field is '*'-led both must match, else either may. */
	return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/* Carry overflowing fields upwards (only ever one step over). */
static void wall_normalize(struct wall *w)
{
	if (w->s > 59)
		w->s = 0, w->mi++;
	if (w->mi > 59)
		w->mi = 0, w->h++;
	if (w->h > 23)
		w->h = 0, w->d++;
	if (w->d > days_in_month(w->y, w->mo))
		w->d = 1, w->mo++;
	if (w->mo > 12)
		w->mo = 1, w->y++;
}

/* The first wall-clock time >= *w that the expression matches, as a pure calendar search. */
static int next_wall(const struct cron *c, struct wall *w)
{
	int limit_year = w->y + 30;

	for (;;) {
		wall_normalize(w);
		if (w->y > limit_year)
			return -1;
		if (!(c->mon >> w->mo & 1)) {
			w->mo++, w->d = 1, w->h = w->mi = w->s = 0;
			if (w->mo > 12)
				w->mo = 1, w->y++;
			continue;
		}
		if (!day_matches(c, w)) {
			w->d++, w->h = w->mi = w->s = 0;
			continue;
		}
		if (!(c->hour >> w->h & 1)) {
			w->h++, w->mi = w->s = 0;
			continue;
		}
		if (!(c->min >> w->mi & 1)) {
			w->mi++, w->s = 0;
			continue;
		}
		if (!(c->sec >> w->s & 1)) {
			w->s++;
			continue;
		}
		return 0;
	}
}

static long gmtoff_at(time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

/*
 * The first instant whose local wall clock shows `w`; for a wall time inside a
 * DST gap, the instant the gap ends.
 */
static time_t first_instant(const struct wall *w)
{
	int64_t ws = wall_seconds(w);
	long o1 = gmtoff_at((time_t)(ws - 86400)), o2 = gmtoff_at((time_t)(ws + 86400));
	long offs[2] = { o1, o2 };
	bool found = false;
	time_t best = 0;

	for (int i = 0; i < 2; i++) {
		time_t t = (time_t)(ws - offs[i]);
		if (t + gmtoff_at(t) == ws && (!found || t < best)) {
			best = t;
			found = true;
		}
	}
	if (found)
		return best;
	/* In a gap: find the transition, the first instant with the later offset. */
	time_t lo = (time_t)(ws - (o1 > o2 ? o1 : o2)), hi = (time_t)(ws - (o1 < o2 ? o1 : o2));
	long before = gmtoff_at(lo);
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;
		if (gmtoff_at(mid) == before)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

int cron_next(const struct cron *c, time_t after, time_t *ret)
{
	struct tm tm;
	struct wall w;

	localtime_r(&after, &tm);
	w = (struct wall){ tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			   tm.tm_hour,	      tm.tm_min,     tm.tm_sec > 59 ? 59 : tm.tm_sec };
	w.s++;
	/* Candidates before `after` (a repeated hour's second pass) are skipped. */
	for (int i = 0; i < 200000; i++) {
		if (next_wall(c, &w) < 0)
			return -1;
		time_t t = first_instant(&w);
		if (t > after) {
			*ret = t;
			return 0;
		}
		w.s++;
	}
	return -1;
}

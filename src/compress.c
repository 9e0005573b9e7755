/* Compression names and levels, and the CPU count the container's cgroup allows. */
#include "common.h"

#include <sched.h>

#include "compress.h"

static const char *const names[] = {
	[COMPRESSION_GZIP] = "gzip",
	[COMPRESSION_ZSTD] = "zstd",
	[COMPRESSION_NONE] = "none",
};

const char *compression_name(enum compression c)
{
	return (size_t)c < ARRAY_SIZE(names) ? names[c] : "none";
}

bool compression_parse(const char *s, enum compression *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcasecmp(s, names[i])) {
			*ret = (enum compression)i;
			return true;
		}
	}
	return false;
}

int compression_default_level(enum compression c)
{
	return c == COMPRESSION_GZIP ? 6 : c == COMPRESSION_ZSTD ? 3 : 0;
}

void compression_level_range(enum compression c, int *ret_min, int *ret_max)
{
	*ret_min = c == COMPRESSION_NONE ? 0 : 1;
	*ret_max = c == COMPRESSION_GZIP ? 9 : c == COMPRESSION_ZSTD ? 19 : 0;
}

/* quota / period as whole CPUs, rounded up (1.5 CPUs lets two threads make progress). */
static unsigned quota_cpus(long long quota, long long period)
{
	if (quota <= 0 || period <= 0)
		return 0;
	long long n = (quota + period - 1) / period;
	return n > 4096 ? 4096 : (unsigned)n;
}

unsigned compress_parse_cpu_max(const char *text)
{
	long long quota, period;
	char q[32];

	if (sscanf(text, "%31s %lld", q, &period) != 2 || !strcmp(q, "max"))
		return 0;
	char *end;
	errno = 0;
	quota = strtoll(q, &end, 10);
	if (errno || *end)
		return 0;
	return quota_cpus(quota, period);
}

unsigned compress_cgroup_cpus(const char *cpu_max, const char *cfs_quota, const char *cfs_period)
{
	if (cpu_max)
		return compress_parse_cpu_max(cpu_max);
	if (cfs_quota && cfs_period)
		return quota_cpus(strtoll(cfs_quota, NULL, 10), strtoll(cfs_period, NULL, 10));
	return 0;
}

static bool read_small(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0;
}

unsigned compress_available_cpus(void)
{
	cpu_set_t set;
	unsigned n = 0, quota = 0;
	char buf[128];

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = (unsigned)CPU_COUNT(&set);
	if (!n) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (unsigned)c : 1;
	}
	if (read_small("/sys/fs/cgroup/cpu.max", buf, sizeof(buf))) {
		quota = compress_cgroup_cpus(buf, NULL, NULL);
	} else {
		char p[64];
		if (read_small("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", buf, sizeof(buf)) &&
		    read_small("/sys/fs/cgroup/cpu/cpu.cfs_period_us", p, sizeof(p)))
			quota = compress_cgroup_cpus(NULL, buf, p);
	}
	if (quota && quota < n)
		n = quota;
	return n ? n : 1;
}

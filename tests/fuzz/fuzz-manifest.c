/*
 * libFuzzer target: what an archive controls before it is trusted, manifest.json and
 * SHA256SUMS. Any bytes: no crash, no leak, a one-line error; a manifest that parses
 * writes back into JSON that parses to the same record; SHA256SUMS text equals itself.
 */
#include "common.h"

#include "manifest.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m = MANIFEST_INIT, m2 = MANIFEST_INIT;
	struct err e = ERR_INIT;

	if (manifest_from_json((const char *)data, size, &m, &e) < 0) {
		if (!e.msg[0] || strchr(e.msg, '\n'))
			abort();
	} else {
		struct strbuf js = STRBUF_INIT;
		struct err e2 = ERR_INIT;
		manifest_to_json(&m, &js);
		if (manifest_from_json(js.buf, js.len, &m2, &e2) < 0)
			abort();
		if (!same(m.name, m2.name) || !same(m.timestamp, m2.timestamp) ||
		    m.nr_sources != m2.nr_sources)
			abort();
		for (size_t i = 0; i < m.nr_sources; i++)
			if (m.sources[i].kind != m2.sources[i].kind ||
			    !same(m.sources[i].name, m2.sources[i].name) ||
			    !same(m.sources[i].path, m2.sources[i].path))
				abort();
		strbuf_release(&js);
		manifest_release(&m2);
	}
	manifest_release(&m);

	struct strbuf sums = STRBUF_INIT, detail = STRBUF_INIT;
	strbuf_add(&sums, data, size);
	if (sums_compare(&sums, &sums, &detail) < 0)
		abort();
	strbuf_release(&sums);
	strbuf_release(&detail);
	return 0;
}

/*
 * libFuzzer target: the PROPFIND multistatus a WebDAV server controls, and the href names
 * taken from it. Any bytes: no crash, no leak, and every entry holds only what was in the
 * body.
 */
#include "common.h"

#include "stores/davxml.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct davxml_list l = { 0 };
	struct strbuf name = STRBUF_INIT;

	davxml_parse_multistatus((const char *)data, size, &l);
	for (size_t i = 0; i < l.nr; i++) {
		if (!l.v[i].href || strlen(l.v[i].href) > size || !l.v[i].href[0])
			abort();
		if (davxml_href_name(l.v[i].href, &name) &&
		    (!name.len || name.len > size || memchr(name.buf, '/', name.len) ||
		     strlen(name.buf) != name.len))
			abort();
	}
	davxml_list_release(&l);
	strbuf_release(&name);
	return 0;
}

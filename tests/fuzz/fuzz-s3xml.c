/*
 * libFuzzer target: the S3 XML answers a remote server controls (ListObjectsV2,
 * ListMultipartUploads, errors). Any bytes: no crash, no leak, and a page that parses
 * holds only what was in the body.
 */
#include "common.h"

#include "stores/s3xml.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_page(const struct s3xml_page *p, size_t size)
{
	for (size_t i = 0; i < p->nr; i++)
		if (!p->v[i].key || strlen(p->v[i].key) > size)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct s3xml_page page = { 0 };
	struct strbuf sb = STRBUF_INIT;

	if (s3xml_parse_list(body, size, &page) == 0)
		check_page(&page, size);
	s3xml_page_release(&page);
	memset(&page, 0, sizeof(page));
	if (s3xml_parse_uploads(body, size, &page) == 0)
		check_page(&page, size);
	s3xml_page_release(&page);

	size_t pos = 0;
	while (s3xml_next(body, size, &pos, "Key", &sb))
		if (pos > size || sb.len > size)
			abort();
	s3xml_first(body, size, "Code", &sb);
	strbuf_release(&sb);
	return 0;
}

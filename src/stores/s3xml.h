/* The few S3 XML responses we read: ListObjectsV2, CreateMultipartUpload, ListMultipartUploads,
 * errors. */
#ifndef LB_S3XML_H
#define LB_S3XML_H

#include "common.h"

#include "strbuf.h"

/*
 * Text of the next element <tag>...</tag> at or after *pos in body[0..len),
 * entities decoded, into `out` (reset first). Advances *pos past it. Returns
 * false when there is none. Tags are matched exactly (no attributes), which
 * is what S3 servers send for these elements.
 */
bool s3xml_next(const char *body, size_t len, size_t *pos, const char *tag, struct strbuf *out);

/* The first element <tag> in the whole body; false when absent. */
bool s3xml_first(const char *body, size_t len, const char *tag, struct strbuf *out);

struct s3xml_object {
	char *key;
	uint64_t size;
};

/* One page of ListObjectsV2 (or the uploads of ListMultipartUploads). */
struct s3xml_page {
	struct s3xml_object *v; /* for uploads: key, size 0 */
	char **upload_ids;	/* ListMultipartUploads only, parallel to v */
	size_t nr;
	bool truncated;
	char *next_token;			       /* NextContinuationToken; NULL when none */
	char *next_key_marker, *next_upload_id_marker; /* ListMultipartUploads */
};

/* Parse a ListObjectsV2 result; -1 when the body is not one. */
int s3xml_parse_list(const char *body, size_t len, struct s3xml_page *ret);
/* Parse a ListMultipartUploads result; -1 when the body is not one. */
int s3xml_parse_uploads(const char *body, size_t len, struct s3xml_page *ret);
void s3xml_page_release(struct s3xml_page *p);

/*
 * An <Error> body: its Code and Message (either may be empty). False when
 * the body holds no <Error> element.
 */
bool s3xml_parse_error(const char *body, size_t len, struct strbuf *code, struct strbuf *msg);

/* Append `s` escaped for XML text content. */
void s3xml_escape(struct strbuf *out, const char *s);

#endif

/* The one WebDAV answer we read: a PROPFIND multistatus (RFC 4918), as a list of entries. */
#ifndef LB_DAVXML_H
#define LB_DAVXML_H

#include "common.h"

#include "strbuf.h"

/* One <response>: what a PROPFIND of Depth 1 says about the collection or a member. */
struct davxml_entry {
	char *href; /* as sent, entities decoded, still percent-encoded */
	uint64_t size;
	bool has_size;	 /* a getcontentlength in a 200 propstat */
	bool collection; /* resourcetype holds <collection/> */
};

struct davxml_list {
	struct davxml_entry *v;
	size_t nr, alloc;
};

/*
 * Parse a <multistatus> body of `len` bytes (not NUL-terminated). Element names are
 * matched by local name, whatever the namespace prefix (Apache says "D:" and "lp1:",
 * Nextcloud "d:"); properties count only from a propstat whose status is 200. Returns
 * -1 when the body holds no multistatus element or is cut inside a tag; entries found
 * are in `ret` either way (release it).
 */
int davxml_parse_multistatus(const char *body, size_t len, struct davxml_list *ret);
void davxml_list_release(struct davxml_list *l);

/*
 * The last path segment of `href` (a trailing '/' ignored), percent-decoded, into `out`
 * (reset first). False when it is empty, or decodes to '/', a NUL byte or a bad escape.
 */
bool davxml_href_name(const char *href, struct strbuf *out);

#endif

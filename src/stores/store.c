/* Helpers shared by every store kind. */
#include "../common.h"

#include "store.h"
#include "../util.h"

void store_free(struct store *s)
{
	if (s)
		s->ops->free(s);
}

void store_list_add(struct store_list *l, const char *file, const struct backup_id *id,
		    uint64_t size)
{
	l->v = xrealloc(l->v, (l->nr + 1) * sizeof(*l->v));
	l->v[l->nr++] = (struct store_entry){ .file = xstrdup(file), .id = *id, .size = size };
}

void store_list_release(struct store_list *l)
{
	for (size_t i = 0; i < l->nr; i++)
		free(l->v[i].file);
	free(l->v);
	l->v = NULL;
	l->nr = 0;
}

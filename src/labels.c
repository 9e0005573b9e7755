/* Which containers the lifeboat.* labels select for this sidecar. */
#include "common.h"

#include "docker.h"
#include "labels.h"
#include "xalloc.h"

bool labels_in_scope(const json_t *c, const char *project, const char *name)
{
	const char *owner = docker_label(c, LABEL_NAME);
	const char *p = docker_label(c, "com.docker.compose.project");

	if (owner)
		return !strcmp(owner, name);
	return project && p && !strcmp(p, project);
}

bool labels_stop_selected(const json_t *c, const char *project, const char *name)
{
	const char *v = docker_label(c, LABEL_STOP);

	if (!v)
		return false;
	if (!strcmp(v, name))
		return true;
	return !strcasecmp(v, "true") && labels_in_scope(c, project, name);
}

static int by_name(const void *a, const void *b)
{
	const char *x = docker_container_name(*(json_t *const *)a);
	const char *y = docker_container_name(*(json_t *const *)b);

	return strcmp(x ? x : "", y ? y : "");
}

int labels_find(struct docker *d, const char *project, const char *name, const char *label,
		json_t **ret_array, struct err *e)
{
	const char *filter[] = { label, NULL };
	json_t *list = NULL, *it;
	size_t i, n = 0;

	if (docker_list(d, filter, false, &list, e) < 0)
		return -1;
	json_t **v = xcalloc(json_array_size(list) + 1, sizeof(*v));
	json_array_foreach (list, i, it) {
		bool hit = !strcmp(label, LABEL_STOP) ? labels_stop_selected(it, project, name)
						      : labels_in_scope(it, project, name);
		if (hit && docker_container_running(it))
			v[n++] = it;
	}
	qsort(v, n, sizeof(*v), by_name);
	json_t *out = json_array();
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(list);
	*ret_array = out;
	return 0;
}

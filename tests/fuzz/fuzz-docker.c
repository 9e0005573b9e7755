/*
 * libFuzzer target: the Docker Engine answers a remote engine controls (GET /version,
 * container inspect and list, Swarm service inspect, exec inspect, error bodies) and the
 * /proc/self/mountinfo text the self detection reads. Any bytes: no crash, no leak, and
 * what a parser returns comes from the input and keeps its contract.
 */
#include "common.h"

#include <jansson.h>

#include "docker.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char hex[] = "0123456789abcdef";
/* strlen() of every string returned reads it whole, so ASan sees a bad pointer. */
static volatile size_t sink;

static void check_mountinfo(const uint8_t *data, size_t size)
{
	/* As read_file_capped gives it: NUL-terminated (a NUL inside ends the text). */
	char *text = xmalloc(size + 1);
	char id[65];

	memcpy(text, data, size);
	text[size] = '\0';
	if (docker_mountinfo_id(text, id) &&
	    (strlen(id) != 64 || strspn(id, hex) != 64 || !strstr(text, id)))
		abort();
	free(text);
}

/* One container (inspect answer or list entry), as services.c reads it. */
static void check_container(const json_t *c)
{
	static const char *const keys[] = { "com.docker.compose.project",
					    "com.docker.compose.service",
					    "com.docker.compose.depends_on",
					    "com.docker.swarm.service.id" };

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *v = docker_label(c, keys[i]);
		sink += v ? strlen(v) : 0;
	}
	const char *name = docker_container_name(c);
	/* Docker's one leading '/' is gone; a second one stays. */
	if (name && name[0] == '/' && name[-1] != '/')
		abort();
	sink += name ? strlen(name) : 0;
	(void)docker_container_running(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	char api[16] = "";
	uint64_t replicas;
	int code;

	check_mountinfo(data, size);
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
	if (!j)
		return 0;

	unsigned minor = 0;
	if (docker_api_negotiate(j, api, sizeof(api)) == 0 &&
	    (sscanf(api, "1.%u", &minor) != 1 || minor < 41 || minor > 45))
		abort();
	if (!docker_message(j))
		abort();
	check_container(j);
	(void)docker_swarm_replicas(j, &replicas);
	(void)docker_exec_ended(j, &code);

	const char *pick = docker_list_pick(j);
	bool found = !pick;
	size_t i;
	json_t *c;
	json_array_foreach (j, i, c) {
		check_container(c);
		if (pick && json_string_value(json_object_get(c, "Id")) == pick)
			found = true;
	}
	if (!found) /* the pick is one of the list's own ids */
		abort();
	json_decref(j);
	return 0;
}

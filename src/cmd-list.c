/* lifeboat list [--json]: the backups of BACKUP_NAME, newest first. */
#include "common.h"

#include <jansson.h>
#include <time.h>

#include "cmd.h"
#include "log.h"
#include "parse.h"
#include "stores/store.h"

static const char *format_age(long long s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 3600)
		snprintf(buf, len, "%lldm", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	return buf;
}

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct store_list l = { 0 };
	struct store_set set = { 0 };
	struct err e = ERR_INIT;
	bool json = false;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else {
			fprintf(stderr, "lifeboat list: unknown option '%s'\n%s", argv[i],
				cmd_list.usage);
			return LB_EXIT_USAGE;
		}
	}
	rc = cmd_load_config(&cfg, NEED_STORE);
	if (rc)
		goto out;
	int listed = store_set_open(&cfg, &set, &e) < 0 ? -1 : store_set_list(&set, &l, &e);
	if (listed < 0) {
		rc = cmd_fail(&e);
		goto out;
	}
	time_t now = time(NULL);
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < l.nr; i++) {
			json_t *o = json_object();
			json_t *stores = json_array();
			for (size_t k = 0; k < set.nr; k++)
				if ((l.v[i].where >> k) & 1)
					json_array_append_new(stores,
							      json_string(set.v[k]->ops->kind));
			json_object_set_new(o, "timestamp", json_string(l.v[i].id.timestamp));
			json_object_set_new(o, "file", json_string(l.v[i].file));
			json_object_set_new(o, "size", json_integer((json_int_t)l.v[i].size));
			json_object_set_new(o, "stores", stores);
			json_object_set_new(o, "age_seconds",
					    json_integer((json_int_t)(now - l.v[i].id.time)));
			json_object_set_new(o, "encrypted", json_boolean(l.v[i].id.encrypted));
			static const char *const enc[] = { "none", "gpg", "age" };
			json_object_set_new(o, "encryption",
					    json_string(enc[naming_encryption(&l.v[i].id)]));
			json_array_append_new(arr, o);
		}
		char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", text);
		free(text);
		json_decref(arr);
	} else if (!l.nr) {
		fprintf(stderr, "no backups of '%s' yet\n", cfg.name);
	} else {
		printf("%-19s %10s  %-6s %s\n", "TIMESTAMP", "SIZE", "WHERE", "AGE");
		for (size_t i = 0; i < l.nr; i++) {
			char size[32], age[32], where[64];
			store_set_where(&set, l.v[i].where, where, sizeof(where));
			printf("%-19s %10s  %-6s %s\n", l.v[i].id.timestamp,
			       format_size(l.v[i].size, size, sizeof(size)), where,
			       format_age((long long)(now - l.v[i].id.time), age, sizeof(age)));
		}
	}
	if (listed > 0) {
		/* What could be listed is printed; the exit code still says a store failed. */
		rc = cmd_fail(&e);
		log_warn("the listing above lacks the backups of the store that failed");
	}
out:
	store_list_release(&l);
	store_set_release(&set);
	config_release(&cfg);
	return rc;
}

const struct command cmd_list = {
	.name = "list",
	.summary = "list backups, newest first",
	.usage = "usage: lifeboat list [--json]\n\n"
		 "Lists the backups of BACKUP_NAME, newest first: timestamp, size, where\n"
		 "and age. --json prints an array of objects for scripts.\n",
	.run = run,
};

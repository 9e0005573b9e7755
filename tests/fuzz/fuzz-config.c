/* libFuzzer target: config_load over an environment made of the input's lines. */
#include "common.h"

#include "config.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg = CONFIG_INIT;
	struct err e = ERR_INIT;
	struct strbuf sb = STRBUF_INIT;
	char *envp[64];
	size_t n = 0;

	if (size > 16384)
		return 0;
	strbuf_add(&sb, data, size);
	for (char *p = sb.buf; p && n < ARRAY_SIZE(envp) - 1;) {
		char *nl = memchr(p, '\n', (size_t)(sb.buf + sb.len - p));
		if (nl)
			*nl = '\0';
		/*
		 * *_FILE makes config_load read a file; a fuzzed path could name a
		 * FIFO or a terminal and block, so those lines are left out.
		 */
		char *eq = strchr(p, '=');
		if (!(eq && eq - p >= 5 && !strncmp(eq - 5, "_FILE", 5)))
			envp[n++] = p;
		p = nl ? nl + 1 : NULL;
	}
	envp[n] = NULL;
	if (config_load(&cfg, envp, &e) == 0) {
		struct strbuf d = STRBUF_INIT;
		config_describe(&cfg, &d);
		strbuf_release(&d);
	} else if (e.code != LB_EXIT_CONFIG || !e.msg[0]) {
		abort();
	}
	config_release(&cfg);
	strbuf_release(&sb);
	return 0;
}

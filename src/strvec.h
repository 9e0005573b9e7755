/* A NULL-terminated vector of owned strings (argv, envp). */
#ifndef LB_STRVEC_H
#define LB_STRVEC_H

#include "common.h"

struct strvec {
	char **v;
	size_t nr;
	size_t alloc;
};
extern char *strvec_empty_[];
#define STRVEC_INIT                \
	{                          \
		.v = strvec_empty_ \
	}
void strvec_push(struct strvec *sv, const char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...) LB_PRINTF(2, 3);
void strvec_release(struct strvec *sv);

#endif

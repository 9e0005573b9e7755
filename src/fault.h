/* Test-only fault points: a named spot where the test build can be told to die or fail. */
#ifndef LB_FAULT_H
#define LB_FAULT_H

#include "common.h"

/*
 * FAULT("name") is 0, always, in a build without -Dfault_points=true (the image's
 * build). In a build with it, LIFEBOAT_FAULT="name[@N][:action],..." arms points:
 * the Nth time (default 1st) the point is passed, action runs:
 *   kill  (default) raise SIGKILL: the process dies there, as under the OOM killer;
 *   fail  FAULT() returns 1 that once, and the caller acts as if the operation had
 *         failed (each call site documents which error it simulates);
 *   stop  SIGSTOP the process there; it goes on (FAULT() returns 0) once a test that
 *         did something meanwhile (killed a server) sends SIGCONT.
 * Passing a point also counts it, so LIFEBOAT_FAULT_TRACE=FILE appends "name\n" per
 * pass, which lets a test learn how many times a point is passed and then kill at each.
 */
#ifdef LB_FAULT_POINTS
int fault_hit(const char *name);
#define FAULT(name) fault_hit(name)
#else
/* A function, not a bare 0, so FAULT("x"); as a statement compiles without a warning. */
static inline int fault_off(const char *name)
{
	(void)name;
	return 0;
}
#define FAULT(name) fault_off(name)
#endif

#endif

/* SIGINT/SIGTERM as a flag the long-running loops poll; SIGPIPE ignored. */
#ifndef LB_SIGNALS_H
#define LB_SIGNALS_H

#include "common.h"

void signals_install(void);
/* The signal that asked us to stop, or 0. */
int signals_pending(void);
/* Block / unblock SIGINT and SIGTERM around a step that must not be cut in half. */
void signals_defer(bool on);

#endif

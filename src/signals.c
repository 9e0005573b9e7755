/* Signal handlers only record the signal; loops check signals_pending(). */
#include "common.h"

#include <signal.h>

#include "signals.h"

static volatile sig_atomic_t pending;

static void on_signal(int sig)
{
	if (!pending)
		pending = sig;
}

void signals_install(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocked read or write returns EINTR and the loop sees the flag. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int signals_pending(void)
{
	return pending;
}

void signals_defer(bool on)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(on ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* The restore's swap, driven by its journal: done, undone or resumed from any point. */
#ifndef LB_RECOVER_H
#define LB_RECOVER_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "journal.h"

#define RESTORE_STAGE_PREFIX ".lifeboat-restore."
#define RESTORE_OLD_PREFIX   ".lifeboat-old."

/*
 * Run the swap `j` records forward (every target takes its staged copy, then
 * the old copies are deleted) or back (every target gets its old content
 * back, then the staged copies are deleted), starting from whatever point the
 * journal and the file system show, and updating the journal at each phase.
 * A restore runs its own swap with this; recovery runs the same code. When it
 * succeeds the journal is removed. Callers hold the run lock.
 */
int recover_swap(const struct config *cfg, struct journal *j, bool forward, struct err *e);

/*
 * Flush every staged copy the journal names to disk (syncfs of its file
 * system), before the journal may say "swapping": after a power loss, a swap
 * rolled forward then finds complete files.
 */
int recover_flush_staged(const struct journal *j, struct err *e);

/*
 * For every command that touches data (run, backup, restore, prune), under the
 * run lock: if a killed restore left its journal, finish its swap (state
 * "swapping") or undo it (otherwise) and log which; then remove any staging
 * copy (.lifeboat-restore.*, .lifeboat-old.*) left beside a configured target.
 * Fails (exit 4, naming the interrupted restore) only when the swap cannot be
 * recovered; the journal then stays for the next attempt.
 */
int recover_pending(const struct config *cfg, struct err *e);

#endif

"""Waiting on a loaded machine: poll the condition itself, never sleep a guess.

CI shares two cores with other work (load 5-9), and the binary may run under
ASan+UBSan: anything can take many times longer than on an idle machine. So a
test waits for the event it needs (a file appearing, a log line, a process
state, an HTTP answer) by polling it, and a deadline is only a hang guard: it
is minutes long, and reaching it means something is stuck, never "too slow".

    from waiting import wait_until, HANG
"""

import time

# The hang guard for one wait or one run of the binary (seconds).
HANG = 300


def wait_until(pred, what, timeout=HANG, interval=0.05):
    """Poll pred() until it returns a true value, and return that value.

    Fails with "timed out after N s waiting for WHAT" at the deadline; pred is
    always evaluated once after the deadline has passed, so a condition that
    became true while the test was descheduled still counts.
    """
    deadline = time.monotonic() + timeout
    while True:
        expired = time.monotonic() >= deadline
        v = pred()
        if v:
            return v
        if expired:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def file_contains(path, needle):
    """For wait_until: path exists and its text holds needle."""
    def pred():
        try:
            with open(path, errors="replace") as f:
                return needle in f.read()
        except FileNotFoundError:
            return False
    return pred

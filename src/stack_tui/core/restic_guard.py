"""The guard of one upload: restic's input ends only once the uploader says it is whole.

restic saves a snapshot as soon as its `--stdin` ends, and a pipe ends when its
last writer is gone: an uploader killed half-way (SIGKILL, the OOM killer) would
leave a snapshot of a cut SQL stream. This guard holds a second copy of that
pipe's write end, so the input cannot end behind its back:

- the uploader wrote every byte, closed its copy and wrote `commit` on the control
  pipe: the guard lets its copy go, restic sees the end of the whole stream and
  saves the snapshot; the guard exits with restic's status;
- the control pipe ends without `commit` (the uploader aborted, or died): the guard
  SIGKILLs restic first, and only then lets the input go: no snapshot is saved;
- the guard itself is killed: restic dies with it (PR_SET_PDEATHSIG, set before
  restic runs), while the uploader's own copy still holds the input open.

Run by core/offsite.py as a script, not imported:

    python -I -S restic_guard.py CONTROL_FD INPUT_FD restic ARGS...

with restic's input pipe as stdin. Standard library only and no site packages, so
it starts in tens of milliseconds, beside restic's own start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

COMMIT = b"commit"
PR_SET_PDEATHSIG = 1
#: The guard's exit status when restic is not installed (a shell's "command not found").
NOT_INSTALLED = 127
#: Its status when it stopped restic before the input was whole (128 + SIGKILL).
STOPPED = 128 + signal.SIGKILL


def main(argv: list[str]) -> int:
    control, held = int(argv[1]), int(argv[2])
    import ctypes  # here: the uploader imports this module for its constants only

    guard = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def die_with_the_guard() -> None:
        # Between fork and exec: if the guard is already gone, do not run at all.
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0 or os.getppid() != guard:
            os._exit(STOPPED)

    try:
        # preexec_fn is safe here: the guard has one thread
        restic = subprocess.Popen(argv[3:], preexec_fn=die_with_the_guard)
    except FileNotFoundError:
        print(f"{argv[3]}: not found", file=sys.stderr)
        os.close(held)
        return NOT_INSTALLED
    # restic has the input now; the guard's reading end would only keep a dead restic's
    # pipe open (the uploader's writes would then block instead of failing).
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    said = b""
    while chunk := os.read(control, 64):
        said += chunk
    if said != COMMIT:
        restic.kill()  # before the input can end: restic saves nothing
        restic.wait()
        os.close(held)
        return STOPPED
    os.close(held)  # the whole stream is in the pipe: let it end
    code = restic.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv))

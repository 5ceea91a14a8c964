"""Run a command that may not read what the files' modes forbid, even as root.

    python tests/without_dac.py PROGRAM [ARGS...]

root reads a mode-000 directory (capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), so
a test of an unreadable directory needs a process without them. Run as root, this drops both
from the bounding set and execs PROGRAM: a uid-0 process gets only the capabilities of its
bounding set at exec, so PROGRAM and every process it starts keep uid 0 and everything else
but cannot bypass file modes. Run as any other user it just execs PROGRAM (file modes apply
to it already). Standard library only: CI machines need no setpriv or capsh.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_CAPBSET_DROP = 24  # <linux/prctl.h>
CAP_DAC_OVERRIDE = 1  # <linux/capability.h>
CAP_DAC_READ_SEARCH = 2


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                error = ctypes.get_errno()
                raise SystemExit(f"could not drop capability {capability}: {os.strerror(error)}")
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])

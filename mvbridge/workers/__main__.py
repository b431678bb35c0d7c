"""``python -m mvbridge.workers``: start a worker where mvbridge is importable as it is.

Internal. Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.
Hosts normally start workers through ``boot.py`` of the private runtime instead, which also
hides mvbridge's own dependencies from user code.
"""

from __future__ import annotations

import sys

from .server import finish, run

if __name__ == "__main__":
    finish(run(sys.argv[1:]))

"""A script that uses mvbridge once, as a user writes it: ``python startup_mvbridge.py PYTHON``.

``mvbridge.Env`` on the worker venv's interpreter, one call of an imported module, then the
script ends (mvbridge stops the worker at exit). Prints ``FIRST LAST`` as ``startup_raw.py``.
"""

from __future__ import annotations

import sys
import time

import mvbridge

env = mvbridge.Env("bench-startup", interpreter=sys.argv[1])
env.import_module("benchfuncs").noop()
first = time.monotonic()
print(first, first, flush=True)

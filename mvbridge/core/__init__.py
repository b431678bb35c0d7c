"""The shared half: code that both the host and the worker run.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

Nothing here imports ``mvbridge.bridge`` (the host half) or ``mvbridge.workers`` (the worker
half); both halves meet here. ``mvbridge/__init__.py``, ``mvbridge/errors.py``, this package and
``mvbridge/workers`` form what a worker runs: ``bridge/runtime.py``'s ``WORKER_HALF`` says so in
one place.
"""

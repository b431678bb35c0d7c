"""``mvbridge spawn``: an env's workers as a long-running service on one authenticated port.

Internal (the CLI is the public face). Runs in the host's Python, never in an env:

* ``spawn.py``    the command: build the env, start the pool, log, signals, drain
* ``router.py``   the one public ROUTER (TCP, CurveZMQ): sessions routed to pool workers
* ``sessions.py`` one client session: its worker, calls in flight, liveness and expiry
* ``pool.py``     the worker processes behind the router; replaced when they die
* ``auth.py``     CurveZMQ client authentication (``zmq.auth``) that logs who it refused
* ``ping.py``     ``mvbridge ping``: the health probe, a client of its own
* ``logs.py``     one line per event, as text or JSON

Workers are the same worker program as local ones, started with ``--service``: they connect to
the router over ipc in a private folder, and the router alone faces the network.
"""

"""The worker half of mvbridge: runs inside each env's interpreter.

Internal. Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.
"""

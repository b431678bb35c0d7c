"""Runs the python blocks of one docs page in one interpreter, in order, keeping their names.

Started by tests/doc_session.py as ``python doc_python.py FD``, with the page's Python. Reads one
JSON request a line on stdin, ``{"path": the block as a file, "cwd": folder}``, runs that file in
the namespace shared by the page's blocks, and answers on file descriptor FD with ``{"ok": bool,
"output": what it printed}``. As in a notebook, top-level ``await`` works (on one event loop for
the whole page) and the value of a block's last expression is printed. The blocks are files so
that ``inspect.getsource`` finds their functions, as it would in a user's script.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import json
import os
import sys
import traceback

_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def main() -> None:
    replies = os.fdopen(int(sys.argv[1]), "w")
    namespace: dict = {"__name__": "__main__"}
    loop = asyncio.new_event_loop()
    try:
        for line in sys.stdin:
            request = json.loads(line)
            os.chdir(request["cwd"])
            output = io.StringIO()
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                ok = run_block(request["path"], namespace, loop)
            replies.write(json.dumps({"ok": ok, "output": output.getvalue()}) + "\n")
            replies.flush()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_block(path: str, namespace: dict, loop: asyncio.AbstractEventLoop) -> bool:
    """Run the block in file ``path``; print its traceback and return False if it raises."""
    try:
        with open(path, encoding="utf-8") as file:
            tree = compile(file.read(), path, "exec", ast.PyCF_ONLY_AST | _FLAGS)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        _run(compile(tree, path, "exec", _FLAGS), namespace, loop)
        if last is not None:
            value = _run(compile(ast.Expression(last.value), path, "eval", _FLAGS), namespace, loop)
            if value is not None:
                print(repr(value))
        return True
    except BaseException:  # SystemExit and KeyboardInterrupt too: the block failed
        traceback.print_exc()
        return False


def _run(code, namespace: dict, loop: asyncio.AbstractEventLoop):
    result = eval(code, namespace)
    if code.co_flags & inspect.CO_COROUTINE:  # the block awaits at its top level
        result = loop.run_until_complete(result)
    return result


if __name__ == "__main__":
    main()

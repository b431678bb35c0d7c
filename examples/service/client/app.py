"""A host that uses `legacy_calc` from a `mvbridge spawn` service, as if it were imported.

Start the service first (docs/how-to/run-a-service.md), then: python app.py
"""

from __future__ import annotations

import threading

import mvbridge
from mvbridge import legacy_calc  # runs in the service's worker, not here


def main() -> None:
    print("total:", legacy_calc.total([1, 2, 3, 4]))
    served = legacy_calc.where()
    print(f"served by pid {served['pid']} on Python {served['python']}")
    print("transform:", legacy_calc.transform(lambda value: value * 10, [1, 2, 3]))

    heard = threading.Event()
    messages = []

    def report(message: str) -> None:  # called back from a thread of the service's worker
        messages.append(message)
        heard.set()

    print("report:", legacy_calc.report_later(report, "done in the background"))
    if not heard.wait(10):
        raise SystemExit("no callback from the service within 10 s")
    print("callback:", messages[0])
    try:
        legacy_calc.total(["a", 1])
    except TypeError as error:  # the service's exception, re-raised here as its own type
        print("error crossed as", type(error).__name__)
    mvbridge.shutdown()


if __name__ == "__main__":
    main()

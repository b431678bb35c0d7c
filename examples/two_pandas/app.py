"""The seed case: dep_a needs pandas 2.2.0, dep_b needs pandas 2.0.3; one process uses both.

Run `mvbridge demo`, or from this folder: python app.py
"""

from __future__ import annotations

from mvbridge import dep_a, dep_b  # proxy modules: each runs in its own env's worker


def main() -> None:
    for dep in (dep_a, dep_b):
        print(f"{dep.__name__}: {dep.describe()}")
        series = dep.get_data()  # a pandas Series in the worker: here, a proxy of it
        print(series)
        print(f"  as plain data: {series.tolist()}")


if __name__ == "__main__":
    main()

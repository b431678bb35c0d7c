"""Wall time of `mvbridge plan` against one `uv pip compile` of the whole list (issue 9).

    python bench/plan.py [--rounds N]

For 8, 16 and 32 real requirements with 2, 3 and 4 conflict clusters, each round times, in
this order: one `uv pip compile` of the whole list (the baseline: it only finds that the list
does not resolve), `mvbridge plan --json --refresh` (resolver answers cold: every question goes
to uv), and `mvbridge plan --json` again (answers warm, from the disk cache). Every figure is a
ratio to the baseline of the same round; the report gives the median and the spread (min-max)
over rounds. uv's own HTTP cache is warm throughout (one discarded round first), as it is on
any machine that has resolved these packages once: the cold figure is mvbridge's cost, not
the network's. Results: bench/results/plan.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Conflicts that real metadata makes: a pin pair, and three through a transitive dependency.
CLUSTERS = [
    ["six==1.15.0", "six==1.16.0"],
    ["requests==2.25.1", "idna==3.4"],  # requests 2.25.1 needs idna<3
    ["packaging==21.3", "pyparsing==3.0.5"],  # packaging 21.3 excludes pyparsing 3.0.5
    ["flask==1.1.4", "click==8.1.7"],  # flask 1.1.4 needs click<8
]
FREE = [
    "attrs", "certifi", "tomli", "toml", "colorama", "iniconfig", "pluggy", "typing-extensions",
    "zipp", "python-dateutil", "pytz", "tzdata", "sniffio", "h11", "decorator",
    "more-itertools", "mccabe", "pyflakes", "pycodestyle", "docutils", "pygments", "tabulate",
    "wcwidth", "termcolor",
]  # fmt: skip
SIZES = {8: 2, 16: 3, 32: 4}  # requirements: conflict clusters


def requirement_list(size: int) -> list[str]:
    clustered = [r for cluster in CLUSTERS[: SIZES[size]] for r in cluster]
    return clustered + FREE[: size - len(clustered)]


def timed(command: list[str], stdin: str = "", **env: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command[:4]} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done.stdout + done.stderr


def one_round(cache: str) -> dict[int, dict[str, float]]:
    from mvbridge.bridge.installers import find_uv

    uv = find_uv()
    assert uv is not None
    out = {}
    for size in SIZES:
        requirements = requirement_list(size)
        baseline, _ = timed(
            [uv, "pip", "compile", "-", "--python", sys.executable, "--quiet", "--no-header"],
            "\n".join(requirements) + "\n",
        )
        plan = [sys.executable, "-m", "mvbridge", "plan", "--json", *requirements]
        cold, said = timed([*plan, "--refresh"], MVBRIDGE_CACHE_DIR=cache)
        warm, _ = timed(plan, MVBRIDGE_CACHE_DIR=cache)
        facts = json.loads(said[: said.rindex("}") + 1])
        asked = re.search(r"after (\d+) question\(s\): (\d+) resolved", said)
        out[size] = {
            "baseline_s": baseline,
            "cold_s": cold,
            "warm_s": warm,
            "groups": len(facts["groups"]),
            "questions": int(asked.group(1)) if asked else -1,
            "resolver_runs": int(asked.group(2)) if asked else -1,
        }
    return out


def summarise(rounds: list[dict[int, dict[str, float]]]) -> dict:
    table = {}
    for size in SIZES:
        rows = [r[size] for r in rounds]
        entry = {
            "requirements": size,
            "clusters": SIZES[size],
            "groups": rows[0]["groups"],
            "questions": rows[0]["questions"],
            "resolver_runs": rows[0]["resolver_runs"],
            "baseline_ms": round(statistics.median(r["baseline_s"] for r in rows) * 1000),
        }
        for kind in ("cold", "warm"):
            ratios = [r[f"{kind}_s"] / r["baseline_s"] for r in rows]
            entry[f"{kind}_ms"] = round(statistics.median(r[f"{kind}_s"] for r in rows) * 1000)
            entry[f"{kind}_ratio"] = round(statistics.median(ratios), 2)
            entry[f"{kind}_spread"] = [round(min(ratios), 2), round(max(ratios), 2)]
        table[size] = entry
    return table


def markdown(table: dict, rounds: int) -> str:
    lines = [
        f"`python bench/plan.py --rounds {rounds}`: median of {rounds} rounds, ratio to one "
        "`uv pip compile` of the whole list in the same round (min-max over rounds).",
        "",
        "| Requirements | Clusters | Groups | Questions (uv runs) | uv pip compile | plan, cold | "
        "ratio | plan, warm | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in table.values():
        lines.append(
            f"| {e['requirements']} | {e['clusters']} | {e['groups']} | {e['questions']} "
            f"({e['resolver_runs']}) | {e['baseline_ms']} ms | {e['cold_ms']} ms | "
            f"{e['cold_ratio']}x ({e['cold_spread'][0]}-{e['cold_spread'][1]}) | "
            f"{e['warm_ms']} ms | {e['warm_ratio']}x "
            f"({e['warm_spread'][0]}-{e['warm_spread'][1]}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mvbridge-bench-plan-") as cache:
        one_round(cache)  # warms uv's HTTP cache and the interpreter facts; not counted
        rounds = []
        for number in range(args.rounds):
            rounds.append(one_round(cache))
            print(f"round {number + 1}/{args.rounds} done", file=sys.stderr)
    table = summarise(rounds)
    results = HERE / "results"
    (results / "plan.json").write_text(
        json.dumps({"rounds": args.rounds, "table": list(table.values())}, indent=2) + "\n"
    )
    text = markdown(table, args.rounds)
    (results / "plan.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main()

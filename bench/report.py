"""Turn raw rounds into in-round ratios (median, min, max), the targets, Markdown and JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from . import targets
from .measures import MEASURES, Measure
from .systems import PEERS

TIMES = "\u00d7"
DASH = "\u2013"
RATIO_MEASURES = ["noop", "small", "method", "bytes", "array", "threads", "threads16", "cold"]
RATIO_MEASURES += ["cold_numpy"]
RATIO_MEASURES += ["generator"]


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _in_round_ratios(
    rounds: list[dict[str, Any]], measure: Measure, system: str, other: str
) -> list[float]:
    ratios = []
    for one in rounds:
        results = one["results"].get(measure.key, {})
        mine = _number(results.get(system, {}).get(measure.primary))
        theirs = _number(results.get(other, {}).get(measure.primary))
        if mine is not None and theirs:
            ratios.append(mine / theirs)
    return ratios


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Per measure and system: metric medians/min/max, in-round ratio to the baseline, n/a."""
    rounds = raw["rounds"]
    summary: dict[str, Any] = {}
    for measure in MEASURES:
        per_system: dict[str, Any] = {}
        for system in raw["systems"]:
            key = system["key"]
            if measure.only and key not in measure.only:
                continue
            outcomes = [r["results"].get(measure.key, {}).get(key, {}) for r in rounds]
            entry: dict[str, Any] = {}
            metrics: dict[str, Any] = {}
            for metric, _ in measure.columns:
                values = [v for v in (_number(o.get(metric)) for o in outcomes) if v is not None]
                if values:
                    metrics[metric] = _stats(values)
                else:
                    texts = {o[metric] for o in outcomes if isinstance(o.get(metric), str)}
                    if texts:
                        metrics[metric] = {"text": " / ".join(sorted(texts))}
            if metrics:
                entry["metrics"] = metrics
            baseline = system.get("baseline") or measure.baseline
            if measure.baseline and baseline:
                ratios = _in_round_ratios(rounds, measure, key, baseline)
                if ratios:
                    entry["ratio"] = {**_stats(ratios), "rounds": len(ratios)}
                    if baseline != measure.baseline:
                        entry["ratio"]["against"] = baseline
            errors = sorted({o["error"] for o in outcomes if "error" in o})
            if errors:
                entry["errors"] = errors
            reasons = sorted({o["na"] for o in outcomes if "na" in o})
            if reasons and "metrics" not in entry:
                entry["na"] = "; ".join(reasons)
            if any(o.get("extrapolated") for o in outcomes):
                entry["extrapolated"] = True
            per_system[key] = entry
        summary[measure.key] = per_system
    return summary


def compare_peers(raw: dict[str, Any]) -> dict[str, Any]:
    """mvbridge ÷ each peer in the same round (median, min, max) and whether mvbridge leads."""
    table: dict[str, Any] = {}
    for measure in MEASURES:
        if measure.key not in RATIO_MEASURES:
            continue
        row: dict[str, Any] = {}
        for peer in PEERS:
            ratios = _in_round_ratios(raw["rounds"], measure, "mvbridge", peer)
            if not ratios:
                row[peer] = None
                continue
            mid = statistics.median(ratios)
            ahead = mid < 1 if measure.better == "lower" else mid > 1
            row[peer] = {**_stats(ratios), "mvbridge_ahead": ahead}
        table[measure.key] = row
    return table


def evaluate_targets(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue, judged on the median of the per-round ratios."""
    primary = {measure.key: measure.primary for measure in MEASURES}
    return [targets.evaluate(t, raw["rounds"], primary[t.measure]) for t in targets.TARGETS]


# -- Markdown ----------------------------------------------------------------------------------
def fmt(value: float | None) -> str:
    """A number with sensible precision for a table."""
    if value is None:
        return ""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 0.995:  # 0.9996 reads "1.00", not "1"
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_ratio(stats: dict[str, float] | None) -> str:
    """``median x [min-max]`` (with the multiplication sign and an en dash)."""
    if not stats:
        return ""
    return f"{fmt(stats['median'])}{TIMES} [{fmt(stats['min'])}{DASH}{fmt(stats['max'])}]"


def _labels(raw: dict[str, Any]) -> dict[str, str]:
    return {system["key"]: system["label"] for system in raw["systems"]}


def _target_cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return ""
    if result["status"] == "n/a":
        return f"{result['target']}: n/a"
    return f"{result['target']}: **{result['status']}**"


def _targets_table(data: dict[str, Any]) -> list[str]:
    titles = {measure.key: measure.title for measure in MEASURES}
    labels = _labels(data)
    lines = [
        "| measure | target | mvbridge / baseline, per round: median [min\u2013max] | status |",
        "|---|---|---|---|",
    ]
    for result in data["targets"]:
        title = titles[result["measure"]]
        if result["status"] == "n/a":
            lines.append(f"| {title} | {result['target']} | n/a: {result['reason']} | n/a |")
            continue
        kind, unit, baseline = result["kind"], result["unit"], result["baseline"]
        if kind in ("absolute", "added", "floor"):
            ratio = (
                f"{fmt(result['median'])}{unit} "
                f"[{fmt(result['min'])}{unit}{DASH}{fmt(result['max'])}{unit}]"
            )
            if kind == "added":
                ratio += f" more than {labels.get(baseline, baseline)}"
        elif kind == "speedup":
            ratio = f"{fmt_ratio(result)} (per-item time \u00f7 batched time)"
        else:
            ratio = f"{fmt_ratio(result)} vs {labels.get(baseline, baseline)}"
        lines.append(f"| {title} | {result['target']} | {ratio} | **{result['status']}** |")
    return lines


def _peers_table(data: dict[str, Any]) -> list[str]:
    titles = {measure.key: measure.title for measure in MEASURES}
    labels = _labels(data)
    header = " | ".join(labels.get(peer, peer) for peer in PEERS)
    lines = [f"| measure | {header} |", "|---|" + "---|" * len(PEERS)]
    for key, row in data["peers"].items():
        cells = []
        for peer in PEERS:
            stats = row.get(peer)
            if stats is None:
                cells.append("n/a")
            else:
                word = "mvbridge ahead" if stats["mvbridge_ahead"] else f"**{peer} ahead**"
                cells.append(f"{fmt_ratio(stats)} {word}")
        lines.append(f"| {titles[key]} | " + " | ".join(cells) + " |")
    return lines


def _measure_table(measure: Measure, data: dict[str, Any]) -> list[str]:
    labels = _labels(data)
    entries = data["summary"][measure.key]
    by_system: dict[str, dict[str, Any]] = {}
    for result in data["targets"]:  # the first target of each system for this measure
        if result["measure"] == measure.key:
            by_system.setdefault(result.get("system", targets.SYSTEM), result)
    headers = ["system"] + [header for _, header in measure.columns]
    if measure.baseline:
        headers.append(f"{TIMES} {labels.get(measure.baseline, measure.baseline)}")
    if by_system:
        headers.append("target")
    lines = ["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|"]
    for key, entry in entries.items():
        cells = [labels.get(key, key)]
        metrics = entry.get("metrics", {})
        if not metrics:
            why = entry.get("na") or "; ".join(entry.get("errors", [])) or "not measured"
            cells.append(f"n/a: {why}")
            cells += [""] * (len(headers) - 2)
        else:
            for index, (metric, _) in enumerate(measure.columns):
                stats = metrics.get(metric, {})
                cell = stats.get("text", fmt(stats.get("median")))
                if index == 0 and entry.get("extrapolated"):
                    cell += " \u2020"
                if index == 0 and entry.get("errors"):
                    cell += f" (errors: {'; '.join(entry['errors'])})"
                cells.append(cell)
            if measure.baseline:
                ratio = entry.get("ratio")
                against = (ratio or {}).get("against")
                cells.append(
                    fmt_ratio(ratio) + (f" vs {labels.get(against, against)}" if against else "")
                )
            if by_system:
                cells.append(_target_cell(by_system[key]) if key in by_system else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(data: dict[str, Any]) -> str:
    """The whole results page."""
    meta = data["meta"]
    config = data["config"]
    packages = meta["packages"]
    mvb = meta["mvbridge"]
    dirty = ", with uncommitted changes" if mvb["uncommitted_changes"] else ""
    done = len(data["rounds"])
    lines = [
        f"Run of {meta['date']}: Python {meta['python']} ({meta['implementation']}) on "
        f"{meta['platform']}, {meta['cpu_count']} CPUs ({meta['cpu_model']}); "
        f"{done} interleaved round{'s' if done != 1 else ''}"
        f"{' (quick)' if config['quick'] else ''}, {config['total_seconds']:.0f} s in all. "
        f"mvbridge {mvb['version']} at commit {mvb['commit'] or '?'}{dirty}.",
        "",
        "Versions: "
        + ", ".join(f"{name} {version}" for name, version in packages.items() if version)
        + f", libzmq {meta['libzmq']}.",
        "",
        "Every ratio is taken inside one round, against the baseline measured in that same "
        "round; a cell shows the median of the per-round ratios and [min\u2013max] over "
        "rounds. Absolute values are medians over rounds. \u2020 = extrapolated to 100,000 "
        f"items from what was iterated in {config['limits']['generator_seconds']} s.",
    ]
    array_mb = config["limits"]["array_bytes"] / 1e6
    if array_mb != 100:
        lines += ["", f"Note: this run echoed a {array_mb:g} MB array, not 100 MB."]
    if data.get("error"):
        lines += ["", f"Note: the suite stopped on an error after these rounds: {data['error']}."]
    if data.get("stopped_early"):
        lines += ["", f"Note: {data['stopped_early']}."]
    lines += ["", "### Targets (issues 4 and 11)", "", *_targets_table(data)]
    lines += [
        "",
        "### mvbridge against the peers",
        "",
        "mvbridge \u00f7 peer in the same round, of each measure's main figure (times: below "
        f"1{TIMES} means mvbridge is faster; rates, GB/s and calls/s: above 1{TIMES} means it is).",
        "",
        *_peers_table(data),
    ]
    for measure in MEASURES:
        better = "lower is better" if measure.better == "lower" else "higher is better"
        lines += ["", f"### {measure.title}", "", f"{better}.", "", *_measure_table(measure, data)]
    lines += ["", "### Systems", "", "| system | how it is driven |", "|---|---|"]
    for system in data["systems"]:
        how = system["notes"] or ""
        if system["skipped"]:
            how = f"n/a: {system['skipped']}" + (f" ({how})" if how else "")
        lines.append(f"| {system['label']} | {how} |")
    return "\n".join(lines) + "\n"


DOCS_START = "<!-- results: start (written by python bench/run.py --update-docs) -->"
DOCS_END = "<!-- results: end -->"


def update_docs(page: Path, results: str) -> bool:
    """Replace the results block of ``page`` (between the markers) with ``results``.

    Returns:
        False when the page has no such block (it is left alone).
    """
    text = page.read_text()
    start, end = text.find(DOCS_START), text.find(DOCS_END)
    if start < 0 or end < start:
        return False
    page.write_text(text[: start + len(DOCS_START)] + "\n\n" + results + "\n" + text[end:])
    return True


def write(data: dict[str, Any], directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.json`` and ``NAME.md`` into ``directory``; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{name}.json"
    md_path = directory / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    md_path.write_text(markdown(data))
    return json_path, md_path

"""A plan as text: the table ``mvbridge plan`` prints, or its one JSON object (``--json``).

Internal. The JSON object is a public format (docs/reference/cli.md):
``{"python": "3.11", "groups": [{"name", "requirements", "resolved"}],
"conflicts": [{"requirements", "reason"}]}``.
"""

from __future__ import annotations

import json

from .planner import Plan


def as_json(plan: Plan) -> str:
    """The plan as one JSON object."""
    return json.dumps(
        {
            "python": plan.target.minor,
            "groups": [
                {"name": g.name, "requirements": g.requirements, "resolved": g.resolved}
                for g in plan.groups
            ],
            "conflicts": [
                {"requirements": c.requirements, "reason": c.reason} for c in plan.conflicts
            ],
        },
        indent=2,
    )


def as_table(plan: Plan) -> str:
    """The plan as a table of groups, then its conflicts, one per line."""
    rows = [("GROUP", "REQUIREMENTS", "RESOLVES TO")]
    for group in plan.groups:
        name = f"{group.name} (stays in the host)" if group.host else group.name
        pins = " ".join(f"{d}=={v}" for d, v in group.resolved.items())
        rows.append((name, ", ".join(group.requirements), pins))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}".rstrip() for r in rows]
    count = len(plan.groups)
    fewest = (
        "the fewest possible"
        if plan.exact
        else "found by the greedy search (too many requirements in conflicts to prove the fewest)"
    )
    lines += ["", f"{count} group(s) for Python {plan.target.minor}, {fewest}."]
    conflicts = [c for c in plan.conflicts if not c.nowhere]
    if conflicts:
        lines.append("Conflicts:")
        lines += [f"  {' + '.join(c.requirements)}: {c.reason}" for c in conflicts]
    nowhere = [c for c in plan.conflicts if c.nowhere]
    if nowhere:
        lines.append("Resolve nowhere (left out of every group):")
        lines += [
            f"  {c.requirements[0]}: {c.reason.removeprefix('resolves nowhere: ')}" for c in nowhere
        ]
    return "\n".join(lines)

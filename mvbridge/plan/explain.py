"""Each conflict in one line, shortened from the resolver's own message; and who it names.

Internal. uv words a conflict as PubGrub's derivation ("Because A depends on B and you require
A, we can conclude that ... And because you require C, ..."); pip lists its causes ("The user
requested C", "A 1.0 depends on B"). Only the premises matter to a reader: what each side
needs, and what was asked for. The conclusions in between are dropped. A message this module
does not recognise is kept whole, only cleaned of glyphs and line breaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CONCLUSION = re.compile(r",?\s*we can conclude that .*?(?:\.(?=\s|$)|$)")
_MARKER = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\{([^}]*)\}(\S*)")
_FROM_VERSIONS = re.compile(r"\s*\(from versions:[^)]*\)")
_LIMIT = 400
_GLYPHS = "\u00d7\u2570\u2500\u25b6"  # the cross and the arrow uv draws without --quiet


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def mentioned(message: str) -> set[str]:
    """The canonical distribution names a resolver's message could be speaking of."""
    return {canonical(word) for word in _NAME.findall(message)}


def shorten(message: str, python: str) -> str:
    """The resolver's ``message`` as one line: the premises of the conflict, then the Python.

    ``"requests==2.25.1 needs idna>=2.5,<3; idna==3.4 is required (Python 3.11)"``.
    """
    text = _one_line(message)
    facts = _uv_premises(text) if "Because" in text else _pip_premises(message)
    short = "; ".join(_merge(facts)) if facts else text
    if len(short) > _LIMIT:
        short = short[: _LIMIT - 3].rstrip() + "..."
    return f"{short} (Python {python})"


def _one_line(message: str) -> str:
    lines = []
    for line in message.splitlines():
        line = line.strip().lstrip(_GLYPHS).strip()
        if not line or "No solution found when resolving" in line or "ResolutionImpossible" in line:
            continue
        lines.append(re.sub(r"^(cause|error|ERROR):\s*", "", line))
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def _uv_premises(text: str) -> list[str]:
    """Premises of a PubGrub derivation, conclusions dropped, each reworded."""
    facts: list[str] = []
    for chunk in re.split(r"\b(?:And because|Because|and because)\b", text):
        chunk = _CONCLUSION.sub("", chunk).strip(" ,.")
        if not chunk:
            continue
        verb = ""
        for clause in re.split(r"\s+and\s+(?=\S)", chunk):
            clause = clause.strip(" ,.")
            if clause.startswith("we know from"):  # a reference back to an earlier conclusion
                continue
            if clause.startswith("you require "):
                verb, clause = "you require", clause.removeprefix("you require ").strip()
            elif (
                " depends on " in clause
                or clause.startswith(("there is", "only "))
                or (" was not found" in clause or " does not satisfy " in clause)
            ):
                verb = ""
            elif verb:  # "you require A and B": B inherits the verb
                pass
            facts.append(_reword(f"{verb} {clause}".strip()))
    return [f for f in facts if f]


def _reword(clause: str) -> str:
    clause = _MARKER.sub(lambda m: f"{m.group(1)}{m.group(3)} (when {m.group(2)})", clause)
    clause = re.sub(r"one of: (.*)", lambda m: " or ".join(m.group(1).split()), clause)
    if clause.startswith("you require "):
        return clause.removeprefix("you require ") + " is required"
    if clause.startswith("there is no version of "):
        return "no release matches " + clause.removeprefix("there is no version of ")
    if clause.startswith("only "):
        return ""  # "only dep-a==1.0 is available", "only the following versions...": context
    clause = clause.replace(" was not found in the package registry", " is not on the index")
    return clause.replace(" depends on ", " needs ")


def _pip_premises(message: str) -> list[str]:
    facts = []
    for line in message.splitlines():
        line = line.strip().removeprefix("ERROR: ").strip()
        if line.startswith("The user requested "):
            facts.append(line.removeprefix("The user requested ").strip() + " is required")
        elif " depends on " in line:
            who, needs = line.split(" depends on ", 1)
            parts = who.split()
            who = f"{parts[0]}=={parts[1]}" if len(parts) == 2 else who
            facts.append(f"{who} needs {needs.replace(' and ', ',')}")
        elif line.startswith("Could not find a version that satisfies the requirement "):
            wanted = line.removeprefix("Could not find a version that satisfies the requirement ")
            facts.append("no release matches " + _FROM_VERSIONS.sub("", wanted))
    return facts


def _merge(facts: Iterable[str]) -> list[str]:
    """Drop repeats; drop "A is required" when another fact already names A; fold the rest
    into one "A and B are both required"."""
    facts = list(dict.fromkeys(facts))
    others = [f for f in facts if not f.endswith(" is required")]
    required = [
        f"({wanted})" if " or " in wanted else wanted
        for wanted in (f.removesuffix(" is required") for f in facts if f.endswith(" is required"))
        if not any(wanted in other for other in others)
    ]
    if len(required) == 1:
        others.append(f"{required[0]} is required")
    elif len(required) == 2:
        others.append(f"{required[0]} and {required[1]} are both required")
    elif required:
        others.append(f"{', '.join(required[:-1])} and {required[-1]} are all required")
    return others

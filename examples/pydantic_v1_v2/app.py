"""A host on pydantic 2 uses a package that still needs pydantic 1, in one process.

The host's interpreter has pydantic 2 installed; legacy_models runs in the env "legacy" of
mvbridge.toml, with pydantic 1.10. From this folder: python -m mvbridge sync && python app.py
"""

from __future__ import annotations

import pydantic
from pydantic import BaseModel, ConfigDict, field_validator

import mvbridge
from mvbridge import legacy_models  # a proxy module: runs in the env's worker, on pydantic 1


class User(BaseModel):
    """The host's model, written for pydantic 2."""

    model_config = ConfigDict(str_strip_whitespace=True, frozen=True)

    id: int
    name: str
    email: str
    tags: list[str] = []

    @field_validator("email")
    @classmethod
    def email_lowercase(cls, value: str) -> str:
        return value.lower()


DATA = {"id": "42", "name": "  Ada Lovelace ", "email": "ADA@Example.org", "tags": ["admin"]}
BAD = {"id": "forty-two", "name": "Ada", "email": "ada@example.org"}


def main() -> None:
    host = User.model_validate(DATA).model_dump()
    legacy = legacy_models.parse_user(DATA)  # a dict goes in and comes back by value
    rows = [
        ("input", DATA),
        (f"host, pydantic {pydantic.VERSION}", host),
        (f"legacy_models, pydantic {legacy_models.pydantic_version()}", legacy),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"same result: {host == legacy}")

    # Invalid input fails on both sides. pydantic differs between them, so the legacy
    # ValidationError cannot be rebuilt here: it arrives as mvbridge.RemoteError.
    print(f"invalid input {BAD}:")
    try:
        User.model_validate(BAD)
    except pydantic.ValidationError as exc:
        print(f"  host:          pydantic.ValidationError ({exc.error_count()} error)")
    try:
        legacy_models.parse_user(BAD)
    except mvbridge.RemoteError as exc:
        print(f"  legacy_models: mvbridge.RemoteError for {exc.type_name}")


if __name__ == "__main__":
    main()

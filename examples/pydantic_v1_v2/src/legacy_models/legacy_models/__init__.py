"""A package written against pydantic 1: class Config, @validator, parse_obj() and .dict()."""

from __future__ import annotations

import pydantic
from pydantic import BaseModel, validator


class User(BaseModel):
    id: int
    name: str
    email: str
    tags: list[str] = []

    class Config:
        anystr_strip_whitespace = True  # pydantic 2 calls this str_strip_whitespace
        allow_mutation = False  # pydantic 2: frozen=True

    @validator("email")
    def email_lowercase(cls, value: str) -> str:
        return value.lower()


def parse_user(data: dict) -> dict:
    """Validate ``data`` with the pydantic 1 model and return it as a plain dict."""
    return User.parse_obj(data).dict()


def pydantic_version() -> str:
    """The version of pydantic this package runs with."""
    return str(pydantic.VERSION)

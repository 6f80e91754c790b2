"""Every setting of the service, read from the environment in one place.

The configuration table in docs/configuration.md lists the same names, defaults and meanings
(tests/test_docs.py checks it against these fields).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings; each field is read from the environment variable of the same name."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    model_path: Path = Field(
        Path("model_store/civil-words.safetensors"),
        description="model file to serve, or a directory: every <name>.safetensors in it is "
        "served as `name` (relative paths from the working directory)",
    )
    default_model: str | None = Field(
        None,
        description="the model a request without `model=` gets; needed when several are served",
    )
    host: str = Field("0.0.0.0", description="address to bind")  # noqa: S104 - a container
    port: int = Field(8000, ge=1, le=65535, description="port to bind")
    web_concurrency: int = Field(2, ge=1, le=64, description="gunicorn worker processes")
    threads: int = Field(2, ge=1, le=64, description="threads per worker (gthread)")
    max_n: int = Field(1000, ge=1, le=100_000, description="largest n accepted by /sample")
    max_word_len: int = Field(
        256,
        ge=1,
        le=10_000,
        description="the longest word: unconstrained words are cut there, constrained ones "
        "never exceed it (max_len's upper bound and its value when absent)",
    )
    rejection_budget: int = Field(
        200_000,
        ge=1,
        le=100_000_000,
        description="symbols one /sample request may draw for words that novel/unique reject; "
        "past it the request gets a 422",
    )
    lexicon_path: Path | None = Field(
        None,
        description="a word list (one word a line, optionally a tab and a Zipf frequency) that "
        "replaces wordfreq's as every served model's lexicon (its training words are added); "
        "unset: wordfreq's list for the model's --language, none without one",
    )
    lexicon_budget: int = Field(
        30_000_000,
        ge=1,
        le=10_000_000_000,
        description="lexicon work one request may do (OLD20 and neighbours; about 3,000 units "
        "a millisecond): past it /score and /sample get a 422, /pseudowords lists the rest "
        "of its targets as unmatched",
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="gunicorn and application log level"
    )
    timeout: int = Field(30, ge=1, description="seconds before a silent worker is restarted")
    graceful_timeout: int = Field(20, ge=1, description="seconds to finish requests on SIGTERM")
    keepalive: int = Field(5, ge=0, description="seconds to keep an idle connection open")
    prometheus_multiproc_dir: Path | None = Field(
        None,
        description="directory for metrics shared by the workers; `serve` creates a "
        "temporary one if unset, and wipes it at start",
    )

    @field_validator("default_model", "lexicon_path", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

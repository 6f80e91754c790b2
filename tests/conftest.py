"""Shared fixtures: the corpus, generated word lists, the notebook's reference runs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.reference import run_notebook

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "data" / "civil_mots.txt"
CODE_CIVIL = SHARED / "data" / "code_civil.txt"
SHIPPED_MODEL = ROOT / "model_store" / "civil-words.safetensors"
TUNED_MODEL = ROOT / "model_store" / "civil-words-tuned.safetensors"  # what `tune` picks
# The model shipped before word lists were stored (file format 1): old files must keep serving.
LEGACY_MODEL = ROOT / "tests" / "data" / "civil-words-v1.safetensors"


def neural_config(**changes) -> dict:
    """A model file's `config` for the neural method with the notebook's settings, and
    `changes`, as a loaded file and `/model` give it: with its order, 2 (which a file of
    format 1 or 2 does not store: it is added on load), and no lexicon language (the shipped
    models are trained with `--language fr`)."""
    config = {
        "method": "neural",
        "order": 2,
        "steps": 600,
        "lr": 50.0,
        "reg": 0.01,
        "seed": 2147483647,
        "smoothing": None,
        "holdout": 0.0,
        "split_seed": 2147483647,
        "language": None,
    }
    return {**config, **changes}


def _random_words(rng: random.Random, alphabet: str, count: int, max_len: int) -> list[str]:
    return sorted(
        {
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len)))
            for _ in range(count)
        }
    )


def generated_word_lists() -> dict[str, list[str]]:
    """Word lists with other alphabets and sizes, made up here (seeded, so repeatable)."""
    rng = random.Random(20261127)
    return {
        "single-word": ["anticonstitutionnellement"],
        "greek-cyrillic": _random_words(rng, "αβγδεζηθλμπστωжзклмнпф", 300, 9),
        "cjk-emoji-symbols": _random_words(rng, "水火木金土日月🙂🚀#$%&*+/<>?@^_~", 150, 6),
        "tiny-ab": ["a", "b", "ab", "ba", "aab"],
        "digits": _random_words(rng, "0123456789", 2000, 12),
    }


# The fast tier (`make test-fast`) is every test that runs in the test process alone. Those that
# start real servers are marked `server` in their modules; these start other processes (the CLI,
# promtool, kubectl, podman, the benchmarks) or run the notebook's own training loop, and are
# marked `slow` here, whole modules or the tests that use the CLI's fixtures.
SLOW_MODULES = {
    "test_bench",
    "test_cli",
    "test_deploy",
    "test_faults",
    "test_fuzz",
    "test_holdout",
    "test_hostile_models",
    "test_image",
    "test_limits",
    "test_load",
    "test_measure",
    "test_model",
    "test_model_store",
    "test_monitoring",
    "test_prometheus",
}
SLOW_FIXTURES = {"cli_runs"}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        if module in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    assert CORPUS.is_file(), f"the shared corpus is missing: {CORPUS}"
    return CORPUS


@pytest.fixture(scope="session")
def word_lists(tmp_path_factory, corpus_path) -> dict[str, Path]:
    """Name -> path of every word list the exactness tests use, the shared corpus first."""
    d = tmp_path_factory.mktemp("wordlists")
    paths = {"civil": corpus_path}
    for name, words in generated_word_lists().items():
        p = d / f"{name}.txt"
        p.write_text("".join(w + "\n" for w in words), encoding="utf-8")
        paths[name] = p
    return paths


_NOTEBOOK_RUNS: dict[str, object] = {}


@pytest.fixture(scope="session")
def notebook_run(word_lists):
    """The notebook's own run on a named word list (cached for the session)."""

    def get(name: str):
        if name not in _NOTEBOOK_RUNS:
            _NOTEBOOK_RUNS[name] = run_notebook(word_lists[name])
        return _NOTEBOOK_RUNS[name]

    return get


@pytest.fixture(scope="session")
def server():
    """The real server (gunicorn, 2 workers, free port) serving the shipped model."""
    from tests.server import start_server

    s = start_server(SHIPPED_MODEL, workers=2)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def app():
    """The Flask app on the shipped model, for fast tests with Flask's test client."""
    from service import create_app
    from service.settings import Settings

    return create_app(Settings(model_path=SHIPPED_MODEL))


@pytest.fixture()
def client(app):
    return app.test_client()

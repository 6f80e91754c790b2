"""The request examples of README.md and docs/*.md, run against a live server: they cannot drift.

The convention every example follows (and `test_no_request_outside_console_blocks` enforces):
a fenced ```console block; a line `$ curl ...` is a request (continued on the next line after a
trailing backslash), and the lines after it, up to the next `$ ` line or the end of the block,
are its answer as the server writes it. Other `$ ` lines (`make serve`, `kubectl ...`) are
shown, not run. curl's options are limited to `-s`/`-S`, `-H`, `-d` and `-X`; the host and port
of the URL are replaced by the test server's.

An answer that starts with `{` or `[` is JSON, in which `…` elides: as an array element, more
elements follow (each of the shape of the first shown); as an object member, more members may
follow; inside a string, any text. Each example is run against `civil-words serve` serving
both shipped models (`model_store/`, DEFAULT_MODEL=civil-words), and must answer:
- the status of the shown problem document (its `status`), or 200;
- the same keys recursively (none missing, none extra unless elided), the same JSON types and
  the same array lengths (unless elided);
- the same values (numbers within 1e-9): the very words of every seeded request, the versions,
  the figures. Only `GET /sample` without `seed` (a seed the server picks) is checked for its
  shape alone.
Any other answer is text (`/metrics`): each shown line must be a line of the answer, `…`
standing for any text.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from service.settings import Settings
from tests.server import start_server

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
SHIPPED = ("civil-words", "civil-words-tuned")
README_MAX_LINES = 250

ELLIPSIS = "…"
ELIDED = "\x00" + ELLIPSIS  # what a bare `…` becomes: no answer holds a NUL
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
CURL_LINE = re.compile(r"^\s*(\$\s+)?curl\s")


@dataclass
class Example:
    """One request of a page and the answer it shows."""

    where: str  # file:line of the `$ curl` line
    command: str
    answer: str
    method: str = "GET"
    path: str = "/"  # path and query
    headers: dict[str, str] = field(default_factory=dict)
    data: str | None = None

    @property
    def checks_values(self) -> bool:
        """False for the one request whose answer is not fixed: /sample without a seed."""
        url = urlsplit(self.path)
        return not (url.path == "/sample" and "seed" not in parse_qs(url.query))


# --- reading the pages -------------------------------------------------------------------


def console_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of every ```console block; other fences are skipped."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.groups()
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        if info == "console":
            blocks.append((i + 2, body))
        i = j + 1
    return blocks


def outside_console(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line not inside a ```console block."""
    out, lines = [], text.splitlines()
    fence, console = None, False
    for n, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence, console = m.group(2), m.group(3) == "console"
            continue
        if fence is not None and line.strip().startswith(fence):
            fence = None
            continue
        if not (fence is not None and console):
            out.append((n, line))
    return out


def examples_of(text: str, name: str) -> list[Example]:
    """The request examples of a page, in order."""
    found = []
    for first, body in console_blocks(text):
        i = 0
        while i < len(body):
            line = body[i]
            if not line.startswith("$ "):
                i += 1
                continue
            start = first + i
            command = line[2:]
            while command.endswith("\\") and i + 1 < len(body):
                i += 1
                command = command[:-1] + " " + body[i].strip()
            i += 1
            answer = []
            while i < len(body) and not body[i].startswith("$ "):
                answer.append(body[i])
                i += 1
            words = shlex.split(command, comments=True)
            if words and words[0] == "curl":
                found.append(curl(words[1:], f"{name}:{start}", command, "\n".join(answer)))
    return found


def curl(args: list[str], where: str, command: str, answer: str) -> Example:
    """The request a curl command line makes (the options the convention allows)."""
    e = Example(where=where, command=command, answer=answer.strip())
    url = None
    it = iter(args)
    for a in it:
        if a in ("-s", "-S", "-sS", "--silent"):
            continue
        if a in ("-H", "--header"):
            k, _, v = next(it).partition(":")
            e.headers[k.strip()] = v.strip()
        elif a in ("-d", "--data", "--data-raw"):
            e.data = next(it)
            e.method = "POST" if e.method == "GET" else e.method
        elif a in ("-X", "--request"):
            e.method = next(it)
        elif a.startswith("-") or url is not None:
            raise ValueError(f"{where}: {a!r}: not an option the examples' convention allows")
        else:
            url = a
    if url is None:
        raise ValueError(f"{where}: no URL")
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.hostname not in ("localhost", "127.0.0.1"):
        raise ValueError(f"{where}: {url}: examples ask the local server")
    e.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return e


def all_examples() -> list[Example]:
    found = []
    for page in PAGES:
        found += examples_of(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))
    return found


# --- the answers -------------------------------------------------------------------------


def parse_answer(text: str) -> object:
    """A shown JSON answer, with each bare `…` made an ELIDED marker (an array element, or an
    object member `ELIDED: null`); `…` inside strings is left for `mismatches`."""
    out, stack, in_string, escaped = [], [], False, False
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}":
            stack.pop()
        elif ch == ELLIPSIS:
            if not stack:
                raise ValueError("an ellipsis outside any array or object")
            marker = json.dumps(ELIDED)
            out.append(marker if stack[-1] == "[" else f"{marker}: null")
            continue
        out.append(ch)
    return json.loads("".join(out))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def mismatches(shown: object, got: object, values: bool, at: str = "") -> list[str]:
    """How an answer differs from the shown one: keys, types, array lengths and (with
    `values`) values."""
    where = at or "the answer"
    if _kind(shown) != _kind(got):
        return [f"{where}: {_brief(got)} ({_kind(got)}), shown as {_kind(shown)}"]
    if isinstance(shown, dict):
        assert isinstance(got, dict)
        problems = []
        for key, value in shown.items():
            if key == ELIDED:
                continue
            if key not in got:
                problems.append(f"{where}: no key {key!r}")
            else:
                problems += mismatches(value, got[key], values, f"{at}.{key}")
        if ELIDED not in shown:
            problems += [f"{where}: key {k!r} not shown" for k in got if k not in shown]
        return problems
    if isinstance(shown, list):
        assert isinstance(got, list)
        elided = bool(shown) and shown[-1] == ELIDED
        items = shown[:-1] if elided else shown
        if ELIDED in items:
            raise ValueError(f"{where}: an array elides only at its end")
        if len(got) < len(items) or (not elided and len(got) != len(items)):
            return [f"{where}: {len(got)} elements, shown {len(items)}{'+' if elided else ''}"]
        problems = []
        for k, value in enumerate(got):
            if k < len(items):
                problems += mismatches(items[k], value, values, f"{at}[{k}]")
            elif items:  # the elided elements: the shape of the first shown
                problems += mismatches(items[0], value, False, f"{at}[{k}]")
        return problems
    if not values:
        return []
    if isinstance(shown, str):
        assert isinstance(got, str)
        if ELLIPSIS in shown:
            pattern = ".*".join(map(re.escape, shown.split(ELLIPSIS)))
            ok = re.fullmatch(pattern, got, re.DOTALL) is not None
        else:
            ok = shown == got
    elif isinstance(shown, bool) or shown is None:
        ok = shown == got
    else:
        ok = math.isclose(shown, got, rel_tol=1e-9, abs_tol=1e-12)
    return [] if ok else [f"{where}: {_brief(got)}, shown {_brief(shown)}"]


def _brief(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def check(e: Example, status: int, content_type: str, body: str) -> list[str]:
    """Everything in which an answer differs from the example's shown answer."""
    if not e.answer:
        return ["no answer shown"]
    if e.answer[0] not in "[{":
        return check_text(e.answer, status, body)
    shown = parse_answer(e.answer)
    problem = isinstance(shown, dict) and isinstance(shown.get("status"), int) and "type" in shown
    expected = shown["status"] if problem else 200
    if status != expected:
        return [f"status {status}, shown {expected}: {body[:300]}"]
    media = "application/problem+json" if problem else "application/json"
    if content_type.split(";")[0].strip() != media:
        return [f"content type {content_type}, expected {media}"]
    return mismatches(shown, json.loads(body), e.checks_values)


def check_text(shown: str, status: int, body: str) -> list[str]:
    if status != 200:
        return [f"status {status}, shown 200"]
    lines = set(body.splitlines())
    problems = []
    for line in shown.splitlines():
        pattern = re.compile(".*".join(map(re.escape, line.split(ELLIPSIS))))
        if not any(pattern.fullmatch(have) for have in lines):
            problems.append(f"no line of the answer is {line!r}")
    return problems


def ask(server, e: Example) -> requests.Response:
    data = None if e.data is None else e.data.encode()
    return requests.request(e.method, server.url + e.path, headers=e.headers, data=data, timeout=60)


def run(server, e: Example) -> list[str]:
    r = ask(server, e)
    return check(e, r.status_code, r.headers.get("Content-Type", ""), r.text)


# --- the live examples -------------------------------------------------------------------

EXAMPLES = all_examples()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    for name in SHIPPED:
        shutil.copy(ROOT / "model_store" / f"{name}.safetensors", models)
    s = start_server(models, DEFAULT_MODEL="civil-words")
    yield s
    s.stop()


@pytest.mark.parametrize(
    "example", EXAMPLES, ids=[f"{e.where} {e.method} {e.path}" for e in EXAMPLES]
)
def test_example_answers_as_shown(server, example):
    problems = run(server, example)
    assert not problems, f"{example.where}: $ {example.command}\n" + "\n".join(problems)


def test_the_pages_hold_the_examples_they_should():
    """The parser finds the README's examples: the first shows both shipped models, and the
    requests most people make (generate, constrain, score, next symbol) are there."""
    by_page: dict[str, list[Example]] = {}
    for e in EXAMPLES:
        by_page.setdefault(e.where.split(":")[0], []).append(e)
    readme = [e.path for e in by_page["README.md"]]
    for path in (
        "/sample?n=5&seed=2147483647",
        "/sample?n=5&seed=2147483647&model=civil-words-tuned",
    ):
        assert path in readme, f"the README's first example, {path}, is missing"
    for endpoint in ("/score", "/next"):
        assert any(p.startswith(endpoint) for p in readme), endpoint
    assert any("prefix=" in p for p in readme) and any("novel=true" in p for p in readme)


def test_every_endpoint_has_an_example_in_the_api_page(server):
    """docs/api.md shows every operation of the OpenAPI document."""
    doc = server.get("/openapi.json").json()
    shown = {(e.method, urlsplit(e.path).path) for e in EXAMPLES if e.where.startswith("docs/api")}
    missing = [
        f"{method.upper()} {path}"
        for path, operations in doc["paths"].items()
        for method in operations
        if (method.upper(), path) not in shown
    ]
    assert not missing, f"docs/api.md has no example of {missing}"


def test_no_request_outside_console_blocks():
    """A curl line anywhere else would never be run."""
    stray = [
        f"{page.relative_to(ROOT)}:{n}: {line.strip()}"
        for page in PAGES
        for n, line in outside_console(page.read_text(encoding="utf-8"))
        if CURL_LINE.match(line)
    ]
    assert not stray, "requests outside ```console blocks:\n" + "\n".join(stray)


# --- the checker can fail ----------------------------------------------------------------

SEEDED = "$ curl -s 'localhost:8000/sample?n=5&seed=2147483647'\n"
NOTEBOOK = '{"words":["éssanée","mexiomerér","monts","ex","moût"],"n":5,"seed":2147483647,'
VERSION = '"model":"2750d8a4074a"}'


def one(markdown: str) -> Example:
    [e] = examples_of(markdown, "inline")
    return e


def test_a_doctored_example_fails_against_the_server(server):
    """The notebook's words pass; one word changed, or a key dropped, fails."""
    good = one(f"```console\n{SEEDED}{NOTEBOOK}{VERSION}\n```\n")
    assert run(server, good) == []
    wrong_word = one(f"```console\n{SEEDED}{NOTEBOOK.replace('monts', 'mots')}{VERSION}\n```")
    assert run(server, wrong_word) == ['.words[2]: "monts", shown "mots"']
    no_model = one(f"```console\n{SEEDED}{NOTEBOOK[:-1]}}}\n```")
    assert run(server, no_model) == ["the answer: key 'model' not shown"]
    wrong_status = one(
        "```console\n$ curl -s 'localhost:8000/sample?n=0'\n"
        '{"type":"…","title":"…","status":422,"detail":"…","instance":"/sample","errors":[…]}\n```'
    )
    assert run(server, wrong_status)[0].startswith("status 400, shown 422")


GOT = {
    "words": ["éssanée", "mexiomerér"],
    "n": 2,
    "ok": True,
    "holdout": None,
    "curve": [[0, 4.27], [10, 2.75], [20, 2.57]],
}


CASES = {
    "all-shown": ('{"words":["éssanée","mexiomerér"],"n":2,"ok":true,"holdout":null,'
                  '"curve":[[0,4.27],…]}', True, []),
    "string-wildcards": ('{"words":["éss…","…"],"n":2,…}', True, []),
    "shape-only": ('{"words":["x","y"],"n":3,…}', False, []),
    "a-word-differs": ('{"words":["éssanée","mexiomeré"],"n":2,…}', True,
                       ['.words[1]: "mexiomerér", shown']),
    "fewer-elements": ('{"words":["éssanée"],"n":2,…}', True, [".words: 2 elements, shown 1"]),
    "elided-array-may-end": ('{"words":["éssanée","mexiomerér",…],"n":2,…}', True, []),
    "elided-array-too-short": ('{"words":["a","b","c",…],"n":2,…}', False,
                               [".words: 2 elements, shown 3+"]),
    "element-types": ('{"words":[1,…],"n":2,…}', False,
                      ['.words[0]: "éssanée" (string)', ".words[1]: "]),
    "number-shown-as-string": ('{"words":[…],"n":"2",…}', True,
                               [".n: 2 (number), shown as string"]),
    "boolean-differs": ('{"words":[…],"n":2,"ok":false,…}', True, [".ok: true, shown false"]),
    "null-shown-as-object": ('{"words":[…],"n":2,"holdout":{…},…}', True,
                             [".holdout: null (null), shown as object"]),
    "key-not-shown": ('{"words":[…],"n":2,"ok":true,"holdout":null}', True,
                      ["the answer: key 'curve'"]),
    "key-missing": ('{"words":[…],"n":2,"gone":0,…}', True, ["the answer: no key 'gone'"]),
    "elided-elements-have-the-shape": (
        '{"curve":[[0,"4.27"],…],…}', False,
        [".curve[0][1]: 4.27 (number), shown as string", ".curve[1][1]: ", ".curve[2][1]: "]),
    "nested-lengths": ('{"curve":[[0,4.27,1],…],…}', False,
                       [".curve[0]: 2 elements, shown 3", ".curve[1]: ", ".curve[2]: "]),
}  # fmt: skip


@pytest.mark.parametrize(("shown", "values", "expected"), CASES.values(), ids=CASES.keys())
def test_the_checker_reports_what_differs(shown, values, expected):
    problems = mismatches(parse_answer(shown), GOT, values)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), (problem, start)


def test_the_text_checker_matches_whole_lines():
    metrics = 'civil_words_model_info{model="civil-words",version="2750d8a4074a"} 1.0\nup 1'
    assert check_text('civil_words_model_info{model="civil-words",…} 1.0', 200, metrics) == []
    assert check_text("civil_words_model_info", 200, metrics) != []
    assert check_text("up 1", 500, metrics) != []


def test_the_parser_reads_the_convention():
    e = one(
        "text\n```console\n$ make serve\n$ curl -s localhost:8000/score \\\n"
        "    -H 'Content-Type: application/json' -d '{\"words\":[\"zoé\"]}'\n"
        '{"scores":[…]}\n```\n    $ curl -s localhost:8000/loss\n'
    )
    assert (e.method, e.path, e.where) == ("POST", "/score", "inline:4")
    assert e.data == '{"words":["zoé"]}'
    assert e.headers == {"Content-Type": "application/json"} and e.answer == '{"scores":[…]}'
    stray = outside_console("```console\n$ curl -s x\n```\n    $ curl -s localhost:8000/loss\n")
    assert [n for n, line in stray if CURL_LINE.match(line)] == [4]
    with pytest.raises(ValueError, match="convention"):
        one("```console\n$ curl -s -o out localhost:8000/loss\n{}\n```")
    with pytest.raises(ValueError, match="local server"):
        one("```console\n$ curl -s https://example.org/loss\n{}\n```")


# --- the pages themselves ----------------------------------------------------------------


def test_the_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    for needed in ("make serve", "make test", "](docs/home.png)"):
        assert needed in text, needed
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", text))
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")}
    assert pages <= linked, f"pages the README does not link: {sorted(pages - linked)}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|<[^>]+>", "", heading.strip().lower())
    text = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: dict[str, int] = {}
    result = set()
    for _, line in outside_console(page.read_text(encoding="utf-8")):
        m = re.match(r"^#{1,6}\s+(.*)", line)
        if m:
            s = slug(m.group(1))
            n = found.get(s, 0)
            found[s] = n + 1
            result.add(s if n == 0 else f"{s}-{n}")
    return result


def test_links_between_the_pages_resolve():
    broken = []
    for page in PAGES:
        for n, line in outside_console(page.read_text(encoding="utf-8")):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", target):
                    continue
                file, _, anchor = target.partition("#")
                dest = (page.parent / file).resolve() if file else page
                if not dest.exists():
                    broken.append(f"{page.name}:{n}: {target}: no such file")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    broken.append(f"{page.name}:{n}: {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_the_configuration_table_is_the_settings():
    """docs/configuration.md's table: exactly Settings' fields, with their defaults (a code
    span where there is one; words such as 'unset' where it is None)."""
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`([A-Z_]+)`\s*\|([^|]*)\|([^|]*)\|\s*$", line)
        if m:
            rows[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    fields = Settings.model_fields
    assert set(rows) == {name.upper() for name in fields}
    for name, info in fields.items():
        default, meaning = rows[name.upper()]
        if info.default is None:
            assert "`" not in default, f"{name.upper()}: None is no value to show in code"
        else:
            assert default == f"`{info.default}`", f"{name.upper()}: {default}"
        assert meaning, name.upper()

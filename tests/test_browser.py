"""The home page end to end: the real server, Debian's Chromium driven by Playwright.

What only a browser shows: the page's scripts run under its Content-Security-Policy, the words
and numbers it displays are the API's own, the heatmap answers the mouse and the keyboard, the
"what comes next" bars walk the model one symbol at a time, a model of order N > 2 (which has no
bigram matrix) is shown without asking for one, and the layout holds on a phone. Every test ends
by checking the page logged no error, threw nothing, and asked no other host for anything.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from service.lm.methods import AddK
from service.lm.ready import open_model
from service.lm.store import load_model, save_model
from service.lm.train import train_to_file
from tests.conftest import CORPUS, ROOT, SHIPPED_MODEL
from tests.server import start_server

pytestmark = pytest.mark.server

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "artifacts"
README_SCREENSHOT = ROOT / "docs" / "home.png"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 740}
DEFAULT_N = 12  # the count the page asks for on load
NEXT_TOP = 12  # the "what comes next" bars: the likeliest symbols
TUNED_MODEL = ROOT / "model_store" / "civil-words-tuned.safetensors"
MAX_SEED = 2**63 - 1
# Chromium logs a fetch() answered 4xx as a console error; a test sending bad input on purpose
# (a 400, or constraints no word meets, a 422) expects exactly one such line per bad request,
# naming that request's URL.
FAILED_4XX = "Failed to load resource: the server responded with a status of 4"
# Records what the CSP refused, from before the page's own scripts run.
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def chromium_executable() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail(
            "Chromium is not installed (looked for `chromium` on PATH and /usr/bin/chromium): "
            "run `make browser-deps`",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser():
    executable = chromium_executable()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Home:
    """The home page in its own browser context, and everything it logged."""

    def __init__(self, browser: Browser, base: str, **context_options):
        self.base = base
        self.context = browser.new_context(**context_options)
        self.context.add_init_script(CSP_WATCH)
        self.page: Page = self.context.new_page()
        self.console_errors: list[tuple[str, str]] = []  # (text, url of the failing resource)
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console",
            lambda m: m.type == "error" and self.console_errors.append((m.text, m.location["url"])),
        )
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self) -> Home:
        response = self.page.goto(self.base + "/")
        assert response is not None and response.ok, response
        self.headers = response.headers
        # Loaded: the first batch of words, the numbers and the heatmap are on the page.
        expect(self.page.locator("#sample-result")).to_have_attribute("aria-busy", "false")
        expect(self.words_list).not_to_have_count(0)
        expect(self.page.locator("#stat-version")).not_to_have_text("…")
        expect(self.page.locator("#heatmap td[data-row]").first).to_be_attached()
        expect(self.page.locator("#score-result")).to_be_visible()
        expect(self.page.locator("#next-bars button")).not_to_have_count(0)
        return self

    # -- the generate form --
    @property
    def words_list(self) -> Locator:
        return self.page.locator("#words li")

    def words(self) -> list[str]:
        return self.words_list.all_inner_texts()

    def seed(self) -> str:
        return self.page.locator("#seed-used").inner_text()

    @property
    def seed_field(self) -> Locator:
        """The generate form's seed (the experiment section has one of its own)."""
        return self.page.locator("#sample-form").get_by_label("Seed")

    def sample_href(self) -> str:
        return self.page.locator("#sample-link").evaluate("a => a.href")

    def generate(self, n: str | int, seed: str | int | None) -> int:
        """Fill the form and click Generate; return the status of the /sample answer."""
        self.page.get_by_label("Count", exact=True).fill(str(n))
        self.seed_field.fill("" if seed is None else str(seed))
        with self.page.expect_response(lambda r: urlsplit(r.url).path == "/sample") as answer:
            self.page.get_by_role("button", name="Generate").click()
        expect(self.page.locator("#sample-result")).to_have_attribute("aria-busy", "false")
        return answer.value.status

    # -- the heatmap --
    def cell(self, i: int, j: int) -> Locator:
        return self.page.locator(f'#heatmap td[data-row="{i}"][data-col="{j}"]')

    def tooltip(self) -> Locator:
        return self.page.locator("#tooltip")

    def assert_clean(self, bad_requests: tuple[str, ...] = ()) -> None:
        """No console error (but one 400 per bad request sent on purpose), no exception, no
        CSP violation, no request to another host."""
        expected = sorted((FAILED_4XX, url) for url in bad_requests)
        errors = sorted(
            (FAILED_4XX, url) if text.startswith(FAILED_4XX) else (text, url)
            for text, url in self.console_errors
        )
        assert errors == expected, f"console errors: {self.console_errors}"
        assert self.page_errors == []
        assert self.page.evaluate("window.__cspViolations") == []
        strangers = [u for u in self.requests if not u.startswith(self.base + "/")]
        assert strangers == [], f"requests to other hosts: {strangers}"


@pytest.fixture()
def home(browser, server):
    """A factory: `home()` opens the page in a fresh desktop-sized (or given) context."""
    opened: list[Home] = []

    def open_home(**context_options) -> Home:
        h = Home(browser, server.url, **{"viewport": DESKTOP, **context_options})
        opened.append(h)
        return h.open()

    yield open_home
    for h in opened:
        h.context.close()


@pytest.fixture(scope="module")
def model(server) -> dict:
    return server.get("/model").json()


@pytest.fixture(scope="module")
def matrix(server) -> dict:
    return server.get("/matrix").json()


def api_words(server, n: int, seed: int | str) -> list[str]:
    r = server.get("/sample", params={"n": n, "seed": seed})
    assert r.status_code == 200, r.text
    return r.json()["words"]


def sig4(p: float) -> str:
    """p as the page writes it (JavaScript's toPrecision(4)), for 1e-6 <= p < 1."""
    assert 1e-6 <= p < 1, p
    text = f"{p:#.4g}"
    if "e" in text:  # Python writes 1.234e-05 where JavaScript keeps 0.00001234
        mantissa, exponent = text.split("e")
        text = "0." + "0" * (-int(exponent) - 1) + mantissa.replace(".", "")
    return text


def luminance(css: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# ---------------------------------------------------------------------------------------------
# Generate words


def test_first_batch_is_the_apis_and_can_be_replayed(home, server):
    h = home()
    # The page runs under its strict CSP, so a clean console means no inline script or style.
    csp = h.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    words = h.words()
    assert len(words) == DEFAULT_N
    assert h.page.get_by_label("Count").input_value() == str(DEFAULT_N)
    # The server picked the seed: shown whole (seeds pass 2^53, a JavaScript number's limit)...
    seed = h.seed()
    assert re.fullmatch(r"[0-9]+", seed), seed
    assert int(seed) <= MAX_SEED
    href = h.sample_href()
    assert href == f"{server.url}/sample?n={DEFAULT_N}&seed={seed}"
    assert h.page.locator("#sample-link").inner_text() == f"/sample?n={DEFAULT_N}&seed={seed}"
    # ...so the link replays the very words on the page.
    answer = requests.get(href, timeout=30).json()
    assert answer["words"] == words
    assert answer["seed"] == int(seed)
    expect(h.page.locator("#sample-model")).to_have_text(answer["model"])
    # The count's bounds are the server's, read from its OpenAPI document.
    doc = server.get("/openapi.json").json()
    n_param = next(p for p in doc["paths"]["/sample"]["get"]["parameters"] if p["name"] == "n")
    maximum = n_param["schema"]["maximum"]
    expect(h.page.get_by_label("Count")).to_have_attribute("max", str(maximum))
    expect(h.page.locator("#n-hint")).to_have_text(f"1 to {maximum} words")
    # The words are marked French for screen readers.
    assert h.page.locator("#words").get_attribute("lang") == "fr"
    h.assert_clean()


def test_generate_with_a_seed_shows_the_apis_words(home, server):
    h = home()
    first = h.words()
    cases = [
        (5, 2147483647, ["éssanée", "mexiomerér", "monts", "ex", "moût"]),  # the notebook's
        (3, 0, None),
        (1, MAX_SEED, None),  # not a float64: the page must carry it as text
        (1000, 42, None),
        (40, 123, None),
    ]
    for n, seed, expected in cases:
        assert h.generate(n, seed) == 200
        expect(h.page.locator("#seed-used")).to_have_text(str(seed))
        expect(h.words_list).to_have_count(n)
        words = h.words()
        assert words == api_words(server, n, seed), (n, seed)
        if expected is not None:
            assert words == expected
        assert h.sample_href() == f"{server.url}/sample?n={n}&seed={seed}"
        expect(h.page.locator("#sample-error")).to_be_empty()
    assert h.words() != first[:40]

    # "Use this seed" puts the shown seed in the form; the same seed gives the same words.
    assert h.generate(7, None) == 200
    seed, words = h.seed(), h.words()
    h.page.get_by_role("button", name="Use this seed").click()
    expect(h.seed_field).to_have_value(seed)
    expect(h.seed_field).to_be_focused()
    assert h.generate(7, seed) == 200
    assert h.words() == words
    h.assert_clean()


@pytest.mark.parametrize(
    ("n", "seed", "parameter"),
    [
        ("5000", "", "n"),  # over the maximum
        ("0", "", "n"),  # under the minimum
        ("3", "-1", "seed"),  # negative
        ("3", str(2**63), "seed"),  # one over the largest seed
        ("3", "douze", "seed"),  # not digits
        ("3", "1.5", "seed"),  # not an integer
    ],
)
def test_bad_input_shows_the_apis_problem(home, server, n, seed, parameter):
    h = home()
    before = h.words()
    params = {"n": n, "seed": seed} if seed else {"n": n}
    answer = server.get("/sample", params=params)
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert parameter in detail

    assert h.generate(n, seed) == 400
    alert = h.page.get_by_role("alert").filter(has_text=detail)
    expect(alert).to_have_text(detail)
    expect(alert).to_have_id("sample-error")
    field = h.seed_field if parameter == "seed" else h.page.get_by_label("Count")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert h.words() == before  # the last good batch stays

    # Put right, the error goes away.
    assert h.generate(3, 99) == 200
    expect(h.page.locator("#sample-error")).to_be_empty()
    expect(h.page.get_by_label("Count")).not_to_have_attribute("aria-invalid", "true")
    expect(h.seed_field).not_to_have_attribute("aria-invalid", "true")
    assert h.words() == api_words(server, 3, 99)
    h.assert_clean(bad_requests=(answer.url,))


# ---------------------------------------------------------------------------------------------
# The heatmap


def test_heatmap_has_a_cell_per_bigram_and_labels(home, model, matrix):
    h = home()
    alphabet = model["alphabet"]
    V = len(alphabet)
    assert matrix["alphabet"] == alphabet
    assert V == model["shape"][0] == 41
    cells = h.page.locator("#heatmap td[data-row][data-col]")
    expect(cells).to_have_count(V * V)
    coords = cells.evaluate_all("tds => tds.map(td => [+td.dataset.row, +td.dataset.col])")
    assert sorted(map(tuple, coords)) == [(i, j) for i in range(V) for j in range(V)]
    assert h.page.locator("#heatmap thead th[scope=col]").all_inner_texts() == alphabet
    assert h.page.locator("#heatmap tbody th[scope=row]").all_inner_texts() == alphabet
    # One tab stop for the whole grid; arrows move inside it.
    expect(h.page.locator("#heatmap [tabindex='0']")).to_have_count(1)

    # Coloured by probability: the likeliest bigram darker than the least likely one.
    P = matrix["probs"]
    flat = [(P[i][j], i, j) for i in range(V) for j in range(V)]
    (_, i_min, j_min), (_, i_max, j_max) = min(flat), max(flat)
    colour = "td => getComputedStyle(td).backgroundColor"
    light, dark = h.cell(i_min, j_min).evaluate(colour), h.cell(i_max, j_max).evaluate(colour)
    assert luminance(dark) < luminance(light) - 100, (dark, light)
    # The log scale spreads the small probabilities: a small one changes colour.
    h.page.get_by_label("log p").check()
    mid = next((i, j) for p, i, j in sorted(flat) if p > 0.001)
    before = h.cell(*mid).evaluate(colour)
    h.page.get_by_label("√p").check()
    assert h.cell(*mid).evaluate(colour) != before
    h.assert_clean()


def test_hovering_a_cell_shows_its_probability(home, model, matrix):
    h = home()
    alphabet = model["alphabet"]
    ix = {a: k for k, a in enumerate(alphabet)}
    P = matrix["probs"]
    V = len(alphabet)
    flat = [(P[i][j], i, j) for i in range(V) for j in range(V)]
    picks = [(ix["e"], ix["s"]), (ix["q"], ix["u"]), (0, ix["a"]), (V - 1, V - 1)]
    picks += [min(flat)[1:], max(flat)[1:]]
    tip = h.tooltip()
    for i, j in picks:
        h.cell(i, j).hover()
        text = f"P({alphabet[j]} | {alphabet[i]}) = {sig4(P[i][j])}"
        expect(tip).to_be_visible()
        expect(tip).to_have_text(text)
        expect(h.cell(i, j)).to_have_attribute("aria-label", text)
        shown = float(text.rsplit("= ", 1)[1])
        assert abs(shown - P[i][j]) <= 0.5 * 10 ** (math.floor(math.log10(P[i][j])) - 3)
        # The tooltip sits inside the window.
        box = tip.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= DESKTOP["width"]
    assert tip.inner_text() != ""
    assert sig4(P[ix["e"]][ix["s"]]) == "0.1686"
    h.page.mouse.move(2, 2)
    expect(tip).to_be_hidden()
    h.assert_clean()


def expect_prob(h: Home, server, alphabet: list[str], i: int, j: int) -> None:
    bigram = alphabet[i] + alphabet[j]
    answer = server.get("/prob", params={"bigram": bigram}).json()
    result = h.page.locator("#prob-result")
    expect(result).to_contain_text(f"P({alphabet[j]} | {alphabet[i]}) =")
    expect(result).to_contain_text(f"bigram “{answer['bigram']}”")
    expect(result.locator("#prob-value")).to_have_text(f"{answer['prob']:#.6g}")
    assert float(result.locator("#prob-value").inner_text()) == pytest.approx(
        answer["prob"], rel=1e-5
    )
    logprob = float(result.locator("#prob-log").inner_text().replace("\u2212", "-"))
    assert logprob == pytest.approx(answer["logprob"], abs=1e-4)
    link = result.locator("a")
    assert urlsplit(link.evaluate("a => a.href")).path == "/prob"
    assert parse_qs(urlsplit(link.evaluate("a => a.href")).query) == {"bigram": [bigram]}
    expect(h.cell(i, j)).to_have_attribute("aria-selected", "true")
    expect(h.page.locator('#heatmap td[aria-selected="true"]')).to_have_count(1)


def test_clicking_or_pressing_enter_on_a_cell_asks_prob(home, server, model):
    h = home()
    alphabet = model["alphabet"]
    ix = {a: k for k, a in enumerate(alphabet)}
    V = len(alphabet)
    page = h.page

    # The mouse: "qu", and bigrams with the start/end marker and accented letters.
    for a, b in [("q", "u"), (".", "é"), ("e", "."), ("'", "a")]:
        h.cell(ix[a], ix[b]).click()
        expect_prob(h, server, alphabet, ix[a], ix[b])

    # The keyboard: Tab reaches the grid (one stop), arrows move, Enter and Space ask /prob.
    page.get_by_label("√p").focus()
    page.keyboard.press("Tab")
    focused = page.locator("#heatmap td:focus")
    expect(focused).to_have_count(1)
    start = (int(focused.get_attribute("data-row")), int(focused.get_attribute("data-col")))
    assert start == (ix["'"], ix["a"])  # the roving stop follows the last clicked cell
    outline = focused.evaluate("td => getComputedStyle(td).outlineStyle")
    assert outline != "none", "a focused cell must show its focus"
    expect(h.tooltip()).to_be_visible()

    page.keyboard.press("Home")
    page.keyboard.press("PageUp")
    expect(h.cell(0, 0)).to_be_focused()
    page.keyboard.press("ArrowLeft")  # stays inside the grid
    page.keyboard.press("ArrowUp")
    expect(h.cell(0, 0)).to_be_focused()
    for _ in range(ix["e"]):
        page.keyboard.press("ArrowDown")
    for _ in range(ix["s"]):
        page.keyboard.press("ArrowRight")
    expect(h.cell(ix["e"], ix["s"])).to_be_focused()
    expect(h.tooltip()).to_have_text(re.compile(r"^P\(s \| e\) = 0\.1686$"))
    page.keyboard.press("Enter")
    expect_prob(h, server, alphabet, ix["e"], ix["s"])

    page.keyboard.press("End")
    page.keyboard.press("PageDown")
    expect(h.cell(V - 1, V - 1)).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    expect_prob(h, server, alphabet, V - 1, V - 1)
    expect(page.locator("#heatmap [tabindex='0']")).to_have_count(1)
    h.assert_clean()


# ---------------------------------------------------------------------------------------------
# The numbers, the structure, the layout


def test_numbers_are_the_models(home, model):
    h = home()
    page = h.page
    expect(page.locator("#stat-version")).to_have_text(model["version"])
    expect(page.locator("#stat-alphabet-size")).to_have_text(str(len(model["alphabet"])))
    expect(page.locator("#stat-alphabet")).to_have_text(" ".join(model["alphabet"]))
    expect(page.locator("#stat-examples")).to_have_text(f"{model['examples']:,}")
    expect(page.locator("#stat-corpus-words")).to_have_text(f"{model['corpus']['words']:,}")
    loss = model["loss"]
    for key in ("first", "last", "final", "nll"):
        expect(page.locator(f"#stat-loss-{key}")).to_have_text(f"{loss[key]:.4f}")
    assert f"{loss['first']:.4f}" == "4.2714" and f"{loss['last']:.4f}" == "2.3817"
    expect(page.locator("#stat-training")).to_contain_text(f"{model['config']['steps']} steps")
    expect(page.locator("#stat-order")).to_have_text(
        f"2: the next symbol depends on the previous symbol; {model['states']} states"
    )
    expect(page.locator("#stat-examples-unit")).to_have_text("bigrams")
    points = page.locator("#loss-curve polyline").get_attribute("points")
    assert points is not None and len(points.split()) == len(loss["curve"])
    ys = [float(p.split(",")[1]) for p in points.split()]
    assert ys[0] < ys[-1]  # SVG y grows downwards: the loss went down

    # Structure: one h1, a heading per section, labelled inputs, a named grid.
    expect(page.get_by_role("heading", level=1)).to_have_text("civil-words")
    headings = page.get_by_role("heading", level=2).all_inner_texts()
    assert headings == [
        "Generate words",
        "Score a word",
        "The numbers",
        "The model: P(next | previous)",
        "What comes next",
        "Experiment: matched pseudowords",
    ]
    expect(page.get_by_role("grid", name="The model")).to_be_visible()
    expect(page.get_by_role("spinbutton", name="Count")).to_be_visible()
    expect(page.locator("#sample-form").get_by_role("textbox", name="Seed")).to_be_visible()
    h.assert_clean()


def no_horizontal_overflow(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_phone_layout(home, model):
    ARTIFACTS.mkdir(exist_ok=True)
    h = home(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = h.page
    assert page.evaluate("window.innerWidth") == PHONE["width"]
    assert no_horizontal_overflow(page)
    # The heatmap scrolls inside its box instead of widening the page.
    scroller = page.locator("#heatmap-scroll")
    assert scroller.evaluate("s => s.scrollWidth > s.clientWidth")
    box = scroller.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    # Long seeds and 1000 words still fit.
    assert h.generate(1000, MAX_SEED) == 200
    expect(h.words_list).to_have_count(1000)
    assert no_horizontal_overflow(page)
    assert h.generate(8, 2147483647) == 200
    assert no_horizontal_overflow(page)

    # A tap on a cell at the far right: the tooltip stays on screen, the page does not widen.
    V = len(model["alphabet"])
    cell = h.cell(3, V - 1)
    cell.scroll_into_view_if_needed()
    cell.tap()
    expect(page.locator("#prob-value")).to_be_visible()
    tip = h.tooltip().bounding_box()
    assert tip is not None and tip["x"] >= 0 and tip["x"] + tip["width"] <= PHONE["width"]
    assert no_horizontal_overflow(page)

    # Screen by screen: a full-page capture re-lays out a mobile page at a false height.
    page.screenshot(path=ARTIFACTS / "home-phone-matrix.png")
    page.locator("#numbers").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "home-phone-numbers.png")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=ARTIFACTS / "home-phone.png")

    # What comes next: a tap on a bar adds its symbol; the bars fit the screen.
    bars = page.locator("#next-bars button.next-bar")
    bars.first.scroll_into_view_if_needed()
    first = bars.first.get_attribute("data-symbol")
    assert first not in (None, ".")
    with page.expect_response(lambda r: urlsplit(r.url).path == "/next"):
        bars.first.tap()
    expect(page.get_by_label("Beginning", exact=True)).to_have_value(first)
    expect(page.locator("#next-link")).to_have_text(f"/next?context={first}")
    box = page.locator("#next-bars").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert no_horizontal_overflow(page)
    page.locator("#next").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "home-phone-next.png")
    h.assert_clean()


def test_desktop_screenshots(home, model):
    """The README's picture: a fixed seed, one cell hovered and one asked, so it is repeatable."""
    ARTIFACTS.mkdir(exist_ok=True)
    README_SCREENSHOT.parent.mkdir(exist_ok=True)
    h = home(viewport={"width": 1280, "height": 1000})  # tall enough for the whole heatmap
    page = h.page
    assert no_horizontal_overflow(page)
    assert h.generate(24, 2147483647) == 200
    ix = {a: k for k, a in enumerate(model["alphabet"])}
    h.cell(ix["q"], ix["u"]).click()
    expect(page.locator("#prob-value")).to_be_visible()
    h.cell(ix["e"], ix["s"]).hover()
    expect(h.tooltip()).to_have_text("P(s | e) = 0.1686")
    page.screenshot(path=ARTIFACTS / "home-desktop.png", full_page=True)
    page.screenshot(path=README_SCREENSHOT)
    assert README_SCREENSHOT.stat().st_size < 300_000
    h.assert_clean()


# ---------------------------------------------------------------------------------------------
# Constraints, scores, the held-out figures


def set_constraints(page: Page, **values) -> None:
    """Open the constraints group and set its fields (text, numbers, check boxes)."""
    group = page.locator("#constraints")
    if group.get_attribute("open") is None:
        page.locator("#constraints summary").click()
    for name, value in values.items():
        field = page.locator(f"#{name}")
        if isinstance(value, bool):
            field.set_checked(value)
        else:
            field.fill(str(value))


def test_constraints_give_the_apis_words_and_a_link_that_replays_them(home, server):
    h = home()
    page = h.page
    expect(page.locator("#constraints")).not_to_have_attribute("open", "")
    set_constraints(page, prefix="mor", min_len=5, max_len=8, novel=True, unique=True)
    set_constraints(page, temperature="0.8", top_k=12)
    assert h.generate(30, 77) == 200
    expect(h.words_list).to_have_count(30)
    params = {"n": 30, "seed": 77, "prefix": "mor", "min_len": 5, "max_len": 8}
    params |= {"novel": "true", "unique": "true", "temperature": "0.8", "top_k": 12}
    expected = server.get("/sample", params=params).json()["words"]
    words = h.words()
    assert words == expected and len(set(words)) == 30
    assert all(w.startswith("mor") and 5 <= len(w) <= 8 for w in words)
    query = parse_qs(urlsplit(h.sample_href()).query)
    assert query == {k: [str(v)] for k, v in params.items()}
    assert requests.get(h.sample_href(), timeout=30).json()["words"] == words

    # Back to the defaults: the plain, notebook link again.
    set_constraints(page, prefix="", min_len="", max_len="", novel=False, unique=False)
    set_constraints(page, temperature="1", top_k="")
    assert h.generate(5, 2147483647) == 200
    assert h.words() == ["éssanée", "mexiomerér", "monts", "ex", "moût"]
    assert h.sample_href() == f"{server.url}/sample?n=5&seed=2147483647"
    h.assert_clean()


def test_constraints_no_word_meets_show_the_apis_problem(home, server):
    h = home()
    page = h.page
    before = h.words()
    # The least likely first letter, under top-k 2: no word can start with it.
    V = len(server.get("/model").json()["alphabet"])
    lm = open_model(SHIPPED_MODEL).lm
    worst = lm.alphabet[int(np.argsort(-lm.logP[lm.start], kind="stable")[V - 1])]
    set_constraints(page, prefix=worst, top_k=2)
    params = {"n": 4, "prefix": worst, "top_k": 2}
    answer = server.get("/sample", params=params)
    assert answer.status_code == 422
    assert h.generate(4, None) == 422
    alert = page.get_by_role("alert").filter(has_text=answer.json()["detail"])
    expect(alert).to_have_id("sample-error")
    for name in ("prefix", "top_k"):
        expect(page.locator(f"#{name}")).to_have_attribute("aria-invalid", "true")
    assert h.words() == before
    # A bad value (400) is marked the same way, on its own field.
    set_constraints(page, prefix="", top_k="", min_len=6, max_len=3)
    bad = server.get("/sample", params={"n": 4, "min_len": 6, "max_len": 3})
    assert h.generate(4, None) == 400
    expect(page.locator("#max_len")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#prefix")).not_to_have_attribute("aria-invalid", "true")
    h.assert_clean(bad_requests=(answer.url, bad.url))


def expect_score(h: Home, server, word: str) -> dict:
    answer = server.get("/score", params={"word": word}).json()
    page = h.page
    expect(page.locator("#score-word")).to_have_text(answer["word"])
    expect(page.locator("#score-logprob")).to_have_text(
        f"{answer['logprob']:.4f}".replace("-", "\u2212")
    )
    expect(page.locator("#score-nll")).to_have_text(f"{answer['nll_per_symbol']:.4f}")
    expect(page.locator("#score-perplexity")).to_have_text(f"{answer['perplexity']:#.4g}")
    bars = page.locator("#bigram-chart g.bar")
    expect(bars).to_have_count(answer["symbols"] + 1)
    shown = bars.evaluate_all(
        "gs => gs.map(g => [g.dataset.bigram, Number(g.dataset.logprob), "
        "g.querySelector('rect').getAttribute('height')])"
    )
    assert [b for b, _, _ in shown] == [b["bigram"] for b in answer["bigrams"]]
    assert [v for _, v, _ in shown] == [b["logprob"] for b in answer["bigrams"]]
    # Each bar names the context the model conditioned on (its tooltip).
    contexts = bars.evaluate_all("gs => gs.map(g => g.dataset.context)")
    assert contexts == [b["context"] for b in answer["bigrams"]]
    titles = bars.evaluate_all("gs => gs.map(g => g.querySelector('title').textContent)")
    for title, b in zip(titles, answer["bigrams"], strict=True):
        given = "start" if set(b["context"]) == {"."} else b["context"]
        symbol = "end" if b["bigram"][-1] == "." else b["bigram"][-1]
        assert title.startswith(f"P({symbol} | {given}): ln "), title
    # Bar heights follow -log P: the least likely bigram has the longest bar.
    heights = [float(height) for _, _, height in shown]
    assert heights.index(max(heights)) == min(
        range(len(shown)), key=lambda k: answer["bigrams"][k]["logprob"]
    )
    link = page.locator("#score-link").evaluate("a => a.href")
    assert parse_qs(urlsplit(link).query) == {"word": [word]}
    return answer


def test_score_a_word_shows_its_bigrams_as_bars(home, server):
    h = home()
    page = h.page
    first = expect_score(h, server, "maison")  # scored on load
    expect(page.locator("#score-corpus")).to_have_text("in the training list")
    assert first["in_corpus"] is True
    page.get_by_role("textbox", name="Word").fill("morbleu")
    with page.expect_response(lambda r: urlsplit(r.url).path == "/score"):
        page.get_by_role("button", name="Score").click()
    expect_score(h, server, "morbleu")
    expect(page.locator("#score-corpus")).to_have_text("not in the training list")
    # The chart has a text alternative naming its least likely bigram.
    expect(page.locator("#bigram-caption")).to_contain_text("8 bigrams")

    # A symbol outside the alphabet: the API's problem, and the last score stays.
    page.get_by_role("textbox", name="Word").fill("kayak")
    with page.expect_response(lambda r: urlsplit(r.url).path == "/score") as answer:
        page.get_by_role("button", name="Score").click()
    assert answer.value.status == 400
    detail = requests.get(answer.value.url, timeout=30).json()["detail"]
    expect(page.locator("#score-error")).to_have_text(detail)
    expect(page.get_by_role("textbox", name="Word")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#score-word")).to_have_text("morbleu")
    h.assert_clean(bad_requests=(answer.value.url,))


@pytest.fixture(scope="module")
def holdout_server(tmp_path_factory):
    """A model file of our own that reports a hold-out: config holdout > 0 and its figures."""
    m = load_model(SHIPPED_MODEL)
    path = tmp_path_factory.mktemp("holdout") / "holdout.safetensors"
    meta = {k: v for k, v in m.metadata.items() if k not in ("format", "alphabet", "version")}
    # The file format 2 of the shipped model: its config has no `order` (load_model adds it).
    meta["config"] = {**{k: v for k, v in m.config.items() if k != "order"}, "holdout": 0.1}
    # Every tenth word held out, but those holding a symbol no other word has.
    held = set(m.words[::10])
    rest = [w for w in m.words if w not in held]
    rare = set(m.alphabet[1:]) - set("".join(rest))
    held = sorted(w for w in held if not set(w) & rare)
    train = sorted(set(m.words) - set(held))
    meta["holdout"] = {"nll": 2.4561, "examples": 6512, "words": len(held), "skipped": 3}
    save_model(path, m.W, m.counts, m.alphabet, meta, train, held)
    s = start_server(path)
    yield s
    s.stop()


def test_training_and_held_out_nll_side_by_side(browser, holdout_server, server):
    model = holdout_server.get("/model").json()
    held = model["holdout"]["words"]
    assert model["word_list"]["heldout"] == held > 600
    h = Home(browser, holdout_server.url, viewport=DESKTOP).open()
    try:
        row = h.page.locator("#stat-holdout")
        expect(row).to_be_visible()
        expect(row).to_contain_text("training vs held-out")
        expect(h.page.locator("#stat-nll-train")).to_have_text(f"{model['loss']['nll']:.4f}")
        expect(h.page.locator("#stat-nll-heldout")).to_have_text("2.4561")
        expect(h.page.locator("#stat-holdout-words")).to_have_text(
            f"({held} held-out words, 6,512 bigrams, 3 skipped)"
        )
        h.assert_clean()
    finally:
        h.context.close()
    # The shipped model has no hold-out: no such row.
    plain = Home(browser, server.url, viewport=DESKTOP).open()
    try:
        expect(plain.page.locator("#stat-holdout")).to_be_hidden()
        plain.assert_clean()
    finally:
        plain.context.close()


# ---------------------------------------------------------------------------------------------
# Several models: the picker


@pytest.fixture(scope="module")
def two_models_server(tmp_path_factory):
    """The shipped model beside the counting model of the same corpus, served from a directory."""
    d = tmp_path_factory.mktemp("two-models")
    shutil.copyfile(SHIPPED_MODEL, d / "civil-words.safetensors")
    train_to_file(CORPUS, d / "counts.safetensors", method=AddK(1))
    s = start_server(d, DEFAULT_MODEL="civil-words")
    yield s
    s.stop()


def test_the_model_picker_asks_the_chosen_model(browser, two_models_server, server):
    """With several models, the page offers them; picking one makes every section ask it: the
    words, the numbers, the heatmap, a bigram's probability and a word's score."""
    s = two_models_server
    h = Home(browser, s.url, viewport=DESKTOP).open()
    try:
        page = h.page
        picker = page.get_by_label("Model", exact=True)
        expect(page.locator("#model-picker")).to_be_visible()
        expect(picker.locator("option")).to_have_text(
            ["civil-words \u2014 order 2, neural (default)", "counts \u2014 order 2, add-1"]
        )
        expect(picker).to_have_value("civil-words")
        expect(page.locator("#stat-version")).to_have_text(s.get("/model").json()["version"])

        counts = s.get("/model?model=counts").json()
        with page.expect_response(lambda r: urlsplit(r.url).path == "/matrix"):
            picker.select_option("counts")
        expect(page.locator("#stat-version")).to_have_text(counts["version"])
        expect(page.locator("#stat-training")).to_have_text(
            "counting model, order 2, add-1 smoothing"
        )
        expect(page.locator("#loss-caption")).to_contain_text("not trained by steps")
        expect(page.locator("#loss-curve")).to_be_hidden()
        expect(page.locator("#model-picker-hint")).to_contain_text(
            "counts, order 2: the next symbol depends on the previous symbol; 41 symbols"
        )

        assert h.generate(20, 2147483647) == 200
        expected = s.get("/sample?n=20&seed=2147483647&model=counts").json()["words"]
        assert h.words() == expected
        assert expected != s.get("/sample?n=20&seed=2147483647").json()["words"]
        assert "model=counts" in h.sample_href()

        i, j = counts["alphabet"].index("e"), counts["alphabet"].index("s")
        with page.expect_response(lambda r: urlsplit(r.url).path == "/prob") as answer:
            h.cell(i, j).click()
        assert "model=counts" in answer.value.url
        prob = s.get("/prob?bigram=es&model=counts").json()["prob"]
        expect(page.locator("#prob-value")).to_have_text(f"{prob:#.6g}")

        page.get_by_role("textbox", name="Word").fill("morbleu")
        with page.expect_response(lambda r: urlsplit(r.url).path == "/score") as answer:
            page.get_by_role("button", name="Score").click()
        assert "model=counts" in answer.value.url
        logprob = s.get("/score?word=morbleu&model=counts").json()["logprob"]
        expect(page.locator("#score-logprob")).to_have_text(f"{logprob:.4f}".replace("-", "\u2212"))
        h.assert_clean()
    finally:
        h.context.close()
    # One model: no picker.
    plain = Home(browser, server.url, viewport=DESKTOP).open()
    try:
        expect(plain.page.locator("#model-picker")).to_be_hidden()
    finally:
        plain.context.close()


# ---------------------------------------------------------------------------------------------
# Longer contexts: the notebook's bigram model beside the tuned order-7 model


@pytest.fixture(scope="module")
def orders_server(tmp_path_factory):
    """The two shipped models served from one directory, the notebook's the default."""
    d = tmp_path_factory.mktemp("orders")
    shutil.copyfile(SHIPPED_MODEL, d / "civil-words.safetensors")
    shutil.copyfile(TUNED_MODEL, d / "civil-words-tuned.safetensors")
    s = start_server(d, DEFAULT_MODEL="civil-words")
    yield s
    s.stop()


def next_params(context: str, model: str | None) -> dict[str, str]:
    return {"context": context} | ({"model": model} if model else {})


def expect_next(h: Home, s, context: str, model: str | None = None) -> dict:
    """The "what comes next" panel shows /next's answer for `context`: its state, the top
    symbols as bars ('.' as "end") with their probabilities, the rest summed up, the link."""
    params = next_params(context, model)
    answer = s.get("/next", params=params).json()
    page = h.page
    suffix = f"&model={model}" if model else ""
    expect(page.locator("#next-link")).to_have_text(f"/next?context={context}{suffix}")
    expect(page.locator("#next-result")).to_be_visible()
    expect(page.locator("#next-state")).to_have_text(answer["state"])
    top, rest = answer["next"][:NEXT_TOP], answer["next"][NEXT_TOP:]
    symbols = ["end" if n["symbol"] == "." else n["symbol"] for n in top]
    expect(page.locator("#next-bars .next-sym")).to_have_text(symbols)
    expect(page.locator("#next-bars .next-p")).to_have_text([sig4(n["prob"]) for n in top])
    bars = page.locator("#next-bars button.next-bar")
    shown = bars.evaluate_all("bs => bs.map(b => [b.dataset.symbol, Number(b.dataset.prob)])")
    assert shown == [[n["symbol"], n["prob"]] for n in top]
    # Bar lengths follow the probabilities, the likeliest full.
    widths = page.locator("#next-bars .next-fill").evaluate_all(
        "fs => fs.map(f => f.getBoundingClientRect().width / f.parentElement.clientWidth)"
    )
    assert widths[0] == pytest.approx(1, abs=0.01)
    for w, n in zip(widths, top, strict=True):
        assert w == pytest.approx(n["prob"] / top[0]["prob"], abs=0.01)
    expect(page.locator("#next-rest")).to_have_text(
        f"The other {len(rest)} symbols: {sig4(sum(n['prob'] for n in rest))} together."
    )
    link = page.locator("#next-link").evaluate("a => a.href")
    assert parse_qs(urlsplit(link).query, keep_blank_values=True) == {
        k: [v] for k, v in params.items()
    }
    expect(page.locator("#next-error")).to_be_empty()
    return answer


def type_context(h: Home, context: str) -> int:
    """Type a beginning into the panel; return the status of the /next answer it brings."""
    with h.page.expect_response(lambda r: urlsplit(r.url).path == "/next") as answer:
        h.page.get_by_label("Beginning", exact=True).fill(context)
    return answer.value.status


def test_next_panel_shows_the_apis_distribution_and_walks_the_model(browser, orders_server):
    s = orders_server
    h = Home(browser, s.url, viewport=DESKTOP).open()
    try:
        page = h.page
        field = page.get_by_label("Beginning", exact=True)
        # On load: the distribution of a word's first symbol.
        expect(field).to_have_value("")
        expect(page.locator("#next-state-hint")).to_have_text("(the start of a word)")
        expect_next(h, s, "")
        expect(page.get_by_role("button", name="Back")).to_be_hidden()

        assert type_context(h, "mais") == 200
        answer = expect_next(h, s, "mais")
        assert answer["state"] == "s"  # the bigram model conditions on the last symbol
        expect(page.locator("#next-state-hint")).to_have_text("(the previous symbol)")

        # A click on a bar adds its symbol; the panel asks again and follows.
        second = answer["next"][1]["symbol"]
        assert second != "."
        with page.expect_response(lambda r: urlsplit(r.url).path == "/next"):
            page.locator("#next-bars button.next-bar").nth(1).click()
        expect(field).to_have_value("mais" + second)
        expect_next(h, s, "mais" + second)

        # The keyboard: the new first bar has the focus (one tab stop), the arrows move it,
        # Enter walks on, Backspace steps back.
        bars = page.locator("#next-bars button.next-bar")
        expect(bars.first).to_be_focused()
        expect(page.locator('#next-bars button[tabindex="0"]')).to_have_count(1)
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        expect(bars.nth(2)).to_be_focused()
        third = bars.nth(2).get_attribute("data-symbol")
        assert third not in (None, ".")
        with page.expect_response(lambda r: urlsplit(r.url).path == "/next"):
            page.keyboard.press("Enter")
        expect(field).to_have_value(f"mais{second}{third}")
        expect_next(h, s, f"mais{second}{third}")
        expect(bars.first).to_be_focused()
        with page.expect_response(lambda r: urlsplit(r.url).path == "/next"):
            page.keyboard.press("Backspace")
        expect(field).to_have_value("mais" + second)
        expect_next(h, s, "mais" + second)
        with page.expect_response(lambda r: urlsplit(r.url).path == "/next"):
            page.get_by_role("button", name="Back").click()
        expect(field).to_have_value("mais")

        # "end" finishes the word; it can then be scored.
        answer = expect_next(h, s, "mais")
        p_end = next(n["prob"] for n in answer["next"] if n["symbol"] == ".")
        end = page.locator('#next-bars button[data-symbol="."]')
        expect(end.locator(".next-sym")).to_have_text("end")
        end.click()
        expect(page.locator("#next-done")).to_be_visible()
        expect(page.locator("#next-word")).to_have_text("mais")
        expect(page.locator("#next-end-prob")).to_have_text(f"P(end | s) = {sig4(p_end)}")
        expect(page.locator("#next-bars")).to_be_hidden()
        with page.expect_response(lambda r: urlsplit(r.url).path == "/score"):
            page.get_by_role("button", name="Score this word").click()
        expect(page.get_by_role("textbox", name="Word")).to_be_focused()
        expect_score(h, s, "mais")
        with page.expect_response(lambda r: urlsplit(r.url).path == "/next"):
            page.get_by_role("button", name="Start a new word").click()
        expect(field).to_have_value("")
        expect_next(h, s, "")
        h.assert_clean()
    finally:
        h.context.close()


def test_next_panel_bad_context_shows_the_reason(browser, orders_server):
    s = orders_server
    h = Home(browser, s.url, viewport=DESKTOP).open()
    try:
        page = h.page
        field = page.get_by_label("Beginning", exact=True)
        bad_urls = []
        for context, why in [("kayak", "'k' (position 1)"), ("ma.is", "end marker")]:
            with page.expect_response(lambda r: urlsplit(r.url).path == "/next") as answer:
                field.fill(context)
            assert answer.value.status == 400
            bad_urls.append(answer.value.url)
            problem = requests.get(answer.value.url, timeout=30).json()
            assert problem["errors"][0]["parameter"] == "context"
            assert why in problem["errors"][0]["reason"]
            alert = page.get_by_role("alert").filter(has_text=problem["errors"][0]["reason"])
            expect(alert).to_have_id("next-error")
            expect(alert).to_have_text(problem["detail"])
            expect(field).to_have_attribute("aria-invalid", "true")
            # No bars of another beginning to walk on from.
            expect(page.locator("#next-result")).to_be_hidden()

        # Put right, the error goes away and the bars come back.
        assert type_context(h, "mai") == 200
        expect_next(h, s, "mai")
        expect(field).not_to_have_attribute("aria-invalid", "true")
        h.assert_clean(bad_requests=tuple(bad_urls))
    finally:
        h.context.close()


def test_picker_shows_the_orders_and_the_nll_table_equals_models(browser, orders_server):
    s = orders_server
    models = s.get("/models").json()["models"]
    assert {m["name"]: m["order"] for m in models} == {"civil-words": 2, "civil-words-tuned": 7}
    h = Home(browser, s.url, viewport=DESKTOP).open()
    try:
        page = h.page
        picker = page.get_by_label("Model", exact=True)
        smoothing = {None: "neural", "kneser-ney": "Kneser\u2013Ney"}
        expect(picker.locator("option")).to_have_text(
            [
                f"{m['name']} \u2014 order {m['order']}, {smoothing[m['smoothing']]}"
                + (" (default)" if m["default"] else "")
                for m in models
            ]
        )
        expect(picker).to_have_value("civil-words")
        expect(page.locator("#model-picker-hint")).to_contain_text(
            "neural, order 2: the next symbol depends on the previous symbol"
        )

        # The served models side by side: the very figures of /models.
        table = page.get_by_role("table").filter(has_text="Held-out NLL")
        expect(table).to_be_visible()
        expect(table.locator("thead th")).to_have_text(
            ["Model", "Order", "Smoothing", "Training NLL", "Held-out NLL"]
        )
        rows = table.locator("tbody tr")
        expect(rows).to_have_count(len(models))
        for row, m in zip(rows.all(), models, strict=True):
            expect(row.locator("th .model-name")).to_have_text(m["name"])
            expect(row.locator("td.order")).to_have_text(str(m["order"]))
            expect(row.locator("td.smoothing")).to_have_text(smoothing[m["smoothing"]])
            expect(row.locator("td.training .nll-value")).to_have_text(f"{m['nll']:.4f}")
            held = row.locator("td.heldout")
            if m["holdout_nll"] is None:
                expect(held).to_have_text("\u2014")
            else:
                expect(held.locator(".nll-value")).to_have_text(f"{m['holdout_nll']:.4f}")
        tuned = next(m for m in models if m["name"] == "civil-words-tuned")
        assert tuned["holdout_nll"] is not None and tuned["holdout_nll"] < 1.5
        # The model the page shows is marked, and follows the picker.
        current = table.locator('tbody tr[aria-current="true"]')
        expect(current).to_have_attribute("data-model", "civil-words")
        with page.expect_response(lambda r: urlsplit(r.url).path == "/model"):
            picker.select_option("civil-words-tuned")
        expect(current).to_have_attribute("data-model", "civil-words-tuned")
        expect(page.locator("#model-picker-hint")).to_contain_text(
            "counts, order 7: the next symbol depends on the last 6 symbols; 40 symbols"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#models").screenshot(path=ARTIFACTS / "home-models.png")
        h.assert_clean()
    finally:
        h.context.close()


def test_order_7_model_has_no_heatmap_and_walks_in_the_next_panel(browser, orders_server):
    """Picking the order-7 model: no /matrix or /prob asked (they answer 422 there), the
    heatmap gives way to a word on why, and every other section asks the model."""
    s = orders_server
    h = Home(browser, s.url, viewport=DESKTOP).open()
    try:
        page = h.page
        tuned = s.get("/model", params={"model": "civil-words-tuned"}).json()
        assert tuned["order"] == 7
        assert s.get("/matrix", params={"model": "civil-words-tuned"}).status_code == 422
        with page.expect_response(lambda r: urlsplit(r.url).path == "/model"):
            page.get_by_label("Model", exact=True).select_option("civil-words-tuned")
        expect(page.locator("#stat-version")).to_have_text(tuned["version"])
        expect(page.locator("#bigram-view")).to_be_hidden()
        expect(page.locator("#prob-result")).to_be_hidden()
        note = page.locator("#not-bigram")
        expect(note).to_be_visible()
        expect(note).to_contain_text("\u201ccivil-words-tuned\u201d is a model of order 7")
        expect(note).to_contain_text("depends on the last 6 symbols")
        expect(note.get_by_role("link", name="What comes next")).to_have_attribute("href", "#next")
        expect(page.get_by_role("heading", level=2, name="The model")).to_have_text(
            "The model: P(next | last 6 symbols)"
        )
        # The numbers are the order-7 model's.
        expect(page.locator("#stat-order")).to_have_text(
            f"7: the next symbol depends on the last 6 symbols; {tuned['states']:,} states"
        )
        expect(page.locator("#stat-examples")).to_have_text(f"{tuned['examples']:,}")
        expect(page.locator("#stat-examples-unit")).to_have_text("7-grams")
        expect(page.locator("#stat-training")).to_have_text(
            "counting model, order 7, Kneser\u2013Ney smoothing"
        )
        expect(page.locator("#stat-nll-heldout")).to_have_text(f"{tuned['holdout']['nll']:.4f}")

        # What comes next conditions on the last 6 symbols ('.' padding the start)...
        expect_next(h, s, "", "civil-words-tuned")
        assert type_context(h, "mais") == 200
        answer = expect_next(h, s, "mais", "civil-words-tuned")
        assert answer["state"] == "..mais"
        expect(page.locator("#next-state-hint")).to_have_text(
            "(the last 6 symbols; \u201c.\u201d pads a word\u2019s start)"
        )
        with page.expect_response(lambda r: urlsplit(r.url).path == "/next"):
            page.locator("#next-bars button.next-bar").nth(1).click()
        second = answer["next"][1]["symbol"]
        expect_next(h, s, "mais" + second, "civil-words-tuned")
        # ...or on fewer, when the training words never had that context.
        assert type_context(h, "xzxzq") == 200
        answer = expect_next(h, s, "xzxzq", "civil-words-tuned")
        assert answer["state"] == "q"
        expect(page.locator("#next-state-hint")).to_have_text(
            "(backed off: the training words never have \u201c.xzxzq\u201d)"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        assert type_context(h, "mais") == 200
        expect_next(h, s, "mais", "civil-words-tuned")
        page.locator("#next").screenshot(path=ARTIFACTS / "home-next.png")
        page.screenshot(path=ARTIFACTS / "home-order-7.png", full_page=True)

        # The score box: each symbol's context, up to 6 symbols.
        page.get_by_role("textbox", name="Word").fill("maison")
        with page.expect_response(lambda r: urlsplit(r.url).path == "/score") as scored:
            page.get_by_role("button", name="Score").click()
        assert "model=civil-words-tuned" in scored.value.url
        score = s.get("/score", params={"word": "maison", "model": "civil-words-tuned"}).json()
        expect(page.locator("#score-logprob")).to_have_text(
            f"{score['logprob']:.4f}".replace("-", "\u2212")
        )
        contexts = page.locator("#bigram-chart g.bar").evaluate_all(
            "gs => gs.map(g => g.dataset.context)"
        )
        assert contexts == [b["context"] for b in score["bigrams"]]
        assert contexts[-1] == "maison"
        expect(page.locator("#bigram-caption")).to_contain_text("hover a bar for the context")

        # Back to the bigram model: the heatmap again.
        with page.expect_response(lambda r: urlsplit(r.url).path == "/matrix"):
            page.get_by_label("Model", exact=True).select_option("civil-words")
        expect(page.locator("#bigram-view")).to_be_visible()
        expect(page.locator("#not-bigram")).to_be_hidden()
        expect(page.locator("#heatmap td[data-row]")).to_have_count(41 * 41)
        expect(page.get_by_role("heading", level=2, name="The model")).to_have_text(
            "The model: P(next | previous)"
        )
        expect(page.locator("#stat-examples-unit")).to_have_text("bigrams")
        expect_next(h, s, "mais", "civil-words")  # picked, so asked by name

        # Never a bigram view of the order-7 model: no 422, no console error.
        asked = [urlsplit(u) for u in h.requests]
        bigram_views = [
            u.geturl()
            for u in asked
            if u.path in ("/matrix", "/prob") and "civil-words-tuned" in u.query
        ]
        assert bigram_views == []
        h.assert_clean()
    finally:
        h.context.close()

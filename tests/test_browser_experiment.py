"""The home page's real words, end to end (SPEC section 8): the score box's lexicon figures
(OLD20, neighbours, the nearest words) and the "Experiment: matched pseudowords" section (its
table, its summary, its unmatched targets, its CSV download), each equal to what the API answers
for the same request. The real server, Debian's Chromium driven by Playwright, as in
test_browser.py, whose fixtures and helpers these tests use.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page, expect

from tests import test_browser
from tests.test_browser import (
    DESKTOP,
    MAX_SEED,
    PHONE,
    Home,
    no_horizontal_overflow,
)

# test_browser's fixtures, this module's too (pytest finds a fixture by module attribute).
browser = test_browser.browser
home = test_browser.home
two_models_server = test_browser.two_models_server

pytestmark = pytest.mark.server

NEIGHBOURS_OPEN = 12  # the page folds a longer list of neighbours
DASH = "\u2014"


def to_fixed(x: float, digits: int) -> str:
    """x as JavaScript's toFixed writes it: the exact binary value, halves away from zero."""
    return str(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def is_pseudowords(r) -> bool:
    return urlsplit(r.url).path == "/pseudowords"


def api_pseudowords(server, body: dict, csv: bool = False) -> requests.Response:
    accept = "text/csv" if csv else "application/json"
    r = requests.post(
        server.url + "/pseudowords", json=body, headers={"Accept": accept}, timeout=60
    )
    assert r.status_code == 200, r.text
    return r


# ---------------------------------------------------------------------------------------------
# The score box: the word among the lexicon's words


def score_word(h: Home, word: str) -> None:
    h.page.get_by_role("textbox", name="Word").fill(word)
    with h.page.expect_response(lambda r: urlsplit(r.url).path == "/score"):
        h.page.get_by_role("button", name="Score", exact=True).click()
    expect(h.page.locator("#score-word")).to_have_text(word)


def expect_lexicon_figures(h: Home, server, word: str) -> dict:
    """The score box shows /score's in_lexicon (the matched words, their Zipf), OLD20, the
    neighbours (their count and list, folded when long) and the nearest words."""
    answer = server.get("/score", params={"word": word}).json()
    page = h.page
    box = page.locator("#score-in-lexicon")
    matches = answer["matches"]
    expect(box.locator(".match")).to_have_text([m["word"] for m in matches])
    expect(box.locator(".match-zipf")).to_have_text(
        [f"Zipf {to_fixed(m['zipf'], 2)}" for m in matches]
    )
    expect(box).to_contain_text("a real word: " if answer["in_lexicon"] else "not in the lexicon")
    assert answer["in_lexicon"] == bool(matches)

    # OLD20: a mean of 20 whole distances, so two decimals are the API's figure exactly.
    old20 = page.locator("#score-old20")
    expect(old20).to_have_text(to_fixed(answer["old20"], 2))
    assert float(old20.inner_text()) == answer["old20"]

    neighbours = answer["neighbours"]
    count = page.locator("#score-neighbour-count")
    folded = page.locator("#score-neighbours")
    if neighbours:
        s = "" if len(neighbours) == 1 else "s"
        expect(count).to_have_text(f"{len(neighbours)} word{s} one edit away")
        expect(folded).to_be_visible()
        expect(page.locator("#score-neighbours-summary")).to_have_text(
            f"The {len(neighbours)} neighbour{s}"
        )
        # Folded when long: the list shows once opened.
        if len(neighbours) > NEIGHBOURS_OPEN:
            expect(folded).not_to_have_attribute("open", "")
            expect(page.locator("#score-neighbour-list")).to_be_hidden()
            page.locator("#score-neighbours-summary").click()
        expect(folded).to_have_attribute("open", "")
        items = page.get_by_role("list", name="Neighbours").get_by_role("listitem")
        expect(items).to_have_text(neighbours)
    else:
        expect(count).to_have_text("0: no word one edit away")
        expect(folded).to_be_hidden()

    nearest = page.get_by_role("list", name="Nearest lexicon words").locator("li")
    expect(nearest.locator(".nearest-word")).to_have_text([n["word"] for n in answer["nearest"]])
    shown = nearest.evaluate_all("lis => lis.map(li => Number(li.dataset.distance))")
    assert shown == [n["distance"] for n in answer["nearest"]]
    expect(nearest.locator(".nearest-distance")).to_have_text(
        [f"{n['distance']} edit{'' if n['distance'] == 1 else 's'}" for n in answer["nearest"]]
    )
    return answer


def test_score_box_shows_old20_neighbours_and_nearest(home, server):
    h = home()
    # On load: "maison", a real word with more neighbours than the page unfolds.
    maison = expect_lexicon_figures(h, server, "maison")
    assert maison["in_lexicon"] is True and len(maison["neighbours"]) > NEIGHBOURS_OPEN
    assert maison["old20"] == 1.0
    expect(h.page.locator("#score-old20")).to_have_text("1.00")

    # Accents folded: "tete" matches several real words, each with its own frequency.
    score_word(h, "tete")
    tete = expect_lexicon_figures(h, server, "tete")
    assert {"tête", "tete"} <= {m["word"] for m in tete["matches"]}
    # A rare real word without neighbours; a string of letters that is no word at all.
    score_word(h, "morbleu")
    assert expect_lexicon_figures(h, server, "morbleu")["neighbours"] == []
    score_word(h, "xqzw")
    assert expect_lexicon_figures(h, server, "xqzw")["in_lexicon"] is False
    h.assert_clean()


# ---------------------------------------------------------------------------------------------
# The experiment: matched pseudowords


def fill_experiment(page: Page, targets: list[str], per_target="", seed="", **tolerances) -> None:
    page.get_by_label("Targets").fill("\n".join(targets))
    page.get_by_label("Per target").fill(str(per_target))
    page.locator("#pw-form").get_by_label("Seed").fill(str(seed))
    for name, value in tolerances.items():
        page.get_by_label(name).fill(str(value))


def match(h: Home) -> tuple[dict | None, int]:
    """Click the button; the JSON body the page sent and the status of the answer."""
    page = h.page
    with page.expect_response(is_pseudowords) as answer:
        page.get_by_role("button", name="Match pseudowords").click()
    expect(page.locator("#pw-result")).to_have_attribute("aria-busy", "false")
    request = answer.value.request
    assert request.method == "POST"
    assert request.headers["accept"] == "application/json"
    return json.loads(request.post_data or "null"), answer.value.status


def mean_sd(figure: dict, digits: int) -> str:
    if figure["mean"] is None:
        return DASH
    mean = to_fixed(figure["mean"], digits)
    return mean if figure["sd"] is None else f"{mean} \u00b1 {to_fixed(figure['sd'], digits)}"


def expect_experiment(h: Home, answer: dict, seed: int) -> None:
    """The section shows `answer`: a row group per target (the target, then its pseudowords,
    each with its figures), the summary side by side, the unmatched targets with reasons."""
    page = h.page
    table = page.get_by_role("table", name="Each target, then its pseudowords")
    expect(table).to_be_visible()
    groups = table.locator("tbody")
    expect(groups).to_have_count(len(answer["items"]))
    rows = []
    for k, item in enumerate(answer["items"], start=1):
        target = item["target"]
        if target["in_lexicon"] is False:
            zipf = "not a word"
        else:
            zipf = DASH if target["zipf"] is None else to_fixed(target["zipf"], 2)
        rows.append([str(k), "target", target["word"], zipf, target])
        rows += [["", "pseudoword", w["word"], DASH, w] for w in item["pseudowords"]]
    shown = table.locator("tbody tr").evaluate_all(
        "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))"
    )
    expected = [
        [
            item,
            role,
            w["word"],
            str(w["length"]),
            to_fixed(w["nll_per_symbol"], 3),
            to_fixed(w["old20"], 2),
            str(len(w["neighbours"])),
            zipf,
        ]
        for item, role, _, zipf, w in rows
    ]
    assert shown == expected
    # Headers: one per column, the word the row's header.
    expect(table.locator("thead th")).to_have_text(
        ["Item", "Role", "Word", "Length", "NLL / symbol", "OLD20", "Neighbours", "Zipf"]
    )
    assert table.locator("tbody th[scope=row]").all_inner_texts() == [r[2] for r in rows]

    summary = page.get_by_role("table", name="Summary: mean \u00b1 sd")
    expect(summary.locator("thead th")).to_have_text(["Targets", "Pseudowords"])
    cells = summary.locator("tbody tr").evaluate_all(
        "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))"
    )
    t, p = answer["summary"]["targets"], answer["summary"]["pseudowords"]
    assert cells == [
        ["Count", f"{t['count']:,}", f"{p['count']:,}"],
        ["Length", mean_sd(t["length"], 2), mean_sd(p["length"], 2)],
        ["OLD20", mean_sd(t["old20"], 2), mean_sd(p["old20"], 2)],
        ["NLL / symbol", mean_sd(t["nll_per_symbol"], 3), mean_sd(p["nll_per_symbol"], 3)],
    ]

    unmatched = page.get_by_role("list", name="Not matched").get_by_role("listitem")
    if answer["unmatched"]:
        expect(unmatched.locator(".word")).to_have_text([u["target"] for u in answer["unmatched"]])
        expect(unmatched.locator(".reason")).to_have_text(
            [u["reason"] for u in answer["unmatched"]]
        )
    else:
        expect(page.locator("#pw-unmatched-box")).to_be_hidden()
    expect(page.locator("#pw-seed-used")).to_have_text(str(seed))
    expect(page.locator("#pw-model")).to_have_text(answer["model"])
    expect(page.locator("#pw-error")).to_be_empty()


def download_csv(h: Home) -> bytes:
    page = h.page
    with page.expect_download() as download, page.expect_request(is_pseudowords) as request:
        page.get_by_role("button", name="Download CSV").click()
    assert request.value.headers["accept"] == "text/csv"
    assert download.value.suggested_filename == "pseudowords.csv"
    assert download.value.failure() is None
    return download.value.path().read_bytes()


def test_experiment_shows_the_apis_table_summary_and_csv(home, server):
    h = home()
    page = h.page
    expect(page.locator("#pw-result")).to_be_hidden()
    # Which lexicon: the one /models names.
    lexicon = server.get("/models").json()["models"][0]["lexicon"]
    expect(page.locator("#pw-lexicon")).to_contain_text(f"{lexicon['size']:,} words")

    # Three real words and two that cannot be matched (symbols outside the alphabet); a seed
    # beyond 2^53, which a JavaScript number would round.
    seed = MAX_SEED - 12345
    targets = ["maison", "lettre", "chat", "york", "\u00df"]
    fill_experiment(page, targets, per_target=2, seed=seed)
    sent, status = match(h)
    assert status == 200
    body = {
        "targets": targets,
        "per_target": 2,
        "old20_tolerance": 0.3,
        "nll_tolerance": 0.3,
        "seed": seed,
    }
    assert sent == body
    answer = api_pseudowords(server, body).json()
    assert answer["seed"] == seed
    assert [i["target"]["word"] for i in answer["items"]] == ["maison", "lettre", "chat"]
    assert all(len(i["pseudowords"]) == 2 for i in answer["items"])
    assert [u["target"] for u in answer["unmatched"]] == ["york", "\u00df"]
    assert "'k' (position 4)" in answer["unmatched"][0]["reason"]
    expect_experiment(h, answer, seed)
    expect(page.get_by_role("status").filter(has_text="pseudowords")).to_have_text(
        f"3 targets matched with 6 pseudowords; 2 targets not matched (seed {seed})."
    )

    # The CSV: the very bytes the API answers for the same request.
    csv = download_csv(h)
    assert csv == api_pseudowords(server, body, csv=True).content
    lines = csv.decode("utf-8").splitlines()
    assert lines[0] == (
        "item,role,word,target,length,nll_per_symbol,old20,neighbours,in_lexicon,zipf,reason"
    )
    words = [r.split(",")[2] for r in lines[1:] if ",unmatched," not in r]
    assert words == page.locator("#pw-table tbody th").all_inner_texts()

    # No seed: the service picks one; the CSV then asks with it, so it holds the table's words.
    fill_experiment(page, ["maison", "chat"], per_target=1, seed="")
    sent, status = match(h)
    assert status == 200 and "seed" not in sent
    shown_seed = page.locator("#pw-seed-used").inner_text()
    assert shown_seed.isdigit() and int(shown_seed) != seed
    again = {**sent, "seed": int(shown_seed)}
    expect_experiment(h, api_pseudowords(server, again).json(), int(shown_seed))
    assert download_csv(h) == api_pseudowords(server, again, csv=True).content

    # The section fits a phone's width (the tables scroll inside their boxes).
    page.set_viewport_size(PHONE)
    assert no_horizontal_overflow(page)
    h.assert_clean()


@pytest.mark.parametrize(
    ("field", "value", "parameter"),
    [
        ("Per target", "0", "per_target"),  # under the minimum
        ("Per target", "99", "per_target"),  # over the maximum
        ("OLD20 tolerance", "-1", "old20_tolerance"),
        ("Targets", "", "targets"),  # no target
    ],
)
def test_experiment_bad_input_shows_the_apis_problem(home, server, field, value, parameter):
    h = home()
    page = h.page
    fill_experiment(page, ["maison", "chat"], per_target=1, seed=5)
    sent, status = match(h)
    assert status == 200
    before = page.locator("#pw-table tbody th").all_inner_texts()

    page.get_by_label(field).fill(value)
    sent, status = match(h)
    assert status == 400
    problem = requests.post(server.url + "/pseudowords", json=sent, timeout=30).json()
    assert problem["errors"][0]["parameter"] == parameter
    alert = page.get_by_role("alert").filter(has_text=problem["detail"])
    expect(alert).to_have_id("pw-error")
    expect(alert).to_have_text(problem["detail"])
    expect(page.get_by_label(field)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label(field)).to_be_focused()
    # The last good table stays.
    assert page.locator("#pw-table tbody th").all_inner_texts() == before

    # Put right, the error goes away.
    fill_experiment(page, ["maison", "chat"], per_target=1, seed=5, **{"OLD20 tolerance": 0.3})
    sent, status = match(h)
    assert status == 200
    expect(page.locator("#pw-error")).to_be_empty()
    expect(page.get_by_label(field)).not_to_have_attribute("aria-invalid", "true")
    assert page.locator("#pw-table tbody th").all_inner_texts() == before
    h.assert_clean(bad_requests=(server.url + "/pseudowords",))


def test_a_model_without_a_lexicon(browser, two_models_server):
    """The counting model of two_models_server was trained without --language: no lexicon.
    The score box says so; the experiment section says so, and shows the service's 422; the
    picked model is the one the experiment asks."""
    s = two_models_server
    lexicons = {m["name"]: m["lexicon"] for m in s.get("/models").json()["models"]}
    assert lexicons["counts"] is None and lexicons["civil-words"] is not None
    h = Home(browser, s.url, viewport=DESKTOP).open()
    try:
        page = h.page
        note = page.locator("#pw-lexicon")
        expect(note).to_contain_text(
            f"Lexicon of \u201ccivil-words\u201d: {lexicons['civil-words']['source']}"
        )
        with page.expect_response(lambda r: urlsplit(r.url).path == "/score") as scored:
            page.get_by_label("Model", exact=True).select_option("counts")
        assert "model=counts" in scored.value.url
        assert s.get("/score", params={"word": "maison", "model": "counts"}).json()["old20"] is None
        for figure in ("in-lexicon", "old20", "neighbour-count"):
            expect(page.locator(f"#score-{figure}")).to_have_text("no lexicon")
        expect(page.locator("#score-neighbours")).to_be_hidden()
        expect(page.locator("#score-nearest-box")).to_be_hidden()
        expect(note).to_contain_text("\u201ccounts\u201d has no lexicon")

        fill_experiment(page, ["maison"], per_target=1, seed=3)
        sent, status = match(h)
        assert status == 422 and sent["model"] == "counts"
        problem = requests.post(s.url + "/pseudowords", json=sent, timeout=30).json()
        expect(page.locator("#pw-error")).to_have_text(problem["detail"])
        expect(page.locator("#pw-result")).to_be_hidden()

        # Back to the model with a lexicon: asked by name, answered.
        page.get_by_label("Model", exact=True).select_option("civil-words")
        expect(note).to_contain_text("Lexicon of \u201ccivil-words\u201d")
        sent, status = match(h)
        assert status == 200 and sent["model"] == "civil-words"
        expect_experiment(h, api_pseudowords(s, sent).json(), 3)
        h.assert_clean(bad_requests=(s.url + "/pseudowords",))
    finally:
        h.context.close()

// The civil-words home page: words from /sample, the matrix P from /matrix, the numbers from
// /model, one bigram at a time from /prob, scores (and the word's place among real words) from
// /score, the next-symbol distribution after any beginning from /next, the served models (their
// orders, their NLLs, their lexicons) from /models, matched pseudowords (a table, a summary, a
// CSV) from POST /pseudowords.
// Plain DOM, no framework, nothing from other hosts; the page's CSP allows no inline script or
// style markup, so styles are set through the CSSOM.

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  /** `problem` is the RFC 9457 body when the service sent one. */
  constructor(message, problem = null) {
    super(message);
    this.problem = problem;
  }
}

/** fetch(), its network failure said in words. */
async function request(path, init) {
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError("The service could not be reached. Try again in a moment.");
  }
}

const parseJSON = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

/** The error of an answer that is not ok: its problem's detail when it sent one. */
function answerError(res, text) {
  const problem = parseJSON(text);
  const detail = problem && (problem.detail || problem.title);
  return new ApiError(detail || `The service answered ${res.status} ${res.statusText}.`, problem);
}

/** {body, text} of a JSON answer (the raw text too: seeds may exceed 2^53). */
async function readJSON(res) {
  const text = await res.text();
  if (!res.ok) throw answerError(res, text);
  const body = parseJSON(text);
  if (body === null) throw new ApiError("The service sent an answer this page cannot read.");
  return { body, text };
}

/** GET `path`; resolve to {body, text}. */
async function getJSON(path) {
  return readJSON(await request(path, { headers: { Accept: "application/json" } }));
}

/** POST the JSON text `body` to `path`, asking for `accept`; the Response when it is ok. */
async function post(path, body, accept) {
  const res = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: accept },
    body,
  });
  if (!res.ok) throw answerError(res, await res.text());
  return res;
}

/** The seed exactly as the service wrote it: JSON.parse rounds integers beyond 2^53. */
function rawSeed(text, parsed) {
  // A `"seed":` inside a word would be escaped (`\"seed\":`), so this finds the key only.
  const m = /"seed"\s*:\s*(\d+)/.exec(text);
  return m ? m[1] : String(parsed);
}

// ---------------------------------------------------------------------------------------------
// The model every request asks for: null until the user picks one (the server's default).

let chosenModel = null;
let servedModels = []; // GET /models's entries, once it answered
let shownInfo = null; // the /model answer of the model the page shows

/** The /models entry of the model the page asks (undefined until /models answered). */
function currentEntry() {
  return servedModels.find((m) => (chosenModel === null ? m.default : m.name === chosenModel));
}

/** N, the order of the model the page asks: the next symbol depends on the last N - 1. */
function currentOrder() {
  return currentEntry()?.order ?? shownInfo?.order ?? null;
}

/** `path` with `model=` added when a model was picked. */
function forModel(path) {
  if (chosenModel === null) return path;
  const [base, query = ""] = path.split("?");
  const q = new URLSearchParams(query);
  q.set("model", chosenModel);
  return `${base}?${q}`;
}

// ---------------------------------------------------------------------------------------------
// Formatting

const fmtInt = (x) => x.toLocaleString("en-US");
const fmtLoss = (x) => x.toFixed(4);
/** A probability with 4 significant digits: 0.1686, 0.0001663. */
const fmtProb = (p) => p.toPrecision(4);
const fmtMinus = (s) => s.replace("-", "\u2212");
/** A model's smoothing as /models (null, "kneser-ney", K) or /model ("neural", "add-k:K") say it. */
function fmtSmoothing(smoothing) {
  if (smoothing === null || smoothing === undefined || smoothing === "neural") return "neural";
  if (smoothing === "kneser-ney") return "Kneser\u2013Ney";
  const k = String(smoothing).replace(/^add-k:/, "");
  return `add-${k}`;
}
/** What an order-N model's next symbol depends on. */
const dependsOn = (order) =>
  order === 2 ? "the previous symbol" : `the last ${order - 1} symbols`;
/** A training example of an order-N model: a bigram, a trigram, a 7-gram. */
const ngrams = (order) => ({ 2: "bigrams", 3: "trigrams" })[order] || `${order}-grams`;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------------------------------------
// Generate words

const form = $("sample-form");
// Every /sample parameter's input, by the name the API (and its problems) give it.
const inputs = {
  n: $("n"),
  seed: $("seed"),
  prefix: $("prefix"),
  min_len: $("min_len"),
  max_len: $("max_len"),
  novel: $("novel"),
  unique: $("unique"),
  temperature: $("temperature"),
  top_k: $("top_k"),
};
const CONSTRAINTS = ["prefix", "min_len", "max_len", "novel", "unique", "temperature", "top_k"];
let sampleRequest = 0; // only the latest request may write to the page

/** The query for the form: n, the seed if given, and each constraint set off its default
 * (so that without constraints the link is the plain, notebook-exact `/sample?n=&seed=`). */
function sampleQuery() {
  const q = new URLSearchParams({ n: inputs.n.value.trim() });
  const seed = inputs.seed.value.trim();
  if (seed !== "") q.set("seed", seed);
  for (const name of CONSTRAINTS) {
    const input = inputs[name];
    if (input.type === "checkbox") {
      if (input.checked) q.set(name, "true");
      continue;
    }
    const value = name === "prefix" ? input.value : input.value.trim();
    if (value === "" || (name === "temperature" && Number(value) === 1)) continue;
    q.set(name, value);
  }
  return q;
}

async function generate() {
  const ticket = ++sampleRequest;
  const result = $("sample-result");
  const button = $("generate-button");
  result.setAttribute("aria-busy", "true");
  button.disabled = true;
  const query = sampleQuery();
  try {
    const { body, text } = await getJSON(forModel(`/sample?${query}`));
    if (ticket !== sampleRequest) return;
    showWords(body, rawSeed(text, body.seed), query);
  } catch (err) {
    if (ticket !== sampleRequest) return;
    showSampleError(err);
  } finally {
    if (ticket === sampleRequest) {
      result.setAttribute("aria-busy", "false");
      button.disabled = false;
    }
  }
}

function showWords(body, seed, query) {
  $("sample-error").textContent = "";
  for (const input of Object.values(inputs)) input.removeAttribute("aria-invalid");

  $("words").replaceChildren(...body.words.map((w) => el("li", { text: w })));
  $("seed-used").textContent = seed;
  $("sample-model").textContent = body.model;
  // The link replays these very words: the same parameters, the seed the service used.
  const replay = new URLSearchParams(query);
  replay.set("n", String(body.n));
  replay.set("seed", seed);
  const href = forModel(`/sample?${replay}`);
  const link = $("sample-link");
  link.href = href;
  link.textContent = decodeURIComponent(href);
  const reuse = $("reuse-seed");
  reuse.disabled = false;
  reuse.dataset.seed = seed;
  const s = body.n === 1 ? "" : "s";
  $("sample-status").textContent = `${body.n} word${s} generated with seed ${seed}.`;
}

function showSampleError(err) {
  $("sample-error").textContent = err.message;
  $("sample-status").textContent = "";
  const bad = new Set((err.problem?.errors || []).map((e) => e.parameter));
  for (const [name, input] of Object.entries(inputs)) {
    if (bad.has(name)) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  // A constraint at fault: open the group so that the marked field shows.
  if (CONSTRAINTS.some((name) => bad.has(name))) $("constraints").open = true;
  const first = Object.keys(inputs).find((name) => bad.has(name));
  if (first) inputs[first].focus();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  generate();
});

$("reuse-seed").addEventListener("click", (event) => {
  inputs.seed.value = event.currentTarget.dataset.seed || "";
  inputs.seed.focus();
});

// ---------------------------------------------------------------------------------------------
// Score a word: /score's numbers, and its bigrams' log-probabilities as a bar chart (each one
// the probability of a symbol given the context the model conditions on: the previous symbol
// for a bigram model, up to N - 1 of them for a model of order N).

let scoreRequest = 0;

async function scoreWord() {
  const ticket = ++scoreRequest;
  const word = $("word");
  const href = forModel(`/score?${new URLSearchParams({ word: word.value })}`);
  $("score-button").disabled = true;
  try {
    const { body } = await getJSON(href);
    if (ticket !== scoreRequest) return;
    showScore(body, href);
    $("score-error").textContent = "";
    word.removeAttribute("aria-invalid");
  } catch (err) {
    if (ticket !== scoreRequest) return;
    $("score-error").textContent = err.message;
    word.setAttribute("aria-invalid", "true");
  } finally {
    if (ticket === scoreRequest) $("score-button").disabled = false;
  }
}

const fmtLog = (x) => fmtMinus(x.toFixed(4));
const corpusText = {
  true: "in the training list",
  false: "not in the training list",
  null: "unknown (the model has no word list)",
};

function showScore(score, href) {
  $("score-word").textContent = score.word;
  $("score-logprob").textContent = fmtLog(score.logprob);
  $("score-nll").textContent = score.nll_per_symbol.toFixed(4);
  $("score-perplexity").textContent =
    score.perplexity === null ? "beyond any number" : score.perplexity.toPrecision(4);
  $("score-corpus").textContent = corpusText[String(score.in_corpus)];
  showLexiconFigures(score);
  const link = $("score-link");
  link.href = href;
  link.textContent = decodeURIComponent(href);
  drawBigrams(score.bigrams);
  $("score-result").hidden = false;
}

const NEIGHBOURS_OPEN = 12; // a longer list of neighbours starts folded
const plural = (n, word) => `${fmtInt(n)} ${word}${n === 1 ? "" : "s"}`;
/** OLD20 is a mean of 20 whole distances: two decimals say it exactly. */
const fmtOld20 = (x) => (x === null || x === undefined ? "\u2014" : x.toFixed(2));
const fmtZipf = (z) => (z === null || z === undefined ? "no frequency" : `Zipf ${z.toFixed(2)}`);

/** The word among real words: whether it is one (which, how frequent), its OLD20, its
 * neighbours and the nearest lexicon words. A model without a lexicon answers null for each. */
function showLexiconFigures(score) {
  const none = score.in_lexicon === null || score.in_lexicon === undefined;
  const inLexicon = $("score-in-lexicon");
  if (none) {
    inLexicon.textContent = "no lexicon";
  } else if (score.in_lexicon) {
    const matches = score.matches.flatMap((m, k) => [
      k ? ", " : "",
      el("span", { class: "match", lang: "fr", text: m.word }),
      " ",
      el("span", { class: "match-zipf", text: fmtZipf(m.zipf) }),
    ]);
    inLexicon.replaceChildren("a real word: ", ...matches);
  } else {
    inLexicon.textContent = "not in the lexicon";
  }
  $("score-old20").textContent = none ? "no lexicon" : fmtOld20(score.old20);
  const neighbours = none ? [] : score.neighbours;
  $("score-neighbour-count").textContent = none
    ? "no lexicon"
    : neighbours.length === 0
      ? "0: no word one edit away"
      : `${plural(neighbours.length, "word")} one edit away`;
  const list = $("score-neighbours");
  list.hidden = neighbours.length === 0;
  list.open = neighbours.length <= NEIGHBOURS_OPEN;
  $("score-neighbours-summary").textContent = `The ${plural(neighbours.length, "neighbour")}`;
  $("score-neighbour-list").replaceChildren(
    ...neighbours.map((w) => el("li", { text: w })),
  );
  const nearest = none ? [] : score.nearest;
  $("score-nearest-box").hidden = nearest.length === 0;
  $("score-nearest").replaceChildren(
    ...nearest.map(({ word, distance }) =>
      el(
        "li",
        { "data-distance": distance },
        el("span", { class: "nearest-word", lang: "fr", text: word }),
        el("span", { class: "sub nearest-distance", text: plural(distance, "edit") }),
      ),
    ),
  );
}

/** A context as the page names it: "start" for the start of a word alone. */
const contextText = (context) => (/^\.+$/.test(context) ? "start" : context);

/** One bar per bigram, its height the bigram's surprise (-ln P): taller is less likely. */
function drawBigrams(bigrams) {
  const box = $("bigram-chart");
  const step = 34;
  const m = { left: 34, right: 8, top: 18, bottom: 22 };
  const W = m.left + m.right + step * bigrams.length;
  const H = 150;
  const worst = Math.max(1, ...bigrams.map((b) => -b.logprob));
  const ticks = niceTicks(0, worst, 3);
  const top = Math.max(worst, ticks.at(-1));
  const y = (v) => m.top + (v / top) * (H - m.top - m.bottom);
  const nodes = [];
  for (const v of ticks) {
    nodes.push(svg("line", { class: "grid", x1: m.left, x2: W - m.right, y1: y(v), y2: y(v) }));
    const at = { class: "tick", x: m.left - 5, y: y(v), "text-anchor": "end" };
    nodes.push(svg("text", { ...at, "dominant-baseline": "middle" }, fmtMinus(String(-v))));
  }
  bigrams.forEach(({ bigram, logprob, context }, k) => {
    const x = m.left + k * step + 5;
    const [a, b] = [...bigram];
    // The context the model conditioned on (older servers sent none: the previous symbol).
    const given = contextText(context ?? a);
    const text = `P(${b === "." ? "end" : b} | ${given}): ln ${fmtLog(logprob)}`;
    const bar = svg("g", { class: "bar", "data-bigram": bigram, "data-logprob": logprob });
    bar.dataset.context = context ?? a;
    bar.append(
      svg("title", {}, text),
      svg("rect", { x, y: y(0), width: step - 10, height: Math.max(y(-logprob) - y(0), 1) }),
      svg("text", { class: "bar-label", x: x + (step - 10) / 2, y: 12, "text-anchor": "middle" },
        bigram),
      svg("text", { class: "tick", x: x + (step - 10) / 2, y: Math.min(y(-logprob) + 12, H - 4),
        "text-anchor": "middle" }, fmtMinus((logprob).toFixed(1))),
    );
    nodes.push(bar);
  });
  box.setAttribute("viewBox", `0 0 ${W} ${H}`);
  box.style.maxWidth = `${W * 1.6}px`;
  box.replaceChildren(svg("title", {}, "Log-probability of each bigram"), ...nodes);
  const weakest = bigrams.reduce((p, q) => (q.logprob < p.logprob ? q : p));
  // A model of order N > 2 conditions on more than the bigram's first symbol: say on what.
  const longer = bigrams.some((b) => [...(b.context ?? "")].length > 1);
  const where = longer
    ? ` after “${contextText(weakest.context)}”; hover a bar for the context each ` +
      "symbol was given"
    : "";
  $("bigram-caption").textContent =
    `Log-probability of each of the ${bigrams.length} bigrams (bars hang down: longer is ` +
    `less likely); the least likely is “${weakest.bigram}”, ln ${fmtLog(weakest.logprob)}` +
    where;
}

$("score-form").addEventListener("submit", (event) => {
  event.preventDefault();
  scoreWord();
});

// ---------------------------------------------------------------------------------------------
// The matrix P as a heatmap: an HTML table (headers and keyboard come with it), one <td> per
// bigram, coloured from a sequential palette after a sqrt or log transform of p.

// ColorBrewer YlGnBu: lightness falls steadily, so darker always means more probable.
const PALETTE = [
  [255, 255, 217], [237, 248, 177], [199, 233, 180], [127, 205, 187], [65, 182, 196],
  [29, 145, 192], [34, 94, 168], [37, 52, 148], [8, 29, 88],
];

function colour(t) {
  const x = Math.min(Math.max(t, 0), 1) * (PALETTE.length - 1);
  const i = Math.min(Math.floor(x), PALETTE.length - 2);
  const f = x - i;
  const [a, b] = [PALETTE[i], PALETTE[i + 1]];
  const c = a.map((v, k) => Math.round(v + (b[k] - v) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

const heat = {
  alphabet: [],
  probs: [],
  cells: [], // cells[i][j]: the <td> of P(alphabet[j] | alphabet[i])
  rowHeads: [],
  colHeads: [],
  scale: "sqrt",
  lo: 0,
  hi: 1,
  focus: [0, 0],
  selected: null,
  probRequest: 0,
};

const SCALES = {
  sqrt: {
    t: (p) => Math.sqrt(p / heat.hi),
    ticks: () => [0, 0.01, 0.05, 0.1, 0.25, 0.5, 1].filter((p) => p <= heat.hi),
  },
  log: {
    t: (p) => Math.log(Math.max(p, heat.lo) / heat.lo) / Math.log(heat.hi / heat.lo),
    ticks: () => [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1].filter((p) => p >= heat.lo && p <= heat.hi),
  },
};

const symbolName = { ".": "the start or end", "'": "apostrophe", "-": "hyphen" };
const label = (i, j) => `P(${heat.alphabet[j]} | ${heat.alphabet[i]})`;
const tipText = (i, j) => `${label(i, j)} = ${fmtProb(heat.probs[i][j])}`;

function buildHeatmap({ alphabet, probs }) {
  heat.alphabet = alphabet;
  heat.probs = probs;
  const flat = probs.flat();
  heat.hi = Math.max(...flat);
  heat.lo = Math.max(Math.min(...flat.filter((p) => p > 0)), 1e-12);

  const table = $("heatmap");
  const headRow = el("tr", {}, el("td", { class: "corner", "aria-hidden": "true" }));
  heat.colHeads = alphabet.map((a) => {
    const th = el("th", { scope: "col", text: a });
    if (a === ".") th.setAttribute("aria-label", "end");
    if (symbolName[a]) th.title = symbolName[a];
    headRow.append(th);
    return th;
  });
  const tbody = el("tbody");
  heat.rowHeads = [];
  heat.cells = alphabet.map((a, i) => {
    const th = el("th", { scope: "row", text: a });
    if (a === ".") th.setAttribute("aria-label", "start");
    if (symbolName[a]) th.title = symbolName[a];
    heat.rowHeads.push(th);
    const tr = el("tr", {}, th);
    const row = alphabet.map((_, j) => {
      const td = el("td", {
        "data-row": i,
        "data-col": j,
        tabindex: "-1",
        "aria-selected": "false",
        "aria-label": tipText(i, j),
      });
      tr.append(td);
      return td;
    });
    tbody.append(tr);
    return row;
  });
  heat.cells[0][0].tabIndex = 0;
  heat.selected = null;
  // Built again when another model is picked: keep only the caption.
  table.querySelectorAll("thead, tbody").forEach((part) => part.remove());
  table.append(el("thead", {}, headRow), tbody);
  paint();
}

function paint() {
  const { t } = SCALES[heat.scale];
  heat.cells.forEach((row, i) =>
    row.forEach((td, j) => {
      td.style.backgroundColor = colour(t(heat.probs[i][j]));
    }),
  );
  // The legend: the palette as a gradient, ticks where their probabilities fall.
  const stops = PALETTE.map((_, k) => colour(k / (PALETTE.length - 1)));
  $("legend-bar").style.backgroundImage = `linear-gradient(to right, ${stops.join(", ")})`;
  const values = SCALES[heat.scale].ticks();
  // Close the scale with its extreme values, unless a round tick already sits near them.
  if (t(values[values.length - 1]) < 0.9) values.push(Number(heat.hi.toPrecision(2)));
  if (t(values[0]) > 0.1) values.unshift(Number(heat.lo.toPrecision(2)));
  const ticks = values.map((p) => {
    const tick = el("span", { text: p === 0 ? "0" : String(p) });
    tick.style.left = `${(100 * t(p)).toFixed(2)}%`;
    return tick;
  });
  $("legend-ticks").replaceChildren(...ticks);
}

const tooltip = $("tooltip");

let tipCell = null; // the cell the tooltip describes, while it shows

function showTip(td) {
  const [i, j] = [Number(td.dataset.row), Number(td.dataset.col)];
  tipCell = td;
  tooltip.textContent = tipText(i, j);
  tooltip.hidden = false;
  placeTip();
  crosshair(i, j);
}

/** Put the tooltip above its cell (below it near the top), always inside the window. */
function placeTip() {
  if (!tipCell) return;
  const r = tipCell.getBoundingClientRect();
  const w = tooltip.offsetWidth;
  const h = tooltip.offsetHeight;
  const margin = 8;
  // Fixed positioning in viewport coordinates, kept on screen (no page overflow on phones).
  const left = Math.min(Math.max(r.left + r.width / 2 - w / 2, margin), innerWidth - w - margin);
  const top = r.top - h - 6 >= margin ? r.top - h - 6 : r.bottom + 6;
  tooltip.style.left = `${left}px`;
  tooltip.style.top = `${top}px`;
}

function hideTip() {
  tipCell = null;
  tooltip.hidden = true;
  crosshair(null, null);
}

let lit = [];
function crosshair(i, j) {
  for (const th of lit) th.classList.remove("lit");
  lit = i === null ? [] : [heat.rowHeads[i], heat.colHeads[j]];
  for (const th of lit) th.classList.add("lit");
}

/** Make `td` the grid's one tab stop (a roving tabindex). */
function setRoving(td) {
  const [fi, fj] = heat.focus;
  heat.cells[fi][fj].tabIndex = -1;
  heat.focus = [Number(td.dataset.row), Number(td.dataset.col)];
  td.tabIndex = 0;
}

function moveFocus(i, j) {
  heat.cells[i][j].focus(); // focusin moves the tab stop
}

async function selectCell(i, j) {
  if (heat.selected) heat.selected.setAttribute("aria-selected", "false");
  const td = heat.cells[i][j];
  td.setAttribute("aria-selected", "true");
  heat.selected = td;

  const bigram = heat.alphabet[i] + heat.alphabet[j];
  const href = forModel(`/prob?bigram=${encodeURIComponent(bigram)}`);
  const ticket = ++heat.probRequest;
  const out = $("prob-result");
  out.setAttribute("aria-busy", "true");
  try {
    const { body } = await getJSON(href);
    if (ticket !== heat.probRequest) return;
    out.replaceChildren(
      el(
        "p",
        { class: "prob-answer" },
        el("span", { class: "math", text: label(i, j) }),
        " = ",
        el("strong", { id: "prob-value", text: body.prob.toPrecision(6) }),
        el(
          "span",
          { class: "sub" },
          "ln P = ",
          el("span", { id: "prob-log", text: fmtMinus(body.logprob.toFixed(4)) }),
        ),
      ),
      el(
        "p",
        { class: "prob-source" },
        `bigram “${body.bigram}”, from `,
        el("a", { class: "api-link", href, text: decodeURIComponent(href) }),
      ),
    );
    $("model-error").textContent = "";
  } catch (err) {
    if (ticket !== heat.probRequest) return;
    $("model-error").textContent = err.message;
  } finally {
    if (ticket === heat.probRequest) out.setAttribute("aria-busy", "false");
  }
}

function cellOf(target) {
  return target instanceof Element ? target.closest("td[data-row]") : null;
}

function initHeatmapEvents() {
  const table = $("heatmap");
  // Hover is for pointers that hover; a tap focuses the cell, and focus shows the tooltip.
  table.addEventListener("pointerover", (e) => {
    const td = cellOf(e.target);
    if (td && e.pointerType !== "touch") showTip(td);
  });
  table.addEventListener("pointerleave", (e) => {
    if (e.pointerType === "touch") return;
    const td = cellOf(document.activeElement);
    if (td && td.matches(":focus-visible")) showTip(td);
    else hideTip();
  });
  table.addEventListener("focusin", (e) => {
    const td = cellOf(e.target);
    if (!td) return;
    setRoving(td);
    showTip(td);
  });
  table.addEventListener("focusout", (e) => {
    if (!cellOf(e.relatedTarget)) hideTip();
  });
  table.addEventListener("click", (e) => {
    const td = cellOf(e.target);
    if (!td) return;
    if (document.activeElement !== td) td.focus();
    selectCell(Number(td.dataset.row), Number(td.dataset.col));
  });
  table.addEventListener("keydown", (e) => {
    const td = cellOf(e.target);
    if (!td) return;
    const last = heat.alphabet.length - 1;
    let [i, j] = [Number(td.dataset.row), Number(td.dataset.col)];
    switch (e.key) {
      case "ArrowUp": i -= 1; break;
      case "ArrowDown": i += 1; break;
      case "ArrowLeft": j -= 1; break;
      case "ArrowRight": j += 1; break;
      case "Home": j = 0; if (e.ctrlKey) i = 0; break;
      case "End": j = last; if (e.ctrlKey) i = last; break;
      case "PageUp": i = 0; break;
      case "PageDown": i = last; break;
      case "Enter":
      case " ":
        e.preventDefault();
        selectCell(i, j);
        return;
      case "Escape":
        hideTip();
        return;
      default:
        return;
    }
    e.preventDefault();
    moveFocus(Math.min(Math.max(i, 0), last), Math.min(Math.max(j, 0), last));
  });
  // The tooltip is fixed to the window: it follows its cell when anything scrolls.
  $("heatmap-scroll").addEventListener("scroll", placeTip, { passive: true });
  addEventListener("scroll", placeTip, { passive: true });
  addEventListener("resize", placeTip, { passive: true });

  for (const radio of document.querySelectorAll('input[name="scale"]')) {
    radio.addEventListener("change", () => {
      heat.scale = radio.value;
      paint();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// What comes next: /next's distribution of the symbol after a beginning, as bars. A bar adds its
// symbol to the beginning (a walk through the model, one symbol at a time); "end" finishes it.

const NEXT_TOP = 12; // the likeliest symbols get a bar; the others are summed up below them
const nextInput = $("context");
let nextRequest = 0;
let nextTimer = 0;
let nextShown = null; // the last /next answer drawn
let nextRefocus = false; // a bar had the focus: give it to the new first bar once drawn

async function showNext() {
  clearTimeout(nextTimer);
  const ticket = ++nextRequest;
  const context = nextInput.value;
  const href = forModel(`/next?${new URLSearchParams({ context })}`);
  const result = $("next-result");
  result.setAttribute("aria-busy", "true");
  $("next-back").disabled = context === "";
  try {
    const { body } = await getJSON(href);
    if (ticket !== nextRequest) return;
    drawNext(body, href);
    $("next-error").textContent = "";
    nextInput.removeAttribute("aria-invalid");
    result.hidden = false;
  } catch (err) {
    if (ticket !== nextRequest) return;
    $("next-error").textContent = err.message;
    $("next-status").textContent = "";
    if (err.problem?.errors?.some((e) => e.parameter === "context")) {
      nextInput.setAttribute("aria-invalid", "true");
    }
    // Bars drawn for another beginning would walk on from the wrong place: hide them.
    result.hidden = true;
    if (nextRefocus) nextInput.focus();
    nextRefocus = false;
  } finally {
    if (ticket === nextRequest) result.setAttribute("aria-busy", "false");
  }
}

/** Why the model conditions on `state`: the last N - 1 symbols, or fewer when it backed off. */
function stateHint(context, state) {
  const order = currentOrder();
  if (order === null) return "";
  if (order === 2) return state === "." ? "(the start of a word)" : "(the previous symbol)";
  const full = [...".".repeat(order - 1), ...context].slice(1 - order).join("");
  if (state === full) return `(the last ${order - 1} symbols; \u201c.\u201d pads a word\u2019s start)`;
  return `(backed off: the training words never have \u201c${full}\u201d)`;
}

function drawNext(body, href) {
  nextShown = body;
  const top = body.next.slice(0, NEXT_TOP);
  const hi = top.length ? top[0].prob : 1;
  $("next-state").textContent = body.state;
  $("next-state-hint").textContent = stateHint(body.context, body.state);
  const given = body.state;
  const buttons = top.map(({ symbol, prob }, k) => {
    const end = symbol === ".";
    const fill = el("span", { class: "next-fill" });
    fill.style.width = `${((100 * prob) / (hi || 1)).toFixed(2)}%`;
    const action = end ? "finish the word" : `add \u201c${symbol}\u201d`;
    return el(
      "button",
      {
        type: "button",
        class: end ? "next-bar next-end" : "next-bar",
        "data-symbol": symbol,
        "data-prob": String(prob),
        tabindex: k === 0 ? "0" : "-1",
        title: `P(${end ? "end" : symbol} | ${given}) = ${fmtProb(prob)}: click to ${action}`,
      },
      el("span", { class: "next-sym", text: end ? "end" : symbol }),
      el("span", { class: "next-track", "aria-hidden": "true" }, fill),
      el("span", { class: "next-p", text: fmtProb(prob) }),
    );
  });
  const bars = $("next-bars");
  bars.replaceChildren(...buttons.map((b) => el("li", {}, b)));
  bars.hidden = false;
  $("next-done").hidden = true;
  const rest = body.next.slice(NEXT_TOP);
  const restMass = rest.reduce((sum, x) => sum + x.prob, 0);
  const restText = $("next-rest");
  restText.hidden = rest.length === 0;
  restText.textContent =
    `The other ${rest.length} symbol${rest.length === 1 ? "" : "s"}: ` +
    `${restMass > 0 ? fmtProb(restMass) : "0"} together.`;
  const link = $("next-link");
  link.href = href;
  link.textContent = decodeURIComponent(href);
  const first = top[0];
  $("next-status").textContent = first
    ? `After \u201c${body.context}\u201d, the model conditions on \u201c${body.state}\u201d; ` +
      `the likeliest next: ${first.symbol === "." ? "end" : first.symbol}, ${fmtProb(first.prob)}.`
    : "";
  if (nextRefocus && buttons.length) buttons[0].focus();
  nextRefocus = false;
}

/** A bar's symbol: added to the beginning, or, for "end", the word is finished. */
function walk(bar) {
  nextRefocus = document.activeElement === bar;
  if (bar.dataset.symbol === ".") {
    finishWord(Number(bar.dataset.prob));
    return;
  }
  nextInput.value = (nextShown?.context ?? nextInput.value) + bar.dataset.symbol;
  showNext();
}

function finishWord(prob) {
  const word = nextShown?.context ?? nextInput.value;
  $("next-word").textContent = word === "" ? "(the empty word)" : word;
  $("next-end-prob").textContent = `P(end | ${nextShown?.state ?? "\u2026"}) = ${fmtProb(prob)}`;
  $("next-bars").hidden = true;
  $("next-rest").hidden = true;
  $("next-done").hidden = false;
  $("next-score").disabled = word === "";
  $("next-status").textContent = `The word \u201c${word}\u201d ends here.`;
  if (nextRefocus) ($("next-score").disabled ? $("next-new") : $("next-score")).focus();
  nextRefocus = false;
}

/** Remove the last symbol (one user-perceived character) of the beginning. */
function backOne() {
  const parts = [...new Intl.Segmenter("fr", { granularity: "grapheme" }).segment(nextInput.value)];
  nextInput.value = parts
    .slice(0, -1)
    .map((p) => p.segment)
    .join("");
  showNext();
}

function initNext() {
  $("next-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showNext();
  });
  // Typing asks again once the keys pause.
  nextInput.addEventListener("input", () => {
    clearTimeout(nextTimer);
    nextTimer = setTimeout(showNext, 150);
  });
  $("next-back").addEventListener("click", () => {
    backOne();
    if ($("next-back").disabled) nextInput.focus(); // it hides itself at the empty beginning
  });
  const bars = $("next-bars");
  bars.addEventListener("click", (e) => {
    const bar = e.target instanceof Element ? e.target.closest("button.next-bar") : null;
    if (bar) walk(bar);
  });
  // One tab stop for the bars; the arrow keys move between them, Backspace steps back.
  bars.addEventListener("keydown", (e) => {
    const all = [...bars.querySelectorAll("button.next-bar")];
    const k = all.indexOf(document.activeElement);
    if (k < 0) return;
    const to = { ArrowDown: k + 1, ArrowUp: k - 1, Home: 0, End: all.length - 1 }[e.key];
    if (e.key === "Backspace" && nextInput.value !== "") {
      e.preventDefault();
      nextRefocus = true;
      backOne();
      return;
    }
    if (to === undefined) return;
    e.preventDefault();
    const target = all[Math.min(Math.max(to, 0), all.length - 1)];
    for (const b of all) b.tabIndex = b === target ? 0 : -1;
    target.focus();
  });
  $("next-score").addEventListener("click", () => {
    $("word").value = nextShown?.context ?? nextInput.value;
    scoreWord();
    $("word").focus();
  });
  $("next-new").addEventListener("click", () => {
    nextInput.value = "";
    showNext();
    nextInput.focus();
  });
}

// ---------------------------------------------------------------------------------------------
// Experiment: matched pseudowords (POST /pseudowords). The targets, one a line; for each, the
// pseudowords the service matched to it, in a table; the summary of both sets side by side; the
// CSV of the very request shown (its seed fixed), downloaded as a file.

const pwInputs = {
  targets: $("pw-targets"),
  per_target: $("pw-per-target"),
  old20_tolerance: $("pw-old20-tolerance"),
  nll_tolerance: $("pw-nll-tolerance"),
  seed: $("pw-seed"),
};
let pwRequest = 0;
let pwShown = null; // the JSON text of the request whose answer the section shows

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
/** A field as JSON: a number as typed (whole: a seed may pass 2^53, beyond a JavaScript
 * number), anything else as a string, for the service to say what is wrong with it. */
const jsonValue = (text) => (JSON_NUMBER.test(text) ? text : JSON.stringify(text));

/** The form as it stands: the targets (non-empty lines, trimmed) and each field's text. */
function pseudowordsForm() {
  const targets = pwInputs.targets.value
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const fields = {};
  for (const name of ["per_target", "old20_tolerance", "nll_tolerance", "seed"]) {
    fields[name] = pwInputs[name].value.trim();
  }
  return { targets, fields, model: chosenModel };
}

/** The request's JSON text, written out by hand so that the seed stays exact; an empty field
 * is left out (the service's default). */
function pseudowordsBody({ targets, fields, model }) {
  const parts = [`"targets":${JSON.stringify(targets)}`];
  for (const [name, value] of Object.entries(fields)) {
    if (value !== "") parts.push(`"${name}":${jsonValue(value)}`);
  }
  if (model !== null) parts.push(`"model":${JSON.stringify(model)}`);
  return `{${parts.join(",")}}`;
}

async function matchPseudowords() {
  const ticket = ++pwRequest;
  const form = pseudowordsForm();
  const result = $("pw-result");
  const button = $("pw-button");
  result.setAttribute("aria-busy", "true");
  button.disabled = true;
  $("pw-status").textContent = "Matching\u2026";
  try {
    const res = await post("/pseudowords", pseudowordsBody(form), "application/json");
    const { body, text } = await readJSON(res);
    if (ticket !== pwRequest) return;
    const seed = rawSeed(text, body.seed);
    // The CSV asks the same again with the seed used: the very pseudowords of the table.
    pwShown = pseudowordsBody({ ...form, fields: { ...form.fields, seed } });
    showPseudowords(body, seed);
  } catch (err) {
    if (ticket !== pwRequest) return;
    showPseudowordsError(err);
  } finally {
    if (ticket === pwRequest) {
      result.setAttribute("aria-busy", "false");
      button.disabled = false;
    }
  }
}

const fmtNll = (x) => x.toFixed(3);
/** A summary figure: "mean ± sd", the mean alone below two values, a dash for none. */
function fmtMeanSd({ mean, sd }, fmt) {
  if (mean === null) return "\u2014";
  return sd === null ? fmt(mean) : `${fmt(mean)} \u00b1 ${fmt(sd)}`;
}

/** One row of the table: a target (with its lexicon standing) or one of its pseudowords. */
function pseudowordRow(item, role, w) {
  const target = role === "target";
  let zipf = "\u2014";
  if (target && w.in_lexicon === false) zipf = "not a word";
  else if (target && w.zipf !== null) zipf = w.zipf.toFixed(2);
  const neighbours = el("td", { class: "num neighbours", text: String(w.neighbours.length) });
  if (w.neighbours.length) neighbours.title = w.neighbours.join(" ");
  return el(
    "tr",
    { class: target ? "pw-target" : "pw-pseudo", "data-role": role, "data-item": item },
    el("td", { class: "num item", text: target ? String(item) : "" }),
    el("td", { class: "role", text: role }),
    el("th", { scope: "row", class: "word", lang: "fr", text: w.word }),
    el("td", { class: "num length", text: String(w.length) }),
    el("td", { class: "num nll", text: fmtNll(w.nll_per_symbol) }),
    el("td", { class: "num old20", text: fmtOld20(w.old20) }),
    neighbours,
    el("td", { class: "num zipf", text: zipf }),
  );
}

function showPseudowords(body, seed) {
  $("pw-error").textContent = "";
  for (const input of Object.values(pwInputs)) input.removeAttribute("aria-invalid");
  const table = $("pw-table");
  table.querySelectorAll("tbody").forEach((part) => part.remove());
  // One row group per target: the target, then its pseudowords.
  body.items.forEach(({ target, pseudowords }, k) => {
    table.append(
      el(
        "tbody",
        {},
        pseudowordRow(k + 1, "target", target),
        ...pseudowords.map((w) => pseudowordRow(k + 1, "pseudoword", w)),
      ),
    );
  });
  const { targets, pseudowords } = body.summary;
  const formats = { length: (x) => x.toFixed(2), old20: fmtOld20, nll_per_symbol: fmtNll };
  for (const tr of $("pw-summary").tBodies[0].rows) {
    const figure = tr.dataset.figure;
    const [t, p] = [targets[figure], pseudowords[figure]];
    const text = (x) => (figure === "count" ? fmtInt(x) : fmtMeanSd(x, formats[figure]));
    tr.cells[1].textContent = text(t);
    tr.cells[2].textContent = text(p);
  }
  const unmatched = body.unmatched;
  $("pw-unmatched-box").hidden = unmatched.length === 0;
  $("pw-unmatched").replaceChildren(
    ...unmatched.map(({ target, reason }) =>
      el(
        "li",
        { "data-target": target },
        el("span", { class: "word", lang: "fr", text: target }),
        el("span", { class: "reason", text: reason }),
      ),
    ),
  );
  $("pw-seed-used").textContent = seed;
  $("pw-model").textContent = body.model;
  $("pw-result").hidden = false;
  const missed = unmatched.length ? `; ${plural(unmatched.length, "target")} not matched` : "";
  $("pw-status").textContent =
    `${plural(targets.count, "target")} matched with ` +
    `${plural(pseudowords.count, "pseudoword")}${missed} (seed ${seed}).`;
}

/** The problem's detail in the section's alert; the fields it names marked (a target's
 * parameter is `targets[k]`: the box of targets). The last table stays. */
function showPseudowordsError(err) {
  $("pw-error").textContent = err.message;
  $("pw-status").textContent = "";
  const bad = new Set((err.problem?.errors || []).map((e) => e.parameter.replace(/\[.*$/, "")));
  for (const [name, input] of Object.entries(pwInputs)) {
    if (bad.has(name)) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  const first = Object.keys(pwInputs).find((name) => bad.has(name));
  if (first) pwInputs[first].focus();
}

/** The shown request again, as CSV, saved as pseudowords.csv (a Blob and a link to it:
 * nothing leaves the page, which the CSP allows). */
async function downloadCsv() {
  if (pwShown === null) return;
  const button = $("pw-download");
  button.disabled = true;
  try {
    const res = await post("/pseudowords", pwShown, "text/csv");
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: "pseudowords.csv", hidden: "" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000); // once the download surely has it
    $("pw-error").textContent = "";
    $("pw-status").textContent = "pseudowords.csv downloaded.";
  } catch (err) {
    $("pw-error").textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

/** Which lexicon the picked model's pseudowords must not be in (from /models). */
function showLexiconSource() {
  const entry = currentEntry();
  const note = $("pw-lexicon");
  note.hidden = entry === undefined || entry.lexicon === undefined;
  if (note.hidden) return;
  const lex = entry.lexicon;
  note.textContent =
    lex === null
      ? `The model \u201c${entry.name}\u201d has no lexicon, so no pseudowords to match: ` +
        "pick a model trained with --language."
      : `Lexicon of \u201c${entry.name}\u201d: ${lex.source}, ${plural(lex.size, "word")} ` +
        `(${fmtInt(lex.extra_words)} of them training words the source lacks).`;
}

function initPseudowords() {
  $("pw-form").addEventListener("submit", (event) => {
    event.preventDefault();
    matchPseudowords();
  });
  $("pw-download").addEventListener("click", downloadCsv);
}

// ---------------------------------------------------------------------------------------------
// The served models side by side: order, smoothing, training and held-out NLL (GET /models).

function showModelsTable() {
  const values = servedModels.flatMap((m) => [m.nll, m.holdout_nll]).filter((v) => v !== null);
  const hi = Math.max(...values, 1e-9);
  const nllCell = (value, kind) => {
    if (value === null || value === undefined) {
      return el("td", { class: `num ${kind}`, title: "no held-out words" }, "\u2014");
    }
    const fill = el("span", { class: "nll-fill" });
    fill.style.width = `${((100 * value) / hi).toFixed(2)}%`;
    return el(
      "td",
      { class: `num ${kind}` },
      el("span", { class: "nll-value", text: fmtLoss(value) }),
      el("span", { class: "nll-track", "aria-hidden": "true" }, fill),
    );
  };
  const rows = servedModels.map((m) => {
    const name = el("th", { scope: "row" }, el("span", { class: "model-name", text: m.name }));
    if (m.default) name.append(el("span", { class: "sub", text: "default" }));
    return el(
      "tr",
      { "data-model": m.name },
      name,
      el("td", { class: "order", text: String(m.order) }),
      el("td", { class: "smoothing", text: fmtSmoothing(m.smoothing) }),
      nllCell(m.nll, "training"),
      nllCell(m.holdout_nll, "heldout"),
    );
  });
  $("models-table").tBodies[0].replaceChildren(...rows);
  markCurrentModel();
  $("models").hidden = false;
}

/** The picked model's row stands out. */
function markCurrentModel() {
  const name = currentEntry()?.name;
  for (const tr of $("models-table").tBodies[0].rows) {
    if (tr.dataset.model === name) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }
}

// ---------------------------------------------------------------------------------------------
// The numbers and the loss curve

function showModel(info) {
  const order = info.order ?? 2;
  $("stat-version").textContent = info.version;
  const states = Number.isInteger(info.states) ? `; ${fmtInt(info.states)} states` : "";
  $("stat-order").textContent = `${order}: the next symbol depends on ${dependsOn(order)}${states}`;
  $("stat-alphabet-size").textContent = String(info.alphabet.length);
  $("stat-alphabet").textContent = info.alphabet.join(" ");
  $("stat-examples").textContent = fmtInt(info.examples);
  $("stat-examples-unit").textContent = ngrams(order);
  $("stat-corpus-words").textContent = fmtInt(info.corpus.words);
  const c = info.config;
  $("stat-training").textContent =
    c.method === "counts"
      ? `counting model, order ${order}, ${fmtSmoothing(info.smoothing ?? c.smoothing)} smoothing`
      : `${fmtInt(c.steps)} steps of gradient descent, lr ${c.lr}, reg ${c.reg}, seed ${c.seed}`;
  showHoldout(info);
  $("stat-loss-first").textContent = fmtLoss(info.loss.first);
  $("stat-loss-last").textContent = fmtLoss(info.loss.last);
  $("stat-loss-final").textContent = fmtLoss(info.loss.final);
  $("stat-loss-nll").textContent = fmtLoss(info.loss.nll);
  const sha = info.corpus.sha256;
  const code = el("code", { title: `sha256 ${sha}`, text: `sha256 ${sha.slice(0, 12)}…` });
  $("stat-corpus").replaceChildren(`${fmtInt(info.corpus.bytes)} bytes, `, code);
  drawLoss(info.loss.curve);
}

/** With a hold-out, the training NLL and the held-out words' NLL side by side. */
function showHoldout(info) {
  const h = info.holdout;
  $("stat-holdout").hidden = !h;
  if (!h) return;
  $("stat-nll-train").textContent = fmtLoss(info.loss.nll);
  $("stat-nll-heldout").textContent = h.nll === null ? "none" : fmtLoss(h.nll);
  const s = h.words === 1 ? "" : "s";
  const skipped = h.skipped ? `, ${fmtInt(h.skipped)} skipped` : "";
  $("stat-holdout-words").textContent =
    `(${fmtInt(h.words)} held-out word${s}, ${fmtInt(h.examples)} ${ngrams(info.order ?? 2)}` +
    `${skipped})`;
}

/** Round, evenly spaced ticks covering [lo, hi]: about `count` of them. */
function niceTicks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toFixed(10))); // no 0.30000000000000004
  }
  return ticks;
}

function drawLoss(curve) {
  const box = $("loss-curve");
  if (curve.length === 0) {
    // A counting model is not trained by steps: nothing to draw.
    box.replaceChildren();
    box.setAttribute("hidden", ""); // an SVG element has no `hidden` property
    $("loss-caption").textContent = "No training curve: the counting model is not trained by steps.";
    return;
  }
  box.removeAttribute("hidden");
  const [W, H] = [360, 160];
  const m = { left: 40, right: 14, top: 12, bottom: 28 };
  const steps = curve.map(([s]) => s);
  const losses = curve.map(([, l]) => l);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const pad = (Math.max(...losses) - Math.min(...losses)) * 0.06;
  const [y0, y1] = [Math.min(...losses) - pad, Math.max(...losses) + pad];
  const x = (s) => m.left + ((s - x0) / (x1 - x0 || 1)) * (W - m.left - m.right);
  const y = (l) => H - m.bottom - ((l - y0) / (y1 - y0 || 1)) * (H - m.top - m.bottom);

  const bottom = H - m.bottom;
  const tickText = (attrs, text) => svg("text", { class: "tick", ...attrs }, text);
  const nodes = [];
  for (const v of niceTicks(y0, y1, 5)) {
    nodes.push(svg("line", { class: "grid", x1: m.left, x2: W - m.right, y1: y(v), y2: y(v) }));
    const at = { x: m.left - 6, y: y(v), "text-anchor": "end", "dominant-baseline": "middle" };
    nodes.push(tickText(at, String(v)));
  }
  for (const s of niceTicks(x0, x1, 4)) {
    nodes.push(tickText({ x: x(s), y: bottom + 16, "text-anchor": "middle" }, String(s)));
  }
  nodes.push(svg("line", { class: "axis", x1: m.left, x2: W - m.right, y1: bottom, y2: bottom }));
  const points = curve.map(([s, l]) => `${x(s).toFixed(1)},${y(l).toFixed(1)}`).join(" ");
  nodes.push(svg("polyline", { class: "curve", points }));
  const [sl, ll] = curve[curve.length - 1];
  nodes.push(svg("circle", { class: "end", cx: x(sl), cy: y(ll), r: 3 }));
  const endLabel = tickText({ x: x(sl), y: y(ll) - 9, "text-anchor": "end" }, fmtLoss(ll));
  endLabel.classList.add("end-label");
  nodes.push(endLabel);
  nodes.push(tickText({ x: W - m.right, y: H - 2, "text-anchor": "end" }, "step"));
  const summary = `from ${fmtLoss(losses[0])} at step ${x0} to ${fmtLoss(ll)} at step ${sl}`;
  box.replaceChildren(svg("title", {}, `Training loss ${summary}`), ...nodes);
  $("loss-caption").textContent = `Training loss by step, ${summary}`;
}

// ---------------------------------------------------------------------------------------------
// Start: one batch of words, the model's numbers and its matrix, all at once.

let modelRequest = 0;

/** The numbers from /model; the heatmap from /matrix for a bigram model. A model of order
 * N > 2 has no such matrix (/matrix answers 422): it is not asked, the page says why. */
async function loadModel() {
  const ticket = ++modelRequest;
  try {
    let order = currentEntry()?.order; // known once /models answered
    let info;
    let matrix = null;
    if (order === undefined) {
      ({ body: info } = await getJSON(forModel("/model")));
      order = info.order ?? 2;
      if (order === 2) ({ body: matrix } = await getJSON(forModel("/matrix")));
    } else {
      const answers = await Promise.all([
        getJSON(forModel("/model")),
        order === 2 ? getJSON(forModel("/matrix")) : null,
      ]);
      info = answers[0].body;
      matrix = answers[1]?.body ?? null;
    }
    if (ticket !== modelRequest) return;
    shownInfo = info;
    showModel(info);
    showMatrixOrWhyNot(info, matrix);
    $("model-error").textContent = "";
    if (nextShown) {
      $("next-state-hint").textContent = stateHint(nextShown.context, nextShown.state);
    }
  } catch (err) {
    if (ticket !== modelRequest) return;
    $("model-error").textContent = `The model could not be loaded: ${err.message}`;
  }
}

/** The heatmap of a bigram model; for a model of order N > 2, what it conditions on instead. */
function showMatrixOrWhyNot(info, matrix) {
  const order = info.order ?? 2;
  const bigram = matrix !== null;
  $("bigram-view").hidden = !bigram;
  $("prob-result").hidden = !bigram;
  $("not-bigram").hidden = bigram;
  $("model-title").querySelector(".math").textContent = bigram
    ? "P(next | previous)"
    : `P(next | last ${order - 1} symbols)`;
  if (bigram) {
    buildHeatmap(matrix);
    return;
  }
  hideTip();
  $("not-bigram-name").textContent = currentEntry()?.name ?? info.version;
  $("not-bigram-order").textContent = String(order);
  $("not-bigram-context").textContent = String(order - 1);
}

/** The largest count is a server setting: take it from the API's own document. */
async function loadLimits() {
  try {
    const { body: doc } = await getJSON("/openapi.json");
    const params = doc.paths["/sample"].get.parameters;
    const maximum = (name) => params.find((p) => p.name === name)?.schema.maximum;
    const max = maximum("n");
    if (Number.isInteger(max)) {
      inputs.n.max = String(max);
      $("n-hint").textContent = `1 to ${max} words`;
    }
    for (const name of ["min_len", "max_len", "top_k"]) {
      if (Number.isInteger(maximum(name))) inputs[name].max = String(maximum(name));
    }
  } catch {
    // The page keeps its built-in hint; the server still says what is wrong with a count.
  }
}

/** The served models (their orders tell which have a matrix). With several, the picker and
 * the side-by-side table: choosing a model asks it everything again. */
async function loadModels() {
  let models;
  try {
    ({ body: { models } } = await getJSON("/models"));
  } catch {
    return; // the page still works with the default model
  }
  servedModels = models;
  if (models.length < 2) return;
  const select = $("model-select");
  select.replaceChildren(
    ...models.map((m) => {
      const text =
        `${m.name} \u2014 order ${m.order}, ${fmtSmoothing(m.smoothing)}` +
        `${m.default ? " (default)" : ""}`;
      return el("option", { value: m.name, "data-order": m.order, text });
    }),
  );
  const current = models.find((m) => m.default) || models[0];
  select.value = current.name;
  const describe = (m) => {
    $("model-picker-hint").textContent =
      `${m.method}, order ${m.order}: the next symbol depends on ${dependsOn(m.order)}; ` +
      `${m.symbols} symbols, version ${m.version}`;
    inputs.top_k.max = String(m.symbols); // each model has its own V
  };
  describe(current);
  select.addEventListener("change", () => {
    const m = models.find((x) => x.name === select.value);
    chosenModel = m.name;
    describe(m);
    markCurrentModel();
    showLexiconSource();
    $("prob-result").replaceChildren(
      el("p", { class: "prob-empty", text: "Pick a cell to ask the API for that bigram." }),
    );
    generate();
    if ($("word").value.trim() !== "") scoreWord();
    showNext();
    loadModel();
  });
  $("model-picker").hidden = false;
  showModelsTable();
}

initHeatmapEvents();
initNext();
initPseudowords();
generate();
scoreWord();
showNext();
loadLimits();
// The models first: their orders say whether to ask /matrix at all.
loadModels().then(() => {
  showLexiconSource();
  return loadModel();
});

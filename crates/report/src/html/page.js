"use strict";
// The document table and panels of a cfmem HTML report. The data is the
// JSON in <script id=data>: one array per column, in corpus order.
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const N = D.id.length;
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const fmt = (x, d) => (x === null || x === undefined ? "–" : x.toFixed(d));

  // Rank by mem, highest first (documents without an estimate last).
  const byMem = Array.from({ length: N }, (_, i) => i).sort((a, b) => cmpNum(D.mem[a], D.mem[b], -1) || a - b);
  const rank = new Int32Array(N);
  byMem.forEach((d, r) => (rank[d] = r + 1));

  function cmpNum(x, y, dir) {
    // nulls last whatever the direction
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    return dir * (x - y);
  }

  const cols = [
    { key: "rank", name: "#", num: true, get: (i) => rank[i], show: (i) => rank[i] },
    { key: "id", name: "id", get: (i) => D.id[i], show: (i) => esc(D.id[i]), cls: "id" },
  ];
  const manyKinds = D.kind && new Set(D.kind).size > 1;
  if (manyKinds) cols.push({ key: "kind", name: "kind", get: (i) => D.kind[i], show: (i) => esc(D.kind[i]) });
  if (D.group) cols.push({ key: "group", name: "group", get: (i) => D.group[i] || "", show: (i) => esc(D.group[i] || "") });
  cols.push(
    { key: "mem", name: "mem", num: true, get: (i) => D.mem[i], show: (i) => fmt(D.mem[i], 4) },
    { key: "ci_low", name: "interval", num: true, get: (i) => D.ci_low[i], show: (i) => (D.mem[i] === null ? esc(D.reason[i] || "") : "[" + fmt(D.ci_low[i], 3) + ", " + fmt(D.ci_high[i], 3) + "]") },
    { key: "se", name: "se", num: true, get: (i) => D.se[i], show: (i) => fmt(D.se[i], 4) },
    { key: "n_in", name: "n in", num: true, get: (i) => D.n_in[i], show: (i) => D.n_in[i] },
    { key: "n_out", name: "n out", num: true, get: (i) => D.n_out[i], show: (i) => D.n_out[i] },
    { key: "in_mean", name: "in mean", num: true, get: (i) => D.in_mean[i], show: (i) => fmt(D.in_mean[i], 4) },
    { key: "out_mean", name: "out mean", num: true, get: (i) => D.out_mean[i], show: (i) => fmt(D.out_mean[i], 4) }
  );
  if (D.shrunk) cols.push(
    { key: "shrunk", name: "shrunk", num: true, get: (i) => D.shrunk.mean[i], show: (i) => fmt(D.shrunk.mean[i], 4) },
    { key: "shrunk_low", name: "posterior interval", num: true, get: (i) => D.shrunk.low[i], show: (i) => (D.shrunk.mean[i] === null ? "" : "[" + fmt(D.shrunk.low[i], 3) + ", " + fmt(D.shrunk.high[i], 3) + "]") },
    { key: "lfsr", name: "P(not memorized)", num: true, get: (i) => D.shrunk.lfsr[i], show: (i) => fmt(D.shrunk.lfsr[i], 3) }
  );
  if (D.auc) cols.push({ key: "auc", name: "membership AUC", num: true, get: (i) => D.auc[i], show: (i) => fmt(D.auc[i], 3) });

  const state = { key: "rank", dir: 1, page: 0, filter: "", kind: "", view: byMem.slice() };
  let lowerText = null;

  const head = $("table").tHead.rows[0];
  head.innerHTML = cols.map((c) => '<th data-key="' + c.key + '">' + esc(c.name) + "</th>").join("");
  head.addEventListener("click", (e) => {
    const th = e.target.closest("th");
    if (!th) return;
    const key = th.dataset.key;
    if (state.key === key) state.dir = -state.dir;
    else {
      state.key = key;
      // numbers: largest first (rank: 1 first); text: A first
      const c = cols.find((c) => c.key === key);
      state.dir = c.num && key !== "rank" ? -1 : 1;
    }
    state.page = 0;
    update();
  });

  if (manyKinds) {
    const kinds = Array.from(new Set(D.kind)).sort();
    $("kind").innerHTML += kinds.map((k) => '<option value="' + esc(k) + '">' + esc(k) + "</option>").join("");
  } else $("kind").hidden = true;
  $("kind").addEventListener("change", (e) => { state.kind = e.target.value; state.page = 0; update(); });
  let timer = null;
  $("filter").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.filter = e.target.value.toLowerCase(); state.page = 0; update(); }, 150);
  });
  $("prev").addEventListener("click", () => { if (state.page > 0) { state.page--; render(); } });
  $("next").addEventListener("click", () => { if ((state.page + 1) * PAGE < state.view.length) { state.page++; render(); } });

  function update() {
    let v = [];
    const f = state.filter;
    if (f && D.text && !lowerText) lowerText = D.text.map((t) => t.toLowerCase());
    for (let i = 0; i < N; i++) {
      if (state.kind && D.kind[i] !== state.kind) continue;
      if (f && !(D.id[i].toLowerCase().includes(f) || (lowerText && lowerText[i].includes(f)))) continue;
      v.push(i);
    }
    const c = cols.find((c) => c.key === state.key);
    const dir = state.dir;
    if (c.num) v.sort((a, b) => cmpNum(c.get(a), c.get(b), dir) || a - b);
    else v.sort((a, b) => dir * String(c.get(a)).localeCompare(String(c.get(b))) || a - b);
    state.view = v;
    render();
  }

  function render() {
    const v = state.view;
    const start = state.page * PAGE;
    const rows = [];
    for (const i of v.slice(start, start + PAGE)) {
      rows.push('<tr data-i="' + i + '">' + cols.map((c) => '<td class="' + (c.num ? "num" : c.cls || "") + '">' + c.show(i) + "</td>").join("") + "</tr>");
    }
    $("table").tBodies[0].innerHTML = rows.join("");
    for (const th of head.cells) {
      th.className = th.dataset.key === state.key ? "sorted" + (state.dir > 0 ? " asc" : "") : "";
    }
    const pages = Math.max(1, Math.ceil(v.length / PAGE));
    $("count").textContent = v.length + " of " + N + " documents";
    $("pageno").textContent = "page " + (state.page + 1) + " of " + pages;
  }

  $("table").tBodies[0].addEventListener("click", (e) => {
    const tr = e.target.closest("tr");
    if (tr) location.hash = "doc-" + tr.dataset.i;
  });
  window.addEventListener("hashchange", fromHash);

  function fromHash() {
    const m = /^#doc-(\d+)$/.exec(location.hash);
    if (m && +m[1] < N) showDoc(+m[1]);
  }

  function decode(b64) {
    const s = atob(b64);
    const out = [];
    for (let k = 0; k < s.length; k++) {
      const q = s.charCodeAt(k);
      if (q !== 255) out.push(D.lo + (q / 254) * (D.hi - D.lo));
    }
    return out;
  }

  // The in- and out-models' scores of one document as two rows of dots.
  function distribution(i) {
    const [a, b] = D.scores[i].split("|");
    const sides = [["in", decode(a)], ["out", decode(b)]];
    const W = 640, H = 150, L = 70, R = 20;
    const x = (v) => L + ((v - D.lo) / (D.hi - D.lo || 1)) * (W - L - R);
    let s = '<svg class="dist" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '" role="img">';
    sides.forEach(([name, vals], r) => {
      const y = 35 + r * 50;
      s += '<text x="4" y="' + (y + 4) + '" font-size="12">' + name + " (" + vals.length + ")</text>";
      s += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y + '" y2="' + y + '" stroke="#ddd"/>';
      vals.forEach((v, k) => {
        const jitter = ((k * 7919) % 17) - 8;
        s += '<circle class="' + name + '" cx="' + x(v).toFixed(1) + '" cy="' + (y + jitter) + '" r="3.5" fill-opacity="0.6"/>';
      });
      if (vals.length) {
        const m = vals.reduce((p, q) => p + q, 0) / vals.length;
        s += '<line x1="' + x(m) + '" x2="' + x(m) + '" y1="' + (y - 14) + '" y2="' + (y + 14) + '" stroke="#000" stroke-width="2"/>';
      }
    });
    s += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + (H - 25) + '" y2="' + (H - 25) + '" stroke="#888"/>';
    for (let t = 0; t <= 4; t++) {
      const v = D.lo + (t / 4) * (D.hi - D.lo);
      s += '<text x="' + x(v) + '" y="' + (H - 8) + '" font-size="11" text-anchor="middle">' + v.toPrecision(3) + "</text>";
    }
    return s + "</svg>";
  }

  // The text, coloured by per-token memorization when the report has it:
  // red where the in-models do better than the out-models, blue where worse.
  function tokenText(i) {
    const t = D.text[i];
    const seg = D.tokens && D.tokens[i];
    if (!seg) {
      const why = D.tokens ? '<p class="note">Per-token view: kept for the ' + Object.keys(D.tokens).length + " most memorized documents only.</p>" : "";
      return why + '<pre class="text">' + esc(t) + "</pre>";
    }
    let s = "", at = 0;
    for (let k = 0; k + 2 < seg.length; k += 3) {
      const piece = t.slice(at, at + seg[k]);
      at += seg[k];
      const q = seg[k + 1], e = seg[k + 2];
      if (q === 999) { s += esc(piece); continue; }
      // Faded where the difference is within two standard errors of 0.
      const sure = e > 0 && e !== 999 ? Math.min(1, Math.abs(q) / (2 * e)) : 1;
      const a = Math.min(1, Math.abs(q) / 100) * sure;
      const rgb = q >= 0 ? "214,39,40" : "31,119,180";
      const v = (q / 100) * D.token_scale;
      const se = e === 999 ? "" : " ± " + ((e / 100) * D.token_scale).toFixed(2) + " (se)";
      s += '<span class="tok" style="background:rgba(' + rgb + "," + (0.85 * a).toFixed(2) + ')" title="' + (v >= 0 ? "+" : "") + v.toFixed(2) + se + '">' + esc(piece) + "</span>";
    }
    s += esc(t.slice(at));
    const what = D.metric === "accuracy" ? "correct-prediction rate" : "loss (nats, out − in)";
    return '<p class="note">Per-token memorization: in-models\' minus out-models\' ' + what +
      " per token (unadjusted; full colour at ±" + D.token_scale + ", faded where within two standard errors of 0; hover for the value and its standard error).</p>" +
      '<pre class="text tokens">' + s + "</pre>";
  }

  function showDoc(i) {
    const p = $("doc");
    const est = D.mem[i] === null
      ? "no estimate: " + esc(D.reason[i] || "")
      : "mem <b>" + fmt(D.mem[i], 4) + "</b> [" + fmt(D.ci_low[i], 4) + ", " + fmt(D.ci_high[i], 4) + "], se " + fmt(D.se[i], 4) +
        "; in-models' mean " + fmt(D.in_mean[i], 4) + " (" + D.n_in[i] + "), out-models' mean " + fmt(D.out_mean[i], 4) + " (" + D.n_out[i] + "); rank " + rank[i] + " of " + N;
    p.innerHTML =
      '<button class="close">close</button><h2 id="doc-title">' + esc(D.id[i]) + "</h2>" +
      "<p>" + (manyKinds ? "kind " + esc(D.kind[i]) + "; " : "") + (D.group && D.group[i] ? "group " + esc(D.group[i]) + "; " : "") + est +
      (D.auc ? "; membership AUC " + fmt(D.auc[i], 3) : "") + "</p>" +
      "<p class=note>Per-token " + esc(D.metric) + " of the first " + D.models_drawn + " models, by whether they trained on it (bar: mean; unadjusted).</p>" +
      distribution(i) +
      (D.text ? tokenText(i) : "");
    p.hidden = false;
    p.querySelector(".close").addEventListener("click", () => { p.hidden = true; history.replaceState(null, "", "#documents"); });
    p.scrollIntoView();
  }

  update();
  fromHash();
})();

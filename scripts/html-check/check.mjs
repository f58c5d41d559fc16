// Opens a cfmem HTML report in headless Chromium and checks what a reader
// does with it: the table has rows, sorting changes their order, the
// filter narrows them, paging moves on, a document's panel opens with its
// scores drawn. Fails on any page error or any request that leaves the
// file (the report must be self-contained). Saves screenshots.
//
//   [PROBE=ID] node check.mjs REPORT.html SCREENSHOT_PREFIX
import puppeteer from "puppeteer-core";

const [report, shots] = process.argv.slice(2);
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const fail = (m) => { console.error("html check FAILED: " + m); process.exit(1); };

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"],
});
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 900 });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
const outside = [];
await page.setRequestInterception(true);
page.on("request", (r) => {
  const u = r.url();
  if (u.startsWith("file:") || u.startsWith("data:") || u.startsWith("about:")) r.continue();
  else { outside.push(u); r.abort(); }
});
const t0 = Date.now();
await page.goto("file://" + report, { waitUntil: "load", timeout: 120000 });
await page.waitForSelector("#table tbody tr", { timeout: 120000 });
const loadMs = Date.now() - t0;

const rows = () => page.$$eval("#table tbody tr", (trs) => trs.map((tr) => Array.from(tr.cells).map((c) => c.textContent)));
const header = await page.$$eval("#table thead th", (ths) => ths.map((t) => t.textContent));
const col = (name) => { const i = header.indexOf(name); if (i < 0) fail("no column " + name); return i; };
const total = await page.evaluate(() => JSON.parse(document.getElementById("data").textContent).id.length);

let r = await rows();
if (r.length !== Math.min(50, total)) fail(`${r.length} rows on the first page of ${total} documents`);
const num = (s) => (s === "–" ? NaN : parseFloat(s));
// Default order: by memorization, highest first.
const mems = r.map((x) => num(x[col("mem")])).filter((x) => !isNaN(x));
for (let i = 1; i < mems.length; i++) if (mems[i] > mems[i - 1]) fail("default order is not by mem, descending");
const firstIds = r.map((x) => x[col("id")]);

// Sorting by id changes the order and sorts it.
await page.click('#table thead th[data-key="id"]');
r = await rows();
const ids = r.map((x) => x[col("id")]);
if (JSON.stringify(ids) === JSON.stringify(firstIds)) fail("sorting by id did not change the order");
for (let i = 1; i < ids.length; i++) if (ids[i - 1].localeCompare(ids[i]) > 0) fail(`not sorted by id: ${ids[i - 1]} before ${ids[i]}`);
// Sorting by mem twice: descending, then ascending.
await page.click('#table thead th[data-key="mem"]');
await page.click('#table thead th[data-key="mem"]');
r = await rows();
const asc = r.map((x) => num(x[col("mem")])).filter((x) => !isNaN(x));
for (let i = 1; i < asc.length; i++) if (asc[i] < asc[i - 1]) fail("mem not ascending after a second click");

// Paging.
await page.click("#next");
const pageno = await page.$eval("#pageno", (e) => e.textContent);
if (total > 50 && !pageno.startsWith("page 2")) fail("next did not move to page 2: " + pageno);

// The filter: the id of some document narrows the table to matching rows.
// PROBE=ID picks the document to open (default: the most memorized).
const probe = process.env.PROBE || firstIds[0];
await page.type("#filter", probe);
await page.waitForFunction((n) => parseInt(document.getElementById("count").textContent, 10) < n, { timeout: 10000 }, total)
  .catch(() => fail("the filter did not narrow the table"));
const count = await page.$eval("#count", (e) => e.textContent);
r = await rows();
if (!r.some((x) => x[col("id")] === probe)) fail(`filtering for ${probe} lost it`);

// A document's panel.
await page.click("#table tbody tr");
await page.waitForSelector("#doc:not([hidden])", { timeout: 5000 }).catch(() => fail("the document panel did not open"));
const title = await page.$eval("#doc-title", (e) => e.textContent);
if (title !== r[0][col("id")]) fail(`panel shows ${title}, clicked ${r[0][col("id")]}`);
const dots = await page.$$eval("#doc svg.dist circle", (c) => c.length);
const want = await page.evaluate((id) => {
  const D = JSON.parse(document.getElementById("data").textContent);
  const i = D.id.indexOf(id);
  return Math.min(D.models_drawn, D.n_in[i] + D.n_out[i]);
}, title);
if (dots !== want) fail(`${dots} scores drawn for ${title}, expected ${want}`);
const perToken = await page.evaluate((id) => {
  const D = JSON.parse(document.getElementById("data").textContent);
  return D.tokens ? String(D.id.indexOf(id)) in D.tokens : false;
}, title);
const coloured = await page.$$eval("#doc span.tok", (s) => s.length);
if (perToken && coloured === 0) fail(`${title} has per-token results but no coloured text`);
await page.screenshot({ path: shots + "-document.png" });

// The top of the report, as a reader first sees it.
await page.$eval("#filter", (e) => { e.value = ""; e.dispatchEvent(new Event("input")); });
await page.evaluate(() => { document.getElementById("doc").hidden = true; window.scrollTo(0, 0); });
await page.screenshot({ path: shots + "-top.png" });
await page.click('#table thead th[data-key="rank"]');
await page.evaluate(() => document.getElementById("documents").scrollIntoView());
await new Promise((res) => setTimeout(res, 300));
await page.screenshot({ path: shots + "-table.png" });

if (errors.length) fail("page errors: " + errors.join("; "));
if (outside.length) fail("requests outside the file: " + outside.join(", "));
console.log(`html check passed: ${total} documents, loaded in ${loadMs} ms; ${count}; panel of ${title} with ${dots} scores${perToken ? ` and ${coloured} coloured token runs` : ''}; screenshots ${shots}-*.png`);
await browser.close();

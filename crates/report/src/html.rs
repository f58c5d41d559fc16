//! One self-contained HTML report: the settings, the reliability, the
//! charts (inline SVG), a sortable, filterable, paged table of every
//! document and a panel per document with its text and the scores of the
//! models that trained on it and of those that did not. No network: the
//! data, the script and the styles are in the file (`html/page.js`,
//! `html/page.css`).

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use serde::Serialize;

use cfmem_analysis::{Analyses, Metric, Rows, Value};

use crate::charts::{standard, NamedChart};
use crate::error::{io, Error, Result};
use crate::plot::{svg, Chart};

const SCRIPT: &str = include_str!("html/page.js");
const STYLE: &str = include_str!("html/page.css");

/// Scatter charts with more points than this are thinned (every k-th
/// point) in the HTML, so that the file stays small at 100,000 documents.
const MAX_SCATTER_POINTS: usize = 10_000;

/// What the HTML report shows besides the analyses.
#[derive(Debug, Clone, PartialEq)]
pub struct HtmlPage {
    /// The page's title (e.g. the experiment directory).
    pub title: String,
    /// Settings shown at the top, `(name, value)` (the experiment's corpus,
    /// tokenizer, model, recipe, design).
    pub settings: Vec<(String, String)>,
    /// Each document's text, in corpus order, when known.
    pub texts: Option<Vec<String>>,
    /// Characters of each text kept (the rest is cut, with a mark).
    pub max_text_chars: usize,
    /// Models whose scores are drawn per document (the first ones).
    pub max_models: usize,
    /// Per-token memorization on each document's text, when the source
    /// keeps per-token results: [`cfmem_analysis::text_segments`] per document, in
    /// corpus order, under the report's metric.
    /// Each run is `(length, value, standard error)`.
    pub token_segments: Option<Vec<Vec<(u32, f32, f32)>>>,
    /// Documents whose text is coloured by per-token memorization (the
    /// most memorized ones), so that the file stays small.
    pub max_token_docs: usize,
}

impl Default for HtmlPage {
    fn default() -> Self {
        Self {
            title: "cfmem report".into(),
            settings: Vec::new(),
            texts: None,
            max_text_chars: 2_000,
            max_models: 64,
            token_segments: None,
            max_token_docs: 2_000,
        }
    }
}

impl HtmlPage {
    /// A page titled `title` showing `settings` (e.g. an experiment's
    /// `describe()`) and, when known, each document's text in corpus order;
    /// the other fields at their defaults.
    pub fn new(
        title: impl Into<String>,
        settings: Vec<(String, String)>,
        texts: Option<Vec<String>>,
    ) -> Self {
        Self {
            title: title.into(),
            settings,
            texts,
            ..Self::default()
        }
    }
}

/// What [`write`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtmlWritten {
    /// File size in bytes.
    pub bytes: u64,
    /// Documents in the table.
    pub documents: usize,
    /// Models whose per-document scores are drawn.
    pub models_drawn: usize,
}

/// The document table, column by column (what `page.js` reads).
#[derive(Serialize)]
struct Data<'a> {
    metric: &'static str,
    higher_is_better: bool,
    n_models: usize,
    models_drawn: usize,
    /// The range the drawn scores are quantised over (0..=254; 255 = none).
    lo: f64,
    hi: f64,
    id: Vec<&'a str>,
    mem: Vec<Option<f64>>,
    se: Vec<Option<f64>>,
    ci_low: Vec<Option<f64>>,
    ci_high: Vec<Option<f64>>,
    in_mean: Vec<Option<f64>>,
    out_mean: Vec<Option<f64>>,
    n_in: Vec<usize>,
    n_out: Vec<usize>,
    reason: Vec<Option<String>>,
    kind: Option<&'a [String]>,
    group: Option<&'a [Option<String>]>,
    auc: Option<Vec<Option<f64>>>,
    /// The shrunk estimates, when asked.
    shrunk: Option<ShrunkColumns>,
    text: Option<Vec<String>>,
    /// Per document: base64 of its in-models' quantised scores, `|`, then
    /// its out-models'.
    scores: Vec<String>,
    /// Per-token view: the value that is full colour.
    token_scale: f64,
    /// Per-token view of the most memorized documents: document index →
    /// flat `[length, value, se, length, value, se, …]` (lengths in UTF-16
    /// units of the shown text; values in hundredths of `token_scale`,
    /// clamped to ±100, standard errors likewise to 0..=998; 999 where no
    /// token covers the text or there is no error).
    tokens: Option<std::collections::BTreeMap<usize, Vec<i32>>>,
}

/// The shrunk estimates' columns of the documents' table.
#[derive(Serialize)]
struct ShrunkColumns {
    mean: Vec<Option<f64>>,
    low: Vec<Option<f64>>,
    high: Vec<Option<f64>>,
    lfsr: Vec<Option<f64>>,
}

impl ShrunkColumns {
    fn of(s: &cfmem_analysis::Shrinkage) -> Self {
        let col = |g: fn(&cfmem_analysis::Shrunk) -> f64| {
            s.docs.iter().map(|x| short(x.as_ref().map(g))).collect()
        };
        Self {
            mean: col(|x| x.mean),
            low: col(|x| x.ci_low),
            high: col(|x| x.ci_high),
            lfsr: col(|x| x.lfsr),
        }
    }
}

/// Six significant digits: what a reader needs, a third of the bytes.
fn short(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
        .map(|v| format!("{v:.5e}").parse().unwrap_or(v))
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// The first `max_models` models' scores per document, split by
/// membership, quantised to bytes over `[lo, hi]`.
fn scores(
    src: &dyn Rows,
    a: &Analyses,
    max_models: usize,
) -> Result<(Vec<String>, f64, f64, usize)> {
    let n = a.report.docs.len();
    let metric = a.report.metric();
    let mut cols: Vec<(Vec<bool>, Vec<f64>)> = Vec::new();
    src.visit(Value::Scores(metric), &mut |r| {
        if cols.len() < max_models {
            cols.push((r.copies.iter().map(|&c| c > 0).collect(), r.values.to_vec()));
        }
        Ok(())
    })?;
    let finite = cols
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if metric == Metric::Accuracy {
        (lo, hi) = (0.0, 1.0);
    }
    if !(lo.is_finite() && hi > lo) {
        (lo, hi) = (lo.min(0.0), lo.max(0.0) + 1.0);
    }
    let q = |v: f64| -> u8 {
        if v.is_finite() {
            (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 254.0).round() as u8
        } else {
            255
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let out = (0..n)
        .map(|d| {
            let (mut i, mut o) = (Vec::new(), Vec::new());
            for (inn, v) in &cols {
                if let (Some(&m), Some(&v)) = (inn.get(d), v.get(d)) {
                    if m {
                        i.push(q(v))
                    } else {
                        o.push(q(v))
                    }
                }
            }
            format!("{}|{}", b64.encode(i), b64.encode(o))
        })
        .collect();
    Ok((out, lo, hi, cols.len()))
}

/// A chart as inline SVG; big scatters thinned first.
fn chart_svg(c: &NamedChart) -> Result<String> {
    let mut chart = c.chart.clone();
    let mut note = String::new();
    if let Chart::Scatter { groups } = &mut chart {
        let total: usize = groups.iter().map(|(_, p)| p.len()).sum();
        if total > MAX_SCATTER_POINTS {
            let k = total.div_ceil(MAX_SCATTER_POINTS);
            for (_, p) in groups.iter_mut() {
                *p = p.iter().copied().step_by(k).collect();
            }
            note = format!("<p class=note>Every {k}th of {total} documents drawn.</p>");
        }
    }
    let s = svg(&chart, &c.labels)?;
    // Drop the XML prolog if any; keep the <svg> element.
    let s = s.find("<svg").map_or(s.as_str(), |i| &s[i..]).to_string();
    Ok(format!(
        "<figure id=\"chart-{}\">{s}{note}</figure>",
        c.name
    ))
}

/// Write one self-contained HTML file (no network: data, script and
/// styles inline) with the settings, the reliability (when
/// [`cfmem_analysis::AnalysisConfig::convergence`] was on), the charts, a
/// sortable, filterable table of every document (paged, so it stays
/// usable at 100,000 documents), a panel per document (text, estimate,
/// and the scores of the in- and out-models drawn: the first
/// `page.max_models` models of `src`), and the membership, influence
/// and group sections when computed. `src` must be the source the
/// analyses came from.
///
/// # Errors
/// [`Error::Io`] naming the file; [`Error::Analysis`] from the source.
pub fn write(a: &Analyses, src: &dyn Rows, page: &HtmlPage, path: &Path) -> Result<HtmlWritten> {
    let (scores, lo, hi, drawn) = scores(src, a, page.max_models.max(1))?;
    let mut data = data(a, page);
    (data.scores, data.lo, data.hi, data.models_drawn) = (scores, lo, hi, drawn);
    let json = serde_json::to_string(&data)
        .map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?
        // Inside <script>, "</script>" and "<!--" must not appear: no
        // '<' at all (JSON has it only inside strings).
        .replace('<', "\\u003c");

    let mut h = String::with_capacity(json.len() + 200_000);
    header(a, page, &mut h);
    h.push_str("<section id=settings><h2>Settings</h2><table class=kv>");
    for (k, v) in &page.settings {
        let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    h.push_str("</table></section>\n");
    reliability_section(a, &mut h);
    h.push_str("<section id=charts><h2>Charts</h2><div class=charts>");
    // The spectrum's charts are drawn in its own section.
    for c in standard(a)
        .iter()
        .filter(|c| !c.name.starts_with("spectrum"))
    {
        h.push_str(&chart_svg(c)?);
    }
    h.push_str("</div></section>\n");
    h.push_str(
        "<section id=documents><h2>Documents</h2><div class=controls>\
         <input id=filter type=search placeholder=\"filter: id or text\"> \
         <select id=kind><option value=\"\">all kinds</option></select> \
         <span id=count></span> <button id=prev>‹ previous</button> <span id=pageno></span> \
         <button id=next>next ›</button></div>\
         <table id=table><thead><tr></tr></thead><tbody></tbody></table></section>\n\
         <section id=doc hidden></section>\n",
    );
    membership_section(a, &mut h);
    influence_section(a, &mut h);
    proxies_section(a, &mut h);
    exposure_section(a, &mut h);
    groups_section(a, &mut h);
    if let Some(r) = &a.spectrum {
        h.push_str("<section id=spectrum><h2>Spectrum</h2>");
        crate::spectrum::html_table(r, &mut h, &esc);
        h.push_str("<div class=charts>");
        for c in crate::spectrum::charts(r) {
            h.push_str(&chart_svg(&c)?);
        }
        h.push_str("</div></section>\n");
    }
    let _ = write!(
        h,
        "<script type=\"application/json\" id=data>{json}</script>\n<script>{SCRIPT}</script>\n</body></html>\n"
    );
    std::fs::write(path, &h).map_err(io(path))?;
    Ok(HtmlWritten {
        bytes: h.len() as u64,
        documents: a.report.docs.len(),
        models_drawn: drawn,
    })
}

/// A text cut to the page's length, with a mark where it was cut.
fn cut(page: &HtmlPage, t: &str) -> String {
    match t.char_indices().nth(page.max_text_chars) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// The page's data, every column of the documents' table; the scores
/// drawn are filled in by the caller.
fn data<'a>(a: &'a Analyses, page: &HtmlPage) -> Data<'a> {
    let docs = &a.report.docs;
    let metric = a.report.metric();
    let token_scale = if metric == Metric::Accuracy { 1.0 } else { 2.0 };
    Data {
        metric: metric.name(),
        higher_is_better: metric.orientation() > 0.0,
        n_models: a.report.n_models,
        models_drawn: 0,
        lo: 0.0,
        hi: 0.0,
        id: docs.iter().map(|d| d.id.as_str()).collect(),
        mem: docs.iter().map(|d| short(d.estimate.mem)).collect(),
        se: docs.iter().map(|d| short(d.estimate.se)).collect(),
        ci_low: docs.iter().map(|d| short(d.estimate.ci_low)).collect(),
        ci_high: docs.iter().map(|d| short(d.estimate.ci_high)).collect(),
        in_mean: docs.iter().map(|d| short(d.estimate.in_mean)).collect(),
        out_mean: docs.iter().map(|d| short(d.estimate.out_mean)).collect(),
        n_in: docs.iter().map(|d| d.estimate.n_in).collect(),
        n_out: docs.iter().map(|d| d.estimate.n_out).collect(),
        reason: docs
            .iter()
            .map(|d| d.estimate.reason.map(|r| r.to_string()))
            .collect(),
        kind: a.kinds.as_deref(),
        group: a.doc_groups.as_deref(),
        auc: a
            .membership
            .as_ref()
            .map(|m| m.docs.iter().map(|d| short(d.auc)).collect()),
        shrunk: a.shrinkage.as_ref().map(ShrunkColumns::of),
        text: page
            .texts
            .as_ref()
            .map(|t| t.iter().map(|t| cut(page, t)).collect()),
        scores: Vec::new(),
        token_scale,
        tokens: token_colours(a, page, token_scale),
    }
}

/// Per-token colours of the most memorized documents' shown text, as flat
/// `(length, value, se)` triples, in hundredths of `scale` (999: none).
fn token_colours(
    a: &Analyses,
    page: &HtmlPage,
    scale: f64,
) -> Option<std::collections::BTreeMap<usize, Vec<i32>>> {
    let segs = page.token_segments.as_ref()?;
    let mut order: Vec<&cfmem_analysis::DocEstimate> = a
        .report
        .docs
        .iter()
        .filter(|d| d.estimate.mem.is_some())
        .collect();
    order.sort_by(|a, b| {
        b.estimate
            .mem
            .unwrap_or(0.0)
            .total_cmp(&a.estimate.mem.unwrap_or(0.0))
    });
    let coloured = order
        .into_iter()
        .take(page.max_token_docs)
        .filter_map(|d| {
            let seg = segs.get(d.index)?;
            let shown: usize = page
                .texts
                .as_ref()
                .and_then(|t| t.get(d.index))
                .map_or(usize::MAX, |t| cut(page, t).encode_utf16().count());
            let mut flat = Vec::with_capacity(3 * seg.len());
            let mut at = 0usize;
            for &(len, v, se) in seg {
                if at >= shown {
                    break;
                }
                at += len as usize;
                let q = if v.is_nan() {
                    999
                } else {
                    ((f64::from(v) / scale * 100.0).round() as i32).clamp(-100, 100)
                };
                let e = if se.is_nan() {
                    999
                } else {
                    ((f64::from(se) / scale * 100.0).round() as i32).clamp(0, 998)
                };
                flat.extend([len as i32, q, e]);
            }
            Some((d.index, flat))
        })
        .collect();
    Some(coloured)
}

/// The document head, the page's header line and the navigation bar.
fn header(a: &Analyses, page: &HtmlPage, h: &mut String) {
    let title = esc(&page.title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n\
         <header><h1>{title}</h1><p>{} documents, {} models; metric <b>{}</b> per token, \
         adjustment <b>{}</b>; mem = in-models' mean − out-models' mean \
         ({:.0}% intervals, {} errors).</p></header>\n<nav>",
        a.report.docs.len(),
        a.report.n_models,
        a.report.metric().name(),
        a.report.config.adjustment,
        a.report.config.level * 100.0,
        a.report.standard_error(),
    );
    let mut sections = vec![
        ("settings", "Settings"),
        ("charts", "Charts"),
        ("documents", "Documents"),
    ];
    if a.convergence.is_some() {
        sections.insert(1, ("reliability", "Reliability"));
    }
    for (on, name) in [
        (a.membership.is_some(), ("membership", "Membership")),
        (a.influence.is_some(), ("influence", "Influence")),
        (a.groups.is_some(), ("groups", "Groups")),
        (a.spectrum.is_some(), ("spectrum", "Spectrum")),
    ] {
        if on {
            sections.push(name);
        }
    }
    for (id, name) in &sections {
        let _ = write!(h, "<a href=\"#{id}\">{name}</a> ");
    }
    h.push_str("</nav>\n");
}

fn reliability_section(a: &Analyses, h: &mut String) {
    let Some(points) = &a.convergence else {
        return;
    };
    h.push_str(
        "<section id=reliability><h2>Reliability</h2><p>Split-half Spearman between the \
         estimates of two disjoint halves of the models (mean over random partitions, \
         bootstrap interval over documents) and the Spearman–Brown reliability of the \
         estimate from all of them: the agreement to expect with a replication.</p>\
         <table><tr><th>models</th><th>split-half Spearman</th><th>interval</th>\
         <th>reliability</th><th>interval</th></tr>",
    );
    for p in points {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>[{}, {}]</td><td>{}</td><td>[{}, {}]</td></tr>",
            p.n_models,
            num(p.spearman, 3),
            num(p.ci_low, 3),
            num(p.ci_high, 3),
            num(p.reliability, 3),
            num(p.reliability_ci_low, 3),
            num(p.reliability_ci_high, 3)
        );
    }
    h.push_str("</table></section>\n");
}

fn membership_section(a: &Analyses, h: &mut String) {
    let Some(m) = &a.membership else {
        return;
    };
    let _ = write!(
        h,
        "<section id=membership><h2>Membership inference</h2><p>LiRA-style scores \
         ({:?} variance), every model scored with itself left out; intervals from \
         the bootstrap over documents. The per-document \
         AUC is a column of the document table.</p><table><tr><th>attack</th><th>AUC</th>",
        m.variance
    );
    let fprs: Vec<f64> = m
        .online
        .as_ref()
        .or(m.offline.as_ref())
        .map(|r| r.tpr_at_fpr.iter().map(|t| t.fpr).collect())
        .unwrap_or_default();
    for f in &fprs {
        let _ = write!(h, "<th>TPR at {}% FPR</th>", f * 100.0);
    }
    h.push_str("</tr>");
    for (name, roc) in [("online", &m.online), ("offline", &m.offline)] {
        if let Some(r) = roc {
            let ci = r
                .auc_ci
                .map_or(String::new(), |[lo, hi]| format!(" [{lo:.3}, {hi:.3}]"));
            let _ = write!(h, "<tr><td>{name}</td><td>{:.3}{ci}</td>", r.auc);
            for t in &r.tpr_at_fpr {
                if t.supported {
                    let ci =
                        t.ci.map_or(String::new(), |[lo, hi]| format!(" [{lo:.3}, {hi:.3}]"));
                    let _ = write!(h, "<td>{:.3}{ci}</td>", t.tpr);
                } else {
                    h.push_str(
                        "<td title=\"fewer than 1/FPR non-members\">not enough non-members</td>",
                    );
                }
            }
            h.push_str("</tr>");
        }
    }
    h.push_str("</table></section>\n");
}

fn influence_section(a: &Analyses, h: &mut String) {
    let Some(inf) = &a.influence else {
        return;
    };
    h.push_str(
        "<section id=influence><h2>Counterfactual influence</h2><p>For the queries most \
         influenced by one training document: infl = E[score of the query | document in] − \
         E[score | out], with its standard error, from the models that selected the \
         list; where the experiment has enough blocks, each winner is re-estimated on \
         models the selection did not use (held out), whose interval the selection \
         does not bias.</p><table><tr><th>query</th>\
         <th>most influential training documents</th></tr>",
    );
    for q in inf.strongest_queries().into_iter().take(50) {
        let entries: Vec<String> = inf.influence.top_units[q]
            .iter()
            .map(|e| {
                let held = e.held_out.map_or(String::new(), |h| {
                    format!(
                        "; held out {:+.4} [{}, {}]",
                        h.infl,
                        num(Some(h.ci_low).filter(|x| x.is_finite()), 4),
                        num(Some(h.ci_high).filter(|x| x.is_finite()), 4)
                    )
                });
                format!(
                    "{} ({:+.4} ± {}{held})",
                    esc(&inf.unit_ids[e.unit]),
                    e.infl,
                    num(Some(e.se).filter(|s| s.is_finite()), 4)
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&inf.query_ids[q]),
            entries.join(", ")
        );
    }
    h.push_str("</table></section>\n");
}

fn proxies_section(a: &Analyses, h: &mut String) {
    let Some(audit) = &a.audit else {
        return;
    };
    let _ = write!(
        h,
        "<section id=proxies><h2>Memorization proxies</h2><p>Each model scores the \
         documents it trained on with a cheap single-model signal; the table gives, \
         averaged over the models, each signal's agreement with counterfactual \
         memorization (that model left out of it): Spearman with a bootstrap interval \
         over documents and its spread across models, the precision and recall of its \
         top 1 %, 5 % and 10 % against the {} documents memorized at a {:.0} % false \
         discovery rate, and its AUC for them.</p><table><tr><th>proxy</th>\
         <th>Spearman</th><th>interval</th><th>sd</th><th>precision 1/5/10 %</th>\
         <th>recall 1/5/10 %</th><th>AUC</th><th>source</th></tr>",
        audit.n_memorized,
        100.0 * audit.fdr
    );
    let three = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for p in &audit.proxies {
        let ci = p
            .spearman_ci
            .map_or("—".to_string(), |[lo, hi]| format!("[{lo:.3}, {hi:.3}]"));
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.3}</td><td>{ci}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            p.spearman,
            p.spearman_sd,
            three(&p.precision),
            three(&p.recall),
            num(p.auc, 3),
            esc(&p.source)
        );
    }
    h.push_str("</table></section>\n");
}

fn exposure_section(a: &Analyses, h: &mut String) {
    let Some(x) = &a.exposure else {
        return;
    };
    let how = esc(&x.method());
    let _ = write!(
        h,
        "<section id=exposure><h2>Canary exposure</h2><p>Exposure = log<sub>2</sub> |R| −          log<sub>2</sub> rank of each canary's secret among the secrets of its format          ({}, at most {:.1} bits; {how}), averaged over the models that trained on it          and over those that did not (their number in parentheses), beside its          counterfactual memorization.</p><table><tr><th>canary</th><th>mem</th>         <th>exposure in</th><th>exposure out</th></tr>",
        esc(&x.format),
        x.bits
    );
    let o = |v: Option<f64>, n: usize| v.map_or("—".into(), |v| format!("{v:.1} ({n})"));
    for c in &x.canaries {
        let _ = write!(
            h,
            "<tr><td><a href=\"#doc-{}\">{}</a>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.index,
            esc(&c.id),
            if c.copies > 1 {
                format!(" (×{} copies)", c.copies)
            } else {
                String::new()
            },
            num(c.mem, 3),
            o(c.exposure_in, c.n_in),
            o(c.exposure_out, c.n_out)
        );
    }
    h.push_str("</table></section>\n");
}

fn groups_section(a: &Analyses, h: &mut String) {
    let Some(groups) = &a.groups else {
        return;
    };
    let mut order: Vec<&cfmem_analysis::GroupEstimate> = groups.iter().collect();
    order.sort_by(|a, b| {
        let m = |g: &cfmem_analysis::GroupEstimate| g.estimate.mem.unwrap_or(f64::NEG_INFINITY);
        m(b).total_cmp(&m(a))
    });
    h.push_str(
        "<section id=groups><h2>Units of removal</h2><p>Memorization of each unit \
         (its members' mean score with the whole unit in vs out), the 100 highest.</p>\
         <table><tr><th>unit</th><th>members</th><th>mem</th><th>interval</th></tr>",
    );
    for g in order.into_iter().take(100) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>[{}, {}]</td></tr>",
            esc(&g.name),
            g.members.len(),
            num(g.estimate.mem, 4),
            num(g.estimate.ci_low, 4),
            num(g.estimate.ci_high, 4)
        );
    }
    h.push_str("</table></section>\n");
}

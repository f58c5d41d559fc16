//! Terminal tables: what `cfmem report` and `cfmem compare` print, as text.

use std::fmt::Write as _;
use std::path::Path;

use cfmem_analysis::{
    discoveries, Agreement, Analyses, CompareConfig, Comparison, Correlation, DEFAULT_FDR,
};

/// One line into a `String` (writing to a `String` cannot fail).
macro_rules! out {
    ($w:expr) => {{
        let _ = writeln!($w);
    }};
    ($w:expr, $($t:tt)*) => {{
        let _ = writeln!($w, $($t)*);
    }};
}

fn fmt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

pub(crate) fn short(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Per-token accuracy beside an extraction report: each document's
/// accuracy estimate (a `mem(acc)` column) and how the two reports'
/// discoveries agree.
#[derive(Debug, Clone, Copy)]
pub struct Beside<'a> {
    /// `mem` under per-token accuracy, per document in corpus order.
    pub accuracy: &'a [Option<f64>],
    /// [`Agreement::of`] the extraction report and the accuracy report.
    pub agreement: &'a Agreement,
}

/// Everything `cfmem report` prints for `a`: the `top` most memorized
/// documents (with the per-token accuracy `beside` them, when given) and
/// each further analysis computed.
pub fn analyses(a: &Analyses, top: usize, beside: Option<Beside<'_>>) -> String {
    let mut w = String::new();
    estimates(&mut w, a, top, beside.map(|b| b.accuracy));
    if let Some(b) = beside {
        out!(w, "{}", agreement(b.agreement));
    }
    convergence(&mut w, a);
    membership(&mut w, a, top);
    influence(&mut w, a, top);
    groups(&mut w, a, top);
    repetition(&mut w, a);
    proxies(&mut w, a);
    exposure(&mut w, a);
    if let Some(r) = &a.spectrum {
        crate::spectrum::text(&mut w, r, top.min(10));
    }
    w
}

/// The canaries' exposure: one line per canary.
fn exposure(w: &mut String, out: &Analyses) {
    let Some(x) = &out.exposure else {
        return;
    };
    let how = x.method();
    let copies = if x.canaries.iter().any(|c| c.copies > 1) {
        "; (xK): planted K times"
    } else {
        ""
    };
    out!(
        w,
        "\nExposure of {} canaries ({}: at most {:.1} bits; {how}{copies}), mean over the models that trained on each and over those that did not:",
        x.canaries.len(),
        x.format,
        x.bits
    );
    out!(
        w,
        "  {:<28} {:>10}  {:>12}  {:>12}",
        "canary",
        "mem",
        "exposure in",
        "exposure out"
    );
    let o = |v: Option<f64>, n: usize| v.map_or("n/a".into(), |v| format!("{v:.1} ({n})"));
    for c in &x.canaries {
        let id = if c.copies > 1 {
            format!("{} (x{})", c.id, c.copies)
        } else {
            c.id.clone()
        };
        out!(
            w,
            "  {:<28} {:>10}  {:>12}  {:>12}",
            id,
            c.mem.map_or("n/a".into(), |m| format!("{m:.3}")),
            o(c.exposure_in, c.n_in),
            o(c.exposure_out, c.n_out)
        );
    }
}

/// The proxy audit: one line per proxy.
fn proxies(w: &mut String, out: &Analyses) {
    let Some(a) = &out.audit else {
        return;
    };
    if a.proxies.is_empty() {
        out!(
            w,
            "\nMemorization proxies: none (the source has no losses to compute them from)"
        );
        return;
    }
    let level = 100.0 * out.report.config.level;
    out!(
        w,
        "\nMemorization proxies, each scored by every model on the documents it trained on, against counterfactual memorization (that model left out of it); {} documents memorized at a {:.0}% FDR:",
        a.n_memorized,
        100.0 * a.fdr
    );
    out!(
        w,
        "  {:<18} {:>8} {:>19} {:>6}  {:>20}  {:>20}  {:>11}",
        "proxy",
        "Spearman",
        format!("[{level:.0}% CI]"),
        "± sd",
        "precision top 1/5/10%",
        "recall top 1/5/10%",
        "AUC ± sd"
    );
    let three = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join("/")
    };
    for p in &a.proxies {
        let ci = p
            .spearman_ci
            .map_or("—".to_string(), |[lo, hi]| format!("[{lo:.3}, {hi:.3}]"));
        let auc = match (p.auc, p.auc_sd) {
            (Some(x), Some(s)) => format!("{x:.3} ± {s:.3}"),
            (Some(x), None) => format!("{x:.3}"),
            _ => "—".into(),
        };
        out!(
            w,
            "  {:<18} {:>8.3} {:>19} {:>6.3}  {:>20}  {:>20}  {:>11}",
            p.name,
            p.spearman,
            ci,
            p.spearman_sd,
            three(&p.precision),
            three(&p.recall),
            auc
        );
    }
    out!(
        w,
        "  (means over the {} targets; the interval from a bootstrap over documents; precision and recall against the memorized documents)",
        a.proxies.first().map_or(0, |p| p.n_targets)
    );
}

/// How two reports' discoveries (q ≤ 5 %, Benjamini–Hochberg within each
/// report) agree, for the extraction metric (`first`) beside per-token
/// accuracy (`second`).
fn agreement(g: &Agreement) -> String {
    format!(
        "mem(acc): counterfactual memorization of per-token accuracy. Of the documents scored, discoveries at a {:.0}% false discovery rate (Benjamini-Hochberg q-values): both {}; memorized, extraction not detected {}; extraction, memorization not detected {}; neither detected {}",
        100.0 * DEFAULT_FDR,
        g.both, g.second_only, g.first_only, g.neither
    )
}

fn estimates(w: &mut String, out: &Analyses, top: usize, accuracy: Option<&[Option<f64>]>) {
    let rep = &out.report;
    let c = &rep.config;
    out!(
        w,
        "{} documents, {} models, metric {}, adjustment {}; mem = {} ({:.0}% CI, {})",
        rep.docs.len(),
        rep.n_models,
        c.metric,
        c.adjustment,
        c.metric.gap(),
        100.0 * c.level,
        out.report.standard_error().interval()
    );
    let q = rep.q_values();
    let tested = q.iter().filter(|q| q.is_some()).count();
    out!(
        w,
        "memorized at a {:.0}% false discovery rate (Benjamini-Hochberg q-values over the {tested} documents with an error): {}; the others: not detected",
        100.0 * DEFAULT_FDR,
        discoveries(&q, DEFAULT_FDR)
    );
    let missing = rep.n_missing();
    if missing > 0 {
        out!(
            w,
            "{missing} documents have no estimate (a side with no model); train more models"
        );
    }
    let short_docs = rep.n_not_scored();
    if short_docs > 0 {
        out!(w, "{short_docs} documents are too short for the extraction test (they need the prompt's and the continuation's tokens) and have no estimate");
    }
    if let Some(sh) = &out.shrinkage {
        out!(
            w,
            "shrunk: empirical-Bayes posterior mean and {:.0}% posterior interval (prior fitted over the documents: {:.0}% not memorized; errors moderated on {} prior degrees of freedom); lfsr: posterior probability of not memorized",
            100.0 * sh.level,
            100.0 * sh.null_weight,
            if sh.prior_df.is_finite() { format!("{:.1}", sh.prior_df) } else { "infinite".into() }
        );
    }
    let shrunk = |i: usize| -> String {
        let Some(x) = out
            .shrinkage
            .as_ref()
            .and_then(|s| s.docs.get(i).copied().flatten())
        else {
            return String::new();
        };
        format!(
            "{:>8} {:<20} {:>6.3} ",
            format!("{:.4}", x.mean),
            format!("[{:.4}, {:.4}]", x.ci_low, x.ci_high),
            x.lfsr
        )
    };
    let shrunk_head = if out.shrinkage.is_some() {
        format!(
            "{:>8} {:<20} {:>6} ",
            "shrunk", "posterior interval", "lfsr"
        )
    } else {
        String::new()
    };
    let beside = |i: usize| accuracy.map(|a| fmt(a[i])).unwrap_or_default();
    let head = if accuracy.is_some() { "mem(acc)" } else { "" };
    out!(
        w,
        "{:>4}  {:<32} {:>4} {:>5} {:>8} {:>8} {:>8}  {:<20} {shrunk_head}{head}",
        "rank",
        "id",
        "n_in",
        "n_out",
        "in",
        "out",
        "mem",
        "CI"
    );
    for (r, d) in rep.ranked().iter().take(top).enumerate() {
        let e = &d.estimate;
        out!(
            w,
            "{:>4}  {:<32} {:>4} {:>5} {:>8} {:>8} {:>8}  {:<20} {}{}",
            r + 1,
            short(&d.id, 32),
            e.n_in,
            e.n_out,
            fmt(e.in_mean),
            fmt(e.out_mean),
            fmt(e.mem),
            format!("[{}, {}]", fmt(e.ci_low), fmt(e.ci_high)),
            shrunk(d.index),
            beside(d.index)
        );
    }
}

fn convergence(w: &mut String, out: &Analyses) {
    let Some(points) = &out.convergence else {
        return;
    };
    out!(w, "\nSplit-half convergence (Spearman between the estimates of two disjoint halves of the models,");
    out!(
        w,
        "mean over random partitions ± its spread, 95% bootstrap interval over documents):"
    );
    out!(
        w,
        "{:>8} {:>9} {:>8} {:>20} {:>12} {:>20} {:>6} {:>6}",
        "models",
        "spearman",
        "± sd",
        "interval",
        "reliability",
        "interval",
        "parts",
        "docs"
    );
    let iv = |lo: Option<f64>, hi: Option<f64>| format!("[{}, {}]", fmt(lo), fmt(hi));
    for p in points {
        out!(
            w,
            "{:>8} {:>9} {:>8} {:>20} {:>12} {:>20} {:>6} {:>6}",
            p.n_models,
            fmt(p.spearman),
            fmt(p.spearman_sd),
            iv(p.ci_low, p.ci_high),
            fmt(p.reliability),
            iv(p.reliability_ci_low, p.reliability_ci_high),
            p.n_partitions,
            p.n_docs
        );
    }
    out!(w, "reliability = Spearman–Brown 2r/(1+r): the expected agreement of the full estimate with a replication (check it with `cfmem compare`)");
}

fn membership(w: &mut String, out: &Analyses, top: usize) {
    let Some(m) = &out.membership else {
        return;
    };
    out!(
        w,
        "\nMembership inference (LiRA, {:?} observation, {} variance{}, each model left out of its fits):",
        m.observation,
        m.variance,
        if m.variance_auto {
            " (chosen by the number of models; --variance to choose)"
        } else {
            ""
        }
    );
    for (name, r) in [("online", &m.online), ("offline", &m.offline)] {
        match r {
            Some(r) => {
                let tpr: Vec<String> = r
                    .tpr_at_fpr
                    .iter()
                    .map(|t| match (t.supported, t.ci) {
                        (true, Some([lo, hi])) => {
                            format!("{}% {:.4} [{lo:.4}, {hi:.4}]", 100.0 * t.fpr, t.tpr)
                        }
                        (true, None) => format!("{}% {:.4} (no interval)", 100.0 * t.fpr, t.tpr),
                        (false, _) => format!("{}% not enough non-members", 100.0 * t.fpr),
                    })
                    .collect();
                let ci = r
                    .auc_ci
                    .map_or(String::new(), |[lo, hi]| format!(" [{lo:.4}, {hi:.4}]"));
                out!(
                    w,
                    "  {name:<8} AUC {:.4}{ci}  TPR at FPR {}  ({} members, {} non-members)",
                    r.auc,
                    tpr.join(", "),
                    r.n_pos,
                    r.n_neg
                );
            }
            None => out!(
                w,
                "  {name:<8} not enough models (each side needs 2 besides the scored model)"
            ),
        }
    }
    out!(
        w,
        "  intervals: bootstrap over documents; a TPR gets one with {} expected false positives or more",
        cfmem_analysis::TPR_CI_MIN_FALSE_POSITIVES
    );
    out!(
        w,
        "  most exposed documents (per-document AUC over the models):"
    );
    for d in m.most_exposed().iter().take(top.min(10)) {
        let f = &d.fit;
        out!(
            w,
            "    {:<32} AUC {:.3}  in {:.2}±{:.2}  out {:.2}±{:.2}",
            short(&d.id, 32),
            d.auc.unwrap_or(f64::NAN),
            f.mu_in,
            f.sigma_in,
            f.mu_out,
            f.sigma_out
        );
    }
}

fn influence(w: &mut String, out: &Analyses, top: usize) {
    let Some(inf) = &out.influence else {
        return;
    };
    let k = inf.influence.top_units.first().map_or(0, Vec::len);
    let pairs = inf.unit_ids.len() as f64 * inf.query_ids.len() as f64;
    out!(
        w,
        "\nCounterfactual influence ({}, on the {:?} documents): top {k} training documents for the queries with the strongest single influence:",
        inf.metric, inf.on
    );
    if inf.influence.n_held_out > 0 {
        out!(
            w,
            "  (selected on {} models, those of even blocks, from {pairs:.0} unit-query pairs: those values run high; in brackets each winner re-estimated on the {} held-out models, with its {:.0}% interval, which the selection does not bias)",
            inf.influence.n_models,
            inf.influence.n_held_out,
            100.0 * out.report.config.level
        );
    } else {
        out!(
            w,
            "  (selected from {pairs:.0} unit-query pairs on all {} models, too few to hold {} blocks out: the winners' values and errors are not adjusted for the selection and run high; confirm a finding on other models)",
            inf.influence.n_models,
            cfmem_analysis::CONFIRM_MIN_CLUSTERS
        );
    }
    for q in inf.strongest_queries().into_iter().take(top.min(10)) {
        let list: Vec<String> = inf.influence.top_units[q]
            .iter()
            .map(|e| {
                let held = e.held_out.map_or(String::new(), |h| {
                    if h.se.is_finite() {
                        format!(
                            " [held out {:+.3}, {:+.3} to {:+.3}]",
                            h.infl, h.ci_low, h.ci_high
                        )
                    } else {
                        format!(" [held out {:+.3}, no interval]", h.infl)
                    }
                });
                format!("{} {:+.3}±{:.3}{held}", inf.unit_ids[e.unit], e.infl, e.se)
            })
            .collect();
        out!(
            w,
            "  {:<28} ← {}",
            short(&inf.query_ids[q], 28),
            list.join(", ")
        );
    }
}

fn groups(w: &mut String, out: &Analyses, top: usize) {
    let Some(g) = &out.groups else {
        return;
    };
    let mut multi: Vec<_> = g.iter().filter(|x| x.members.len() > 1).collect();
    multi.sort_by(|x, y| {
        y.estimate
            .mem
            .partial_cmp(&x.estimate.mem)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out!(
        w,
        "\nUnits of removal: {} units ({} with several documents); mem of a unit = its members' mean score, unit in vs out:",
        g.len(),
        multi.len()
    );
    for x in multi.iter().take(top) {
        let e = &x.estimate;
        out!(
            w,
            "  {:<32} {:>3} docs  mem {:>8}  [{}, {}]  n_in {} n_out {}",
            short(&x.name, 32),
            x.members.len(),
            fmt(e.mem),
            fmt(e.ci_low),
            fmt(e.ci_high),
            e.n_in,
            e.n_out
        );
    }
}

fn repetition(w: &mut String, out: &Analyses) {
    let Some(curve) = &out.repetition else {
        return;
    };
    out!(w, "\nMemorization by copies per epoch (mean over documents of E[M|k] - E[M|0], interval clustered by model, as a single document's):");
    for p in &curve.overall {
        out!(
            w,
            "  {:>3} copies: mem {:.4} [{:.4}, {:.4}] ({:.0}%, {} documents)",
            p.copies,
            p.mem.mean,
            p.mem.ci_low,
            p.mem.ci_high,
            100.0 * curve.level,
            p.mem.n
        );
    }
}

/// What `cfmem compare` prints: the agreement of two experiments (`names`:
/// their directories) and what each one's reliability predicts.
pub fn comparison(c: &Comparison, cfg: &CompareConfig, names: [&Path; 2]) -> String {
    let mut w = String::new();
    let w = &mut w;
    out!(
        w,
        "{} and {}: {} documents with an estimate in both ({} and {} models; {} and {} documents unmatched); {} {}",
        names[0].display(),
        names[1].display(),
        c.n_docs,
        c.n_models[0],
        c.n_models[1],
        c.n_unmatched[0],
        c.n_unmatched[1],
        cfg.report.metric,
        cfg.report.adjustment
    );
    let mut show = |name: &str, r: Option<Correlation>| {
        match r {
        Some(r) => out!(
            w,
            "  {name:<10} {:.4} [{:.4}, {:.4}] (95%, Fisher z; Spearman's with Bonett-Wright's variance)",
            r.r,
            r.ci_low,
            r.ci_high
        ),
        None => out!(
            w,
            "  {name:<10} n/a (fewer than 4 documents, or a constant side)"
        ),
    }
    };
    show("Spearman", c.spearman);
    show("Pearson", c.pearson);
    for t in &c.top_k {
        out!(
            w,
            "  top {:<6} overlap {:.2} (chance {:.2})",
            t.k,
            t.overlap,
            t.chance
        );
    }
    out!(w, "What each experiment predicts for a replication (split-half Spearman–Brown reliability, all its models):");
    for (dir, p) in [(names[0], &c.split_half[0]), (names[1], &c.split_half[1])] {
        match p.as_ref().and_then(|p| Some((p.reliability?, p))) {
            Some((r, p)) => out!(
                w,
                "  {:<40} {r:.4} [{:.4}, {:.4}]",
                dir.display().to_string(),
                p.reliability_ci_low.unwrap_or(f64::NAN),
                p.reliability_ci_high.unwrap_or(f64::NAN)
            ),
            None => out!(w, "  {:<40} n/a", dir.display().to_string()),
        }
    }
    std::mem::take(w)
}

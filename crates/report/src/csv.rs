//! The per-document table as CSV.

use std::path::Path;

use cfmem_analysis::Analyses;

use crate::error::{io, Error, Result};

/// Write every document's estimate as CSV:
/// `id,index,n_in,n_out,in_mean,out_mean,mem,se,ci_low,ci_high,q_value,reason`
/// (empty estimate columns and a `reason` where a side has no model;
/// `q_value` is the Benjamini–Hochberg q-value of `mem > 0` over the
/// documents with an error, [`cfmem_analysis::Report::q_values`]); with
/// shrinkage, four more: `shrunk_mean,shrunk_low,shrunk_high,lfsr`
/// ([`cfmem_analysis::Shrunk`]).
///
/// # Errors
/// [`Error::Csv`] naming the file.
pub fn write(a: &Analyses, path: &Path) -> Result<()> {
    let err = |source: ::csv::Error| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut w = ::csv::Writer::from_path(path).map_err(err)?;
    let mut head = vec![
        "id", "index", "n_in", "n_out", "in_mean", "out_mean", "mem", "se", "ci_low", "ci_high",
        "q_value", "reason",
    ];
    if a.shrinkage.is_some() {
        head.extend(["shrunk_mean", "shrunk_low", "shrunk_high", "lfsr"]);
    }
    w.write_record(&head).map_err(err)?;
    let o = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    let q = a.report.q_values();
    for d in &a.report.docs {
        let e = &d.estimate;
        let mut row = vec![
            d.id.clone(),
            d.index.to_string(),
            e.n_in.to_string(),
            e.n_out.to_string(),
            o(e.in_mean),
            o(e.out_mean),
            o(e.mem),
            o(e.se),
            o(e.ci_low),
            o(e.ci_high),
            o(q[d.index]),
            e.reason.map(|r| r.to_string()).unwrap_or_default(),
        ];
        if let Some(s) = &a.shrinkage {
            let x = s.docs.get(d.index).copied().flatten();
            row.extend([
                o(x.map(|x| x.mean)),
                o(x.map(|x| x.ci_low)),
                o(x.map(|x| x.ci_high)),
                o(x.map(|x| x.lfsr)),
            ]);
        }
        w.write_record(&row).map_err(err)?;
    }
    w.flush().map_err(io(path))
}

/// Write the proxy audit ([`cfmem_analysis::audit`]) as CSV, one row per
/// proxy: `proxy,source,n_targets,spearman,spearman_sd,spearman_low,
/// spearman_high`, then `precision_top1,precision_top5,precision_top10,
/// recall_top1,recall_top5,recall_top10` (the proxy's top 1, 5 and 10 %,
/// [`cfmem_analysis::TOP_FRACTIONS`]), `auc,auc_sd`; empty where undefined.
///
/// # Errors
/// [`Error::Csv`] naming the file.
pub fn write_proxies(audit: &cfmem_analysis::Audit, path: &Path) -> Result<()> {
    let err = |source: ::csv::Error| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut w = ::csv::Writer::from_path(path).map_err(err)?;
    let pct = |f: f64| format!("{:.0}", 100.0 * f);
    let mut head: Vec<String> = [
        "proxy",
        "source",
        "n_targets",
        "spearman",
        "spearman_sd",
        "spearman_low",
        "spearman_high",
    ]
    .map(String::from)
    .to_vec();
    for what in ["precision", "recall"] {
        head.extend(
            cfmem_analysis::TOP_FRACTIONS
                .iter()
                .map(|&f| format!("{what}_top{}", pct(f))),
        );
    }
    head.extend(["auc".into(), "auc_sd".into()]);
    w.write_record(&head).map_err(err)?;
    let o = |x: Option<f64>| {
        x.filter(|v| v.is_finite())
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    for p in &audit.proxies {
        let mut row = vec![
            p.name.clone(),
            p.source.clone(),
            p.n_targets.to_string(),
            o(Some(p.spearman)),
            o(Some(p.spearman_sd)),
            o(p.spearman_ci.map(|c| c[0])),
            o(p.spearman_ci.map(|c| c[1])),
        ];
        row.extend(p.precision.iter().chain(&p.recall).map(|&x| o(Some(x))));
        row.extend([o(p.auc), o(p.auc_sd)]);
        w.write_record(&row).map_err(err)?;
    }
    w.flush().map_err(io(path))
}

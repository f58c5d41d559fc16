//! The HTML report: one file holding its data, script and styles; the
//! embedded table equals the estimates; each document's drawn scores are
//! its models' scores, split by membership; text cannot break out of the
//! page's script. (The page's behaviour in a browser is checked by
//! `scripts/check-html.sh`.)

use base64::Engine as _;
use cfmem_analysis::{analyse, AnalysisConfig, DesignConfig, Metric, Rows, Synthetic, Value};
use cfmem_report::HtmlPage;

#[test]
fn the_html_report_embeds_the_estimates_and_each_documents_scores() {
    let mem: Vec<f64> = (0..12).map(|d| 0.02 * d as f64).collect();
    let rows = Synthetic::new(DesignConfig::blocks(2, 8), 10, mem).seed(4);
    let out = analyse(
        &rows,
        &AnalysisConfig {
            convergence: true,
            ..AnalysisConfig::default()
        },
    )
    .unwrap();
    let evil = "</script><script>alert(1)</script><!-- & \"quoted\"";
    let page = HtmlPage {
        title: "t <b>".into(),
        settings: vec![("corpus".into(), "c.jsonl".into())],
        texts: Some((0..12).map(|d| format!("text {d} {evil}")).collect()),
        max_models: 6,
        ..HtmlPage::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.html");
    let w = cfmem_report::html::write(&out, &rows, &page, &path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert_eq!(w.bytes as usize, html.len());
    assert_eq!((w.documents, w.models_drawn), (12, 6));

    // Self-contained: no scripts, styles or images from elsewhere.
    for needle in ["src=\"http", "href=\"http", "@import", "<link"] {
        assert!(!html.contains(needle), "{needle}");
    }
    // The two </script> are the data's and the script's own: the texts
    // cannot close them.
    assert_eq!(html.matches("</script>").count(), 2);
    assert!(html.contains("<title>t &lt;b&gt;</title>"));
    assert!(html.contains("id=reliability"));

    let start = html
        .find("<script type=\"application/json\" id=data>")
        .unwrap();
    let body = &html[start..];
    let json = &body[body.find('>').unwrap() + 1..body.find("</script>").unwrap()];
    let d: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(d["text"][3], format!("text 3 {evil}"));
    let ids = rows.ids();
    for (i, e) in out.report.docs.iter().enumerate() {
        assert_eq!(d["id"][i], ids[i]);
        let m = d["mem"][i].as_f64().unwrap();
        let want = e.estimate.mem.unwrap();
        assert!(
            (m - want).abs() <= 1e-5 * want.abs().max(1e-3),
            "{m} vs {want}"
        );
        assert_eq!(d["n_in"][i], e.estimate.n_in);
    }

    // The drawn scores: the first 6 models' accuracies, quantised to
    // 1/254, split by membership.
    let (lo, hi) = (d["lo"].as_f64().unwrap(), d["hi"].as_f64().unwrap());
    assert_eq!((lo, hi), (0.0, 1.0));
    let mut want: Vec<(Vec<u8>, Vec<u8>)> = vec![Default::default(); 12];
    let mut seen = 0;
    rows.visit(Value::Scores(Metric::Accuracy), &mut |r| {
        if seen < 6 {
            for (doc, w) in want.iter_mut().enumerate() {
                let q = (r.values[doc].clamp(0.0, 1.0) * 254.0).round() as u8;
                if r.copies[doc] > 0 {
                    w.0.push(q)
                } else {
                    w.1.push(q)
                }
            }
        }
        seen += 1;
        Ok(())
    })
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (doc, (win, wout)) in want.iter().enumerate() {
        let s = d["scores"][doc].as_str().unwrap();
        let (a, b) = s.split_once('|').unwrap();
        assert_eq!(&b64.decode(a).unwrap(), win, "doc {doc} in");
        assert_eq!(&b64.decode(b).unwrap(), wout, "doc {doc} out");
        assert_eq!(win.len() + wout.len(), 6);
    }
}

#[test]
fn per_token_runs_carry_their_standard_errors() {
    // Two documents; the most memorized one's runs are embedded as
    // (length, value, se) triples in hundredths of the scale (1 for
    // accuracy), 999 where a value or error is missing.
    let rows = Synthetic::new(DesignConfig::blocks(2, 3), 8, vec![0.3, 0.0]).seed(1);
    let out = analyse(&rows, &AnalysisConfig::default()).unwrap();
    let page = HtmlPage {
        texts: Some(vec!["abc".into(), "de".into()]),
        token_segments: Some(vec![
            vec![(2, 0.5, 0.1), (1, f32::NAN, f32::NAN)],
            vec![(2, -0.25, 0.004)],
        ]),
        max_token_docs: 1,
        ..HtmlPage::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.html");
    cfmem_report::html::write(&out, &rows, &page, &path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    let start = html
        .find("<script type=\"application/json\" id=data>")
        .unwrap();
    let body = &html[start..];
    let json = &body[body.find('>').unwrap() + 1..body.find("</script>").unwrap()];
    let d: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        d["tokens"]["0"],
        serde_json::json!([2, 50, 10, 1, 999, 999])
    );
    assert!(d["tokens"].get("1").is_none(), "only the most memorized");
    assert!(html.contains("within two standard errors"));
}

#[test]
fn the_proxy_audit_is_in_the_text_json_and_html() {
    let mem: Vec<f64> = (0..40).map(|d| 0.005 * d as f64).collect();
    let rows = Synthetic::new(DesignConfig::blocks(2, 3), 12, mem)
        .doc_means(vec![1.5; 40])
        .seed(2);
    let out = analyse(
        &rows,
        &AnalysisConfig {
            proxies: true,
            ..AnalysisConfig::default()
        },
    )
    .unwrap();
    let audit = out.audit.as_ref().unwrap();
    // Synthetic rows have no texts: no zlib ratio.
    let names: Vec<&str> = audit.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "loss",
            "reference",
            "lira-offline",
            "rmia",
            "extraction-length"
        ]
    );
    let text = cfmem_report::text::analyses(&out, 5, None);
    for p in &audit.proxies {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&p.name))
            .unwrap();
        assert!(line.contains(&format!("{:.3}", p.spearman)), "{line}");
    }
    let json = cfmem_report::json::to_value(&out);
    assert_eq!(json["proxies"]["proxies"].as_array().unwrap().len(), 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.html");
    cfmem_report::html::write(&out, &rows, &HtmlPage::default(), &path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    let section = &html[html.find("id=proxies").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    assert_eq!(section.matches("<tr><td>").count(), 5);
    assert!(section.contains(&format!("<td>{:.3}</td>", audit.proxies[1].spearman)));
    // The chart: one panel per proxy, titled with its Spearman, drawn
    // from a target's documents (each point a document it trained on).
    let chart = &html[html.find("id=\"chart-proxies\"").unwrap()..];
    for p in &audit.proxies {
        assert!(chart.contains(&format!("{}: Spearman {:.2}", p.name, p.spearman)));
        assert!(
            p.points.len() >= 3 && p.points.len() <= 40,
            "{}",
            p.points.len()
        );
    }
    // The CSV: a header and one row per proxy, the numbers the audit has.
    let csv_path = dir.path().join("r.proxies.csv");
    cfmem_report::csv::write_proxies(audit, &csv_path).unwrap();
    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    let head = r.headers().unwrap().clone();
    assert_eq!(&head[7], "precision_top1");
    assert_eq!(&head[12], "recall_top10");
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    for (row, p) in rows.iter().zip(&audit.proxies) {
        assert_eq!(&row[0], p.name);
        assert_eq!(row[3].parse::<f64>().unwrap(), p.spearman);
        assert_eq!(row[9].parse::<f64>().unwrap(), p.precision[2]);
    }
}

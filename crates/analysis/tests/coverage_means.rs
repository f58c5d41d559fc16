//! Means over documents cover when the models share what they do to every
//! document. 120 documents of two kinds (60 each, memorization fixed per
//! document), 16 models in blocks of two whose memorization strength
//! varies by 5 % or 20 % (`Synthetic::mem_sd`), 2,000 replications: the
//! design-based interval of the mean over the documents ([`contrast`]) and
//! of the difference between the kinds must cover the truth in 93–97 % of
//! them. A t-interval over the documents' estimates (what the summaries
//! used before) is miscalibrated for this mean both ways: here it covered
//! 1.000 at a 5 % spread (it counts the documents' differences as noise)
//! and 0.919 at 20 % (it misses what the models share).

use cfmem_analysis::{
    contrast, difference_weights, mean_weights, repetition, report, DesignConfig, MeanCi, Metric,
    ReportConfig, Synthetic,
};

const REPS: u64 = 2000;
const DOCS: usize = 120;

#[test]
fn means_and_differences_over_documents_cover() {
    let mem: Vec<f64> = (0..DOCS)
        .map(|d| {
            let u = (d % 60) as f64 / 60.0;
            if d < 60 {
                0.15 + 0.1 * u
            } else {
                0.05 + 0.05 * u
            }
        })
        .collect();
    let (a, b): (Vec<usize>, Vec<usize>) = (0..DOCS).partition(|&d| d < 60);
    let truth_all = mem.iter().sum::<f64>() / DOCS as f64;
    let mean = |v: &[usize]| v.iter().map(|&d| mem[d]).sum::<f64>() / v.len() as f64;
    let truth_diff = mean(&a) - mean(&b);
    let all: Vec<usize> = (0..DOCS).collect();
    let mut outside_band = 0;
    for spread in [0.05, 0.2] {
        let (mut hit_mean, mut hit_diff, mut hit_t) = (0u64, 0u64, 0u64);
        for rep in 0..REPS {
            let src = Synthetic::new(DesignConfig::blocks(2, 50_000 + rep), 16, mem.clone())
                .noise(0.05)
                .model_sd(0.02)
                .mem_sd(spread)
                .seed(rep);
            let r = report(&src, &ReportConfig::default()).unwrap();
            let m = contrast(&r, &src, &mean_weights(&r, &all))
                .unwrap()
                .unwrap();
            hit_mean += u64::from(m.ci_low <= truth_all && truth_all <= m.ci_high);
            let d = contrast(&r, &src, &difference_weights(&r, &a, &b))
                .unwrap()
                .unwrap();
            hit_diff += u64::from(d.ci_low <= truth_diff && truth_diff <= d.ci_high);
            let t = MeanCi::of(&r.mems(), 0.95);
            hit_t += u64::from(t.ci_low <= truth_all && truth_all <= t.ci_high);
        }
        let cov = |h: u64| h as f64 / REPS as f64;
        eprintln!(
            "spread {spread}: mean {:.3}, difference {:.3}; t over documents {:.3}",
            cov(hit_mean),
            cov(hit_diff),
            cov(hit_t)
        );
        assert!(
            (0.93..=0.97).contains(&cov(hit_mean)),
            "mean: {}",
            cov(hit_mean)
        );
        assert!(
            (0.93..=0.97).contains(&cov(hit_diff)),
            "difference: {}",
            cov(hit_diff)
        );
        outside_band += usize::from(!(0.93..=0.97).contains(&cov(hit_t)));
    }
    assert_eq!(outside_band, 2, "t over documents was calibrated");
}

#[test]
fn one_document_is_its_own_clustered_error() {
    // With all the weight on one document, the contrast is that document's
    // estimate with its block-clustered error.
    let src = Synthetic::new(DesignConfig::blocks(2, 3), 12, vec![0.2, 0.1, 0.0]).seed(9);
    let r = report(&src, &ReportConfig::default()).unwrap();
    let c = contrast(&r, &src, &[0.0, 1.0, 0.0]).unwrap().unwrap();
    let e = &r.docs[1].estimate;
    assert!((c.diff - e.mem.unwrap()).abs() < 1e-12);
    assert!(
        (c.se - e.se.unwrap()).abs() < 1e-9,
        "{} vs {}",
        c.se,
        e.se.unwrap()
    );
    assert!((c.ci_low - e.ci_low.unwrap()).abs() < 1e-9);
}

#[test]
fn repetition_means_and_paired_differences_cover() {
    // A repetition design (0, 1, 2 copies, models drawn independently, so
    // a level has about 5 of the 16 models per document); the synthetic
    // model memorizes a document as much at 2 copies as at 1, so
    // mem(2) − mem(1) is 0 on every document, and the models'
    // memorization strengths (20 % spread) and qualities are shared by all
    // documents. Over 2,000 replications the curve's mean at 1 copy must
    // cover the mean memorization, and the paired mean mem(2) − mem(1)
    // must cover 0, each in 93–97 %; a t-interval over the documents'
    // estimates of the curve's mean does not (the strengths do not average
    // out over documents). (The residuals' CR2 scale matters here: CR1's
    // K/(K − 1) covered the paired mean 0.900.)
    let mem: Vec<f64> = (0..60).map(|d| 0.1 + 0.002 * d as f64).collect();
    let truth = mem.iter().sum::<f64>() / mem.len() as f64;
    let (mut hit_mean, mut hit_paired, mut hit_t) = (0u64, 0u64, 0u64);
    for rep in 0..REPS {
        let design = DesignConfig::repetition(vec![0, 1, 2], vec![0.4, 0.3, 0.3], 70_000 + rep);
        let src = Synthetic::new(design, 16, mem.clone())
            .noise(0.05)
            .model_sd(0.03)
            .mem_sd(0.2)
            .seed(rep);
        let curve = repetition(&src, Metric::Accuracy, 0.95).unwrap();
        let m = curve.overall[0].mem;
        hit_mean += u64::from(m.ci_low <= truth && truth <= m.ci_high);
        let p = curve.paired(&src, Metric::Accuracy, 2, 1).unwrap().unwrap();
        hit_paired += u64::from(p.ci_low <= 0.0 && 0.0 <= p.ci_high);
        let per_doc: Vec<f64> = curve.per_doc.iter().filter_map(|d| d[0].mem).collect();
        let t = MeanCi::of(&per_doc, 0.95);
        hit_t += u64::from(t.ci_low <= truth && truth <= t.ci_high);
    }
    let cov = |h: u64| h as f64 / REPS as f64;
    let (mean, paired, t) = (cov(hit_mean), cov(hit_paired), cov(hit_t));
    eprintln!("repetition: mean at 1 copy {mean:.3}, paired mem(2) − mem(1) {paired:.3}; t over documents {t:.3}");
    assert!((0.93..=0.97).contains(&mean), "mean: {mean}");
    assert!((0.93..=0.97).contains(&paired), "paired: {paired}");
    assert!(t < 0.93, "t over documents: {t}");
}

#[test]
fn the_error_is_the_jackknife_over_models_by_brute_force() {
    // Independent inclusion (p = 0.3) and 10 models: the mean over the
    // documents recomputed with each model left out, by hand from the
    // rows, gives the jackknife variance (K − 1)/K Σ (C₍ₖ₎ − C)².
    use cfmem_analysis::{Rows, Value};
    let mem: Vec<f64> = (0..8).map(|d| 0.05 * d as f64).collect();
    let src = Synthetic::new(DesignConfig::bernoulli(0.3, 11), 10, mem)
        .model_sd(0.05)
        .mem_sd(0.3)
        .seed(5);
    let mut rows: Vec<(Vec<u32>, Vec<f64>)> = Vec::new();
    src.visit(Value::Scores(Metric::Accuracy), &mut |r| {
        rows.push((r.copies.to_vec(), r.values.to_vec()));
        Ok(())
    })
    .unwrap();
    let r = report(&src, &ReportConfig::plain(Metric::Accuracy)).unwrap();
    // Documents with two models a side at least (leaving one out keeps
    // both sides).
    let docs: Vec<usize> = (0..8)
        .filter(|&d| r.docs[d].estimate.n_in >= 2 && r.docs[d].estimate.n_out >= 2)
        .collect();
    assert!(docs.len() >= 5, "{docs:?}");
    let c_without = |skip: Option<usize>| {
        let mut total = 0.0;
        for &d in &docs {
            let side = |inn: bool| {
                let v: Vec<f64> = rows
                    .iter()
                    .enumerate()
                    .filter(|(i, (c, _))| Some(*i) != skip && (c[d] > 0) == inn)
                    .map(|(_, (_, s))| s[d])
                    .collect();
                v.iter().sum::<f64>() / v.len() as f64
            };
            total += side(true) - side(false);
        }
        total / docs.len() as f64
    };
    let c = c_without(None);
    let k = rows.len() as f64;
    let var = (k - 1.0) / k
        * (0..rows.len())
            .map(|g| (c_without(Some(g)) - c).powi(2))
            .sum::<f64>();
    let m = MeanCi::over(&r, &src, &docs).unwrap();
    assert!((m.mean - c).abs() < 1e-12, "{} vs {c}", m.mean);
    assert!(
        (m.se - var.sqrt()).abs() < 1e-9 * var.sqrt().max(1e-12),
        "{} vs {}",
        m.se,
        var.sqrt()
    );
    assert_eq!(m.df, k - 1.0);
}

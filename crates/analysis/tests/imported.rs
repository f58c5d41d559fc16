//! Results from another trainer, analysed through the library alone (no
//! scheduler, no candle): membership and score matrices written as CSV,
//! read back with `ScoreTable::load`, and every analysis that needs no
//! corpus run on them. The estimates must equal those of the same rows
//! served directly.

use cfmem_analysis::{
    analyse, report, AnalysisConfig, DesignConfig, Imported, MembershipConfig, Metric,
    ReportConfig, Rows, ScoreTable, Synthetic, Value,
};

#[test]
fn csv_matrices_give_the_estimates_of_the_rows_they_hold() {
    let mem: Vec<f64> = (0..12).map(|d| 0.02 * d as f64).collect();
    let rows = Synthetic::new(DesignConfig::blocks(2, 9), 16, mem)
        .model_sd(0.03)
        .seed(2);
    // Write the rows as another trainer would: a header of ids, one line per model.
    let ids = rows.ids();
    let (mut m, mut s) = (ids.join(",") + "\n", ids.join(",") + "\n");
    rows.visit(Value::Scores(Metric::Accuracy), &mut |r| {
        let line = |v: Vec<String>| v.join(",") + "\n";
        m += &line(r.copies.iter().map(u32::to_string).collect());
        s += &line(r.values.iter().map(f64::to_string).collect());
        Ok(())
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mp, sp) = (dir.path().join("m.csv"), dir.path().join("s.csv"));
    std::fs::write(&mp, m).unwrap();
    std::fs::write(&sp, s).unwrap();
    let imported = Imported {
        table: ScoreTable::load(&mp, &sp, None).unwrap(),
        metric: Metric::Accuracy,
        blocks: 1,
    };
    assert_eq!(imported.ids(), ids);
    // Told the blocks, the imported table gets the clustered error of the
    // rows it holds; without them, Welch's.
    let blocked = Imported {
        blocks: 2,
        ..imported.clone()
    };
    let cfg = ReportConfig::plain(Metric::Accuracy);
    let (a, b, c) = (
        report(&rows, &cfg).unwrap(),
        report(&blocked, &cfg).unwrap(),
        report(&imported, &cfg).unwrap(),
    );
    for ((x, y), z) in a.docs.iter().zip(&b.docs).zip(&c.docs) {
        assert_eq!(x.estimate.se, y.estimate.se);
        assert_ne!(x.estimate.se, z.estimate.se);
    }
    for cfg in [
        ReportConfig::default(),
        ReportConfig::plain(Metric::Accuracy),
    ] {
        let (a, b) = (
            report(&rows, &cfg).unwrap(),
            report(&imported, &cfg).unwrap(),
        );
        assert_eq!(a.n_models, 16);
        for (x, y) in a.docs.iter().zip(&b.docs) {
            let (x, y) = (x.estimate.mem.unwrap(), y.estimate.mem.unwrap());
            // f64 → decimal text → f64 is exact (shortest round-trip printing).
            assert_eq!(x, y);
        }
    }
    let out = analyse(
        &imported,
        &AnalysisConfig {
            convergence: true,
            membership: Some(MembershipConfig::default()),
            ..AnalysisConfig::default()
        },
    )
    .unwrap();
    assert_eq!(out.convergence.unwrap().last().unwrap().n_models, 16);
    assert!(out.membership.unwrap().online.is_some());
    // Influence on a query corpus needs one; imported tables have none.
    let err = cfmem_analysis::influence(
        &imported,
        &cfmem_analysis::InfluenceConfig {
            on: cfmem_analysis::InfluenceOn::Queries,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("query"), "{err}");
}

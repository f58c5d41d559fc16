//! Every output of one set of analyses: the CSV reads back as the
//! estimates, the JSON holds each analysis, every standard chart is drawn.

use cfmem_analysis::{
    analyse, AnalysisConfig, DesignConfig, InfluenceConfig, MembershipConfig, Synthetic,
};

#[test]
fn outputs_round_trip() {
    let rows = Synthetic::new(DesignConfig::blocks(2, 3), 8, vec![0.2, 0.0, 0.1]).seed(4);
    let a = analyse(
        &rows,
        &AnalysisConfig {
            convergence: true,
            membership: Some(MembershipConfig::default()),
            influence: Some(InfluenceConfig::default()),
            groups: true,
            repetition: true,
            ..AnalysisConfig::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("mem.csv");
    cfmem_report::csv::write(&a, &csv_path).unwrap();
    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    let rows_read: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows_read.len(), 3);
    let mem: f64 = rows_read[0][6].parse().unwrap();
    assert_eq!(Some(mem), a.report.docs[0].estimate.mem);
    let json = cfmem_report::json::to_value(&a);
    assert_eq!(json["metric"], "accuracy");
    assert_eq!(json["adjustment"], "model-mean");
    assert_eq!(json["documents"].as_array().unwrap().len(), 3);
    assert_eq!(json["convergence"][0]["n_models"], 8);
    assert!(json["influence"]["top_units_per_query"].is_array());
    assert_eq!(json["repetition"]["copies"][0], 1);
    // One name for the interval's error, in every output.
    assert_eq!(json["standard_error"], "block-clustered");
    let text = cfmem_report::text::analyses(&a, 10, None);
    assert!(text.contains("block-clustered error"), "{text}");
    assert!(text.contains("in_mean - out_mean"), "{text}");
    assert!(text.contains("Split-half convergence"), "{text}");
    let names: Vec<&str> = cfmem_report::charts::standard(&a)
        .iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        vec![
            "mem_histogram",
            "mem_vs_in_mean",
            "convergence",
            "roc",
            "mem_vs_copies"
        ]
    );
    let written = cfmem_report::charts::write_all(
        &cfmem_report::charts::standard(&a),
        &dir.path().join("plots"),
    )
    .unwrap();
    assert_eq!(written.len(), 10);
}

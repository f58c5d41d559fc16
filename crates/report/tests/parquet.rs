//! The per-document table written as Parquet reads back, column by column,
//! as the estimates it was written from.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use cfmem_analysis::{analyse, AnalysisConfig, DesignConfig, Synthetic};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn read(path: &std::path::Path) -> (RecordBatch, Vec<(String, Option<String>)>) {
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let meta = b
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let batches: Vec<RecordBatch> = b.build().unwrap().map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1, "a small table is one batch");
    (batches[0].clone(), meta)
}

#[test]
fn the_parquet_table_reads_back_as_the_estimates() {
    let mem: Vec<f64> = (0..10).map(|d| 0.03 * d as f64).collect();
    let rows = Synthetic::new(DesignConfig::blocks(2, 4), 6, mem).seed(5);
    let mut out = analyse(&rows, &AnalysisConfig::default()).unwrap();
    out.kinds = Some((0..10).map(|d| format!("kind{}", d % 3)).collect());
    out.doc_groups = Some(
        (0..10)
            .map(|d| (d < 4).then(|| format!("g{}", d / 2)))
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mem.parquet");
    cfmem_report::parquet::write(&out, &path).unwrap();
    let (t, meta) = read(&path);
    assert_eq!(t.num_rows(), 10);
    let col = |name: &str| {
        t.column_by_name(name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    for (i, d) in out.report.docs.iter().enumerate() {
        assert_eq!(col("id").as_string::<i32>().value(i), d.id);
        assert_eq!(
            col("index").as_primitive::<UInt64Type>().value(i),
            d.index as u64
        );
        assert_eq!(
            col("n_in").as_primitive::<UInt64Type>().value(i),
            d.estimate.n_in as u64
        );
        assert_eq!(
            col("n_out").as_primitive::<UInt64Type>().value(i),
            d.estimate.n_out as u64
        );
        for (name, want) in [
            ("in_mean", d.estimate.in_mean),
            ("out_mean", d.estimate.out_mean),
            ("mem", d.estimate.mem),
            ("se", d.estimate.se),
            ("ci_low", d.estimate.ci_low),
            ("ci_high", d.estimate.ci_high),
        ] {
            let c = col(name).as_primitive::<Float64Type>();
            let got = (!c.is_null(i)).then(|| c.value(i));
            // Bit for bit: Parquet stores the f64s themselves.
            assert_eq!(
                got.map(f64::to_bits),
                want.map(f64::to_bits),
                "{name} of doc {i}"
            );
        }
        assert!(col("reason").is_null(i));
        assert_eq!(
            col("kind").as_string::<i32>().value(i),
            format!("kind{}", i % 3)
        );
        let g = col("group");
        if i < 4 {
            assert_eq!(g.as_string::<i32>().value(i), format!("g{}", i / 2));
        } else {
            assert!(g.is_null(i));
        }
    }
    assert!(
        meta.contains(&("cfmem.n_models".into(), Some("6".into()))),
        "{meta:?}"
    );
    assert!(meta.iter().any(|(k, _)| k == "cfmem.metric"));

    // One model: every document lacks a side; the estimate columns are
    // null and the reason says why.
    let one = Synthetic::new(DesignConfig::blocks(2, 4), 1, vec![0.1; 3]);
    let out = analyse(&one, &AnalysisConfig::default()).unwrap();
    cfmem_report::parquet::write(&out, &path).unwrap();
    let (t, _) = read(&path);
    let mem = t.column_by_name("mem").unwrap();
    let reason = t.column_by_name("reason").unwrap().as_string::<i32>();
    for i in 0..3 {
        assert!(mem.is_null(i));
        assert!(!reason.value(i).is_empty());
        assert_eq!(
            reason.value(i),
            out.report.docs[i].estimate.reason.unwrap().to_string()
        );
    }
    assert!(t.column_by_name("kind").unwrap().is_null(0));
}

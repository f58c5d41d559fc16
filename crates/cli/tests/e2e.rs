//! End to end through the `cfmem` binary: a tiny corpus with planted random
//! canaries and low-information controls; the canaries must come out above
//! the controls. Also: bad input gives a one-line error and a non-zero exit.

use std::io::Write;
use std::process::Command;

fn cfmem(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cfmem"))
        .args(args)
        .output()
        .unwrap()
}

fn write_corpus(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let cfg = cfmem_core::CanaryConfig {
        n_random: 8,
        n_controls: 8,
        ..Default::default()
    };
    let natural = [
        "ABSURDITY, n. A statement of belief manifestly inconsistent with one's own opinion.",
        "ACADEME, n. An ancient school where morality and philosophy were taught.",
        "BORE, n. A person who talks when you wish him to listen.",
        "CYNIC, n. A blackguard whose faulty vision sees things as they are.",
        "DAWN, n. The time when men of reason go to bed.",
        "EGOTIST, n. A person of low taste, more interested in himself than in me.",
        "FORK, n. An instrument used chiefly for putting dead animals into the mouth.",
        "HAPPINESS, n. An agreeable sensation arising from contemplating the misery of another.",
    ];
    for (i, t) in natural.iter().enumerate() {
        writeln!(
            f,
            "{}",
            serde_json::json!({"id": format!("nat-{i}"), "text": t})
        )
        .unwrap();
    }
    for d in cfmem_core::canaries(&cfg) {
        writeln!(f, "{}", serde_json::json!({"id": d.id, "text": d.text})).unwrap();
    }
}

#[test]
fn random_canaries_rank_above_controls() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let out = tmp.path().join("exp");
    let (c, o) = (corpus.to_str().unwrap(), out.to_str().unwrap());
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        o,
        "--models",
        "8",
        "--epochs",
        "40",
        "--batch-size",
        "4",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let csv_path = tmp.path().join("mem.csv");
    let pq_path = tmp.path().join("mem.parquet");
    let html_path = tmp.path().join("report.html");
    let r = cfmem(&[
        "report",
        o,
        "--csv",
        csv_path.to_str().unwrap(),
        "--parquet",
        pq_path.to_str().unwrap(),
        "--html",
        html_path.to_str().unwrap(),
        "--top",
        "5",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("24 documents, 8 models"), "{stdout}");
    // A Parquet file (its columns are checked in cfmem-analysis' tests).
    let pq = std::fs::read(&pq_path).unwrap();
    assert!(pq.starts_with(b"PAR1") && pq.ends_with(b"PAR1"));
    // The HTML report, with the experiment's settings and every document
    // (its contents are checked in cfmem-analysis' tests, its behaviour in a
    // browser by scripts/check-html.sh).
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("id=reliability") && html.contains("d 64 × 2 layers"),
        "settings missing"
    );
    assert!(html.contains(&format!("\"{}", cfmem_core::RANDOM_PREFIX)));

    let mut rdr = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "id", "n_in", "n_out", "in_mean", "out_mean", "mem", "se", "ci_low", "ci_high",
    ] {
        assert!(header.iter().any(|h| h == col), "missing column {col}");
    }
    let (mut random, mut control) = (vec![], vec![]);
    for row in rdr.records() {
        let row = row.unwrap();
        let mem: f64 = row[6].parse().unwrap();
        assert_eq!(
            row[2].parse::<usize>().unwrap() + row[3].parse::<usize>().unwrap(),
            8
        );
        if row[0].starts_with(cfmem_core::RANDOM_PREFIX) {
            random.push(mem);
        } else if row[0].starts_with(cfmem_core::CONTROL_PREFIX) {
            control.push(mem);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert_eq!((random.len(), control.len()), (8, 8));
    assert!(
        mean(&random) > mean(&control) + 0.02,
        "random {:.4} vs control {:.4}",
        mean(&random),
        mean(&control)
    );

    // Resuming finds everything done; a changed setting is refused.
    let r = cfmem(&["run", o]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("trained 0 models"));
    let r = cfmem(&["run", o, "--epochs", "3"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("train.epochs: existing 40, requested 3"));
}

#[test]
fn bad_input_gives_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("bad.jsonl");
    std::fs::write(&corpus, "{\"text\": \"fine\"}\n{\"text\": \n").unwrap();
    let out = tmp.path().join("exp");
    let r = cfmem(&[
        "run",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("bad.jsonl:2: malformed JSON"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let r = cfmem(&[
        "run",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--p",
        "1.5",
    ]);
    assert!(!r.status.success());
    let r = cfmem(&["report", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("not a cfmem experiment"));
}

#[test]
fn report_analyses_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let queries = tmp.path().join("q.jsonl");
    std::fs::write(
        &queries,
        "{\"id\": \"held-out\", \"text\": \"DAWN, n. The time when men of reason go to bed.\"}\n",
    )
    .unwrap();
    let out = tmp.path().join("exp");
    let (c, o, q) = (
        corpus.to_str().unwrap(),
        out.to_str().unwrap(),
        queries.to_str().unwrap(),
    );
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        o,
        "--queries",
        q,
        "--models",
        "8",
        "--epochs",
        "2",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let json = tmp.path().join("r.json");
    let r = cfmem(&[
        "report",
        o,
        "--metric",
        "logprob",
        "--convergence",
        "--membership",
        "--influence",
        "--queries",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["metric"], "logprob");
    assert_eq!(v["documents"].as_array().unwrap().len(), 24);
    assert_eq!(v["convergence"][0]["n_models"], 8);
    assert!(v["membership"]["online"]["auc"].as_f64().is_some());
    assert_eq!(v["influence"]["query_ids"][0], "held-out");
    assert_eq!(
        v["influence"]["top_units_per_query"][0]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn imported_matrices_give_the_same_estimates_as_the_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let out = tmp.path().join("exp");
    let (c, o) = (corpus.to_str().unwrap(), out.to_str().unwrap());
    assert!(
        cfmem(&["run", "--corpus", c, "--out", o, "--models", "6", "--epochs", "2"])
            .status
            .success()
    );
    // Export the records as plain matrices, as another trainer would produce them.
    let exp = cfmem_sched::Experiment::open(&out).unwrap();
    let ids: Vec<String> = exp.documents().iter().map(|d| d.id.clone()).collect();
    let (mut m, mut s) = (ids.join(",") + "\n", String::new());
    for i in 0..6 {
        let r = exp.read(i).unwrap();
        m += &(r
            .copies
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
            + "\n");
        s += &(r
            .scores(cfmem_analysis::Metric::Loss)
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(",")
            + "\n");
    }
    let (mp, sp) = (tmp.path().join("m.csv"), tmp.path().join("s.csv"));
    std::fs::write(&mp, m).unwrap();
    std::fs::write(&sp, s).unwrap();
    let (a, b) = (tmp.path().join("a.csv"), tmp.path().join("b.csv"));
    let r = cfmem(&[
        "report",
        o,
        "--metric",
        "loss",
        "--csv",
        a.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    let r = cfmem(&[
        "report",
        "--import-membership",
        mp.to_str().unwrap(),
        "--import-scores",
        sp.to_str().unwrap(),
        "--metric",
        "loss",
        "--csv",
        b.to_str().unwrap(),
        "--convergence",
        "--membership",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // The default design's complementary pairs are found in the matrix,
    // so the errors are the experiment's clustered ones.
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("blocks of 2 consecutive models"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let read_column = |p: &std::path::Path, column: usize| -> Vec<(String, f64)> {
        csv::Reader::from_path(p)
            .unwrap()
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[column].parse().unwrap())
            })
            .collect()
    };
    let read = |p: &std::path::Path| read_column(p, 6);
    for column in [6, 7] {
        let (x, y) = (read_column(&a, column), read_column(&b, column));
        assert_eq!(x.len(), 24);
        for ((ia, ma), (ib, mb)) in x.iter().zip(&y) {
            assert_eq!(ia, ib);
            assert!((ma - mb).abs() < 1e-9, "{ia} column {column}: {ma} vs {mb}");
        }
    }
    // The library's report with its defaults gives the CLI's numbers with
    // its defaults, to the digit.
    let d = tmp.path().join("d.csv");
    assert!(cfmem(&["report", o, "--csv", d.to_str().unwrap()])
        .status
        .success());
    let lib = cfmem_analysis::report(&exp, &cfmem_analysis::ReportConfig::default()).unwrap();
    let cli = read(&d);
    assert_eq!(lib.docs.len(), cli.len());
    for (l, (id, mem)) in lib.docs.iter().zip(&cli) {
        assert_eq!(&l.id, id);
        assert_eq!(l.estimate.mem.unwrap().to_string(), mem.to_string(), "{id}");
    }
    // Analyses that need the corpus are refused for imports.
    let r = cfmem(&[
        "report",
        "--import-membership",
        mp.to_str().unwrap(),
        "--import-scores",
        sp.to_str().unwrap(),
        "--groups",
    ]);
    assert!(!r.status.success());
}

#[test]
fn until_reliability_grows_the_experiment_until_the_target_or_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let c = corpus.to_str().unwrap();
    let records = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("runs"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "rec")
            })
            .count()
    };
    // An unreachable target: the experiment grows by 8 from 16 to its budget.
    let out = tmp.path().join("hard");
    let o = out.to_str().unwrap();
    let common = ["--epochs", "6", "--batch-size", "4", "--seeding", "shared"];
    let mut args = vec![
        "run",
        "--corpus",
        c,
        "--out",
        o,
        "--until-reliability",
        "0.999",
        "--models",
        "24",
    ];
    args.extend(common);
    let r = cfmem(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("16 models: split-half Spearman"),
        "{stdout}"
    );
    assert!(
        stdout.contains("24 models: split-half Spearman"),
        "{stdout}"
    );
    assert!(stdout.contains("model budget 24 spent"), "{stdout}");
    assert_eq!(records(&out), 24);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seeding"], "shared", "{manifest}");

    // A target the first round already meets with room to spare (longer
    // training separates canaries from controls): it stops at 16.
    let out = tmp.path().join("easy");
    let o = out.to_str().unwrap();
    let args = vec![
        "run",
        "--corpus",
        c,
        "--out",
        o,
        "--until-reliability",
        "0.01",
        "--models",
        "64",
        "--epochs",
        "40",
        "--batch-size",
        "4",
    ];
    let r = cfmem(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains(
            "reached split-half Spearman 0.01 (the lower end of its interval) with 16 models"
        ),
        "{stdout}"
    );
    assert_eq!(records(&out), 16);

    // A target outside (0, 1) is refused before anything is trained.
    let r = cfmem(&["run", o, "--until-reliability", "1.5"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("--until-reliability 1.5"));
}

#[test]
fn compare_two_experiments_on_the_same_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let c = corpus.to_str().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (dir, seed) in [(&a, "1"), (&b, "2")] {
        let r = cfmem(&[
            "run",
            "--corpus",
            c,
            "--out",
            dir.to_str().unwrap(),
            "--models",
            "8",
            "--epochs",
            "30",
            "--batch-size",
            "4",
            "--seed",
            seed,
        ]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let json = tmp.path().join("cmp.json");
    let r = cfmem(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--plots",
        tmp.path().join("plots").to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.contains("24 documents with an estimate in both"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["n_docs"], 24);
    assert_eq!(v["docs"].as_array().unwrap().len(), 24);
    // Canaries above controls in both: the replication agrees.
    assert!(
        v["spearman"]["r"].as_f64().unwrap() > 0.5,
        "{}",
        v["spearman"]
    );
    assert!(tmp.path().join("plots/replication.png").exists());
    // An experiment against itself agrees perfectly.
    let r = cfmem(&["compare", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("Spearman   1.0000"));
}

#[test]
fn pretrain_then_fine_tune_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let base = tmp.path().join("base.safetensors");
    let (c, b) = (corpus.to_str().unwrap(), base.to_str().unwrap());
    let r = cfmem(&["pretrain", "--corpus", c, "--out", b, "--epochs", "2"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).contains("wrote"));
    let out = tmp.path().join("ft");
    let o = out.to_str().unwrap();
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        o,
        "--init",
        b,
        "--models",
        "2",
        "--epochs",
        "2",
        "--extraction=24:24",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"init\"") && out.join("init.safetensors").exists());
    assert!(manifest.contains("\"extraction\"") && out.join("runs/model-000001.ext").exists());
    let r = cfmem(&["report", o, "--top", "3"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // Counterfactual extraction, with the documents too short counted: a
    // document needs 48 tokens (bytes and the end of document) after BOS.
    let too_short = std::fs::read_to_string(&corpus)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["text"].as_str().unwrap().len() + 1 < 48)
        .count();
    assert!(too_short > 0 && too_short < 24, "{too_short}");
    let r = cfmem(&["report", o, "--metric", "extraction", "--top", "3"]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(
        text.contains("metric extraction")
            && text.contains(&format!("{too_short} documents are too short"))
            && text.contains("mem(acc)"),
        "{text}"
    );
    // An experiment without the test says how to get one; lengths that
    // do not fit the context are refused.
    let plain = tmp.path().join("plain");
    let p = plain.to_str().unwrap();
    let r = cfmem(&[
        "run", "--corpus", c, "--out", p, "--models", "2", "--epochs", "1",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r = cfmem(&["report", p, "--metric", "extraction"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("--extraction"), "{err}");
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        tmp.path().join("long").to_str().unwrap(),
        "--extraction=40:40",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("context of 64"),
        "{err}"
    );
    // Weights of another shape: a clear error naming the file, no backtrace.
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        tmp.path().join("small").to_str().unwrap(),
        "--init",
        b,
        "--preset",
        "small",
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("base.safetensors") && err.contains("wte has shape [259, 64]"),
        "{err}"
    );
    assert!(!err.contains("candle_core::error"), "{err}");
}

#[test]
fn pretrain_with_a_bpe_tokenizer_then_fine_tune_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let base = tmp.path().join("base.safetensors");
    let (c, b) = (corpus.to_str().unwrap(), base.to_str().unwrap());
    let r = cfmem(&[
        "pretrain",
        "--corpus",
        c,
        "--out",
        b,
        "--epochs",
        "1",
        "--tokenizer",
        "bpe:300",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let tok = tmp.path().join("base.tokenizer.json");
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        tok.exists() && stdout.contains(&format!("--tokenizer {}", tok.display())),
        "{stdout}"
    );
    // The base model's vocabulary is the tokenizer's 300 plus BOS, EOS, PAD.
    let w = cfmem_core::Checkpoint::load(&base).unwrap();
    let wte = w.weights().get_unchecked("wte").unwrap();
    assert_eq!(wte.dims()[0], 303);
    // An experiment with the same tokenizer fine-tunes from it.
    let out = tmp.path().join("ft");
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        out.to_str().unwrap(),
        "--init",
        b,
        "--tokenizer",
        tok.to_str().unwrap(),
        "--models",
        "2",
        "--epochs",
        "1",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(out.join("runs/model-000001.rec").exists());
}

#[test]
fn bf16_products_are_an_experiment_of_their_own() {
    // bf16 training finds the canaries as fp32 does; the precision is in
    // the manifest (changing it is refused, naming it) and what ran the
    // products is in each record's sidecar.
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let out = tmp.path().join("exp");
    let (c, o) = (corpus.to_str().unwrap(), out.to_str().unwrap());
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        o,
        "--models",
        "8",
        "--epochs",
        "40",
        "--batch-size",
        "4",
        "--precision",
        "bf16",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["train"]["precision"], "bf16");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("runs/model-000000.meta.json")).unwrap())
            .unwrap();
    let engine = meta["engine"].as_str().unwrap();
    assert!(engine.starts_with("bf16/"), "{engine}");
    let r = cfmem(&["report", o, "--top", "24"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8_lossy(&r.stdout);
    // The top of the ranking is canaries.
    let first = stdout
        .lines()
        .find(|l| l.contains(cfmem_core::RANDOM_PREFIX) || l.contains(cfmem_core::CONTROL_PREFIX))
        .unwrap_or_default();
    assert!(first.contains(cfmem_core::RANDOM_PREFIX), "{stdout}");
    let r = cfmem(&["run", o, "--precision", "fp32"]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("train.precision"), "{err}");
}

#[test]
fn the_rotary_families_pretrain_train_and_fine_tune_from_hugging_face_directories() {
    // A Llama-style base pretrained here carries its family in the config
    // written beside it; a GPT-NeoX model directory as transformers writes
    // it (the committed fixture) is a base too; a family trains from
    // scratch with --arch.
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let c = corpus.to_str().unwrap();
    let base = tmp.path().join("base.safetensors");
    let r = cfmem(&[
        "pretrain",
        "--corpus",
        c,
        "--out",
        base.to_str().unwrap(),
        "--arch",
        "llama",
        "--epochs",
        "2",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("base.config.json")).unwrap())
            .unwrap();
    assert_eq!(config["model_type"], "llama");
    let neox = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/fixtures/hf/gpt_neox"
    );
    for (name, extra, family) in [
        ("llama", vec!["--init", base.to_str().unwrap()], "llama"),
        ("neox", vec!["--init", neox], "gpt_neox"),
        ("scratch", vec!["--arch", "gpt_neox"], "gpt_neox"),
    ] {
        let out = tmp.path().join(name);
        let o = out.to_str().unwrap();
        let mut args = vec![
            "run", "--corpus", c, "--out", o, "--models", "2", "--epochs", "2",
        ];
        args.extend(extra);
        let r = cfmem(&args);
        assert!(
            r.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["model"]["arch"]["family"], family, "{name}");
        let r = cfmem(&["report", o, "--top", "3"]);
        assert!(
            r.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        // bf16 products are the native step's, which is GPT-2's: refused
        // before any model trains, naming the family.
        let bf16 = tmp.path().join(format!("{name}-bf16"));
        let mut args = vec![
            "run",
            "--corpus",
            c,
            "--out",
            bf16.to_str().unwrap(),
            "--models",
            "2",
        ];
        args.extend(["--precision", "bf16", "--arch", family]);
        let r = cfmem(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success() && err.contains(family) && err.contains("bf16"),
            "{name}: {err}"
        );
        assert!(
            !bf16.join("runs").exists(),
            "{name}: bf16 experiment created"
        );
    }
}

#[test]
fn lora_fine_tunes_adapters_of_a_base_and_saves_only_them() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    write_corpus(&corpus);
    let c = corpus.to_str().unwrap();
    let base = tmp.path().join("base.safetensors");
    let b = base.to_str().unwrap();
    let r = cfmem(&["pretrain", "--corpus", c, "--out", b, "--epochs", "2"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let out = tmp.path().join("lora");
    let o = out.to_str().unwrap();
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        o,
        "--models",
        "2",
        "--epochs",
        "2",
        "--init",
        b,
        "--lora",
        "4:8",
        "--lora-targets",
        "attn,fc",
        "--save-models",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let lora = &manifest["train"]["lora"];
    assert_eq!(
        (lora["rank"].as_u64(), lora["alpha"].as_f64()),
        (Some(4), Some(8.0))
    );
    assert_eq!(lora["targets"], serde_json::json!(["attn", "fc"]));
    // The saved model is its adapters: attention's two projections and
    // the MLP's first, A and B, in each of the tiny preset's two blocks.
    let saved = cfmem_core::Checkpoint::load(out.join("runs/model-000000.safetensors")).unwrap();
    let names = saved.names();
    assert_eq!(names.len(), 2 * 3 * 2, "{names:?}");
    assert!(names.iter().all(|n| n.contains(".lora_")), "{names:?}");
    let r = cfmem(&["report", o, "--top", "3"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // Without a base, and with a target the family lacks: refused before
    // any model trains, saying what to do.
    for (name, extra, says) in [
        ("no-base", vec!["--lora", "4"], "--init"),
        (
            "gate",
            vec!["--lora", "4", "--lora-targets", "gate", "--init", b],
            "gate",
        ),
    ] {
        let dir = tmp.path().join(name);
        let mut args = vec!["run", "--corpus", c, "--out", dir.to_str().unwrap()];
        args.extend(extra);
        let r = cfmem(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && err.contains(says), "{name}: {err}");
        assert!(!dir.join("runs").exists(), "{name}: experiment created");
    }
}

#[test]
fn spectrum_runs_reports_and_refuses_what_it_cannot_draw() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    // Two near-duplicate families of three (one word edited) and eight
    // documents of their own.
    let mut f = std::fs::File::create(&corpus).unwrap();
    let base = [
        "the quick brown fox jumps over the lazy dog by the river bank",
        "a slow green turtle walks under the tall tree near the old mill",
    ];
    for (k, b) in base.iter().enumerate() {
        for (m, edit) in ["", "quick", "lazy"].iter().enumerate() {
            let text = if m == 0 {
                b.to_string()
            } else {
                b.replacen(edit, "odd", 1)
            };
            writeln!(
                f,
                "{}",
                serde_json::json!({"id": format!("dup-{k}-{m}"), "text": text})
            )
            .unwrap();
        }
    }
    let own = [
        "bread rises in a warm oven overnight",
        "sailors chart the stars above cold seas",
        "a violin needs rosin on its bow",
        "granite cliffs weather into sand slowly",
        "bees carry pollen between orchard blossoms",
        "chess openings reward patient study",
        "copper wire conducts current with little loss",
        "winter frost cracks unsealed stone walls",
    ];
    for (i, text) in own.iter().enumerate() {
        writeln!(
            f,
            "{}",
            serde_json::json!({"id": format!("own-{i}"), "text": text})
        )
        .unwrap();
    }
    drop(f);
    let out = tmp.path().join("exp");
    let (c, o) = (corpus.to_str().unwrap(), out.to_str().unwrap());
    let spectrum = "document,near-dup:5:0.6,topic:5";
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        o,
        "--spectrum",
        spectrum,
        "--budget",
        "0.5",
        "--models",
        "12",
        "--epochs",
        "2",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"budget\"")
            && manifest.contains("near_duplicates")
            && manifest.contains("topics"),
        "{manifest}"
    );
    // Every record leaves out exactly half of the 14 documents.
    let exp = cfmem_sched::Experiment::open(&out).unwrap();
    for i in 0..12 {
        let row = exp.membership_row(i).unwrap();
        assert_eq!(row.iter().filter(|&&c| c == 0).count(), 7, "model {i}");
    }
    let json = tmp.path().join("r.json");
    let csv = tmp.path().join("r.csv");
    let plots = tmp.path().join("plots");
    let html = tmp.path().join("r.html");
    let r = cfmem(&[
        "report",
        o,
        "--spectrum",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--plots",
        plots.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<section id=spectrum>") && page.contains("adds to the level below"));
    // Its charts once each, in its section.
    assert_eq!(page.matches("id=\"chart-spectrum\"").count(), 1);
    let section = page.find("<section id=spectrum>").unwrap();
    assert!(page.find("id=\"chart-spectrum\"").unwrap() > section);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("Spectrum over 12 models") && text.contains("near-dup:5:0.6"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &v["spectrum"];
    assert_eq!(s["levels"].as_array().unwrap().len(), 3);
    assert_eq!(s["docs"].as_array().unwrap().len(), 14);
    // A family member's cluster holds its three documents.
    let dup = s["docs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "dup-0-1")
        .unwrap();
    assert_eq!(dup["levels"][1]["unit_docs"], 3);
    assert_eq!(dup["levels"][0]["unit_docs"], 1);
    let rows = std::fs::read_to_string(tmp.path().join("r.spectrum.csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + 14 * 3);
    assert!(plots.join("spectrum.png").exists() && plots.join("spectrum_documents.svg").exists());

    // A level whose units do not fit in the budget is refused by name.
    let other = tmp.path().join("exp2");
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        other.to_str().unwrap(),
        "--spectrum",
        "document,near-dup:5:0.6,topic:1",
        "--budget",
        "0.5",
        "--models",
        "2",
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("topic:1") && err.contains("14 documents") && err.contains("--budget"),
        "{err}"
    );
    // A spectrum needs documents as units; a budget must remove something.
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        other.to_str().unwrap(),
        "--spectrum",
        spectrum,
        "--units",
        "group",
    ]);
    assert!(!r.status.success());
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        other.to_str().unwrap(),
        "--budget",
        "0.01",
        "--models",
        "2",
    ]);
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("removes 0 of the 14"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // The spectrum of an experiment drawn without one is refused clearly.
    let plain = tmp.path().join("exp3");
    let r = cfmem(&[
        "run",
        "--corpus",
        c,
        "--out",
        plain.to_str().unwrap(),
        "--models",
        "2",
        "--epochs",
        "1",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r = cfmem(&["report", plain.to_str().unwrap(), "--spectrum"]);
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("--spectrum LEVELS"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

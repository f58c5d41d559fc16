//! Robustness of the experiment directory under `kill -9`, concurrent
//! processes and shards: every record ends bit-identical to an
//! uninterrupted single-process run, none lost, duplicated or clobbered.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const N_MODELS: usize = 6;

fn corpus(dir: &Path) -> PathBuf {
    let p = dir.join("c.jsonl");
    let mut f = std::fs::File::create(&p).unwrap();
    for i in 0..10 {
        writeln!(
            f,
            "{{\"id\": \"d{i}\", \"text\": \"entry {i}: {}\"}}",
            "la ".repeat(i + 2)
        )
        .unwrap();
    }
    p
}

fn cmd(corpus: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfmem"));
    c.args(["run", "--corpus"])
        .arg(corpus)
        .arg("--out")
        .arg(out)
        .args([
            "--models",
            &N_MODELS.to_string(),
            "--epochs",
            "4",
            "--batch-size",
            "2",
            "--jobs",
            "2",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run_ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file in `runs/`, by name.
fn runs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn assert_same_records(reference: &Path, dir: &Path) {
    for i in 0..N_MODELS {
        let name = format!("runs/model-{i:06}.rec");
        let a = std::fs::read(reference.join(&name)).unwrap();
        let b = std::fs::read(dir.join(&name)).unwrap_or_else(|_| panic!("{name} lost"));
        assert_eq!(a, b, "{name} differs from the uninterrupted run");
    }
    let recs = runs(dir)
        .into_iter()
        .filter(|n| n.ends_with(".rec"))
        .count();
    assert_eq!(recs, N_MODELS, "{:?}", runs(dir));
    let leftovers: Vec<String> = runs(dir)
        .into_iter()
        .filter(|n| n.ends_with(".tmp") || n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn wait_for_tmp(dir: &Path, child: &mut Child, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if dir.join("runs").exists() && runs(dir).iter().any(|n| n.ends_with(".tmp")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn kill_dash_nine_at_random_moments_then_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path());
    let reference = tmp.path().join("ref");
    run_ok(cmd(&c, &reference, &[]));

    let dir = tmp.path().join("killed");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut during_write = 0;
    for trial in 0..6 {
        let mut c = cmd(&c, &dir, &[]);
        // The mid-write kills come first, while there is still work to do
        // (the later, randomly timed runs may finish the experiment).
        if trial < 3 {
            // Kill while a record is being written: the writer pauses between
            // the temp file and the rename.
            c.env("CFMEM_FAULT_WRITE_DELAY_MS", "400");
            let mut child = c.spawn().unwrap();
            if wait_for_tmp(&dir, &mut child, Duration::from_secs(60)) {
                during_write += 1;
            }
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let ms = 50 + state % 1500;
            let mut child = c.spawn().unwrap();
            std::thread::sleep(Duration::from_millis(ms));
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
    assert!(
        during_write >= 2,
        "only {during_write} kills landed during a record write"
    );
    run_ok(cmd(&c, &dir, &[]));
    assert_same_records(&reference, &dir);
    // A final run finds nothing to do.
    assert!(run_ok(cmd(&c, &dir, &[])).contains("trained 0 models"));
}

#[test]
fn two_shards_at_once_and_two_unsharded_processes_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path());
    let reference = tmp.path().join("ref");
    run_ok(cmd(&c, &reference, &[]));

    // Shards 0/2 and 1/2 in parallel, one job each.
    let dir = tmp.path().join("shards");
    let a = cmd(&c, &dir, &["--shard", "0/2", "--jobs", "1"])
        .spawn()
        .unwrap();
    let b = cmd(&c, &dir, &["--shard", "1/2", "--jobs", "1"])
        .spawn()
        .unwrap();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout)
            .contains(&format!("trained {} models", N_MODELS / 2)));
    }
    assert_same_records(&reference, &dir);
    let status = Command::new(env!("CARGO_BIN_EXE_cfmem"))
        .arg("status")
        .arg(&dir)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("6 done, 0 pending") && status.contains("shard 1/2: 3/3 done"),
        "{status}"
    );

    // Two plain runs in parallel: every model trained exactly once.
    let dir = tmp.path().join("concurrent");
    let a = cmd(&c, &dir, &["--jobs", "1"]).spawn().unwrap();
    let b = cmd(&c, &dir, &["--jobs", "1"]).spawn().unwrap();
    let mut trained = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = String::from_utf8_lossy(&out.stdout);
        let n: usize = s
            .split("trained ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        trained += n;
    }
    assert_eq!(trained, N_MODELS);
    assert_same_records(&reference, &dir);
}

#[test]
fn growth_keeps_the_first_records_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path());
    let dir = tmp.path().join("grow");
    let mut small = cmd(&c, &dir, &[]);
    small.args(["--models", "3"]);
    run_ok(small);
    let before: Vec<Vec<u8>> = (0..3)
        .map(|i| std::fs::read(dir.join(format!("runs/model-{i:06}.rec"))).unwrap())
        .collect();
    let out = run_ok(cmd(&c, &dir, &[]));
    assert!(
        out.contains("trained 3 models") && out.contains("3 were already done"),
        "{out}"
    );
    for (i, b) in before.iter().enumerate() {
        assert_eq!(
            &std::fs::read(dir.join(format!("runs/model-{i:06}.rec"))).unwrap(),
            b
        );
    }
}

#[test]
fn ctrl_c_finishes_current_models_and_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path());
    // Slower models, so that the interrupt lands while one trains.
    let slow = ["--epochs", "30"];
    let reference = tmp.path().join("ref");
    run_ok(cmd(&c, &reference, &slow));
    let dir = tmp.path().join("interrupted");
    let mut child = cmd(&c, &dir, &["--epochs", "30", "--jobs", "1"])
        .spawn()
        .unwrap();
    // Interrupt once the first record exists.
    let t = Instant::now();
    while !dir.join("runs/model-000000.rec").exists() && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("interrupted") && err.contains("resume with `cfmem run"),
        "{err}"
    );
    // The model in training was finished, the rest not started.
    let done = runs(&dir).iter().filter(|n| n.ends_with(".rec")).count();
    assert!((1..N_MODELS).contains(&done), "{done} records");
    run_ok(cmd(&c, &dir, &slow));
    assert_same_records(&reference, &dir);
}

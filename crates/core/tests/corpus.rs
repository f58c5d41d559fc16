//! Corpus loading: formats, and errors that name the file and line.

use std::io::Write;

use cfmem_core::{Corpus, Document, Error, LoadConfig};

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

fn load(p: &std::path::Path) -> Result<Corpus, Error> {
    Corpus::load(p, &LoadConfig::default())
}

#[test]
fn jsonl_with_ids_groups_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "c.jsonl",
        b"{\"id\": \"a\", \"text\": \"one\", \"group\": \"g\"}\n\n{\"id\": 7, \"text\": \"two\"}\n{\"text\": \"three\"}\n",
    );
    let c = load(&p).unwrap();
    let ids: Vec<&str> = c.documents().iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "7", "4"]);
    assert_eq!(c.documents()[0].group.as_deref(), Some("g"));
    // Configurable field names.
    let p = write(&dir, "d.jsonl", b"{\"name\": \"x\", \"body\": \"hello\"}\n");
    let cfg = LoadConfig {
        id_field: "name".into(),
        text_field: "body".into(),
        ..Default::default()
    };
    assert_eq!(
        Corpus::load(&p, &cfg).unwrap().documents()[0],
        Document::new("x", "hello")
    );
}

#[test]
fn jsonl_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "bad.jsonl",
            b"{\"text\": \"ok\"}\n{\"text\": oops}\n",
            "bad.jsonl:2: malformed JSON",
        ),
        (
            "missing.jsonl",
            b"{\"text\": \"ok\"}\n{\"id\": \"b\"}\n",
            "missing.jsonl:2: field \"text\" is missing",
        ),
        (
            "type.jsonl",
            b"{\"text\": 5}\n",
            "type.jsonl:1: field \"text\" is not a string",
        ),
        (
            "utf8.jsonl",
            b"{\"text\": \"ok\"}\n{\"text\": \"\xff\"}\n",
            "utf8.jsonl:2: invalid UTF-8",
        ),
        (
            "empty.jsonl",
            b"{\"id\": \"e\", \"text\": \"  \"}\n",
            "empty.jsonl:1: document \"e\" is empty",
        ),
        (
            "dup.jsonl",
            b"{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"a\", \"text\": \"y\"}\n",
            "dup.jsonl:2: duplicate document id \"a\" (first seen at",
        ),
    ];
    for (name, bytes, expected) in cases {
        let p = write(&dir, name, bytes);
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains(expected), "{name}: {err}");
    }
    let p = write(&dir, "nothing.jsonl", b"\n\n");
    assert!(matches!(load(&p), Err(Error::EmptyCorpus(_))));
    let err = load(&dir.path().join("absent.jsonl")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn skip_empty_counts_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "e.jsonl",
        b"{\"text\": \"\"}\n{\"text\": \"x\"}\n{\"text\": \" \"}\n",
    );
    let c = Corpus::load(
        &p,
        &LoadConfig {
            skip_empty: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((c.len(), c.n_skipped_empty()), (1, 2));
}

#[test]
fn plain_text_paragraphs_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "t.txt", b"first para\nstill first\n\n\nsecond\n");
    let c = load(&p).unwrap();
    assert_eq!(
        c.documents()[0],
        Document::new("line-1", "first para\nstill first")
    );
    assert_eq!(c.documents()[1], Document::new("line-5", "second"));
    let per_line = Corpus::load(
        &p,
        &LoadConfig {
            per_line: true,
            ..Default::default()
        },
    );
    let err = per_line.unwrap_err().to_string();
    assert!(err.contains("t.txt:3"), "{err}");
    let p = write(&dir, "bad.txt", b"ok\nok\n\xc3\x28\n");
    assert!(load(&p)
        .unwrap_err()
        .to_string()
        .contains("bad.txt:3: invalid UTF-8"));
}

#[test]
fn directory_of_txt_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(&dir, "b.txt", b"bee");
    write(&dir, "sub/a.txt", b"ay");
    write(&dir, "ignored.md", b"no");
    let c = load(dir.path()).unwrap();
    let ids: Vec<&str> = c.documents().iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["b.txt", "sub/a.txt"]);
    write(&dir, "sub/empty.txt", b"");
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("empty.txt") && err.contains("is empty"),
        "{err}"
    );
}

#[test]
fn fingerprint_identifies_content() {
    let a = Corpus::from_documents(vec![Document::new("a", "x"), Document::new("b", "y")]).unwrap();
    let b = Corpus::from_documents(vec![Document::new("a", "x"), Document::new("b", "z")]).unwrap();
    let c = Corpus::from_documents(vec![Document::new("a", "xb"), Document::new("", "y")]);
    assert_eq!(a.fingerprint(), a.clone().fingerprint());
    assert_ne!(a.fingerprint(), b.fingerprint());
    if let Ok(c) = c {
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
    assert_eq!(a.fingerprint().len(), 64);
}

#[test]
fn compressed_jsonl_reads_as_the_plain_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let lines = "{\"id\": \"a\", \"text\": \"first document\"}\n{\"id\": \"b\", \"text\": \"second, ünïcode\"}\n";
    let plain = dir.path().join("c.jsonl");
    std::fs::write(&plain, lines).unwrap();
    let gz = dir.path().join("c.jsonl.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    e.write_all(lines.as_bytes()).unwrap();
    e.finish().unwrap();
    let zst = dir.path().join("c.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(lines.as_bytes(), 3).unwrap()).unwrap();
    let cfg = LoadConfig::default();
    let want = Corpus::load(&plain, &cfg).unwrap();
    assert_eq!(want.len(), 2);
    for p in [&gz, &zst] {
        let got = Corpus::load(p, &cfg).unwrap();
        assert_eq!(got.documents(), want.documents(), "{}", p.display());
        assert_eq!(got.fingerprint(), want.fingerprint());
    }
    // A damaged compressed file is an error naming the file, not a panic.
    let mut bytes = std::fs::read(&gz).unwrap();
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    std::fs::write(&gz, &bytes).unwrap();
    let err = Corpus::load(&gz, &cfg).unwrap_err().to_string();
    assert!(err.contains("c.jsonl.gz"), "{err}");
    // Malformed JSON inside a compressed file names its line.
    std::fs::write(
        &zst,
        zstd::encode_all("{\"text\": \"ok\"}\n{oops\n".as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let err = Corpus::load(&zst, &cfg).unwrap_err().to_string();
    assert!(err.contains("c.jsonl.zst:2: malformed JSON"), "{err}");
}

/// Write a Parquet file with the given columns.
fn write_parquet(path: &std::path::Path, cols: Vec<(&str, arrow_array::ArrayRef)>) {
    let batch = arrow_array::RecordBatch::try_from_iter(cols).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_files_and_folders_read_as_the_jsonl() {
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("c.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"a\", \"text\": \"first\", \"group\": \"g\"}\n{\"id\": \"b\", \"text\": \"second\"}\n{\"id\": \"c\", \"text\": \"third\"}\n",
    )
    .unwrap();
    let want = Corpus::load(&jsonl, &LoadConfig::default()).unwrap();
    // One file.
    let one = dir.path().join("c.parquet");
    let col = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    write_parquet(
        &one,
        vec![
            ("id", col(vec![Some("a"), Some("b"), Some("c")])),
            (
                "text",
                col(vec![Some("first"), Some("second"), Some("third")]),
            ),
            ("group", col(vec![Some("g"), None, None])),
        ],
    );
    let got = Corpus::load(&one, &LoadConfig::default()).unwrap();
    assert_eq!(got.documents(), want.documents());
    assert_eq!(got.fingerprint(), want.fingerprint());
    // A folder of shards, read in name order.
    let shards = dir.path().join("shards");
    std::fs::create_dir(&shards).unwrap();
    write_parquet(
        &shards.join("train-00001.parquet"),
        vec![
            ("id", col(vec![Some("c")])),
            ("text", col(vec![Some("third")])),
        ],
    );
    write_parquet(
        &shards.join("train-00000.parquet"),
        vec![
            ("id", col(vec![Some("a"), Some("b")])),
            ("text", col(vec![Some("first"), Some("second")])),
            ("group", col(vec![Some("g"), None])),
        ],
    );
    assert_eq!(
        Corpus::load(&shards, &LoadConfig::default())
            .unwrap()
            .documents(),
        want.documents()
    );
    // Integer ids, another text column name.
    let ints = dir.path().join("ints.parquet");
    write_parquet(
        &ints,
        vec![
            ("idx", Arc::new(Int64Array::from(vec![10, 11])) as ArrayRef),
            ("content", col(vec![Some("x y"), Some("z")])),
        ],
    );
    let cfg = LoadConfig {
        id_field: "idx".into(),
        text_field: "content".into(),
        ..LoadConfig::default()
    };
    let c = Corpus::load(&ints, &cfg).unwrap();
    assert_eq!(c.documents()[1].id, "11");
    // Errors name the file and the row.
    let err = Corpus::load(&ints, &LoadConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ints.parquet") && err.contains("\"text\""),
        "{err}"
    );
    let nulls = dir.path().join("nulls.parquet");
    write_parquet(&nulls, vec![("text", col(vec![Some("ok"), None]))]);
    let err = Corpus::load(&nulls, &LoadConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nulls.parquet:2") && err.contains("is null"),
        "{err}"
    );
}

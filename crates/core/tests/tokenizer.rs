//! A Hugging Face tokenizer file made elsewhere (Python's `tokenizers`,
//! laid out as GPT-2's; `tests/data/make_tokenizer.py`) encodes as it does
//! in Python, with its offsets, and frames documents with cfmem's own
//! specials after its vocabulary.

use cfmem_core::{Corpus, Document, TokenizerConfig, TokenizerSpec};

#[test]
fn a_hugging_face_tokenizer_file_encodes_as_python_does() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gpt2style-tokenizer.json");
    let corpus = Corpus::from_documents(vec![Document::new("a", "x")]).unwrap();
    let spec: TokenizerSpec = path.to_str().unwrap().parse().unwrap();
    let r = spec.resolve(&corpus).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let TokenizerConfig::HuggingFace {
        source,
        vocab_size,
        fingerprint,
    } = &r.config
    else {
        panic!("{:?}", r.config)
    };
    assert_eq!(source, path.to_str().unwrap());
    // The fingerprint is of the tokenizer as kept (re-serialised by the
    // `tokenizers` crate, so that formatting does not matter).
    let kept = r.json.as_deref().unwrap();
    assert_eq!(fingerprint, &blake3::hash(kept).to_hex().to_string());
    assert!(!bytes.is_empty());
    // 400 symbols, then BOS, EOS and PAD.
    assert_eq!(*vocab_size, 403);
    let tok = r.config.build(r.json.as_deref()).unwrap();
    assert_eq!((tok.bos(), tok.eos(), tok.pad()), (400, 401, 402));
    let text = "A person whose vices and follies are not sociable.";
    // Printed by make_tokenizer.py (Python `tokenizers`).
    let ids = [
        33, 285, 380, 272, 393, 323, 391, 300, 281, 297, 288, 79, 309, 73, 281, 261, 265, 385, 267,
        79, 67, 73, 357, 299, 14,
    ];
    let offsets = [
        (0, 1),
        (1, 3),
        (3, 6),
        (6, 8),
        (8, 12),
        (12, 14),
        (14, 16),
        (16, 18),
        (18, 20),
        (20, 24),
        (24, 26),
        (26, 27),
        (27, 29),
        (29, 30),
        (30, 32),
        (32, 34),
        (34, 36),
        (36, 40),
        (40, 42),
        (42, 43),
        (43, 44),
        (44, 45),
        (45, 47),
        (47, 49),
        (49, 50),
    ];
    assert_eq!(tok.encode(text), ids);
    let spans: Vec<(usize, usize)> = tok
        .spans(text)
        .into_iter()
        .map(|s| (s.start, s.end))
        .collect();
    assert_eq!(spans, offsets);
    // A file that is not a tokenizer is refused, naming it.
    let bad =
        std::env::temp_dir().join(format!("cfmem-not-a-tokenizer-{}.json", std::process::id()));
    std::fs::write(&bad, "{\"not\": 1}").unwrap();
    let err = TokenizerSpec::File(bad.clone())
        .resolve(&corpus)
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_file(&bad);
    assert!(err.contains("cfmem-not-a-tokenizer"), "{err}");
}

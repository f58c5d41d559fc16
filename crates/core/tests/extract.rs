//! Extraction read off teacher-forced correctness ([`extraction`]) is
//! what greedy decoding ([`greedy`]) writes: on trained models that have
//! memorized some documents and not others, the matched length of every
//! document under every model is the same both ways.

use candle_core::Device;
use cfmem_core::*;

#[test]
fn teacher_forced_extraction_is_greedy_decoding() {
    let texts = [
        "the cat sat on the mat today",
        "a dog ran in the park at noon",
        "to be or not to be, a question",
        "ships sail the sea in the night",
        "rain falls on the plain in spain",
        "one two three four five six seven",
    ];
    let corpus = Corpus::from_documents(
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Document::new(format!("d{i}"), *t))
            .chain([Document::new("short", "tiny")])
            .collect(),
    )
    .unwrap();
    let cfg = ModelConfig {
        vocab_size: 259,
        d_model: 32,
        n_layer: 1,
        n_head: 2,
        d_ff: 64,
        ctx: 16,
        tie_embeddings: false,
        init_std: 0.1,
        arch: Arch::Gpt2,
    };
    let data = TokenizedCorpus::new(&corpus, &ByteTokenizer, cfg.ctx).unwrap();
    let train = TrainConfig {
        epochs: 60,
        batch_size: 4,
        lr: 3e-3,
        ..Default::default()
    };
    // Two models on different halves, one on everything for fewer epochs.
    let jobs: Vec<ModelJob> = [
        vec![1, 1, 1, 0, 0, 0, 1],
        vec![0, 0, 0, 1, 1, 1, 1],
        vec![1; 7],
    ]
    .iter()
    .enumerate()
    .map(|(m, copies)| ModelJob {
        model: m,
        subset: Subset::from_copies(copies),
        init_seed: 11 + m as u64,
        data_seed: 5,
    })
    .collect();
    let model = Ensemble::new(&cfg, &train, &data, &jobs)
        .train(None)
        .unwrap()
        .model;
    let ext = ExtractionConfig {
        prefix: 4,
        suffix: 12,
    };
    let (_, tokens) = evaluate_tokens(&model, &data, 8, &Device::Cpu).unwrap();
    let scored: Vec<usize> = (0..data.n_docs()).filter(|&d| ext.fits(&data, d)).collect();
    assert_eq!(scored.len(), texts.len(), "only \"short\" is too short");
    let (prompts, truths): (Vec<_>, Vec<_>) =
        scored.iter().map(|&d| ext.split(&data, d).unwrap()).unzip();
    let written = greedy(&model, &prompts, ext.suffix as usize, &Device::Cpu).unwrap();
    let mut lengths = Vec::new();
    for (k, t) in tokens.iter().enumerate() {
        let got = extraction(&data, t, &ext).unwrap();
        assert_eq!(got[texts.len()], TOO_SHORT);
        for (r, &d) in scored.iter().enumerate() {
            let by_greedy = written[k][r]
                .iter()
                .zip(&truths[r])
                .take_while(|(a, b)| a == b)
                .count();
            assert_eq!(
                usize::from(got[d]),
                by_greedy,
                "model {k}, document {d}: greedy wrote {:?}, truth {:?}",
                written[k][r],
                truths[r]
            );
            lengths.push(by_greedy);
        }
    }
    // Not vacuous: some continuations written whole, some not at all or in part.
    assert!(lengths.contains(&12), "{lengths:?}");
    assert!(lengths.iter().any(|&l| l < 12), "{lengths:?}");
}

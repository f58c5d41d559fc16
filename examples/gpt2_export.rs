//! A cfmem model in Hugging Face's GPT-2 layout, and the logits cfmem
//! computes for a fixed text, for `scripts/check-gpt2.sh` to compare with
//! `transformers`' `GPT2LMHeadModel` on the same file.
//!
//! ```text
//! cargo run --release --example gpt2_export -- DIR
//! ```
//! Trains a tiny model for 2 epochs on the quickstart corpus (a few
//! seconds), writes `DIR/model.safetensors` + `DIR/config.json`
//! (`Checkpoint::save_gpt2`), loads them back through cfmem's GPT-2 reader
//! and writes `DIR/cfmem_logits.json`: the input ids and the logits of the
//! loaded model.

use anyhow::{Context, Result};
use cfmem::engine::{
    ByteTokenizer, Checkpoint, DType, Device, Ensemble, Gpt, ModelConfig, ModelJob, Subset, Tensor,
    TokenizedCorpus, Tokenizer, TrainConfig,
};

fn main() -> Result<()> {
    cfmem::engine::settle_process(None, |k, v| std::env::set_var(k, v));
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .context("the argument is a directory")?,
    );
    std::fs::create_dir_all(&dir)?;
    let corpus = cfmem::bundled::quickstart_corpus()?;
    let model = ModelConfig::tiny();
    let data = TokenizedCorpus::new(&corpus, &ByteTokenizer, model.ctx)?;
    let job = ModelJob {
        model: 0,
        subset: Subset::from_copies(&vec![1; corpus.len()]),
        init_seed: 1,
        data_seed: 2,
    };
    let train = TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    };
    let trained = Ensemble::new(&model, &train, &data, &[job]).train(None)?;
    let path = dir.join("model.safetensors");
    Checkpoint::save_gpt2(&trained.model, 0, &path)?;
    let ck = Checkpoint::load(&path)?;
    let shaped = ck.shape_model(&model);
    let loaded = Gpt::from_weights(
        &shaped,
        &ck.weights_for(&shaped)?,
        1,
        DType::F32,
        &Device::Cpu,
    )?;
    let text = "The secret code is 3f9a; DEVIL, n. An entity.";
    let mut ids = vec![ByteTokenizer.bos()];
    ids.extend(ByteTokenizer.encode(text));
    let t = ids.len();
    let input = Tensor::from_vec(ids.clone(), (1, 1, t), &Device::Cpu)?;
    let logits: Vec<f32> = loaded.forward(&input)?.flatten_all()?.to_vec1()?;
    let out = serde_json::json!({"ids": ids, "vocab": shaped.vocab_size, "logits": logits});
    std::fs::write(dir.join("cfmem_logits.json"), serde_json::to_vec(&out)?)?;
    println!(
        "wrote {} (+ config.json) and cfmem_logits.json ({t} positions)",
        path.display()
    );
    Ok(())
}

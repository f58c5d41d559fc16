//! `cfmem pretrain`: a base model for `cfmem run --init`.

use anyhow::Result;
use cfmem_core::Corpus;

use crate::flags::PretrainArgs;

pub fn cmd_pretrain(a: &PretrainArgs) -> Result<()> {
    let corpus = Corpus::load(&a.corpus, &a.load.config())?;
    let model = a.model()?;
    eprintln!(
        "pretraining d_model {} × {} layers on {} documents of {} for {} epochs",
        model.d_model,
        model.n_layer,
        corpus.len(),
        a.corpus.display(),
        a.train().epochs
    );
    let p = cfmem_sched::pretrain(&corpus, &model, &a.train(), &a.tokenizer, a.seed, &a.out)?;
    println!(
        "wrote {} ({} steps, {} tokens, final loss {}, {:.0} s; blake3 {})",
        a.out.display(),
        p.steps,
        p.tokens,
        p.final_loss.map_or("-".into(), |l| format!("{l:.3}")),
        p.seconds,
        &p.fingerprint[..12]
    );
    let tokenizer = p
        .tokenizer
        .as_ref()
        .map_or(String::new(), |t| format!(" --tokenizer {}", t.display()));
    println!(
        "next: cfmem run --corpus YOUR_CORPUS --out DIR --init {}{tokenizer}",
        a.out.display()
    );
    Ok(())
}

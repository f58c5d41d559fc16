//! Write a synthetic corpus of N documents as JSONL (for scale tests):
//! pseudo-words with Zipf-like frequencies, 100 bytes a document on average
//! (`cfmem::synthetic::corpus`).
//!
//! ```text
//! cargo run --release --example synthetic_corpus -- 100000 big.jsonl
//! ```

use std::io::Write;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .context("usage: synthetic_corpus N OUT.jsonl")?
        .parse()
        .context("N is a number of documents")?;
    let out = args.next().context("usage: synthetic_corpus N OUT.jsonl")?;
    let corpus = cfmem::synthetic::corpus(n, 7)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(&out).with_context(|| out.clone())?);
    for d in corpus.documents() {
        serde_json::to_writer(&mut f, d)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    println!("wrote {n} documents to {out}");
    Ok(())
}

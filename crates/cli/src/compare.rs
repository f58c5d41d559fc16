//! `cfmem compare`: the agreement of two experiments on the same corpus,
//! next to what each one's split-half reliability predicts.

use anyhow::Result;
use cfmem_analysis::compare;
use cfmem_report::{charts, json, text};
use cfmem_sched::Experiment;

use crate::flags::CompareArgs;

pub fn cmd_compare(a: &CompareArgs) -> Result<()> {
    let (ea, eb) = (Experiment::open(&a.a)?, Experiment::open(&a.b)?);
    let cfg = a.config();
    let c = compare(&ea, &eb, &cfg)?;
    print!(
        "{}",
        text::comparison(&c, &cfg, [a.a.as_path(), a.b.as_path()])
    );
    if let Some(dir) = &a.plots {
        let files = charts::write_all(&[charts::replication(&c)], dir)?;
        println!("wrote {} files to {}", files.len(), dir.display());
    }
    if let Some(path) = &a.json {
        json::write_value(&c, path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

//! The bundled corpora load, with the sizes their README states.

use cfmem::bundled;
use cfmem::engine::{Corpus, LoadConfig};

#[test]
fn bundled_corpora_load_with_their_stated_sizes() {
    for (path, n) in [
        (bundled::DEVIL_PATH, 999),
        (bundled::JARGON_PATH, 2_307),
        (bundled::WORDNET_PATH, 10_000),
    ] {
        let c = Corpus::load(path, &LoadConfig::default()).unwrap();
        assert_eq!(c.len(), n, "{path}");
    }
    assert_eq!(bundled::quickstart_corpus().unwrap().len(), 152);
}

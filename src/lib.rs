//! cfmem

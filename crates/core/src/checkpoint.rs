//! Model weights on disk as safetensors (through candle-nn's `VarMap` and
//! `VarBuilder`): one model of an ensemble saved, and the weights every
//! model of a new ensemble starts from (fine-tuning a pretrained model).
//! Tensors are named as [`Gpt::params`] names them (`wte`, `wpe`,
//! `h.N.attn.w_qkv`, …, `ln_f.g`), f32, without the ensemble axis.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::error::{Error, Result};
use crate::model::Gpt;

/// Weights read from a safetensors file.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    tensors: HashMap<String, Tensor>,
    fingerprint: String,
}

impl Checkpoint {
    /// Read `path` (the whole file; its blake3 is the checkpoint's
    /// fingerprint).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file; [`Error::Config`] when it is not
    /// safetensors.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Weights from the bytes of a safetensors file.
    ///
    /// # Errors
    /// [`Error::Config`] when they are not safetensors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| Error::Config(format!("not a safetensors file: {e}")))?;
        Ok(Self {
            tensors,
            fingerprint: blake3::hash(bytes).to_hex().to_string(),
        })
    }

    /// blake3 of the file.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }

    /// The weights as a `VarBuilder` (f32, CPU), for [`Gpt::from_weights`].
    pub fn weights(&self) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.tensors.clone(), DType::F32, &Device::Cpu)
    }

    /// Save model `k` of `model` to `path` (f32; written to a temporary
    /// file and renamed, so that a reader never sees half a file).
    ///
    /// # Errors
    /// [`Error::Config`] for `k` out of range; I/O and candle errors.
    pub fn save(model: &Gpt, k: usize, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if k >= model.k() {
            return Err(Error::Config(format!(
                "model {k} of an ensemble of {}",
                model.k()
            )));
        }
        let map = VarMap::new();
        {
            let mut data = map
                .data()
                .lock()
                .map_err(|_| Error::Config("weights map poisoned".into()))?;
            for p in model.params() {
                let t = p
                    .var
                    .as_tensor()
                    .get(k)?
                    .to_dtype(DType::F32)?
                    .to_device(&Device::Cpu)?;
                data.insert(p.name.clone(), Var::from_tensor(&t)?);
            }
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        map.save(&tmp)?;
        std::fs::rename(&tmp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

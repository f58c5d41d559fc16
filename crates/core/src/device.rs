//! Device selection.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceChoice {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA device 0 (needs the `cuda` feature).
    Cuda,
    /// CUDA if compiled in and present, else the CPU.
    Auto,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            o => Err(Error::Parse {
                what: "device",
                input: o.to_string(),
                expected: "cpu, cuda or auto",
            }),
        }
    }
}

/// The candle device for a choice.
///
/// # Errors
/// [`Error::Cuda`] when CUDA is asked for and unavailable.
pub fn select_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => Device::new_cuda(0).map_err(Error::Cuda),
        DeviceChoice::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
    }
}

/// TF32 matrix products on CUDA (`on`), or full f32 (the default): tensors,
/// weights and the optimizer stay f32; each product rounds its inputs to
/// TF32's 10-bit mantissa on the tensor cores (≈ 7× the f32 peak on an
/// H100). Process-wide; no effect on the CPU.
pub fn set_tf32(on: bool) {
    candle_core::cuda::set_gemm_reduced_precision_f32(on);
}

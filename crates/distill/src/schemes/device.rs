//! Picking the device for a [`Backend`].

use burn::prelude::*;

use crate::config::Backend;
use crate::error::{DistillError, Result};

/// The autodiff device of `backend`, or an error naming the cargo feature it needs.
pub fn training_device(backend: Backend) -> Result<Device> {
    let device = match backend {
        Backend::Flex => Device::flex(),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Device::cuda(0),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::default()),
        #[allow(unreachable_patterns)]
        other => {
            let feature = format!("{other:?}").to_lowercase();
            return Err(DistillError::Unsupported(format!(
                "backend = \"{feature}\" needs a build with it: cargo run --release --features {feature} -- ..."
            )));
        }
    };
    Ok(device.autodiff())
}

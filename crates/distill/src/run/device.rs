//! Picking the device for a [`Backend`].

use burn::prelude::*;

use crate::config::Backend;
use crate::error::{DistillError, Result};

/// The autodiff device of `backend`, or an error naming the cargo feature it needs.
pub fn training_device(backend: Backend) -> Result<Device> {
    indexed_device(backend, 0)
}

/// The main device and the replica devices of a plan (`[distributed] devices`; the backend's
/// default device alone when there is none).
pub fn plan_devices(backend: Backend, devices: &[usize]) -> Result<(Device, Vec<Device>)> {
    match devices.split_first() {
        None => Ok((training_device(backend)?, Vec::new())),
        Some((first, rest)) => Ok((
            indexed_device(backend, *first)?,
            rest.iter()
                .map(|&i| indexed_device(backend, i))
                .collect::<Result<_>>()?,
        )),
    }
}

/// Device `index` of `backend`, with autodiff.
fn indexed_device(backend: Backend, index: usize) -> Result<Device> {
    let _ = index; // only the GPU backends number their devices
    let device = match backend {
        Backend::Flex => Device::flex(),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Device::cuda(index),
        #[cfg(feature = "cpu")]
        Backend::Cpu => Device::cpu(),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::default()),
        #[allow(unreachable_patterns)]
        other => {
            let feature = other.name();
            // cuda and cpu go through CubeCL's LLVM crate, which the setup script provides offline
            let setup = match other {
                Backend::Cuda => " (bash scripts/build-gpu.sh sets that build up offline)",
                Backend::Cpu => " (bash scripts/build-gpu.sh --cpu sets that build up offline)",
                _ => "",
            };
            return Err(DistillError::Unsupported(format!(
                "backend = \"{feature}\" needs a build with it: cargo run --release --features {feature} -- ...{setup}"
            )));
        }
    };
    Ok(device.autodiff())
}

/// Where CubeCL (the GPU backends' compiler) keeps compiled kernels by default: `target/environment`
/// of the outermost Cargo project above the working directory, else the user cache folder
/// (`$XDG_CACHE_HOME/cubecl` or `~/.cache/cubecl`). `None` for `flex`, which compiles nothing.
pub fn kernel_cache_dir(backend: Backend) -> Option<std::path::PathBuf> {
    if backend == Backend::Flex {
        return None;
    }
    let cwd = std::env::current_dir().ok();
    let project = cwd.as_deref().and_then(|d| {
        d.ancestors()
            .filter(|a| a.join("Cargo.toml").is_file())
            .last()
            .map(|root| root.join("target").join("environment"))
    });
    project.or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
            .map(|c| c.join("cubecl"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "cpu"))]
    #[test]
    fn a_backend_built_without_names_its_feature_and_setup() {
        let err = training_device(Backend::Cpu).unwrap_err().to_string();
        assert!(err.contains("--features cpu"), "{err}");
        assert!(err.contains("scripts/build-gpu.sh --cpu"), "{err}");
    }

    #[test]
    fn flex_needs_no_kernel_cache() {
        assert_eq!(kernel_cache_dir(Backend::Flex), None);
        assert!(kernel_cache_dir(Backend::Cpu).is_some());
    }
}

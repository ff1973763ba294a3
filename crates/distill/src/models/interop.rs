//! Weights in and out of PyTorch: import a state dict (`.pth`/`.pt`, or `.safetensors`) into a
//! zoo model, and export a model as safetensors under the names the import reads.
//!
//! burn-store does the work: its PyTorch and safetensors readers, its PyTorch adapters
//! (normalisation `weight`/`bias` ↔ `gamma`/`beta`, linear weights transposed) and its key
//! remapping. What is kept here is each architecture's key mapping (beside the model, e.g.
//! [`super::resnet::FROM_PYTORCH`]: RepDistiller's names), and the checks that make a partial
//! load an error: every tensor of the model must come from the file with its shape, and every
//! tensor of the file must be used (batch-norm `num_batches_tracked` counters excepted).
//!
//! An export writes each batch norm's `num_batches_tracked` (as 0), so that PyTorch's
//! `load_state_dict(strict=True)` accepts the file; `tools/gen_import_fixtures.py
//! --check-export` checks that round trip.

use std::collections::HashMap;
use std::path::Path;

use burn::store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};

use super::net::{ModelConfig, Net};
use crate::error::{DistillError, Result};

/// The file formats a role's weights can be imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A `torch.save`d state dict (`.pth`, `.pt`), also nested under one top-level key such as
    /// RepDistiller's `{"model": …}`.
    Pytorch,
    /// A safetensors file (`.safetensors`) of PyTorch-named tensors.
    Safetensors,
}

impl Format {
    /// The format of a file by its extension, or `None` for anything else (e.g. a checkpoint
    /// folder).
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "pth" | "pt" => Some(Format::Pytorch),
            "safetensors" => Some(Format::Safetensors),
            _ => None,
        }
    }
}

/// Regex rewrites of tensor names (pattern, replacement), applied in order.
pub type KeyMap = Vec<(String, String)>;

/// A [`KeyMap`] of literal pairs.
pub fn key_map(pairs: &[(&str, &str)]) -> KeyMap {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The rewrites from PyTorch names to the model's (import) and back (export), kept beside each
/// model: RepDistiller's names for the CIFAR ResNets, WRNs and VGGs, torchvision's for MobileNetV2, Hugging Face's BertModel for BERT; the other
/// models keep distill's own names in both directions.
fn key_maps(config: &ModelConfig) -> (KeyMap, KeyMap) {
    match config {
        c if c.is_resnet() => (
            key_map(super::resnet::FROM_PYTORCH),
            key_map(super::resnet::TO_PYTORCH),
        ),
        ModelConfig::Mobilenetv2 {} | ModelConfig::Mobilenetv2X025 {} => (
            super::mobilenet::from_pytorch(),
            super::mobilenet::to_pytorch(),
        ),
        ModelConfig::Bert { .. } => (super::bert::from_pytorch(), super::bert::to_pytorch()),
        ModelConfig::Shufflev2 {} => (
            super::shufflenet::from_pytorch(),
            super::shufflenet::to_pytorch(),
        ),
        ModelConfig::MobileHalf {} => (
            super::mobilenet::cifar_from_pytorch(),
            super::mobilenet::cifar_to_pytorch(),
        ),
        ModelConfig::Wrn161 {}
        | ModelConfig::Wrn162 {}
        | ModelConfig::Wrn401 {}
        | ModelConfig::Wrn402 {} => (super::wrn::from_pytorch(), super::wrn::to_pytorch()),
        ModelConfig::Vgg8 {}
        | ModelConfig::Vgg11 {}
        | ModelConfig::Vgg13 {}
        | ModelConfig::Vgg16 {}
        | ModelConfig::Vgg19 {} => (super::vgg::from_pytorch(), super::vgg::to_pytorch()),
        _ => (vec![], vec![]),
    }
}

fn remapper(pairs: &KeyMap) -> KeyRemapper {
    KeyRemapper::from_patterns(pairs.to_vec()).expect("the key maps are valid regular expressions")
}

fn fail(path: &Path, reason: String) -> DistillError {
    DistillError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    }
}

/// Tensors of a file that the model has no use for and that are not an error to find: the
/// counter PyTorch keeps beside each batch norm's statistics (Burn's has none), and a BERT
/// file's position-id buffer and `[CLS]` pooler (see [`super::bert::unused_by_encoder`]).
fn ignorable(config: &ModelConfig, name: &str) -> bool {
    name.ends_with(".num_batches_tracked")
        || (config.reads_pairs() && super::bert::unused_by_encoder(name))
}

/// Loads the weights of `file` into `net` (built from `config` for the data's geometry and
/// classes). Every tensor of `net` must be in the file with its shape, and every tensor of the
/// file must be used; otherwise the error lists the first few of each (with the shapes the
/// model expects) and `net` is not returned.
pub fn import_weights(net: Net, config: &ModelConfig, file: &Path) -> Result<Net> {
    let format = Format::of(file).ok_or_else(|| {
        fail(
            file,
            "not a .pth, .pt or .safetensors file (a distill checkpoint is a folder)".into(),
        )
    })?;
    if !file.is_file() {
        return Err(fail(file, "no such file".into()));
    }
    let (from, _) = key_maps(config);
    let expected: HashMap<String, Vec<usize>> = net
        .collect(None, None, true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    let try_load = |top: Option<&str>| -> Result<(Net, burn::store::ApplyResult)> {
        let mut net = net.clone();
        let result = match format {
            Format::Pytorch => {
                let mut store = PytorchStore::from_file(file)
                    // indices stay as the file has them: a file whose layer numbers have
                    // gaps does not fit a model without them (nothing is renumbered silently)
                    .map_indices_contiguous(false)
                    .remap(remapper(&from))
                    .allow_partial(true)
                    // mismatches come back in the result, to be listed below
                    .validate(false);
                if let Some(top) = top {
                    store = store.with_top_level_key(top);
                }
                net.load_from(&mut store)
                    .map_err(|e| fail(file, format!("cannot read as a PyTorch state dict: {e}")))?
            }
            Format::Safetensors => {
                let mut store = SafetensorsStore::from_file(file)
                    .with_from_adapter(PyTorchToBurnAdapter)
                    .skip_enum_variants(true)
                    .remap(remapper(&from))
                    .allow_partial(true)
                    .validate(false);
                net.load_from(&mut store)
                    .map_err(|e| fail(file, format!("cannot read as safetensors: {e}")))?
            }
        };
        Ok((net, result))
    };
    let (mut loaded, mut result) = try_load(None)?;
    // A training checkpoint ({"model": state_dict, "optimizer": …, "epoch": …}, as RepDistiller
    // saves it) nests the tensors under one key: the key under which most tensors fit wins.
    if result.applied.is_empty() && format == Format::Pytorch {
        let tops: std::collections::BTreeSet<String> = result
            .unused
            .iter()
            .filter_map(|n| n.split('.').next())
            .map(str::to_string)
            .collect();
        for top in tops {
            // a name's first segment that is no nested dictionary does not read: skip it
            let Ok((net, nested)) = try_load(Some(&top)) else {
                continue;
            };
            if nested.applied.len() > result.applied.len() {
                (loaded, result) = (net, nested);
            }
        }
    }
    let shape = |name: &str| {
        expected
            .get(name)
            .map_or(String::new(), |s| format!(" {s:?}"))
    };
    let first = |mut items: Vec<String>| {
        items.sort();
        let n = items.len();
        let mut shown: Vec<String> = items.into_iter().take(5).collect();
        if n > 5 {
            shown.push(format!("… {} more", n - 5));
        }
        shown.join(", ")
    };
    let missing: Vec<String> = result
        .missing
        .iter()
        .map(|(name, _)| format!("{name}{}", shape(name)))
        .collect();
    let unused: Vec<String> = result
        .unused
        .iter()
        .filter(|n| !ignorable(config, n))
        .cloned()
        .collect();
    let errors: Vec<String> = result
        .errors
        .iter()
        .map(|e| match e {
            burn::store::ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => format!(
                "{path}: the model expects {:?}, the file has {:?}",
                expected.to_vec(),
                found.to_vec()
            ),
            other => other.to_string(),
        })
        .collect();
    let mut problems = Vec::new();
    if !errors.is_empty() {
        problems.push(format!(
            "{} tensor(s) do not fit: {}",
            errors.len(),
            first(errors)
        ));
    }
    if !missing.is_empty() {
        problems.push(format!(
            "{} tensor(s) of the model are not in the file: {}",
            missing.len(),
            first(missing)
        ));
    }
    if !unused.is_empty() {
        problems.push(format!(
            "{} tensor(s) of the file have no place in the model: {}",
            unused.len(),
            first(unused)
        ));
    }
    if !problems.is_empty() {
        return Err(fail(
            file,
            format!(
                "does not fit model {} ({} tensors expected, names after mapping to distill's): {}; check that the section's model, the data's classes and input channels match the file's network",
                config.name(),
                expected.len(),
                problems.join("; ")
            ),
        ));
    }
    Ok(loaded)
}

/// The tensors of `net` as a safetensors file under PyTorch's names (the architecture's
/// reference names where it has them; see [`import_weights`]), with a zero
/// `num_batches_tracked` beside each batch norm so that PyTorch loads it strictly.
pub fn export_safetensors(net: &Net, config: &ModelConfig) -> Result<Vec<u8>> {
    let (_, to) = key_maps(config);
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .remap(remapper(&to))
        .metadata("exported_by", "distill")
        .metadata("model", config.name());
    let err = |e: &dyn std::fmt::Display| {
        fail(
            Path::new(config.name()),
            format!("exporting as safetensors: {e}"),
        )
    };
    net.save_into(&mut store).map_err(|e| err(&e))?;
    let bytes = store.get_bytes().map_err(|e| err(&e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| err(&e))?;
    let parsed = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| err(&e))?;
    let zero = 0i64.to_le_bytes();
    let mut tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = parsed.tensors();
    let counters: Vec<String> = tensors
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(".running_var"))
        .map(|base| format!("{base}.num_batches_tracked"))
        .collect();
    for name in counters {
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![], &zero)
            .map_err(|e| err(&e))?;
        tensors.push((name, view));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    safetensors::serialize(tensors, header.metadata().clone()).map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::max_diff;
    use burn::prelude::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/import")
            .join(name)
    }

    /// Logits of a fixture's inputs (`resnet8`, `mobilenetv2_x0_25`), and PyTorch's for them.
    fn logits_of(model: &str, net: &Net, dev: &Device) -> (Vec<f32>, Vec<f32>) {
        let fx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture(&format!("{model}.json"))).unwrap())
                .unwrap();
        let floats = |v: &serde_json::Value| -> Vec<f32> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        let x = Tensor::<4>::from_data(TensorData::new(floats(&fx["inputs"]), [2, 3, 32, 32]), dev);
        let got = net.forward(x).logits.into_data().iter::<f32>().collect();
        (got, floats(&fx["logits"]))
    }

    fn logits_and_reference(net: &Net, dev: &Device) -> (Vec<f32>, Vec<f32>) {
        logits_of("resnet8", net, dev)
    }

    fn resnet8(dev: &Device) -> (ModelConfig, Net) {
        let config = ModelConfig::named("resnet8").unwrap();
        let net = config.build([3, 32, 32], 10, dev).unwrap().valid();
        (config, net)
    }

    #[test]
    fn repdistiller_resnet8_imports_from_pth_and_safetensors_with_pytorch_logits() {
        let dev = Device::flex();
        for file in ["resnet8.pth", "resnet8-training.pth", "resnet8.safetensors"] {
            let (config, net) = resnet8(&dev);
            let net = import_weights(net, &config, &fixture(file)).unwrap();
            let (got, want) = logits_and_reference(&net, &dev);
            let d = max_diff(&got, &want);
            assert!(d <= 1e-4, "{file}: max |logit difference| {d}");
        }
    }

    #[test]
    fn repdistiller_wrn_vgg_mobile_half_and_shufflev2_import_with_pytorch_logits_and_export_back() {
        let dev = Device::flex();
        let tmp = tempfile::tempdir().unwrap();
        // the VGG-8 and ShuffleNet V2 fixtures are gzipped to keep them small: unpack them first
        let unpacked = |name: &str| {
            let path = tmp.path().join(format!("{name}.pth"));
            let mut raw = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(
                    std::fs::File::open(fixture(&format!("{name}.pth.gz"))).unwrap(),
                ),
                &mut raw,
            )
            .unwrap();
            std::fs::write(&path, raw).unwrap();
            path
        };
        for (model, file) in [
            ("wrn_16_2", fixture("wrn_16_2.pth")),
            ("vgg8", unpacked("vgg8")),
            ("mobile_half", fixture("mobile_half.pth")),
            ("shufflev2", unpacked("shufflev2")),
        ] {
            let config = ModelConfig::named(model).unwrap();
            let net = config.build([3, 32, 32], 10, &dev).unwrap().valid();
            let net = import_weights(net, &config, &file).unwrap();
            let (got, want) = logits_of(model, &net, &dev);
            let d = max_diff(&got, &want);
            assert!(d <= 1e-4, "{model}: max |logit difference| {d}");
            assert!(
                want.iter().any(|v| v.abs() > 0.1),
                "{model}: trivial logits"
            );
            // exported under PyTorch's names and imported again: the same logits, bit for bit
            let out = tmp.path().join(format!("{model}.safetensors"));
            std::fs::write(&out, export_safetensors(&net, &config).unwrap()).unwrap();
            let fresh = config.build([3, 32, 32], 10, &dev).unwrap().valid();
            let back = import_weights(fresh, &config, &out).unwrap();
            assert_eq!(logits_of(model, &back, &dev).0, got, "{model}");
        }
    }

    #[test]
    fn torchvision_mobilenetv2_imports_from_a_legacy_pickle_with_pytorch_logits() {
        let dev = Device::flex();
        let config = ModelConfig::named("mobilenetv2_x0_25").unwrap();
        let net = config.build([3, 32, 32], 10, &dev).unwrap().valid();
        let net = import_weights(net, &config, &fixture("mobilenetv2_x0_25.pth")).unwrap();
        let (got, want) = logits_of("mobilenetv2_x0_25", &net, &dev);
        let d = max_diff(&got, &want);
        assert!(d <= 1e-4, "max |logit difference| {d}");
        // and back out under torchvision's names, bit-exact through a second import
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("m.safetensors");
        std::fs::write(&out, export_safetensors(&net, &config).unwrap()).unwrap();
        let fresh = config.build([3, 32, 32], 10, &dev).unwrap().valid();
        let back = import_weights(fresh, &config, &out).unwrap();
        assert_eq!(logits_of("mobilenetv2_x0_25", &back, &dev).0, got);
    }

    #[test]
    fn export_writes_pytorch_names_and_shapes_and_reads_back_losslessly() {
        let dev = Device::flex();
        let keys: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture("keys.json")).unwrap()).unwrap();
        // every depth and width of the zoo exports exactly the state dict PyTorch's model has
        for (name, want) in keys.as_object().unwrap() {
            let config = ModelConfig::named(name).unwrap();
            let net = config.build([3, 32, 32], 10, &dev).unwrap();
            let bytes = export_safetensors(&net, &config).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let mut got: Vec<(String, Vec<usize>)> = st
                .tensors()
                .into_iter()
                .map(|(n, v)| (n, v.shape().to_vec()))
                .collect();
            got.sort();
            let mut want: Vec<(String, Vec<usize>)> = want
                .as_object()
                .unwrap()
                .iter()
                .map(|(n, s)| {
                    let shape = s.as_array().unwrap();
                    (
                        n.clone(),
                        shape.iter().map(|d| d.as_u64().unwrap() as usize).collect(),
                    )
                })
                .collect();
            want.sort();
            assert_eq!(got, want, "{name}");
        }
        // imported, exported and imported again: the same logits, bit for bit
        let (config, net) = resnet8(&dev);
        let net = import_weights(net, &config, &fixture("resnet8.safetensors")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("model.safetensors");
        std::fs::write(&out, export_safetensors(&net, &config).unwrap()).unwrap();
        let (_, fresh) = resnet8(&dev);
        let back = import_weights(fresh, &config, &out).unwrap();
        assert_eq!(
            logits_and_reference(&back, &dev).0,
            logits_and_reference(&net, &dev).0
        );
        // a model without reference names round-trips under distill's own
        let mlp = ModelConfig::named("mlp").unwrap();
        let net = mlp.build([1, 4, 4], 3, &dev).unwrap();
        let out = tmp.path().join("mlp.safetensors");
        std::fs::write(&out, export_safetensors(&net, &mlp).unwrap()).unwrap();
        let back = import_weights(mlp.build([1, 4, 4], 3, &dev).unwrap(), &mlp, &out).unwrap();
        let x = Tensor::<4>::ones([2, 1, 4, 4], &dev);
        assert_eq!(
            back.forward(x.clone()).logits.into_data(),
            net.forward(x).logits.into_data()
        );
    }

    #[test]
    fn a_file_that_does_not_fit_is_an_error_listing_what_differs() {
        let dev = Device::flex();
        // 100 classes instead of the file's 10: the head's shapes differ
        let config = ModelConfig::named("resnet8").unwrap();
        let net = config.build([3, 32, 32], 100, &dev).unwrap();
        let e = import_weights(net, &config, &fixture("resnet8.pth"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("do not fit")
                && e.contains("fc.weight: the model expects [64, 100], the file has [64, 10]"),
            "{e}"
        );
        // a deeper model: its extra blocks are missing from the file, with their shapes
        let config = ModelConfig::named("resnet14").unwrap();
        let net = config.build([3, 32, 32], 10, &dev).unwrap();
        let e = import_weights(net, &config, &fixture("resnet8.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not in the file") && e.contains("stages.0.1.bn1.beta [16]"),
            "{e}"
        );
        // another architecture: the file's tensors have no place in it
        let config = ModelConfig::named("mlp").unwrap();
        let net = config.build([3, 32, 32], 10, &dev).unwrap();
        let e = import_weights(net, &config, &fixture("resnet8.pth"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no place in the model")
                && e.contains("conv1.weight")
                && e.contains("head.weight [256, 10]"),
            "{e}"
        );
        // not a state dict at all, and a folder
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk.pth");
        std::fs::write(&junk, b"not a pickle").unwrap();
        let (config, net) = resnet8(&dev);
        let e = import_weights(net.clone(), &config, &junk)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read as a PyTorch state dict"), "{e}");
        let e = import_weights(net, &config, tmp.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a .pth"), "{e}");
    }
}

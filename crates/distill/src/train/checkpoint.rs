//! Crash-safe files: every file is written to a temporary name and renamed into place, and a
//! checkpoint folder is swapped in whole, so a crash never leaves a half-written one.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use burn::tensor::Device;

use crate::error::{DistillError, Result};
use crate::models::{ModelConfig, Net};

/// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DistillError::io("creating folder", dir, e))?;
    let tmp = tmp_name(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| DistillError::io("writing", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| DistillError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DistillError::io("renaming into place", path, e))
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Serialises a module's parameters (Burn's burnpack format).
pub fn module_bytes<M: Module>(module: &M, path: &Path) -> Result<Vec<u8>> {
    let bytes =
        module
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| DistillError::Checkpoint {
                path: path.to_path_buf(),
                reason: format!("serialising: {e}"),
            })?;
    Ok(bytes.to_vec())
}

/// Loads parameters saved by [`module_bytes`] into `module` (which fixes the architecture).
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    let raw = std::fs::read(path).map_err(|e| DistillError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("cannot read: {e}"),
    })?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(raw)).map_err(|e| {
        DistillError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("corrupt or not a burnpack file: {e}"),
        }
    })?;
    module
        .try_load_record(record)
        .map_err(|e| DistillError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("does not fit the model described next to it: {e}"),
        })
}

/// Replaces folder `dst` by a freshly written one: files go to `dst.tmp`, then `dst` is moved to
/// `dst.old`, `dst.tmp` to `dst`, and `dst.old` removed. [`resolve_dir`] recovers from a crash
/// between the two renames.
pub fn write_dir(dst: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let tmp = dst.with_extension("tmp");
    let old = dst.with_extension("old");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| DistillError::io("creating", &tmp, e))?;
    for (name, bytes) in files {
        write_atomic(&tmp.join(name), bytes)?;
    }
    let _ = std::fs::remove_dir_all(&old);
    if dst.exists() {
        std::fs::rename(dst, &old).map_err(|e| DistillError::io("moving aside", dst, e))?;
    }
    std::fs::rename(&tmp, dst).map_err(|e| DistillError::io("renaming into place", &tmp, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The folder to read: `dst`, or `dst.old` if a crash happened between the swaps.
pub fn resolve_dir(dst: &Path) -> Option<PathBuf> {
    if dst.is_dir() {
        return Some(dst.to_path_buf());
    }
    let old = dst.with_extension("old");
    old.is_dir().then_some(old)
}

/// Saves a model checkpoint folder: `model.bpk` (weights) and `model.json` (architecture,
/// classes and input geometry) — everything `distill eval` needs; a language model with a BPE
/// tokenizer also gets it as `tokenizer.json` (Hugging Face's format) beside them.
pub fn model_files(
    net: &Net,
    meta: &ModelMeta,
    dir: &Path,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut files = vec![("model.bpk", module_bytes(net, &dir.join("model.bpk"))?)];
    files.extend(meta_files(meta));
    Ok(files)
}

/// The files that describe a model beside its weights: `model.json`, and `tokenizer.json` for a
/// language model with a BPE tokenizer.
fn meta_files(meta: &ModelMeta) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![(
        "model.json",
        serde_json::to_vec_pretty(meta).expect("meta serialises"),
    )];
    if let Some(crate::data::text::Tokenizer::Bpe(bpe)) = &meta.tokenizer {
        files.push(("tokenizer.json", bpe.json().as_bytes().to_vec()));
    }
    files
}

/// What is stored next to a model's weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    /// Architecture.
    pub config: ModelConfig,
    /// Geometry `[channels, height, width]` of the data's samples.
    pub input: [usize; 3],
    /// The view of each sample the model reads (its input is `view.geometry(input)`).
    #[serde(default, skip_serializing_if = "crate::data::View::is_source")]
    pub view: crate::data::View,
    /// Number of classes.
    pub classes: usize,
    /// Normalisation the model was trained with.
    pub normalization: crate::data::Normalization,
    /// The tokenizer of the text a language model was trained on (what `distill generate`
    /// encodes prompts and decodes samples with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<crate::data::text::Tokenizer>,
}

/// Loads a model checkpoint folder written by [`model_files`].
pub fn load_model_dir(dir: &Path, device: &Device) -> Result<(Net, ModelMeta)> {
    let (dir, meta) = read_model_meta(dir)?;
    let net = meta
        .config
        .build(meta.view.geometry(meta.input), meta.classes, device)?;
    let net = load_module(net, &dir.join("model.bpk"))?;
    Ok((net, meta))
}

/// The folder a model checkpoint resolves to (see [`resolve_dir`]) and its `model.json`,
/// without reading the weights.
pub fn read_model_meta(dir: &Path) -> Result<(PathBuf, ModelMeta)> {
    let dir = resolve_dir(dir).ok_or_else(|| DistillError::Checkpoint {
        path: dir.to_path_buf(),
        reason: "no such checkpoint folder (expected a folder holding model.bpk and model.json, e.g. runs/NAME/teachers/TEACHER/best)".into(),
    })?;
    let meta_path = dir.join("model.json");
    let meta: ModelMeta = std::fs::read(&meta_path)
        .map_err(|e| DistillError::Checkpoint {
            path: meta_path.clone(),
            reason: format!("cannot read: {e}"),
        })
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| DistillError::Checkpoint {
                path: meta_path.clone(),
                reason: format!("corrupt: {e}"),
            })
        })?;
    Ok((dir, meta))
}

/// Refuses to write a model folder over anything but a model folder: `out` may be absent,
/// empty, or hold a `model.json` (an earlier import or export, replaced whole).
fn check_model_folder_target(out: &Path) -> Result<()> {
    if out.file_name().is_none() {
        return Err(DistillError::Checkpoint {
            path: out.to_path_buf(),
            reason: "is not a folder name (it ends in . or .., or is the root): name the folder to write, e.g. exported/".into(),
        });
    }
    let holds_other = out.exists()
        && !out.join("model.json").is_file()
        && std::fs::read_dir(out).map_or(true, |mut d| d.next().is_some());
    if holds_other {
        return Err(DistillError::Checkpoint {
            path: out.to_path_buf(),
            reason: "exists and is not a model folder (no model.json); it would be replaced: choose a new or empty folder".into(),
        });
    }
    Ok(())
}

/// Imports the weights of a PyTorch or safetensors `file` (see [`crate::models::interop`]) into
/// `meta.config` built for `meta.input` and `meta.classes`, and writes them as the checkpoint
/// folder `dir` (which `distill eval`, `[[teacher]] checkpoint` and `export` read).
pub fn import_checkpoint(file: &Path, meta: &ModelMeta, dir: &Path, device: &Device) -> Result<()> {
    if meta.input.contains(&0) || meta.classes == 0 {
        return Err(DistillError::Config(format!(
            "importing {}: input {:?} and classes {} must all be at least 1",
            file.display(),
            meta.input,
            meta.classes
        )));
    }
    check_model_folder_target(dir)?;
    let net = meta
        .config
        .build(meta.view.geometry(meta.input), meta.classes, device)?;
    let net = crate::models::interop::import_weights(net, &meta.config, file)?;
    write_dir(dir, &model_files(&net, meta, dir)?)
}

/// Writes the model of checkpoint folder `checkpoint` as folder `out` (replaced whole):
/// `model.safetensors` (PyTorch's names; see [`crate::models::interop::export_safetensors`])
/// beside a copy of its `model.json` (and `tokenizer.json`); returns the files written.
pub fn export_checkpoint(checkpoint: &Path, out: &Path, device: &Device) -> Result<Vec<PathBuf>> {
    check_model_folder_target(out)?;
    if out.join("model.bpk").exists() {
        return Err(DistillError::Checkpoint {
            path: out.to_path_buf(),
            reason: "holds a checkpoint (model.bpk) that the export would replace; export into a new folder".into(),
        });
    }
    let (net, meta) = load_model_dir(checkpoint, device)?;
    let mut files = vec![(
        "model.safetensors",
        crate::models::interop::export_safetensors(&net, &meta.config)?,
    )];
    files.extend(meta_files(&meta));
    write_dir(out, &files)?;
    Ok(files.iter().map(|(name, _)| out.join(name)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_dir_swap_keeps_one_complete_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("last");
        write_dir(&d, &[("a", b"1".to_vec())]).unwrap();
        write_dir(&d, &[("a", b"2".to_vec())]).unwrap();
        assert_eq!(std::fs::read(d.join("a")).unwrap(), b"2");
        // crash between the two renames: only last.old exists
        std::fs::rename(&d, d.with_extension("old")).unwrap();
        assert_eq!(resolve_dir(&d).unwrap(), d.with_extension("old"));
    }

    #[test]
    fn corrupt_checkpoint_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let dev = Device::flex();
        let net = ModelConfig::named("mlp")
            .unwrap()
            .build([1, 4, 4], 3, &dev)
            .unwrap();
        let meta = ModelMeta {
            config: ModelConfig::named("mlp").unwrap(),
            input: [1, 4, 4],
            view: crate::data::View::source(),
            classes: 3,
            normalization: crate::data::Normalization {
                mean: vec![0.0],
                std: vec![1.0],
                target_mean: vec![],
                target_std: vec![],
            },
            tokenizer: None,
        };
        let dir = tmp.path().join("best");
        write_dir(&dir, &model_files(&net, &meta, &dir).unwrap()).unwrap();
        let (back, m) = load_model_dir(&dir, &dev).unwrap();
        assert_eq!(m, meta);
        assert_eq!(back.num_params(), net.num_params());
        std::fs::write(dir.join("model.bpk"), b"garbage").unwrap();
        let err = load_model_dir(&dir, &dev).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        let err = load_model_dir(&tmp.path().join("nope"), &dev)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such checkpoint"), "{err}");
    }
}

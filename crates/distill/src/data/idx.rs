//! Reader for the IDX format of MNIST and Fashion-MNIST (raw or gzipped).
//!
//! Format (big-endian): two zero bytes, a type byte (`0x08` = unsigned byte, the only one used by
//! these datasets), a byte with the number of dimensions, then one `u32` per dimension, then the
//! data in row-major order.

use std::io::Read;
use std::path::Path;

use crate::error::{DistillError, Result};

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (e.g. `[n, 28, 28]` for images, `[n]` for labels).
    pub dims: Vec<usize>,
    /// The values in row-major order.
    pub data: Vec<u8>,
}

/// Reads an IDX file from disk, gunzipping it when it starts with the gzip magic bytes.
pub fn read_idx_file(path: &Path) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (run `scripts/fetch-data.sh` to install Fashion-MNIST, or set data.dir to the folder holding the IDX files)"
        } else {
            ""
        };
        DistillError::BadData {
            path: path.to_path_buf(),
            reason: format!("cannot read: {e}{hint}"),
        }
    })?;
    parse_idx(&bytes, path)
}

/// Parses IDX bytes (raw or gzipped); `origin` names the source in error messages.
pub fn parse_idx(bytes: &[u8], origin: &Path) -> Result<IdxArray> {
    let bad = |reason: String| DistillError::BadData {
        path: origin.to_path_buf(),
        reason,
    };
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("corrupt or truncated gzip stream: {e}")))?;
        raw = out;
        &raw[..]
    } else {
        bytes
    };
    if bytes.len() < 4 {
        return Err(bad(format!(
            "file is {} bytes long, too short for an IDX header (4 bytes)",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "wrong magic number: expected 0x0000 then a type byte, got {:#04x}{:02x}; is this an IDX file?",
            bytes[0], bytes[1]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "unsupported IDX element type {:#04x}: expected 0x08 (unsigned byte)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(bad("IDX header declares zero dimensions".into()));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad(format!(
            "truncated header: expected {header} bytes for {ndim} dimensions, got {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let got = bytes.len() - header;
    if got != expected {
        return Err(bad(format!(
            "truncated or padded data: dimensions {dims:?} need {expected} bytes, file has {got}"
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Encodes an unsigned-byte IDX array (used by tests and tools that write small data sets).
pub fn encode_idx(array: &IdxArray) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, array.dims.len() as u8];
    for &d in &array.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&array.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> IdxArray {
        IdxArray {
            dims: vec![2, 2, 3],
            data: (0..12).collect(),
        }
    }

    #[test]
    fn roundtrip_raw_and_gzip() {
        let a = sample();
        let raw = encode_idx(&a);
        assert_eq!(parse_idx(&raw, Path::new("x")).unwrap(), a);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(parse_idx(&gz, Path::new("x")).unwrap(), a);
    }

    #[test]
    fn truncated_data_is_rejected() {
        let mut raw = encode_idx(&sample());
        raw.pop();
        let err = parse_idx(&raw, Path::new("f.idx")).unwrap_err().to_string();
        assert!(err.contains("need 12 bytes, file has 11"), "{err}");
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let mut raw = encode_idx(&sample());
        raw[0] = 0x50;
        let err = parse_idx(&raw, Path::new("f.idx")).unwrap_err().to_string();
        assert!(err.contains("wrong magic"), "{err}");
    }

    #[test]
    fn corrupt_gzip_is_rejected() {
        let raw = encode_idx(&sample());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let mut gz = gz.finish().unwrap();
        gz.truncate(gz.len() / 2);
        let err = parse_idx(&gz, Path::new("f.gz")).unwrap_err().to_string();
        assert!(err.contains("gzip"), "{err}");
    }

    #[test]
    fn missing_file_names_the_fix() {
        let err = read_idx_file(Path::new("/nonexistent/train-images-idx3-ubyte.gz"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("fetch-data.sh"), "{err}");
    }
}

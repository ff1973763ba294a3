//! Training-time augmentation: random crop with zero padding and random horizontal flip.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Augmentation settings (torchvision's `RandomCrop(size, padding)` + `RandomHorizontalFlip()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Zero padding on each side before a random crop back to the original size; 0 disables it.
    #[serde(default)]
    pub crop_padding: usize,
    /// Flip each image left-right with probability ½.
    #[serde(default)]
    pub hflip: bool,
}

impl Augment {
    /// Whether any augmentation is enabled.
    pub fn is_enabled(&self) -> bool {
        self.crop_padding > 0 || self.hflip
    }

    /// Writes an augmented copy of `src` (`c × h × w`, unsigned bytes) into `dst` and returns
    /// the view's code: the crop offsets and the flip that produced it (what teacher caches key
    /// on; 0 is the unaugmented image only when augmentation is off).
    pub fn apply(
        &self,
        src: &[u8],
        dst: &mut [u8],
        c: usize,
        h: usize,
        w: usize,
        rng: &mut impl Rng,
    ) -> u32 {
        let p = self.crop_padding as i64;
        let (dy, dx) = if p > 0 {
            (rng.random_range(-p..=p), rng.random_range(-p..=p))
        } else {
            (0, 0)
        };
        let flip = self.hflip && rng.random_bool(0.5);
        for ch in 0..c {
            let plane = ch * h * w;
            for y in 0..h {
                let sy = y as i64 + dy;
                for x in 0..w {
                    let xx = if flip { w - 1 - x } else { x };
                    let sx = xx as i64 + dx;
                    dst[plane + y * w + x] = if sy >= 0 && sy < h as i64 && sx >= 0 && sx < w as i64
                    {
                        src[plane + sy as usize * w + sx as usize]
                    } else {
                        0
                    };
                }
            }
        }
        let side = 2 * p + 1;
        (((dy + p) * side + (dx + p)) * 2 + i64::from(flip)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn disabled_is_identity_and_flip_mirrors() {
        let src: Vec<u8> = (0..6).collect();
        let mut dst = vec![0; 6];
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0);
        Augment::default().apply(&src, &mut dst, 1, 2, 3, &mut rng);
        assert_eq!(dst, src);
        let flip = Augment {
            crop_padding: 0,
            hflip: true,
        };
        let mut seen_flip = false;
        for _ in 0..20 {
            flip.apply(&src, &mut dst, 1, 2, 3, &mut rng);
            if dst != src {
                assert_eq!(dst, vec![2, 1, 0, 5, 4, 3]);
                seen_flip = true;
            }
        }
        assert!(seen_flip);
    }

    #[test]
    fn crop_keeps_pixels_or_pads_with_zero() {
        let src: Vec<u8> = (1..=16).collect();
        let mut dst = vec![0; 16];
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let a = Augment {
            crop_padding: 1,
            hflip: false,
        };
        for _ in 0..20 {
            a.apply(&src, &mut dst, 1, 4, 4, &mut rng);
            assert!(dst.iter().all(|v| *v == 0 || src.contains(v)));
            assert!(dst.iter().filter(|v| **v != 0).count() >= 9);
        }
    }
}

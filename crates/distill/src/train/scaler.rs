//! Dynamic loss scaling for f16 training (Micikevicius et al., *Mixed Precision Training*,
//! ICLR 2018), with the defaults of PyTorch's `torch.amp.GradScaler`.
//!
//! f16 holds magnitudes down to 6·10⁻⁸ only, so small gradients of the activations vanish in
//! backward. The step multiplies the objective by the scale `S` before backward and divides
//! the f32 master gradients by `S` after it; if any gradient then is not finite (the scaled
//! backward overflowed f16's 65,504), the update is skipped and `S` halves. After
//! [`GROWTH_INTERVAL`] updates in a row without overflow `S` doubles. `S` starts at 2¹⁶.
//! bf16 has f32's range and needs none of this.

use serde::{Deserialize, Serialize};

/// The first scale (PyTorch's `init_scale`).
pub const INIT_SCALE: f64 = 65536.0;
/// Updates without overflow after which the scale doubles (PyTorch's `growth_interval`).
pub const GROWTH_INTERVAL: u64 = 2000;

/// The scale and how many updates in a row did not overflow; saved with the loop state, so a
/// resumed run scales as an uninterrupted one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The factor the objective is multiplied by before backward.
    pub scale: f64,
    /// Updates since the last overflow or growth.
    pub good_steps: u64,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: INIT_SCALE,
            good_steps: 0,
        }
    }
}

impl LossScaler {
    /// After a step: halve on overflow (the step skipped its update), double after
    /// [`GROWTH_INTERVAL`] clean updates (PyTorch's `backoff_factor` 0.5, `growth_factor` 2).
    pub fn update(&mut self, overflow: bool) {
        if overflow {
            self.scale *= 0.5;
            self.good_steps = 0;
        } else {
            self.good_steps += 1;
            if self.good_steps == GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_on_overflow_and_doubles_after_the_growth_interval() {
        let mut s = LossScaler::default();
        s.update(true);
        assert_eq!(
            s,
            LossScaler {
                scale: 32768.0,
                good_steps: 0
            }
        );
        for _ in 0..GROWTH_INTERVAL - 1 {
            s.update(false);
        }
        assert_eq!(s.scale, 32768.0);
        s.update(false);
        assert_eq!(
            s,
            LossScaler {
                scale: 65536.0,
                good_steps: 0
            }
        );
        s.update(false);
        s.update(true);
        assert_eq!(
            s,
            LossScaler {
                scale: 32768.0,
                good_steps: 0
            }
        );
    }
}

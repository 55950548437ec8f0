//! The fuzzing entry point (feature `std`): the `tdm_validate` cargo-fuzz target and the
//! deterministic corpus replay test both call [`validate_and_run`].

use crate::Model;
use std::vec;

/// Arenas above this are not allocated (validation still runs on every input).
pub const MAX_ARENA: usize = 1 << 20;

/// Validate `bytes`; when they form a valid model with a modest arena, run it on a few
/// constant inputs. Returns whether the model was valid. Must never panic, hang or abort.
pub fn validate_and_run(bytes: &[u8]) -> bool {
    let Ok(model) = Model::new(bytes) else { return false };
    if model.arena_size() <= MAX_ARENA {
        let mut arena = vec![0u8; model.arena_size()];
        let n = model.input().map(|t| t.len()).unwrap_or(0);
        for v in [0.0f32, 1e30, -3.5] {
            let input = vec![v; n];
            if model.set_input(&mut arena, &input).is_ok() {
                let _ = model.run(&mut arena);
                let _ = model.argmax(&arena);
            }
        }
    }
    true
}

//! From sizes known at run time to the const-generic instantiations compiled in.
//!
//! A host tool (the `tandem adapt` harness, the ROS 2 node, the MCU replay) learns the number
//! of peers, features and classes from the models it loads, while [`Cohort`](crate::Cohort) takes
//! them as const generics. `dispatch` (feature `dispatch`) maps the run-time sizes onto one of
//! a fixed set of instantiations, so snapshots made by any of these tools have the same shape
//! and load into each other. Features are zero-padded to the next capacity (the padded head
//! gives identical logits). The compiled-in sizes and [`feature_capacity`] are always here.

#[cfg(feature = "dispatch")]
use core::fmt;

/// Feature capacities compiled in: a peer's features are zero-padded to the next one.
pub const FEATURE_CAPACITIES: [usize; 6] = [8, 16, 32, 64, 128, 256];
/// Class counts compiled in: `2..=MAX_CLASSES`.
pub const MAX_CLASSES: usize = 16;
/// Peer counts compiled in: `1..=MAX_PEERS`.
pub const MAX_PEERS: usize = 2;

/// The smallest compiled-in feature capacity that holds `features` (none for 0 or too many).
pub fn feature_capacity(features: usize) -> Option<usize> {
    FEATURE_CAPACITIES.iter().copied().find(|&c| c >= features && features > 0)
}

/// A computation over one `(P, F, C)` instantiation: `P` peers, `F` feature capacity,
/// `C` classes.
#[cfg(feature = "dispatch")]
pub trait Shaped {
    type Out;
    fn call<const P: usize, const F: usize, const C: usize>(self) -> Self::Out;
}

/// Sizes with no compiled-in instantiation.
#[cfg(feature = "dispatch")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported {
    pub peers: usize,
    pub features: usize,
    pub classes: usize,
}

#[cfg(feature = "dispatch")]
impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { peers, features, classes } = *self;
        write!(f, "{peers} peers, {features} features, {classes} classes: supported are ")?;
        write!(
            f,
            "1..={MAX_PEERS} peers, 1..={} features and 2..={MAX_CLASSES} classes",
            FEATURE_CAPACITIES[FEATURE_CAPACITIES.len() - 1]
        )
    }
}

#[cfg(all(feature = "dispatch", feature = "std"))]
impl std::error::Error for Unsupported {}

/// Run `job` with `P = peers`, `F` = [`feature_capacity`]`(features)`, `C = classes`.
#[cfg(feature = "dispatch")]
pub fn dispatch<J: Shaped>(
    peers: usize,
    features: usize,
    classes: usize,
    job: J,
) -> Result<J::Out, Unsupported> {
    let unsupported = Unsupported { peers, features, classes };
    let f = feature_capacity(features).ok_or(unsupported)?;
    macro_rules! classes {
        ($p:literal, $f:literal) => {
            match classes {
                2 => Ok(job.call::<$p, $f, 2>()),
                3 => Ok(job.call::<$p, $f, 3>()),
                4 => Ok(job.call::<$p, $f, 4>()),
                5 => Ok(job.call::<$p, $f, 5>()),
                6 => Ok(job.call::<$p, $f, 6>()),
                7 => Ok(job.call::<$p, $f, 7>()),
                8 => Ok(job.call::<$p, $f, 8>()),
                9 => Ok(job.call::<$p, $f, 9>()),
                10 => Ok(job.call::<$p, $f, 10>()),
                11 => Ok(job.call::<$p, $f, 11>()),
                12 => Ok(job.call::<$p, $f, 12>()),
                13 => Ok(job.call::<$p, $f, 13>()),
                14 => Ok(job.call::<$p, $f, 14>()),
                15 => Ok(job.call::<$p, $f, 15>()),
                16 => Ok(job.call::<$p, $f, 16>()),
                _ => Err(unsupported),
            }
        };
    }
    macro_rules! features {
        ($p:literal) => {
            match f {
                8 => classes!($p, 8),
                16 => classes!($p, 16),
                32 => classes!($p, 32),
                64 => classes!($p, 64),
                128 => classes!($p, 128),
                _ => classes!($p, 256),
            }
        };
    }
    match peers {
        1 => features!(1),
        2 => features!(2),
        _ => Err(unsupported),
    }
}

#[cfg(all(test, feature = "dispatch"))]
mod tests {
    use super::*;

    /// Reports the instantiation it ran in.
    struct Sizes;
    impl Shaped for Sizes {
        type Out = (usize, usize, usize);
        fn call<const P: usize, const F: usize, const C: usize>(self) -> Self::Out {
            (P, F, C)
        }
    }

    #[test]
    fn picks_the_smallest_capacity_that_fits() {
        assert_eq!(dispatch(2, 32, 10, Sizes), Ok((2, 32, 10)));
        assert_eq!(dispatch(1, 33, 2, Sizes), Ok((1, 64, 2)));
        assert_eq!(dispatch(2, 1, 16, Sizes), Ok((2, 8, 16)));
        assert_eq!(dispatch(1, 256, 3, Sizes), Ok((1, 256, 3)));
    }

    #[test]
    fn refuses_sizes_outside_the_compiled_set() {
        for (p, f, c) in [(0, 8, 10), (3, 8, 10), (2, 0, 10), (2, 257, 10), (2, 8, 1), (2, 8, 17)] {
            assert_eq!(dispatch(p, f, c, Sizes), Err(Unsupported { peers: p, features: f, classes: c }));
        }
    }
}

//! A small stderr logger for the `tandem node` and `tandem fleet-merge` processes: Tandem's
//! own lines at `info` and above, the DDS stack's only at `error` (it is chatty).

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr {
    tag: &'static str,
    own: Level,
}

impl Log for Stderr {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        let own = m.target().starts_with("tandem");
        m.level() <= if own { self.own } else { Level::Error }
    }

    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("[{}] {:<5} {}", self.tag, r.level(), r.args());
        }
    }

    fn flush(&self) {}
}

/// Install the logger (once per process; later calls do nothing). `verbose` adds debug lines.
pub fn init(tag: &'static str, verbose: bool) {
    let own = if verbose { Level::Debug } else { Level::Info };
    if log::set_boxed_logger(Box::new(Stderr { tag, own })).is_ok() {
        log::set_max_level(LevelFilter::Debug);
    }
}

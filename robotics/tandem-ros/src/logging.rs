//! A small stderr logger for the `tandem node` and `tandem fleet-merge` processes: Tandem's
//! own lines at `info` and above, the DDS stack's only at `error` (it is chatty), less the
//! errors it reports where nothing went wrong ([`BENIGN_DDS_ERRORS`], shown with `--verbose`).

use log::{Level, LevelFilter, Log, Metadata, Record};

/// DDS stack errors that are not: `get_*_count` before the first match (the matched-endpoint
/// map of a publisher or subscription is only created by its first match), and at shutdown,
/// leaving a multicast group on an interface that never joined it (loopback, `EADDRNOTAVAIL`)
/// and removing a reader or writer whose event loop has already stopped.
pub const BENIGN_DDS_ERRORS: [&str; 4] =
    ["not known to node", "leave_multicast_group", "Cannot remove Writer", "Cannot remove Reader"];

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
        if !self.enabled(r.metadata()) {
            return;
        }
        let text = r.args().to_string();
        let own = r.target().starts_with("tandem");
        if !own && BENIGN_DDS_ERRORS.iter().any(|b| text.contains(b)) {
            if self.own >= Level::Debug {
                eprintln!("[{}] DEBUG (DDS, benign) {text}", self.tag);
            }
            return;
        }
        eprintln!("[{}] {:<5} {text}", self.tag, r.level());
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

//! Soak under faults (`tandem soak`, `scripts/soak`): two node processes on one loopback domain,
//! fed camera frames as fast as the soak can publish, with malformed, unreadable and oversized
//! frames and hostile merged states among them ([`feed`]), for a set time:
//!
//! - the **steady** node runs the whole time; its resident memory is sampled every second (it
//!   must stay flat: a leak shows as growth after the warm-up);
//! - the **crash** node saves its adapted state every few tens of milliseconds and is killed
//!   with SIGKILL at random moments (a power cut; some land during a save), then restarted;
//!   every few lives it runs on a store that refuses writes (a full disk). After each kill the
//!   state file must open (signed by the node, CRC and shape checked), must not be older than
//!   any state seen in it before, and the restarted node must restore exactly that state.
//!
//! A process that exits without being killed is a crash. The soak ends with one more life of
//! the crash node, which must restore the last committed state and stop cleanly on SIGTERM, as
//! must the steady node.

pub mod feed;
pub mod process;

use crate::node::NodeReport;
use crate::transport::{Transport, TransportError, TransportOptions};
use feed::{FeedCounts, Feeder, Frames};
use process::NodeProcess;
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tandem_runtime::trust::{Signer, Trust};

/// Why the soak could not run (not what it found: that is in [`SoakReport`]).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("starting `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("the nodes did not start (or subscribe to the camera topic within {0:?}); their log:\n{1}")]
    NotUp(Duration, String),
}

/// What to run and how hard.
#[derive(Clone)]
pub struct SoakPlan {
    pub duration: Duration,
    /// The command that starts a node (program, then arguments), without the options the soak
    /// adds: `--domain`, `--loopback`, `--name`, `--state`, `--save-every`, `--fleet-accept`.
    pub node_command: Vec<OsString>,
    /// Where the nodes' state files go.
    pub dir: PathBuf,
    pub domain: u16,
    pub frames: Frames,
    /// The trust the nodes' state files are opened under (the nodes' signing key).
    pub state_trust: Trust,
    /// Signs genuine merged states (the nodes trust it for merges); the foreign key forges.
    pub fleet: Signer,
    pub foreign: Signer,
    pub seed: u64,
    /// Time between the crash node's saves.
    pub save_every: Duration,
    /// The crash node is killed a random time within this range after it is up.
    pub life: (Duration, Duration),
    /// One life in this many runs on a full store.
    pub full_store_every: u32,
}

/// What the soak found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SoakReport {
    pub seconds: f64,
    pub feed: FeedCounts,
    /// Node processes that exited without being killed (must be 0), with what they said.
    pub crashes: u32,
    pub crash_details: Vec<String>,
    /// SIGKILLs of the crash node; those that found a save's temporary file (killed mid-save).
    pub kills: u32,
    pub kills_during_save: u32,
    /// Lives on a full store, and how many of them logged failed saves (the fault took).
    pub full_store_lives: u32,
    pub full_store_lives_with_failed_saves: u32,
    /// Restarts whose restored state was checked against the file; states lost (must be 0):
    /// a state file that does not open, one older than a state seen before, or a restart that
    /// did not restore it.
    pub restores_checked: u32,
    pub states_lost: u32,
    pub lost_details: Vec<String>,
    /// The steady node's resident memory (seconds since start, KiB), every second.
    pub rss_kib: Vec<(f64, u64)>,
    pub warmup_seconds: f64,
    pub rss_at_warmup_kib: u64,
    pub rss_peak_after_warmup_kib: u64,
    /// Peak after the warm-up over the value at its end, minus 1.
    pub rss_growth: f64,
    /// The steady node's report at SIGTERM, and the crash node's last life's.
    pub steady: Option<NodeReport>,
    pub crash_last_life: Option<NodeReport>,
}

impl SoakReport {
    /// The bars this run misses (empty: it passed). `max_rss_growth`: 0.10 for "within 10 %".
    pub fn failures(&self, max_rss_growth: f64) -> Vec<String> {
        let mut f = Vec::new();
        if self.crashes > 0 {
            f.push(format!("{} crashes", self.crashes));
        }
        if self.states_lost > 0 {
            f.push(format!("{} states lost", self.states_lost));
        }
        if self.restores_checked == 0 {
            f.push("no restart was checked (run longer)".into());
        }
        if self.rss_growth > max_rss_growth {
            f.push(format!(
                "resident memory grew {:.1} % after the warm-up (bar {:.0} %)",
                100.0 * self.rss_growth,
                100.0 * max_rss_growth
            ));
        }
        match &self.steady {
            None => f.push("the steady node gave no report at SIGTERM".into()),
            Some(r) => {
                if r.predicted == 0 || r.dropped_malformed == 0 || r.dropped_encoding == 0 {
                    f.push(format!(
                        "the steady node predicted {} and refused {} malformed and {} unreadable frames: \
                         the feed did not reach it",
                        r.predicted, r.dropped_malformed, r.dropped_encoding
                    ));
                }
                if u64::from(r.fleet_loaded) > self.feed.merged_genuine {
                    f.push(format!(
                        "the steady node loaded {} merged states, only {} were genuine",
                        r.fleet_loaded, self.feed.merged_genuine
                    ));
                }
            }
        }
        if self.crash_last_life.is_none() {
            f.push("the crash node's last life gave no report at SIGTERM".into());
        }
        f
    }
}

/// A small deterministic generator for kill times.
struct Rng(u64);

impl Rng {
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(if span == 0 { 0 } else { self.0 % span })
    }
}

/// The state file's sequence number, after opening it as a node would (signature, header).
fn committed_seq(path: &Path, trust: &Trust) -> Result<Option<u32>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let body = tandem_adapt::snapshot::open_signed(&bytes, &trust.keys, trust.unsigned)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let header = tandem_adapt::snapshot::peek_header(body).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(header.seq))
}

/// The `seq N` of a node's "restored the adapted state from … (seq N, …)" line.
fn restored_seq(line: &str) -> Option<u32> {
    let rest = &line[line.find("restored the adapted state")?..];
    let digits: String = rest[rest.find("(seq ")? + 5..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// How a life of the crash node ended.
#[derive(Debug, Clone, Copy)]
enum Ended {
    Killed,
    Crashed,
}

/// Where the crash node is in its life.
enum Phase {
    /// Started; `expect` is the state it must restore.
    Starting {
        expect: Option<u32>,
        restored: Option<u32>,
    },
    Up {
        kill_at: Instant,
    },
}

/// The crash node's lives.
struct CrashNode {
    process: NodeProcess,
    phase: Phase,
    life: u32,
    full_store: bool,
    saw_failed_save: bool,
    state: PathBuf,
    /// The newest sequence number seen in the state file so far.
    newest_seen: Option<u32>,
}

struct Soak<'a> {
    plan: &'a SoakPlan,
    report: SoakReport,
    rng: Rng,
    start: Instant,
}

impl Soak<'_> {
    fn command(&self, name: &str, state: &Path, save_every: Duration) -> Vec<OsString> {
        let mut c = self.plan.node_command.clone();
        for a in [
            "--domain".into(),
            self.plan.domain.to_string(),
            "--loopback".into(),
            "--name".into(),
            name.into(),
            "--save-every".into(),
            format!("{}", save_every.as_secs_f64()),
            "--fleet-accept".into(),
        ] {
            c.push(a.into());
        }
        c.push("--state".into());
        c.push(state.into());
        c
    }

    fn spawn(&self, command: &[OsString], store_full: bool) -> Result<NodeProcess, SoakError> {
        NodeProcess::spawn(command, store_full).map_err(|source| SoakError::Spawn {
            command: command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            source,
        })
    }

    fn crash(&mut self, who: &str, p: &mut NodeProcess, status: std::process::ExitStatus) {
        self.report.crashes += 1;
        let tail: Vec<String> = p.tail.iter().cloned().collect();
        self.report.crash_details.push(format!(
            "{who} exited by itself ({status}) at {:.1} s; last lines:\n{}",
            self.start.elapsed().as_secs_f64(),
            tail.join("\n")
        ));
    }

    fn lost(&mut self, what: String) {
        self.report.states_lost += 1;
        self.report.lost_details.push(format!("at {:.1} s: {what}", self.start.elapsed().as_secs_f64()));
    }

    fn crash_command(&self, node: &CrashNode) -> Vec<OsString> {
        self.command("soak_crash", &node.state, self.plan.save_every)
    }

    /// Follow the crash node: check its restore, kill it when its time comes, check the file.
    fn step_crash(&mut self, node: &mut CrashNode) -> Result<(), SoakError> {
        let lines = node.process.poll_lines();
        if let Some(status) = node.process.exited() {
            self.crash("the crash node", &mut node.process, status);
            let full = self.full_store_life(node.life + 1);
            return self.restart(node, Ended::Crashed, full);
        }
        match &mut node.phase {
            Phase::Starting { expect, restored } => {
                let expect = *expect;
                for l in &lines {
                    if let Some(seq) = restored_seq(l) {
                        *restored = Some(seq);
                    }
                }
                let restored = *restored;
                if lines.iter().any(|l| l.contains(" up:")) {
                    self.report.restores_checked += u32::from(expect.is_some());
                    if restored != expect {
                        self.lost(format!(
                            "life {} restored seq {restored:?}, the file held seq {expect:?}",
                            node.life
                        ));
                    }
                    let (lo, hi) = self.plan.life;
                    node.phase = Phase::Up { kill_at: Instant::now() + self.rng.between(lo, hi) };
                }
            }
            Phase::Up { kill_at } => {
                if node.full_store && lines.iter().any(|l| l.contains("periodic save")) {
                    node.saw_failed_save = true;
                }
                match committed_seq(&node.state, &self.plan.state_trust) {
                    Ok(seq) => node.newest_seen = node.newest_seen.max(seq),
                    Err(e) => self.lost(format!("while running: {e}")),
                }
                if Instant::now() >= *kill_at {
                    self.kill_and_check(node)?;
                    let full = self.full_store_life(node.life + 1);
                    return self.restart(node, Ended::Killed, full);
                }
            }
        }
        Ok(())
    }

    /// SIGKILL the crash node during a save (when a save's temporary file appears within half
    /// a second, at a random point of the next 2 ms) and check what it left.
    fn kill_and_check(&mut self, node: &mut CrashNode) -> Result<(), SoakError> {
        let temp = |suffix: &str| {
            let name = node.state.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            node.state.with_file_name(format!("{name}{suffix}"))
        };
        let temps = [temp(".tmp"), temp(".good.tmp")];
        let saving = || temps.iter().any(|t| t.exists());
        let give_up = Instant::now() + Duration::from_millis(500);
        while !saving() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_micros(50));
        }
        std::thread::sleep(self.rng.between(Duration::ZERO, Duration::from_millis(2)));
        if node.process.kill().is_none() {
            if let Some(status) = node.process.exited() {
                self.crash("the crash node", &mut node.process, status);
            }
        }
        self.report.kills += 1;
        if saving() {
            self.report.kills_during_save += 1;
        }
        if node.full_store {
            self.report.full_store_lives += 1;
            self.report.full_store_lives_with_failed_saves += u32::from(node.saw_failed_save);
        }
        Ok(())
    }

    /// Whether the crash node's life number `life` runs on a full store.
    fn full_store_life(&self, life: u32) -> bool {
        let every = self.plan.full_store_every;
        every > 1 && life % every == every - 1
    }

    /// Start the crash node's next life (on a full store or not), expecting it to restore what
    /// the file holds now.
    fn restart(&mut self, node: &mut CrashNode, ended: Ended, full_store: bool) -> Result<(), SoakError> {
        let expect = match committed_seq(&node.state, &self.plan.state_trust) {
            Ok(seq) => {
                if seq < node.newest_seen {
                    self.lost(format!(
                        "after life {}: the file holds seq {seq:?}, seq {:?} was seen before",
                        node.life, node.newest_seen
                    ));
                }
                node.newest_seen = node.newest_seen.max(seq);
                seq
            }
            Err(e) => {
                self.lost(format!("after life {} ({ended:?}): {e}", node.life));
                None
            }
        };
        node.life += 1;
        node.full_store = full_store;
        node.saw_failed_save = false;
        node.process = self.spawn(&self.crash_command(node), node.full_store)?;
        node.phase = Phase::Starting { expect, restored: None };
        Ok(())
    }
}

/// Run the soak; the report says what it found (see [`SoakReport::failures`]).
pub fn run(plan: &SoakPlan) -> Result<SoakReport, SoakError> {
    let mut transport = Transport::open(&TransportOptions {
        domain_id: plan.domain,
        loopback_only: true,
        namespace: "/".into(),
        name: "soak_feeder".into(),
    })?;
    let defaults = crate::config::NodeConfig::default();
    let mut feeder = Feeder::new(
        &mut transport,
        &defaults.input.topic,
        &defaults.fleet.merged_topic,
        plan.frames.clone(),
        plan.fleet.clone(),
        plan.foreign.clone(),
    )?;
    let mut soak =
        Soak { plan, report: SoakReport::default(), rng: Rng(plan.seed | 1), start: Instant::now() };
    let steady_state = plan.dir.join("steady.snap");
    // Each soak starts from the source: states of an earlier soak in the same folder go.
    for name in ["steady.snap", "steady.snap.good", "crash.snap", "crash.snap.good"] {
        let _ = std::fs::remove_file(plan.dir.join(name));
    }
    let steady_command = soak.command("soak_steady", &steady_state, Duration::from_secs(1));
    let mut steady = soak.spawn(&steady_command, false)?;
    let mut crash = CrashNode {
        process: soak
            .spawn(&soak.command("soak_crash", &plan.dir.join("crash.snap"), plan.save_every), false)?,
        phase: Phase::Starting { expect: None, restored: None },
        life: 0,
        full_store: false,
        saw_failed_save: false,
        state: plan.dir.join("crash.snap"),
        newest_seen: None,
    };
    let up_timeout = Duration::from_secs(120);
    let up = crate::transport::wait_until(up_timeout, || {
        steady.exited().is_some()
            || crash.process.exited().is_some()
            || feeder.camera().get_subscription_count(transport.node()) >= 2
    });
    if !up || steady.exited().is_some() || crash.process.exited().is_some() {
        let mut tails: Vec<String> = steady.poll_lines();
        tails.extend(crash.process.poll_lines());
        return Err(SoakError::NotUp(up_timeout, tails.join("\n")));
    }
    soak.start = Instant::now();
    let warmup = Duration::from_secs(60).min(plan.duration / 4);
    soak.report.warmup_seconds = warmup.as_secs_f64();
    let mut next_second = Instant::now();
    let mut genuine: Option<Vec<u8>> = None;
    while soak.start.elapsed() < plan.duration {
        feeder.tick(64, genuine.as_deref());
        steady.poll_lines();
        if let Some(status) = steady.exited() {
            soak.crash("the steady node", &mut steady, status);
            steady = soak.spawn(&steady_command, false)?;
        }
        soak.step_crash(&mut crash)?;
        if Instant::now() >= next_second {
            next_second += Duration::from_secs(1);
            if let Some(kib) = steady.rss_kib() {
                soak.report.rss_kib.push((soak.start.elapsed().as_secs_f64(), kib));
            }
            // The merged states carry the steady node's latest adapted state.
            if let Ok(bytes) = std::fs::read(&steady_state) {
                if let Ok(body) = tandem_adapt::snapshot::open_signed(
                    &bytes,
                    &plan.state_trust.keys,
                    plan.state_trust.unsigned,
                ) {
                    genuine = Some(body.to_vec());
                }
            }
        }
    }
    soak.report.seconds = soak.start.elapsed().as_secs_f64();
    soak.report.feed = feeder.counts.clone();
    finish(&mut soak, steady, crash)?;
    let r = &mut soak.report;
    let at_warmup = r.rss_kib.iter().find(|(t, _)| *t >= warmup.as_secs_f64());
    r.rss_at_warmup_kib = at_warmup.map_or(0, |s| s.1);
    r.rss_peak_after_warmup_kib =
        r.rss_kib.iter().filter(|(t, _)| *t >= warmup.as_secs_f64()).map(|s| s.1).max().unwrap_or(0);
    r.rss_growth = if r.rss_at_warmup_kib > 0 {
        r.rss_peak_after_warmup_kib as f64 / r.rss_at_warmup_kib as f64 - 1.0
    } else {
        0.0
    };
    Ok(soak.report)
}

/// The end: the crash node is killed one last time and started once more on a sound store,
/// where it must restore the last committed state; then both nodes stop on SIGTERM.
fn finish(soak: &mut Soak, mut steady: NodeProcess, mut crash: CrashNode) -> Result<(), SoakError> {
    if matches!(crash.phase, Phase::Up { .. }) {
        soak.kill_and_check(&mut crash)?;
    } else {
        crash.process.kill();
    }
    soak.restart(&mut crash, Ended::Killed, false)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while matches!(crash.phase, Phase::Starting { .. }) && Instant::now() < deadline {
        soak.step_crash(&mut crash)?;
        steady.poll_lines();
        std::thread::sleep(Duration::from_millis(10));
    }
    let stop = |p: NodeProcess, who: &str, soak: &mut Soak| -> Option<NodeReport> {
        let (status, stdout) = p.terminate(Duration::from_secs(60));
        match status {
            Some(s) if s.success() => serde_json::from_str(stdout.trim()).ok(),
            other => {
                soak.report.crashes += 1;
                soak.report.crash_details.push(format!("{who}: no clean exit on SIGTERM ({other:?})"));
                None
            }
        }
    };
    soak.report.steady = stop(steady, "the steady node", soak);
    soak.report.crash_last_life = stop(crash.process, "the crash node", soak);
    Ok(())
}

//! `tandem soak`: run `tandem node` processes with the user's peers under faults for a while
//! (inputs at the highest rate, malformed and hostile messages, SIGKILL during state saves, a
//! full store) and report crashes, lost states and memory; see docs/ROBOTICS.md, "Soak".

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_harness::adapt::target::{self, Source};
use tandem_harness::keys;
use tandem_ros::soak::feed::Frames;
use tandem_ros::soak::{SoakPlan, SoakReport};
use tandem_runtime::trust::{Signer, Trust};
use tandem_runtime::ModelMeta;

/// Arguments of `tandem soak`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Peer models (ONNX, each with its peer.toml sidecar), comma separated; they are copied
    /// and signed with a key made for the soak.
    #[arg(long, value_delimiter = ',', required = true)]
    pub peers: Vec<PathBuf>,
    /// Source statistics (.tdss, `tandem node --write-sources`); default: measured at start.
    #[arg(long)]
    pub sources: Option<PathBuf>,
    /// Dataset whose samples are the camera frames (default: the peers' source dataset).
    #[arg(long)]
    pub target: Option<String>,
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 3.0)]
    pub minutes: f64,
    /// Adaptation method of the nodes.
    #[arg(long, default_value = "mutual")]
    pub method: String,
    /// Seconds between the crash node's state saves.
    #[arg(long, default_value_t = 0.05)]
    pub save_every: f64,
    /// The crash node is killed this many seconds after it is up (uniform between the two).
    #[arg(long, value_delimiter = ',', default_values_t = [2.0, 8.0], value_name = "MIN,MAX")]
    pub kill_after: Vec<f64>,
    /// Seed of the kill times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest growth of the steady node's resident memory after the warm-up (0.10: 10 %).
    #[arg(long, default_value_t = 0.10)]
    pub max_rss_growth: f64,
    /// Keep the soak's files (keys, signed peers, states) in this folder.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Copy each peer and its sidecar into `dir` and sign the copy with `key`.
fn signed_copies(peers: &[PathBuf], dir: &Path, key: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let copy = dir.join(format!("peer{i}.onnx"));
            std::fs::copy(p, &copy).with_context(|| format!("copying {}", p.display()))?;
            let sidecar = ModelMeta::sidecar_path(p);
            std::fs::copy(&sidecar, ModelMeta::sidecar_path(&copy))
                .with_context(|| format!("copying {}", sidecar.display()))?;
            keys::sign_file(&copy, key, None)?;
            Ok(copy)
        })
        .collect()
}

/// The camera frames: the target's samples (channels first, raw = pixel byte) as `mono8` or
/// `rgb8` images.
fn frames(peers: &[PathBuf], target_name: Option<&str>) -> Result<Frames> {
    let meta = ModelMeta::load_for_model(&peers[0])?
        .with_context(|| format!("{} has no peer.toml sidecar", peers[0].display()))?;
    let dataset = tandem_harness::source::dataset_of(Some(&meta));
    let name = target_name
        .map(str::to_owned)
        .or(dataset.clone())
        .context("the peers' sidecar names no source dataset: pass --target DATASET for the camera frames")?;
    let source = dataset.as_deref().map(|d| Source { dataset: d, meta: Some(&meta) });
    let t = target::from_dataset(&name, source.as_ref(), false)?;
    let (channels, height, width) = match t.sample_shape.as_slice() {
        [c @ (1 | 3), h, w] => (*c, *h, *w),
        [h, w] => (1, *h, *w),
        shape => bail!("{name}: samples of shape {shape:?} are not images (channels, height, width)"),
    };
    let plane = height * width;
    let images = t
        .stream
        .x
        .chunks_exact(t.sample_len)
        .take(512)
        .map(|s| {
            (0..plane * channels)
                .map(|i| s[(i % channels) * plane + i / channels].round().clamp(0.0, 255.0) as u8)
                .collect()
        })
        .collect::<Vec<Vec<u8>>>();
    if images.is_empty() {
        bail!("{name}: no samples");
    }
    Ok(Frames {
        height: height as u32,
        width: width as u32,
        encoding: if channels == 3 { "rgb8" } else { "mono8" }.into(),
        images,
    })
}

fn print(report: &SoakReport) {
    let f = &report.feed;
    println!("soak: {:.0} s", report.seconds);
    println!(
        "  sent: {} frames, {} malformed, {} unreadable, {} oversized; merged states: {} genuine, \
         {} foreign, {} tampered, {} unsigned, {} oversized",
        f.frames,
        f.malformed,
        f.unreadable,
        f.oversized,
        f.merged_genuine,
        f.merged_foreign,
        f.merged_tampered,
        f.merged_unsigned,
        f.merged_oversized
    );
    if let Some(s) = &report.steady {
        println!(
            "  steady node: received {}, predicted {}, queue drops {}, refused {} malformed, {} unreadable; \
             merged states loaded {}, refused {}; p99 latency {:.2} ms",
            s.received,
            s.predicted,
            s.dropped_overflow,
            s.dropped_malformed,
            s.dropped_encoding,
            s.fleet_loaded,
            s.fleet_refused,
            s.latency_p99_ms
        );
    }
    println!(
        "  crash node: {} SIGKILLs ({} during a save), {} lives on a full store ({} logged failed saves), \
         {} restores checked",
        report.kills,
        report.kills_during_save,
        report.full_store_lives,
        report.full_store_lives_with_failed_saves,
        report.restores_checked
    );
    println!(
        "  crashes {}, states lost {}; steady node RSS {} KiB after the {:.0} s warm-up, peak after it {} KiB \
         ({:+.1} %)",
        report.crashes,
        report.states_lost,
        report.rss_at_warmup_kib,
        report.warmup_seconds,
        report.rss_peak_after_warmup_kib,
        100.0 * report.rss_growth
    );
    for d in report.crash_details.iter().chain(&report.lost_details) {
        println!("  {d}");
    }
}

/// Run `tandem soak`.
pub fn run(args: Args) -> Result<()> {
    tandem_ros::logging::init("tandem soak", false);
    let positive = |v: f64| v > 0.0 && v.is_finite();
    let kill_after = match args.kill_after[..] {
        [lo, hi] if positive(lo) && lo <= hi && hi.is_finite() => (lo, hi),
        _ => bail!("--kill-after takes MIN,MAX seconds, 0 < MIN <= MAX"),
    };
    if !positive(args.minutes) || !positive(args.save_every) {
        bail!("--minutes and --save-every must be > 0");
    }
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let key_dir = |name: &str| dir.join("keys").join(name);
    let mut made = Vec::new();
    for name in ["node", "fleet", "foreign"] {
        let d = key_dir(name);
        if !d.join(keys::SECRET_FILE).exists() {
            keys::new_key_files(&d)?;
        }
        made.push((d.join(keys::SECRET_FILE), d.join(keys::PUBLIC_FILE)));
    }
    let [(node_key, node_pub), (fleet_key, fleet_pub), (foreign_key, _)] = <[_; 3]>::try_from(made).unwrap();
    let peers = signed_copies(&args.peers, &dir.join("peers"), &node_key)?;
    let frames = frames(&args.peers, args.target.as_deref())?;
    let exe = std::env::current_exe().context("finding the tandem binary")?;
    let peer_list = peers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(",");
    let mut command: Vec<OsString> =
        vec![exe.clone().into(), "node".into(), "--peers".into(), peer_list.into()];
    let sources = match &args.sources {
        Some(s) => s.clone(),
        None => {
            let out = dir.join("sources.tdss");
            let mut write = command.clone();
            write.extend([
                "--pubkey".into(),
                node_pub.clone().into(),
                "--write-sources".into(),
                out.clone().into(),
            ]);
            let status = std::process::Command::new(&write[0]).args(&write[1..]).status()?;
            if !status.success() {
                bail!("measuring the source statistics failed ({status})");
            }
            out
        }
    };
    for (flag, value) in [
        ("--sources", sources.into_os_string()),
        ("--method", args.method.clone().into()),
        ("--pubkey", node_pub.clone().into()),
        ("--sign-key", node_key.clone().into()),
        ("--fleet-pubkey", fleet_pub.into()),
    ] {
        command.push(flag.into());
        command.push(value);
    }
    let plan = SoakPlan {
        duration: Duration::from_secs_f64(args.minutes * 60.0),
        node_command: command,
        dir: dir.clone(),
        domain: (40 + std::process::id() % 180) as u16,
        frames,
        state_trust: Trust::from_key_files(&[node_pub], false)?,
        fleet: Signer::from_key_file(&fleet_key)?,
        foreign: Signer::from_key_file(&foreign_key)?,
        seed: args.seed,
        save_every: Duration::from_secs_f64(args.save_every),
        life: (Duration::from_secs_f64(kill_after.0), Duration::from_secs_f64(kill_after.1)),
        full_store_every: 4,
    };
    let report = tandem_ros::soak::run(&plan)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print(&report);
    }
    let failures = report.failures(args.max_rss_growth);
    if !failures.is_empty() {
        bail!("the soak failed: {}", failures.join("; "));
    }
    Ok(())
}

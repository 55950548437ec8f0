//! The demo's one summary table.

use super::{StepStatus, Summary, SOURCE, TARGET};
use std::fmt::Write;

/// The summary as a plain-text table: accuracy source-only vs adapted, backend parity and
/// latency, MCU flash/RAM and instructions per inference, and which steps were skipped.
pub fn table(s: &Summary) -> String {
    let mut t = String::new();
    let pct = |v: f64| format!("{:.2} %", 100.0 * v);
    let _ = writeln!(t, "\nTandem demo: {SOURCE} → {TARGET}, {:.0} s\n", s.seconds);
    let _ = writeln!(t, "{:<44} figure", "what");
    let _ = writeln!(t, "{}", "-".repeat(78));
    for p in &s.peers {
        let _ = writeln!(
            t,
            "{:<44} {} ({SOURCE} test), {} ({TARGET}), {} B ONNX",
            format!("peer {}", p.arch),
            pct(p.source_test_accuracy),
            p.target_accuracy.map_or("-".into(), pct),
            p.onnx_bytes
        );
    }
    if let Some(a) = &s.adaptation {
        for (method, stat) in &a.methods {
            let figure = stat.map_or("-".into(), |st| format!("{} ± {:.2}", pct(st.mean), 100.0 * st.std));
            let _ = writeln!(t, "{:<44} {figure}", format!("{TARGET} accuracy, {method}"));
        }
        if let Some(bytes) = a.state_bytes {
            let _ = writeln!(t, "{:<44} {bytes} B", "adaptation state (2 peers)");
        }
    }
    for p in &s.parity {
        let _ = writeln!(
            t,
            "{:<44} max |Δ| {:.1e} {}",
            format!("parity {} {} vs tract `{}`", p.peer, p.backend, p.output),
            p.max_abs_diff,
            if p.within_tolerance { "ok" } else { "OVER TOLERANCE" }
        );
    }
    for b in &s.backends {
        let _ = writeln!(
            t,
            "{:<44} p50 {:.1} µs, p99 {:.1} µs, {:.0}/s",
            format!("latency {} on {} ({}), batch 1", b.peer, b.backend, b.provider),
            b.p50_us,
            b.p99_us,
            b.per_second
        );
    }
    if let Some(m) = &s.mcu {
        let _ = writeln!(
            t,
            "{:<44} {} B .tdm, arena {} B (bound {}), {} MACs",
            format!("Cortex-M4 int8 {}", m.peer),
            m.tdm_bytes,
            m.arena_bytes,
            m.arena_lower_bound,
            m.macs
        );
        let _ = writeln!(
            t,
            "{:<44} {}/{} correct",
            "  host engine on the firmware's samples", m.host_correct, m.samples
        );
        match &m.qemu {
            Ok(q) => {
                let _ = writeln!(
                    t,
                    "{:<44} {} instructions/inference; {}",
                    format!("  QEMU {}", q.board),
                    q.instructions_per_inference,
                    q.ram
                );
            }
            Err(why) => {
                let _ = writeln!(t, "{:<44} skipped: {why}", "  QEMU");
            }
        }
    }
    for (name, status) in &s.steps {
        if let StepStatus::Skipped { why } = status {
            let _ = writeln!(t, "{:<44} {why}", format!("SKIPPED {name}"));
        }
    }
    t
}

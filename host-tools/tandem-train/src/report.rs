//! Mutual vs independent: aggregate the `metrics.json` of several runs into a table of
//! accuracies (mean ± sample standard deviation over seeds).

use super::arch::Arch;
use super::dml::Metrics;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// One row of the comparison: a peer of the cohort on one evaluation set.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub peer: usize,
    pub arch: Arch,
    /// `"<source> test"` or the target dataset's name.
    pub eval: String,
    pub independent: Vec<f64>,
    pub mutual: Vec<f64>,
}

/// Collect accuracies per (peer, evaluation set) from finished runs of both kinds.
pub fn rows(independent: &[Metrics], mutual: &[Metrics]) -> Vec<Row> {
    let mut table: BTreeMap<(usize, String), Row> = BTreeMap::new();
    for (is_mutual, runs) in [(false, independent), (true, mutual)] {
        for run in runs {
            for p in &run.peers {
                let mut evals = vec![(format!("{} test", run.dataset.name), p.test_accuracy)];
                evals.extend(p.transfer.iter().map(|(k, v)| (k.clone(), *v)));
                for (i, (eval, acc)) in evals.into_iter().enumerate() {
                    // Keep the source test first, then the targets in name order.
                    let key = (p.index, format!("{i:02}{eval}"));
                    let row = table.entry(key).or_insert_with(|| Row {
                        peer: p.index,
                        arch: p.arch.clone(),
                        eval,
                        independent: Vec::new(),
                        mutual: Vec::new(),
                    });
                    if is_mutual {
                        row.mutual.push(acc)
                    } else {
                        row.independent.push(acc)
                    }
                }
            }
        }
    }
    table.into_values().collect()
}

/// A Markdown table of [`rows`], accuracies in percent.
pub fn markdown(rows: &[Row]) -> String {
    let pct = |v: &[f64]| {
        let (m, s) = mean_std(v);
        format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s)
    };
    let mut out = String::from(
        "| peer | evaluated on | alone (%) | mutual (%) | Δ (points) | seeds |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let delta = 100.0 * (mean_std(&r.mutual).0 - mean_std(&r.independent).0);
        let _ = writeln!(
            out,
            "| {} `{}` | {} | {} | {} | {:+.2} | {} |",
            r.peer,
            r.arch,
            r.eval,
            pct(&r.independent),
            pct(&r.mutual),
            delta,
            r.mutual.len().min(r.independent.len())
        );
    }
    out
}

/// A Markdown table of what the best checkpoints give beyond each peer's accuracy, alone vs
/// mutual: each peer's expected calibration error on the source test split (percent, lower is
/// better) and the ensemble's source test accuracy (the mean of the peers' softmax outputs).
/// Runs from before these were recorded are left out.
pub fn calibration_markdown(independent: &[Metrics], mutual: &[Metrics]) -> String {
    let pct = |v: &[f64]| match mean_std(v) {
        (m, _) if m.is_nan() => "–".to_owned(),
        (m, s) => format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s),
    };
    let ece = |runs: &[Metrics], k: usize| -> Vec<f64> {
        runs.iter().filter_map(|m| m.peers.get(k).and_then(|p| p.test_ece)).collect()
    };
    let mut out = String::from("| measure (source test) | alone | mutual |\n|---|---|---|\n");
    let peers = independent.first().or(mutual.first()).map_or(&[][..], |m| &m.peers[..]);
    for p in peers {
        let (a, m) = (ece(independent, p.index), ece(mutual, p.index));
        let _ = writeln!(out, "| ECE (%), peer {} `{}` | {} | {} |", p.index, p.arch, pct(&a), pct(&m));
    }
    let ensemble =
        |runs: &[Metrics]| -> Vec<f64> { runs.iter().filter_map(|m| m.ensemble_test_accuracy).collect() };
    let _ = writeln!(
        out,
        "| ensemble accuracy (%) | {} | {} |",
        pct(&ensemble(independent)),
        pct(&ensemble(mutual))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_standard_deviation() {
        let (m, s) = mean_std(&[0.9, 0.92, 0.94]);
        assert!((m - 0.92).abs() < 1e-12);
        assert!((s - 0.02).abs() < 1e-12);
        assert_eq!(mean_std(&[0.5]), (0.5, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }
}

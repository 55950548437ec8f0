//! UCI optdigits from the `scikit-learn==1.9.1` wheel: `sklearn/datasets/data/digits.csv.gz`,
//! 1,797 lines of 64 counts 0..16 and the label, no header.

use crate::pins::OPTDIGITS_SPEC;
use std::path::Path;

use super::{verify_source, Log, Output};
use crate::npy::{NpyArray, NpyData};
use crate::{archive, client, DataError};

const MEMBER: &str = "sklearn/datasets/data/digits.csv.gz";
/// SHA-256 of the CSV (identical in every platform's wheel, so the wheel is not pinned).
const CSV_GZ_SHA256: &str = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22";

/// Fetches and converts: `optdigits/x.npy` (`|u1` `[1797, 8, 8]`), `optdigits/y.npy` (`|u1`).
pub(crate) fn produce(work: &Path, log: Log) -> Result<Vec<Output>, DataError> {
    log(&format!("pip download {OPTDIGITS_SPEC}"));
    let wheel = client::pip_download(OPTDIGITS_SPEC, work)?;
    let gz = archive::zip_member(&wheel, MEMBER)?;
    verify_source(&format!("{OPTDIGITS_SPEC} {MEMBER}"), &gz, CSV_GZ_SHA256)?;
    let csv = archive::gunzip(&gz, MEMBER)?;
    let (x, y) = parse_csv(&csv)?;
    let n = y.len();
    Ok(vec![
        Output::npy("optdigits/x.npy", NpyArray::new(vec![n, 8, 8], NpyData::U8(x))?),
        Output::npy("optdigits/y.npy", NpyArray::new(vec![n], NpyData::U8(y))?),
    ])
}

/// Lines of 64 values 0..=16 then a label 0..=9.
fn parse_csv(csv: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    let text = std::str::from_utf8(csv).map_err(|_| DataError::malformed(MEMBER, "not UTF-8"))?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |m: String| DataError::malformed(MEMBER, format!("line {}: {m}", i + 1));
        let values: Vec<u8> = line
            .split(',')
            .map(|v| {
                // Some copies write the counts as floats ("5.0").
                let f: f64 = v.trim().parse().map_err(|_| bad(format!("`{v}` is not a number")))?;
                if f.fract() != 0.0 || !(0.0..=16.0).contains(&f) {
                    return Err(bad(format!("`{v}` is not a count 0..16")));
                }
                Ok(f as u8)
            })
            .collect::<Result<_, _>>()?;
        if values.len() != 65 || values[64] > 9 {
            return Err(bad(format!("{} fields (64 counts and a label 0..9 expected)", values.len())));
        }
        x.extend_from_slice(&values[..64]);
        y.push(values[64]);
    }
    Ok((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_refuses_bad_ones() {
        let line = |label: &str| format!("{}{label}\n", "16,".repeat(64));
        let (x, y) = parse_csv(format!("{}{}", line("3"), line("9.0")).as_bytes()).unwrap();
        assert_eq!((x.len(), y), (128, vec![3, 9]));
        assert!(parse_csv(line("10").as_bytes()).is_err());
        assert!(parse_csv(b"1,2,3\n").is_err());
        assert!(parse_csv(format!("17,{}", line("1")).as_bytes()).is_err());
        assert!(parse_csv(line("x").as_bytes()).is_err());
    }
}

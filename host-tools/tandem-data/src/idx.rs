//! The IDX format of (Fashion-)MNIST: `00 00 <type> <rank>`, `rank` big-endian `u32`
//! dimensions, then the elements. Only unsigned bytes (type `0x08`) are needed here.

use super::DataError;

/// Parses an IDX file of unsigned bytes; returns its dimensions and elements.
pub fn parse_u8<'a>(bytes: &'a [u8], what: &str) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let bad = |m: String| DataError::malformed(what, m);
    if bytes.len() < 4 {
        return Err(bad(format!("{} bytes is too short for an IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("no IDX magic (00 00)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!("element type 0x{:02x}, expected unsigned bytes (0x08)", bytes[2])));
    }
    let rank = bytes[3] as usize;
    let start = 4 + 4 * rank;
    if bytes.len() < start {
        return Err(bad(format!("truncated header: {rank} dimensions need {start} bytes")));
    }
    let dims: Vec<usize> = bytes[4..start]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let body = &bytes[start..];
    if count != Some(body.len()) {
        return Err(bad(format!("dimensions {dims:?} do not match the {} data bytes", body.len())));
    }
    Ok((dims, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_image_file_and_refuses_damage() {
        let mut f = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3];
        f.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let (dims, data) = parse_u8(&f, "t").unwrap();
        assert_eq!(dims, vec![2, 1, 3]);
        assert_eq!(data, &[1, 2, 3, 4, 5, 6]);
        assert!(parse_u8(&f[..f.len() - 1], "t").is_err());
        assert!(parse_u8(&f[..10], "t").is_err());
        let mut floats = f.clone();
        floats[2] = 0x0d;
        assert!(parse_u8(&floats, "t").is_err());
        let mut magic = f.clone();
        magic[0] = 1;
        assert!(parse_u8(&magic, "t").is_err());
        assert!(parse_u8(&[0, 0, 8, 255], "t").is_err());
    }
}

//! `--max-size` values: bytes (`1000000`) or with a binary unit (`512K`,
//! `256M`, `1G`, also written `256MiB`).

/// Parses a size in bytes; the error is a sentence for the user.
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}; use K, M or G")),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; try 256M or 1G"))?;
    value
        .checked_mul(1 << shift)
        .filter(|bytes| *bytes > 0)
        .ok_or_else(|| format!("size {text:?} must be between 1 byte and 16 EiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bytes_and_binary_units() {
        assert_eq!(parse("1000"), Ok(1000));
        assert_eq!(parse("512K"), Ok(512 << 10));
        assert_eq!(parse("256M"), Ok(256 << 20));
        assert_eq!(parse("256MiB"), Ok(256 << 20));
        assert_eq!(parse("1G"), Ok(1 << 30));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "0", "-1", "M", "1.5G", "3X", "99999999999999G"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}

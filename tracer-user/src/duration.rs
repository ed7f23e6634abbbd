//! `--duration` values: plain seconds (`4`, `0.5`) or suffixed (`500ms`,
//! `30s`, `2m`, `1h`).

use std::time::Duration;

/// Parses a recording duration; the error is a sentence for the user.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}; use ms, s, m or h"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; try 4, 0.5, 30s or 2m"))?;
    let seconds = value * scale;
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("duration {text:?} must be greater than zero"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration {text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_suffixed_values() {
        assert_eq!(parse("4"), Ok(Duration::from_secs(4)));
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "0", "-1", "abc", "3x", "1.2.3s", "s"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}

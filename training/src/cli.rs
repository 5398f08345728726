//! Argument parsers shared by the binaries (kept here so they are tested).
use std::path::PathBuf;

/// `path[:weight]` → (path, weight); weight defaults to 1. Only a trailing `:number` is a weight, so
/// paths with colons still work.
pub fn parse_weighted_path(s: &str) -> Result<(PathBuf, f64), String> {
    if let Some((path, weight)) = s.rsplit_once(':')
        && let Ok(weight) = weight.parse::<f64>()
    {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(format!("weight in '{s}' must be a non-negative number"));
        }
        return Ok((PathBuf::from(path), weight));
    }
    Ok((PathBuf::from(s), 1.0))
}

/// `relu4_2[:weight]` → (layer, weight).
pub fn parse_weighted_layer(s: &str) -> Result<(String, f64), String> {
    let (path, weight) = parse_weighted_path(s)?;
    Ok((path.to_string_lossy().into_owned(), weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_optional_and_trailing() {
        assert_eq!(
            parse_weighted_path("a.jpg").unwrap(),
            (PathBuf::from("a.jpg"), 1.0)
        );
        assert_eq!(
            parse_weighted_path("a.jpg:0.3").unwrap(),
            (PathBuf::from("a.jpg"), 0.3)
        );
        assert_eq!(
            parse_weighted_path("c:/x/a.jpg").unwrap(),
            (PathBuf::from("c:/x/a.jpg"), 1.0)
        );
        assert!(
            parse_weighted_path("a.jpg:-1")
                .unwrap_err()
                .contains("non-negative")
        );
        assert_eq!(
            parse_weighted_layer("relu4_2:2").unwrap(),
            ("relu4_2".to_owned(), 2.0)
        );
    }
}

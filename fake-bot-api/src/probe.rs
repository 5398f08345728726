//! Reading a running bot process from outside, for the load and soak tools: its memory from
//! `/proc` and its Prometheus metrics.

/// A memory figure of process `pid` in MiB: `VmRSS` (now) or `VmHWM` (peak), from `/proc`.
pub fn memory_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The value of the first metric line in `text` that starts with `name` (labels included).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The CPU's model name and core count, from /proc/cpuinfo, e.g. "AMD EPYC (2 cores)".
pub fn cpu_name() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|m| m.trim().to_owned())
    });
    format!(
        "{} ({cores} cores)",
        model.as_deref().unwrap_or("unknown CPU")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_by_name_and_labels() {
        let text = "# HELP x\nstylegram_api_retries_total{fault=\"429\"} 3\nstylegram_api_retries_total{fault=\"5xx\"} 1\n";
        assert_eq!(
            metric(text, "stylegram_api_retries_total{fault=\"5xx\"}"),
            Some(1.0)
        );
        assert_eq!(metric(text, "missing"), None);
        assert!(memory_mb(std::process::id(), "VmRSS:").is_some_and(|m| m > 0.0));
    }
}

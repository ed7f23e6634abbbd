//! contend's resident memory over a run: sampled from /proc/PID/status
//! by a thread, and summed up as a least-squares slope.

use std::{
    fs,
    ops::RangeInclusive,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

/// One look at the process: when (since sampling began) and its VmRSS.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub seconds: f64,
    pub kib: f64,
}

/// A thread reading a process's VmRSS every `every` until stopped or the
/// process is gone.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let began = Instant::now();
            let mut samples = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let Some(kib) = vm_rss_kib(pid) else { break };
                samples.push(Sample {
                    seconds: began.elapsed().as_secs_f64(),
                    kib,
                });
                thread::sleep(every);
            }
            samples
        });
        Self { stop, thread }
    }

    /// Stops sampling and returns the samples.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// `VmRSS:   12345 kB` of /proc/PID/status; `None` once the process is gone.
fn vm_rss_kib(pid: u32) -> Option<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<f64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// The least-squares slope of the samples taken within `seconds`, in KiB
/// per minute; `None` with fewer than two such samples.
pub fn slope_kib_per_minute(samples: &[Sample], seconds: RangeInclusive<f64>) -> Option<f64> {
    let kept: Vec<&Sample> = samples
        .iter()
        .filter(|sample| seconds.contains(&sample.seconds))
        .collect();
    if kept.len() < 2 {
        return None;
    }
    let count = kept.len() as f64;
    let mean_t = kept.iter().map(|sample| sample.seconds).sum::<f64>() / count;
    let mean_kib = kept.iter().map(|sample| sample.kib).sum::<f64>() / count;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for sample in &kept {
        let dt = sample.seconds - mean_t;
        covariance += dt * (sample.kib - mean_kib);
        variance += dt * dt;
    }
    (variance > 0.0).then(|| covariance / variance * 60.0)
}

/// `seconds,kib` lines, for plotting.
pub fn csv(samples: &[Sample]) -> String {
    let mut text = String::from("seconds,kib\n");
    for sample in samples {
        text.push_str(&format!("{:.1},{:.0}\n", sample.seconds, sample.kib));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(f64, f64)]) -> Vec<Sample> {
        points
            .iter()
            .map(|&(seconds, kib)| Sample { seconds, kib })
            .collect()
    }

    #[test]
    fn a_steady_leak_is_its_slope_per_minute() {
        // 10 KiB a second, under noise thirty times that.
        let leaking: Vec<(f64, f64)> = (0..120)
            .map(|second| {
                let noise = if second % 2 == 0 { 300.0 } else { -300.0 };
                (
                    f64::from(second),
                    50_000.0 + 10.0 * f64::from(second) + noise,
                )
            })
            .collect();
        let slope = slope_kib_per_minute(&samples(&leaking), 0.0..=f64::MAX).expect("a slope");
        assert!((slope - 600.0).abs() < 15.0, "slope {slope}");
    }

    #[test]
    fn the_warm_up_is_left_out() {
        // Grows for 10 s, then flat.
        let warming: Vec<(f64, f64)> = (0..60)
            .map(|second| (f64::from(second), 1_000.0 * f64::from(second.min(10))))
            .collect();
        let flat = slope_kib_per_minute(&samples(&warming), 10.0..=60.0).expect("a slope");
        assert!(flat.abs() < 1e-9, "slope {flat}");
        let whole = slope_kib_per_minute(&samples(&warming), 0.0..=60.0).expect("a slope");
        assert!(whole > 1_000.0, "slope {whole}");
    }

    #[test]
    fn what_comes_after_the_window_is_left_out() {
        // Flat, then a drop once the work is over.
        let ending: Vec<(f64, f64)> = (0..70)
            .map(|second| (f64::from(second), if second < 60 { 9_000.0 } else { 100.0 }))
            .collect();
        let slope = slope_kib_per_minute(&samples(&ending), 0.0..=59.0).expect("a slope");
        assert!(slope.abs() < 1e-9, "slope {slope}");
    }

    #[test]
    fn too_few_samples_give_no_slope() {
        assert_eq!(
            slope_kib_per_minute(&samples(&[(1.0, 5.0)]), 0.0..=9.0),
            None
        );
        assert_eq!(
            slope_kib_per_minute(&samples(&[(1.0, 5.0), (1.0, 6.0)]), 0.0..=9.0),
            None
        );
    }

    #[test]
    fn vm_rss_is_read_from_proc_status() {
        let status = "Name:\tcontend\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345.0));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
    }
}

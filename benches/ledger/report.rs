//! The figures of one run: each beside the ceiling it is compared with (measured in the same run)
//! and the target it is held to; printed as a table and written as JSON.

use std::time::Duration;

use serde::Serialize;

/// Latency percentiles of one measurement.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Latency {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort();
        let at = |p: f64| {
            let index = ((samples.len() - 1) as f64 * p).round() as usize;
            samples[index].as_secs_f64() * 1_000.0
        };
        Self {
            count: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
        }
    }
}

/// What a figure is compared with.
#[derive(Clone, Debug, Serialize)]
pub struct Ceiling {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

/// What a figure is held to.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// `value / ceiling ≥ ratio`.
    RatioAtLeast { ratio: f64 },
    /// `value / ceiling ≤ ratio` (latencies against a latency ceiling).
    RatioAtMost { ratio: f64 },
    /// `p99 ≤ ms`.
    P99AtMost { ms: f64 },
    /// `value ≤ ms` (the value is a latency).
    AtMostMs { ms: f64 },
    /// `value / ceiling ≥ ratio` and `value ≥ floor`.
    RatioAndFloor { ratio: f64, floor: f64 },
    /// `value / ceiling ≥ ratio` and `p99 ≤ ms`.
    RatioAndP99 { ratio: f64, ms: f64 },
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::RatioAtLeast { ratio } => format!("≥ {ratio}×"),
            Target::RatioAtMost { ratio } => format!("≤ {ratio}×"),
            Target::P99AtMost { ms } => format!("p99 ≤ {ms} ms"),
            Target::AtMostMs { ms } => format!("≤ {ms} ms"),
            Target::RatioAndFloor { ratio, floor } => format!("≥ {ratio}× and ≥ {floor:.0}"),
            Target::RatioAndP99 { ratio, ms } => format!("≥ {ratio}×, p99 ≤ {ms} ms"),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub section: &'static str,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Optimistic-lock conflicts per command (commands on one hot aggregate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict_rate: Option<f64>,
    /// Commands that gave up after their conflict retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_met: Option<bool>,
}

impl Figure {
    pub fn new(
        section: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            section,
            name: name.into(),
            value,
            unit,
            latency: None,
            conflict_rate: None,
            failed: None,
            ceiling: None,
            ratio: None,
            target: None,
            target_met: None,
        }
    }

    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = Some(latency);
        self
    }

    pub fn conflicts(mut self, rate: f64, failed: usize) -> Self {
        self.conflict_rate = Some(rate);
        self.failed = Some(failed);
        self
    }

    /// Compares the figure's value with `ceiling` (of the same unit, or a latency against a latency).
    pub fn against(mut self, ceiling: &Figure) -> Self {
        self.ratio = (ceiling.value > 0.0).then(|| self.value / ceiling.value);
        self.ceiling = Some(Ceiling {
            name: ceiling.name.clone(),
            value: ceiling.value,
            unit: ceiling.unit,
        });
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        let ratio = self.ratio.unwrap_or(f64::NAN);
        let p99 = self.latency.map_or(f64::NAN, |l| l.p99_ms);
        let met = match target {
            Target::RatioAtLeast { ratio: want } => ratio >= want,
            Target::RatioAtMost { ratio: want } => ratio <= want,
            Target::P99AtMost { ms } => p99 <= ms,
            Target::AtMostMs { ms } => self.value <= ms,
            Target::RatioAndFloor { ratio: want, floor } => ratio >= want && self.value >= floor,
            Target::RatioAndP99 { ratio: want, ms } => ratio >= want && p99 <= ms,
        };
        self.target = Some(target);
        self.target_met = Some(met);
        self
    }
}

/// Every figure of one backend.
#[derive(Debug, Serialize)]
pub struct BackendReport {
    pub backend: &'static str,
    pub figures: Vec<Figure>,
}

impl BackendReport {
    pub fn push(&mut self, figure: Figure) -> Figure {
        print_row(self.backend, &figure);
        self.figures.push(figure.clone());
        figure
    }

    pub fn print(&self) {
        for figure in &self.figures {
            print_row(self.backend, figure);
        }
    }
}

pub fn print_header() {
    println!(
        "{:<8} {:<10} {:<52} {:>11} {:<8} {:>8} {:>8} {:>7}  {:<40} {:>8}  {:<22} met",
        "backend",
        "section",
        "figure",
        "value",
        "unit",
        "p50 ms",
        "p99 ms",
        "confl/f",
        "ceiling",
        "ratio",
        "target",
    );
}

fn print_row(backend: &str, f: &Figure) {
    let (p50, p99) = f.latency.map_or((String::new(), String::new()), |l| {
        (format!("{:.3}", l.p50_ms), format!("{:.3}", l.p99_ms))
    });
    let conflicts = f.conflict_rate.map_or(String::new(), |rate| {
        format!("{rate:.2}/{}", f.failed.unwrap_or(0))
    });
    let ceiling = f.ceiling.as_ref().map_or(String::new(), |c| {
        format!("{} {:.3} {}", c.name, c.value, c.unit)
    });
    let ratio = f.ratio.map_or(String::new(), |r| format!("{r:.3}×"));
    let target = f.target.map_or(String::new(), Target::describe);
    let met = match f.target_met {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "",
    };
    println!(
        "{:<8} {:<10} {:<52} {:>11.3} {:<8} {:>8} {:>8} {:>7}  {:<40} {:>8}  {:<22} {}",
        backend,
        f.section,
        f.name,
        f.value,
        f.unit,
        p50,
        p99,
        conflicts,
        ceiling,
        ratio,
        target,
        met
    );
}

/// The whole run, as written to JSON.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub size: String,
    pub started_at: String,
    pub machine: Machine,
    pub command: String,
    pub backends: Vec<BackendReport>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// `/proc/loadavg` when the run began: other work on the machine moves every figure.
    pub load_average: String,
}

impl Machine {
    pub fn this() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
            load_average: std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.trim().to_string())
                .unwrap_or_default(),
        }
    }
}

impl RunReport {
    /// The figures as a Markdown table per backend (for BENCHMARKS.md).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for backend in &self.backends {
            out.push_str(&format!(
                "\n#### {}\n\n| section | figure | value | p50 / p99 ms | ceiling (same run) | ratio | target | met |\n|---|---|---:|---:|---|---:|---|---|\n",
                backend.backend
            ));
            for f in &backend.figures {
                let latency = f.latency.map_or(String::new(), |l| {
                    format!("{:.2} / {:.2}", l.p50_ms, l.p99_ms)
                });
                let conflicts = f.conflict_rate.map_or(String::new(), |rate| {
                    format!(
                        " (conflicts {rate:.2}/cmd, {} gave up)",
                        f.failed.unwrap_or(0)
                    )
                });
                let ceiling = f.ceiling.as_ref().map_or(String::new(), |c| {
                    format!("{}: {} {}", c.name, number(c.value), c.unit)
                });
                let ratio = f.ratio.map_or(String::new(), |r| format!("{r:.3}×"));
                let target = f.target.map_or(String::new(), Target::describe);
                let met = match f.target_met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "",
                };
                out.push_str(&format!(
                    "| {} | {}{} | {} {} | {} | {} | {} | {} | {} |\n",
                    f.section,
                    f.name.replace('|', "\\|"),
                    conflicts,
                    number(f.value),
                    f.unit,
                    latency,
                    ceiling,
                    ratio,
                    target,
                    met
                ));
            }
        }
        out
    }
}

/// A figure with as many decimals as it needs to be read.
fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

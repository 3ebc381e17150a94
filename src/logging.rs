//! Logging: `--log-format text|json` and the `AUTOSALON_LOG` filter, both checked before anything
//! starts, so a typo stops start-up instead of silently logging nothing (or everything).

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter (`tracing-subscriber`'s `EnvFilter` syntax).
pub const FILTER_ENV: &str = "AUTOSALON_LOG";
/// The filter when `AUTOSALON_LOG` is unset or blank: one access line per request and what the
/// server says about itself.
pub const DEFAULT_FILTER: &str = "info";

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, fields at the top level (for a log shipper).
    Json,
}

/// The filter `text` describes; an error quotes it and says what is expected.
pub fn parse_filter(text: Option<&str>) -> anyhow::Result<EnvFilter> {
    let text = text.map(str::trim).filter(|text| !text.is_empty());
    let directives = text.unwrap_or(DEFAULT_FILTER);
    EnvFilter::builder().parse(directives).with_context(|| {
        format!(
            "{FILTER_ENV}={directives:?} is not a log filter; write a level (error, warn, info, \
             debug, trace, off) or target=level pairs separated by commas, e.g. \
             {FILTER_ENV}=info,autosalon::access=warn"
        )
    })
}

/// Installs the global subscriber, reading the filter from [`FILTER_ENV`].
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let text = match std::env::var(FILTER_ENV) {
        Ok(text) => Some(text),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{FILTER_ENV} is not valid UTF-8")
        }
    };
    let filter = parse_filter(text.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|err| anyhow::anyhow!("installing the logger: {err}"))
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn filters_are_checked() {
        for good in [
            None,
            Some(""),
            Some("  "),
            Some("warn"),
            Some("info,autosalon::access=off"),
        ] {
            assert!(parse_filter(good).is_ok(), "{good:?} refused");
        }
        for bad in ["autosalon=loud", "info,[", "=info"] {
            let err = parse_filter(Some(bad)).unwrap_err();
            assert!(format!("{err:#}").contains("AUTOSALON_LOG"), "{err:#}");
        }
    }
}

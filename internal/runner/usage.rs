//! A run's token usage and cost: read from the agent's stream while it runs
//! ([`stream::LiveUsage`]), priced (a reported cost wins; else the config's `pricing` table
//! gives an estimate), and recorded in run-info.yaml through the locked update — at most once
//! per [`LIVE_INTERVAL`] while the run is live, and with the final record.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{AgentType, ModelPrice};
use crate::storage::paths::STDOUT_FILE;
use crate::storage::run_info::UPDATE_LOCK_TIMEOUT;
use crate::storage::{CostSource, RunInfo, Usage};

use crate::agent::stream::LiveUsage;

/// How often live usage is read and (when it changed) written.
pub const LIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How often the watcher looks whether the agent ended.
const DONE_CHECK: Duration = Duration::from_millis(100);

/// The price of `model` in `pricing`: its own entry, else the longest entry that is a prefix
/// of it (so `claude-sonnet-4-5` prices `claude-sonnet-4-5-20250929`).
pub fn price_of<'a>(
    pricing: &'a BTreeMap<String, ModelPrice>,
    model: &str,
) -> Option<&'a ModelPrice> {
    pricing.get(model).or_else(|| {
        pricing
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, price)| price)
    })
}

/// `usage` with the model filled in from `fallback_model` when the stream named none, and a
/// cost estimated from `pricing` when none was reported.
pub fn priced(
    mut usage: Usage,
    pricing: &BTreeMap<String, ModelPrice>,
    fallback_model: Option<&str>,
) -> Usage {
    if usage.model.is_none() {
        usage.model = fallback_model.map(str::to_string);
    }
    if usage.cost_usd.is_none() {
        let price = usage.model.as_deref().and_then(|m| price_of(pricing, m));
        if let Some(price) = price {
            usage.cost_usd = Some(price.cost(
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens,
            ));
            usage.cost_source = Some(CostSource::Estimated);
        }
    }
    usage
}

/// Writes `usage` into the run-info at `info_path` (locked read-modify-write).
pub fn record(info_path: &Path, usage: &Usage) {
    let result = RunInfo::update(info_path, UPDATE_LOCK_TIMEOUT, |info| {
        info.usage = Some(usage.clone());
        Ok::<(), std::convert::Infallible>(())
    });
    if let Err(err) = result {
        tracing::warn!("cannot record the run's usage: {err}");
    }
}

/// Reads a CLI agent's usage while it runs.
pub struct Meter<'a> {
    live: LiveUsage,
    pricing: &'a BTreeMap<String, ModelPrice>,
    fallback_model: Option<String>,
}

impl<'a> Meter<'a> {
    /// A meter of the run in `run_dir` (`None` for agent types without a usage stream).
    pub fn new(
        agent_type: AgentType,
        run_dir: &Path,
        pricing: &'a BTreeMap<String, ModelPrice>,
        argv: &[String],
    ) -> Option<Meter<'a>> {
        let fallback_model = crate::agent::model_from_argv(argv).or_else(|| match agent_type {
            AgentType::Codex => crate::agent::codex::config_model(&crate::config::process_env),
            _ => None,
        });
        Some(Meter {
            live: LiveUsage::new(agent_type, &run_dir.join(STDOUT_FILE))?,
            pricing,
            fallback_model,
        })
    }

    fn current(&self) -> Option<Usage> {
        self.live
            .usage()
            .map(|u| priced(u, self.pricing, self.fallback_model.as_deref()))
    }

    /// Until `done` is set: reads the stream every [`LIVE_INTERVAL`] and, when the usage
    /// changed, records it and hands it to `on_update`. Then reads the rest and returns the
    /// final usage (not recorded: it goes into the final record).
    pub fn watch(
        mut self,
        info_path: &Path,
        done: &AtomicBool,
        mut on_update: impl FnMut(&Usage),
    ) -> Option<Usage> {
        let mut last_poll = Instant::now();
        while !done.load(Ordering::Acquire) {
            std::thread::sleep(DONE_CHECK);
            if last_poll.elapsed() < LIVE_INTERVAL {
                continue;
            }
            last_poll = Instant::now();
            if self.live.poll() {
                if let Some(usage) = self.current() {
                    record(info_path, &usage);
                    on_update(&usage);
                }
            }
        }
        self.live.finish();
        self.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> BTreeMap<String, ModelPrice> {
        BTreeMap::from([
            (
                "claude-sonnet-4-5".to_string(),
                ModelPrice {
                    input_per_mtok: 3.0,
                    output_per_mtok: 15.0,
                    cached_input_per_mtok: Some(0.3),
                },
            ),
            (
                "claude".to_string(),
                ModelPrice {
                    input_per_mtok: 1.0,
                    output_per_mtok: 1.0,
                    cached_input_per_mtok: None,
                },
            ),
        ])
    }

    #[test]
    fn estimates_only_without_a_reported_cost() {
        let usage = Usage {
            model: Some("claude-sonnet-4-5-20250929".into()),
            input_tokens: 2_000_000,
            cached_input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            ..Usage::default()
        };
        let estimated = priced(usage.clone(), &table(), None);
        assert_eq!(estimated.cost_source, Some(CostSource::Estimated));
        assert!((estimated.cost_usd.unwrap() - 18.3).abs() < 1e-9);
        let reported = Usage {
            cost_usd: Some(0.5),
            cost_source: Some(CostSource::Reported),
            ..usage.clone()
        };
        assert_eq!(priced(reported.clone(), &table(), None), reported);
        let unknown = Usage {
            model: Some("gpt-5".into()),
            ..usage
        };
        assert_eq!(priced(unknown.clone(), &table(), None).cost_usd, None);
        let no_model = Usage {
            model: None,
            ..unknown
        };
        let named = priced(no_model, &table(), Some("claude-x"));
        assert_eq!(named.model.as_deref(), Some("claude-x"));
        assert!((named.cost_usd.unwrap() - 3.0).abs() < 1e-9);
    }
}

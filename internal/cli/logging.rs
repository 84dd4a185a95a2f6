//! tracing setup: text or JSON lines on stderr, level from `RUST_LOG` (default `info`).

use std::sync::OnceLock;

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The level logged when `RUST_LOG` is not set.
const DEFAULT_LEVEL: Level = Level::INFO;

/// Installs the global subscriber. Safe to call once per process.
///
/// With `RUST_LOG` set, its directives are parsed and the subscriber is built at once.
/// Without it, the subscriber is built on the first span or event at `info` or above: a short
/// command such as `bus post` usually logs nothing, and building the formatting subscriber
/// (its span registry allocates and zeroes tens of kilobytes) was a tenth of its start-up.
pub fn init(format: LogFormat) {
    let result = match std::env::var_os(EnvFilter::DEFAULT_ENV) {
        Some(_) => {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr);
            match format {
                LogFormat::Text => builder.with_ansi(false).try_init(),
                LogFormat::Json => builder.json().try_init(),
            }
        }
        None => {
            tracing::subscriber::set_global_default(OnFirstUse::new(format)).map_err(Into::into)
        }
    };
    // A second init (tests calling main twice) keeps the first subscriber.
    let _ = result;
}

/// The formatting subscriber at [`DEFAULT_LEVEL`], built when it is first needed.
fn default_subscriber(format: LogFormat) -> Box<dyn Subscriber + Send + Sync> {
    let builder = tracing_subscriber::fmt()
        .with_max_level(DEFAULT_LEVEL)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// A subscriber that answers level questions itself and hands everything else to the
/// formatting subscriber, built on first use.
struct OnFirstUse {
    format: LogFormat,
    inner: OnceLock<Box<dyn Subscriber + Send + Sync>>,
}

impl OnFirstUse {
    fn new(format: LogFormat) -> Self {
        OnFirstUse {
            format,
            inner: OnceLock::new(),
        }
    }

    fn inner(&self) -> &(dyn Subscriber + Send + Sync) {
        self.inner
            .get_or_init(|| default_subscriber(self.format))
            .as_ref()
    }
}

impl Subscriber for OnFirstUse {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= DEFAULT_LEVEL
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(DEFAULT_LEVEL))
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner().new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner().record(span, values);
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner().record_follows_from(span, follows);
    }

    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.inner().event_enabled(event)
    }

    fn event(&self, event: &Event<'_>) {
        self.inner().event(event);
    }

    fn enter(&self, span: &Id) {
        self.inner().enter(span);
    }

    fn exit(&self, span: &Id) {
        self.inner().exit(span);
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.inner().clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.inner().try_close(id)
    }

    fn current_span(&self) -> tracing_core::span::Current {
        self.inner().current_span()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_answered_without_building_the_subscriber() {
        let lazy = OnFirstUse::new(LogFormat::Text);
        let dispatch = tracing::Dispatch::new(lazy);
        tracing::dispatcher::with_default(&dispatch, || {
            assert!(!tracing::enabled!(Level::DEBUG));
            assert!(tracing::enabled!(Level::WARN));
        });
        let lazy = dispatch
            .downcast_ref::<OnFirstUse>()
            .expect("the dispatch holds the lazy subscriber");
        assert!(lazy.inner.get().is_none(), "asking for levels built it");
    }

    #[test]
    fn the_first_event_builds_the_subscriber_and_spans_work_through_it() {
        let dispatch = tracing::Dispatch::new(OnFirstUse::new(LogFormat::Json));
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("outer", run = "r1");
            let _entered = span.enter();
            tracing::info!("inside");
        });
        let lazy = dispatch
            .downcast_ref::<OnFirstUse>()
            .expect("the dispatch holds the lazy subscriber");
        assert!(lazy.inner.get().is_some());
    }
}

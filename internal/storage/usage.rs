//! Token usage and cost of a run (the optional run-info keys `model`, `input_tokens`,
//! `cached_input_tokens`, `output_tokens`, `cost_usd`, `cost_source`), and their sums over
//! the runs of a task or a project.
//!
//! `input_tokens` counts every input token, the cached ones included; `cached_input_tokens`
//! is the part of them read from the provider's prompt cache.

use std::fmt;

/// Where a run's cost comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostSource {
    /// The agent's CLI or API reported the cost itself.
    Reported,
    /// Computed from the token counts and the config's `pricing` table.
    Estimated,
}

impl CostSource {
    /// The source as written in run-info.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            CostSource::Reported => "reported",
            CostSource::Estimated => "estimated",
        }
    }

    /// Reads a source; anything else is `None`.
    pub fn from_text(text: &str) -> Option<CostSource> {
        match text.trim() {
            "reported" => Some(CostSource::Reported),
            "estimated" => Some(CostSource::Estimated),
            _ => None,
        }
    }
}

impl fmt::Display for CostSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one run used, as far as its stream told.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// The model that did (most of) the work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Input tokens, cached ones included.
    pub input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cached_input_tokens: u64,
    /// Output tokens (reasoning included where the agent counts it there).
    pub output_tokens: u64,
    /// Cost in US dollars, when reported or estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Where `cost_usd` comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<CostSource>,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Whether nothing was counted (no tokens, no cost, no model).
    pub fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.input_tokens == 0
            && self.cached_input_tokens == 0
            && self.output_tokens == 0
            && self.cost_usd.is_none()
    }
}

/// A dollar amount as written in run-info.yaml: fixed six decimals, trailing zeros dropped,
/// always with a decimal point (so every YAML reader reads a float).
pub fn format_usd(value: f64) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let mut text = format!("{value:.6}");
    while text.ends_with('0') && !text.ends_with(".0") {
        text.pop();
    }
    text
}

/// A dollar amount for people: at most four decimals, trailing zeros dropped (`0.0123`,
/// `12.5`, `3`).
pub fn display_usd(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0');
    text.strip_suffix('.').unwrap_or(text).to_string()
}

/// The sums over several runs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UsageTotals {
    /// How many runs reported any usage.
    pub runs_with_usage: u64,
    /// Input tokens, cached ones included.
    pub input_tokens: u64,
    /// Cached input tokens.
    pub cached_input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input plus output tokens.
    pub total_tokens: u64,
    /// Sum of the known costs (runs without a cost add nothing).
    pub cost_usd: f64,
    /// How many runs with usage have no cost (no report, no price for their model).
    pub runs_without_cost: u64,
}

impl UsageTotals {
    /// Adds one run's usage.
    pub fn add(&mut self, usage: &Usage) {
        if usage.is_empty() {
            return;
        }
        self.runs_with_usage += 1;
        self.input_tokens = self.input_tokens.saturating_add(usage.input_tokens);
        self.cached_input_tokens = self
            .cached_input_tokens
            .saturating_add(usage.cached_input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(usage.output_tokens);
        self.total_tokens = self.input_tokens.saturating_add(self.output_tokens);
        match usage.cost_usd {
            Some(cost) if cost.is_finite() => self.cost_usd += cost,
            _ => self.runs_without_cost += 1,
        }
    }

    /// Adds another sum.
    pub fn merge(&mut self, other: &UsageTotals) {
        self.runs_with_usage += other.runs_with_usage;
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.cached_input_tokens = self
            .cached_input_tokens
            .saturating_add(other.cached_input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.total_tokens = self.input_tokens.saturating_add(self.output_tokens);
        self.cost_usd += other.cost_usd;
        self.runs_without_cost += other.runs_without_cost;
    }

    /// The sum of `usages`.
    pub fn of<'a>(usages: impl IntoIterator<Item = &'a Usage>) -> UsageTotals {
        let mut totals = UsageTotals::default();
        for usage in usages {
            totals.add(usage);
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_is_fixed_point() {
        assert_eq!(format_usd(0.0), "0.0");
        assert_eq!(format_usd(0.000138), "0.000138");
        assert_eq!(format_usd(1.5), "1.5");
        assert_eq!(format_usd(12.0), "12.0");
        assert_eq!(format_usd(1e-9), "0.0");
        assert_eq!(format_usd(f64::NAN), "0.0");
    }

    #[test]
    fn totals_add_up_and_count_missing_costs() {
        let a = Usage {
            model: Some("m".into()),
            input_tokens: 10,
            cached_input_tokens: 4,
            output_tokens: 5,
            cost_usd: Some(0.25),
            cost_source: Some(CostSource::Reported),
        };
        let b = Usage {
            input_tokens: 1,
            output_tokens: 2,
            ..Usage::default()
        };
        let totals = UsageTotals::of([&a, &b, &Usage::default()]);
        assert_eq!(totals.runs_with_usage, 2);
        assert_eq!(totals.total_tokens, 18);
        assert_eq!(totals.cached_input_tokens, 4);
        assert_eq!(totals.cost_usd, 0.25);
        assert_eq!(totals.runs_without_cost, 1);
        let mut twice = totals.clone();
        twice.merge(&totals);
        assert_eq!(twice.total_tokens, 36);
    }
}

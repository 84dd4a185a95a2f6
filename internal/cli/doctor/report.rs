//! The doctor's findings: one line per check, pass / warn / fail, printed as text or JSON.

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fine.
    Pass,
    /// Works, but something deserves attention.
    Warn,
    /// Will not work until fixed (doctor exits 1).
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `config`, `root`, `agents`, `port` or `server`.
    pub section: &'static str,
    /// What was checked (`root.writable`, `agents.claude`, …).
    pub name: String,
    /// The outcome.
    pub level: Level,
    /// What was found.
    pub message: String,
    /// What to do about it (warn and fail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// All findings of one doctor run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The findings, in the order checked.
    pub checks: Vec<Check>,
}

impl Report {
    /// Adds a finding without a hint.
    pub fn add(
        &mut self,
        section: &'static str,
        name: impl Into<String>,
        level: Level,
        message: impl Into<String>,
    ) {
        self.checks.push(Check {
            section,
            name: name.into(),
            level,
            message: message.into(),
            hint: None,
        });
    }

    /// Adds a finding with advice.
    pub fn add_hint(
        &mut self,
        section: &'static str,
        name: impl Into<String>,
        level: Level,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.checks.push(Check {
            section,
            name: name.into(),
            level,
            message: message.into(),
            hint: Some(hint.into()),
        });
    }

    /// How many findings have `level`.
    pub fn count(&self, level: Level) -> usize {
        self.checks.iter().filter(|c| c.level == level).count()
    }

    /// Whether nothing failed.
    pub fn ok(&self) -> bool {
        self.count(Level::Fail) == 0
    }

    /// The human-readable list and a summary line.
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{}  {:width$}  {}\n",
                c.level.label(),
                c.name,
                c.message
            ));
            if let Some(hint) = &c.hint {
                out.push_str(&format!("      {:width$}  -> {hint}\n", ""));
            }
        }
        out.push_str(&format!(
            "{} passed, {} warnings, {} failed\n",
            self.count(Level::Pass),
            self.count(Level::Warn),
            self.count(Level::Fail)
        ));
        out
    }

    /// The JSON document of `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.ok(),
            "summary": {
                "pass": self.count(Level::Pass),
                "warn": self.count(Level::Warn),
                "fail": self.count(Level::Fail),
            },
            "checks": self.checks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_fail_makes_the_report_not_ok() {
        let mut r = Report::default();
        r.add("root", "root.exists", Level::Pass, "yes");
        r.add_hint("port", "port", Level::Warn, "busy", "pick another");
        assert!(r.ok());
        r.add("agents", "agents.x", Level::Fail, "missing");
        assert!(!r.ok());
        let text = r.to_text();
        assert!(text.contains("FAIL  agents.x"), "{text}");
        assert!(text.contains("-> pick another"), "{text}");
        assert!(text.ends_with("1 passed, 1 warnings, 1 failed\n"), "{text}");
        assert_eq!(r.to_json()["summary"]["fail"], 1);
    }
}

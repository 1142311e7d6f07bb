//! `slack-format`: one Slack Block Kit message per alert row, as seed 001 posts them: a
//! header with the severity emoji and the alert message, a section with the alert's
//! fields, and the alert id and type beneath. Labels are Korean by default
//! (`language = "en"` for English).
//!
//! The output rows are the input rows plus a `payload` column holding the message JSON,
//! so that later steps (cooldown, delivery) still see the alert's fields.

mod labels;

use adstream_sdk::ColumnKind::Text;
use adstream_sdk::{
    Batch, ConfigExt, Field, FieldsExt, Format, PluginError, STRING_KINDS, Setup, TextBuilder,
    export_format, field,
};
use labels::{Labels, Language};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    language: Language,
    #[serde(default = "default_dims")]
    dims: Vec<String>,
    /// The notification's text; the language's "AdTech anomaly detected" by default.
    title: Option<String>,
}

fn default_dims() -> Vec<String> {
    vec!["country".to_string(), "ad_format".to_string()]
}

/// Slack rejects a header longer than this many characters.
const HEADER_MAX_CHARS: usize = 150;

/// The configured formatter.
pub struct SlackFormat {
    labels: Labels,
    dims: Vec<String>,
    title: String,
}

/// Severity emoji, as in the seed.
pub fn severity_emoji(severity: &str) -> &'static str {
    match severity {
        "low" => "ℹ️",
        "medium" => "⚠️",
        "high" => "🚨",
        "critical" => "🔥",
        _ => "⚠️",
    }
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!(
            "{}…",
            &text[..i - text[..i].chars().last().map_or(0, char::len_utf8)]
        ),
        None => text.to_string(),
    }
}

fn mrkdwn(label: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": format!("*{label}:*\n{value}") })
}

impl SlackFormat {
    fn payload(&self, alerts: &Batch, row: usize) -> Result<Value, PluginError> {
        let text = |c: &str| alerts.text(c).map(|col| col.value(row).to_string());
        let num = |c: &str| alerts.f64s(c).map(|col| col.value(row));
        let severity = text("severity")?;
        let emoji = severity_emoji(&severity);
        let l = &self.labels;
        let mut fields = Vec::new();
        for dim in &self.dims {
            fields.push(mrkdwn(l.dim(dim), &text(dim)?));
        }
        fields.extend([
            mrkdwn(l.metric, &text("metric_name")?),
            mrkdwn(l.severity, &severity.to_uppercase()),
            mrkdwn(l.current, &format!("{:.2}", num("current_value")?)),
            mrkdwn(l.expected, &format!("{:.2}", num("expected_value")?)),
            mrkdwn(l.change, &format!("{:.1}%", num("deviation_percent")?)),
            mrkdwn(l.time, &text("alert_time")?),
        ]);
        let header = truncate_chars(&format!("{emoji} {}", text("message")?), HEADER_MAX_CHARS);
        let footer = format!(
            "Alert ID: {} | Type: {}",
            text("alert_id")?,
            text("alert_type")?
        );
        Ok(json!({
            "text": format!("{emoji} {}", self.title),
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } },
                { "type": "section", "fields": fields },
                { "type": "context", "elements": [ { "type": "mrkdwn", "text": footer } ] },
            ]
        }))
    }
}

impl Format for SlackFormat {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        let input = &setup.input;
        let strings = [
            "alert_id",
            "alert_time",
            "alert_type",
            "severity",
            "metric_name",
            "message",
        ];
        for c in strings
            .iter()
            .copied()
            .chain(cfg.dims.iter().map(String::as_str))
        {
            input.require(c, STRING_KINDS)?;
        }
        for c in ["current_value", "expected_value", "deviation_percent"] {
            input.require(c, &[adstream_sdk::ColumnKind::Float64])?;
        }
        if input.get_field("payload").is_some() {
            return Err(PluginError::SchemaMismatch(
                "input already has a `payload` column".into(),
            ));
        }
        let mut fields = input.clone();
        fields.push(field("payload", Text, false));
        Ok((
            SlackFormat {
                labels: Labels::new(cfg.language),
                dims: cfg.dims,
                title: cfg
                    .title
                    .unwrap_or_else(|| Labels::new(cfg.language).title.into()),
            },
            fields,
        ))
    }

    fn format(&mut self, alerts: &Batch) -> Result<Batch, PluginError> {
        let mut payload = TextBuilder::with_capacity(alerts.len(), alerts.len() * 1024);
        for row in 0..alerts.len() {
            let json = self.payload(alerts, row)?;
            payload.push_with(|buf| {
                serde_json::to_writer(buf, &json).expect("writing JSON to a Vec cannot fail")
            });
        }
        let mut columns = alerts.columns.clone();
        columns.push(payload.finish("payload"));
        Batch::from_columns(columns)
    }
}

export_format!(SlackFormat);

#[cfg(test)]
mod tests;

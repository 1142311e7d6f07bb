//! The table a ClickHouse sink creates when `create = true`, derived from the rows'
//! schema.

use super::rowbinary::type_of;
use crate::config::sink::ClickHouseConfig;
use adstream_sdk::Field;

/// What is wrong with `create = true` for rows with `fields`, if anything.
pub fn check(cfg: &ClickHouseConfig, fields: &[Field]) -> Option<String> {
    cfg.order_by
        .iter()
        .find(|c| !fields.iter().any(|f| f.name == **c))
        .map(|c| format!("order_by names `{c}`, which the rows do not have"))
}

/// `CREATE TABLE IF NOT EXISTS` for rows with `fields` (checked with [`check`] first).
pub fn ddl(cfg: &ClickHouseConfig, fields: &[Field]) -> String {
    let columns: Vec<String> = fields
        .iter()
        .map(|f| format!("    `{}` {}", f.name, type_of(f)))
        .collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE = {}",
        cfg.table,
        columns.join(",\n"),
        cfg.engine
    );
    if let Some(p) = &cfg.partition_by {
        sql.push_str(&format!("\nPARTITION BY {p}"));
    }
    if !cfg.order_by.is_empty() {
        sql.push_str(&format!("\nORDER BY ({})", cfg.order_by.join(", ")));
    }
    sql
}

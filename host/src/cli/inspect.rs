//! `adstream check PLUGIN.wasm`: what a component is to the host — role and world, name and
//! version, what it imports and exports — and, given a configuration and sample input,
//! the columns it declares. Loading it runs the same checks as a pipeline would: a
//! component that imports anything beyond WASI and the host interface, or fits no role's
//! world, is refused with the reason.

use crate::plugin::{Limits, Plugin, PluginEngine};
use std::fmt::Write;
use std::path::Path;

/// A plugin's description, or why it is not one the host would run.
pub fn inspect(
    engine: &PluginEngine,
    path: &Path,
    configure: Option<adstream_sdk::Setup>,
) -> Result<String, String> {
    let p = engine.load(path, false).map_err(|e| e.to_string())?;
    let c = &p.compiled;
    let mut inst = p
        .instantiate("check".into(), &Limits::default(), 0)
        .map_err(|e| format!("{}: instantiating failed: {}", path.display(), e.describe()))?;
    let info = inst.info().clone();
    let world = match (c.role.name(), c.stateful) {
        ("validate", true) => "stateful-validate".to_string(),
        (role, _) => role.to_string(),
    };
    let mut out = format!(
        "{}: ok: {} plugin `{}` {} (world `{world}` of adstream:plugin@0.1.0{})\n",
        path.display(),
        c.role.name(),
        info.name,
        info.version,
        if c.stateful { ", keeps state" } else { "" }
    );
    let _ = writeln!(out, "  sha256:{}, {} bytes", c.hash, c.size);
    if !info.description.is_empty() {
        let _ = writeln!(out, "  {}", info.description);
    }
    let _ = writeln!(out, "  imports: {}", c.imports.join(", "));
    let _ = writeln!(out, "  exports: {}", c.exports.join(", "));
    out += "  sandbox: links to WASI (no files, sockets, environment; clocks at zero) and the host interface only\n";
    if let Some(setup) = configure {
        let fields = inst
            .configure(setup)
            .map_err(|e| format!("{}: configure failed: {}", path.display(), e.describe()))?;
        let cols: Vec<String> = fields
            .iter()
            .map(|f| {
                let null = if f.nullable { "?" } else { "" };
                format!("{} {}{null}", f.name, adstream_sdk::kind_name(f.kind))
            })
            .collect();
        let _ = writeln!(out, "  declares: {}", cols.join(", "));
    }
    Ok(out.trim_end().to_string())
}

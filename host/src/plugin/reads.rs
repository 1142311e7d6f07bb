//! Projection: a plugin that declared the input columns it reads (`host.reads`, during
//! `configure`) is handed only those; the others wait beside the call and are put back
//! in their places after it, so that everything downstream sees the whole batch.

use super::role::Role;
use adstream_sdk::{Batch, Column, Field, PluginError};

/// Checks a plugin's declaration against its role and input; the names in input order,
/// each once.
pub fn declared(role: Role, input: &[Field], names: &[String]) -> Result<Vec<String>, PluginError> {
    if !matches!(role, Role::Validate | Role::Aggregate | Role::Detect) {
        return Err(PluginError::SchemaMismatch(format!(
            "a {} plugin cannot declare the columns it reads (host.reads): its output rows \
             are built from its whole input; only validate, aggregate and detect plugins can",
            role.name()
        )));
    }
    if let Some(unknown) = names.iter().find(|n| !input.iter().any(|f| &f.name == *n)) {
        let have: Vec<&str> = input.iter().map(|f| f.name.as_str()).collect();
        return Err(PluginError::SchemaMismatch(format!(
            "declared that it reads `{}`, which its input does not have (it has: {})",
            super::text::cut(unknown.clone(), 128),
            have.join(", ")
        )));
    }
    Ok(input
        .iter()
        .filter(|f| names.contains(&f.name))
        .map(|f| f.name.clone())
        .collect())
}

/// Takes the columns not in `reads` out of `batch`, with their places.
pub fn project(batch: &mut Batch, reads: &[String]) -> Vec<(usize, Column)> {
    let mut aside = Vec::new();
    let columns = std::mem::take(&mut batch.columns);
    for (i, c) in columns.into_iter().enumerate() {
        match reads.contains(&c.name) {
            true => batch.columns.push(c),
            false => aside.push((i, c)),
        }
    }
    aside
}

/// Puts back what [`project`] took out, each column in its place.
pub fn unproject(batch: &mut Batch, aside: Vec<(usize, Column)>) {
    for (i, c) in aside {
        let at = i.min(batch.columns.len());
        batch.columns.insert(at, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{ColumnKind, I64Builder, field};

    fn batch(names: &[&str]) -> Batch {
        let columns = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut b = I64Builder::with_capacity(2);
                b.push(i as i64);
                b.push(10 + i as i64);
                b.finish(n)
            })
            .collect();
        Batch::from_columns(columns).unwrap()
    }

    #[test]
    fn only_the_declared_columns_cross_and_all_come_back_in_place() {
        let whole = batch(&["a", "b", "c", "d", "e"]);
        let mut b = whole.clone();
        let aside = project(&mut b, &["b".into(), "d".into()]);
        let names: Vec<&str> = b.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "d"]);
        assert_eq!(b.rows, 2);
        unproject(&mut b, aside);
        assert_eq!(b, whole);
    }

    #[test]
    fn declarations_are_checked_against_role_and_input() {
        let input = vec![
            field("a", ColumnKind::Int64, false),
            field("b", ColumnKind::Int64, false),
        ];
        let ok = declared(
            Role::Validate,
            &input,
            &["b".into(), "a".into(), "b".into()],
        );
        assert_eq!(ok.unwrap(), ["a", "b"]);
        let unknown = declared(Role::Aggregate, &input, &["c".into()]).unwrap_err();
        assert!(
            format!("{unknown:?}").contains("`c`, which its input does not have (it has: a, b)"),
            "{unknown:?}"
        );
        for role in [Role::Transform, Role::Format] {
            let e = declared(role, &input, &["a".into()]).unwrap_err();
            assert!(format!("{e:?}").contains("cannot declare"), "{e:?}");
        }
    }
}

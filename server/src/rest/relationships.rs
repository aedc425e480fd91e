//! Which foreign key joins a table to an embedded resource, PostgREST's way.
//!
//! An embed `target!hint(…)` names a table (or a foreign-key constraint, or for a to-one a
//! single foreign-key column); the hint, when given, picks among several candidates by
//! constraint name, column name, or (many-to-many) junction table name. No candidate is
//! `UNKNOWN_RELATIONSHIP` (400); more than one is `AMBIGUOUS_EMBED` (300 Multiple Choices,
//! as PostgREST), listing the candidates so the client can add a hint.
use super::schema_cache::{ForeignKey, SchemaCache, Table};
use crate::error::ApiError;
use axum::http::StatusCode;
use serde_json::json;

/// How a parent row relates to the embedded rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relationship<'c> {
    /// The parent holds the key (`books.author_id → authors`): at most one row, an object
    /// or null.
    ToOne {
        fk: &'c ForeignKey,
        target: &'c Table,
    },
    /// The target holds the key (`authors ← books.author_id`): an array.
    ToMany {
        fk: &'c ForeignKey,
        target: &'c Table,
    },
    /// Through a junction table whose two keys are part of its primary key: an array.
    ManyToMany {
        junction: &'c Table,
        /// junction → parent
        to_parent: &'c ForeignKey,
        /// junction → target
        to_target: &'c ForeignKey,
        target: &'c Table,
    },
}

impl<'c> Relationship<'c> {
    pub fn target(&self) -> &'c Table {
        match self {
            Relationship::ToOne { target, .. }
            | Relationship::ToMany { target, .. }
            | Relationship::ManyToMany { target, .. } => target,
        }
    }

    pub fn is_to_one(&self) -> bool {
        matches!(self, Relationship::ToOne { .. })
    }

    /// How the candidate is described in an ambiguity error (catalog names only).
    fn describe(&self) -> String {
        match self {
            Relationship::ToOne { fk, .. } => format!("many-to-one via {}", fk.name),
            Relationship::ToMany { fk, .. } => format!("one-to-many via {}", fk.name),
            Relationship::ManyToMany {
                junction,
                to_parent,
                to_target,
                ..
            } => format!(
                "many-to-many via {} ({}, {})",
                junction.name, to_parent.name, to_target.name
            ),
        }
    }

    fn matches_hint(&self, hint: &str) -> bool {
        match self {
            Relationship::ToOne { fk, .. } | Relationship::ToMany { fk, .. } => {
                fk.name == hint
                    || fk.columns.iter().any(|c| c == hint)
                    || fk.ref_columns.iter().any(|c| c == hint)
            }
            Relationship::ManyToMany {
                junction,
                to_parent,
                to_target,
                ..
            } => junction.name == hint || to_parent.name == hint || to_target.name == hint,
        }
    }
}

fn table_of<'c>(cache: &'c SchemaCache, schema: &str, name: &str) -> Option<&'c Table> {
    cache.table_ref(schema, name).map(|t| &**t)
}

/// Every relationship from `parent` that `name` can mean.
fn candidates<'c>(cache: &'c SchemaCache, parent: &Table, name: &str) -> Vec<Relationship<'c>> {
    let mut found = Vec::new();
    for fk in cache.foreign_keys() {
        // Many-to-one: the parent's key, named by target table, constraint or column.
        if fk.is_from(parent) {
            let by_column = fk.columns.len() == 1 && fk.columns[0] == name;
            if fk.ref_table == name || fk.name == name || by_column {
                if let Some(target) = table_of(cache, &fk.ref_schema, &fk.ref_table) {
                    found.push(Relationship::ToOne { fk, target });
                }
            }
        }
        // One-to-many: the target's key pointing here, named by target table or constraint.
        if fk.is_to(parent) && (fk.table == name || fk.name == name) {
            if let Some(target) = table_of(cache, &fk.schema, &fk.table) {
                found.push(Relationship::ToMany { fk, target });
            }
        }
    }
    // Many-to-many: a junction J with a key to the parent and another to `name`, both made
    // of primary-key columns of J.
    for to_parent in cache.foreign_keys().iter().filter(|fk| fk.is_to(parent)) {
        let Some(junction) = table_of(cache, &to_parent.schema, &to_parent.table) else {
            continue;
        };
        let in_pk = |fk: &ForeignKey| {
            !junction.primary_key.is_empty()
                && fk.columns.iter().all(|c| junction.primary_key.contains(c))
        };
        if !in_pk(to_parent) {
            continue;
        }
        for to_target in cache.foreign_keys() {
            if std::ptr::eq(to_target, to_parent)
                || !to_target.is_from(junction)
                || to_target.ref_table != name
                || !in_pk(to_target)
            {
                continue;
            }
            if let Some(target) = table_of(cache, &to_target.ref_schema, &to_target.ref_table) {
                found.push(Relationship::ManyToMany {
                    junction,
                    to_parent,
                    to_target,
                    target,
                });
            }
        }
    }
    found
}

/// Finds the one relationship `name!hint` means from `parent`.
pub fn find<'c>(
    cache: &'c SchemaCache,
    parent: &Table,
    name: &str,
    hint: Option<&str>,
) -> Result<Relationship<'c>, ApiError> {
    let mut found = candidates(cache, parent, name);
    if let Some(hint) = hint {
        found.retain(|r| r.matches_hint(hint));
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ApiError::bad_request(
            "UNKNOWN_RELATIONSHIP",
            if super::parse::is_plain_name(name) && hint.is_none_or(super::parse::is_plain_name)
            {
                format!(
                    "No relationship between \"{}\" and \"{name}\"{} in the schema cache",
                    parent.name,
                    hint.map(|h| format!(" (hint \"{h}\")")).unwrap_or_default()
                )
            } else {
                format!(
                    "No relationship from \"{}\" has that name in the schema cache",
                    parent.name
                )
            },
        )),
        _ => Err(ApiError::new(
            StatusCode::MULTIPLE_CHOICES,
            "AMBIGUOUS_EMBED",
            format!(
                "More than one relationship between \"{}\" and \"{name}\": add a hint, e.g. {name}!<constraint or column>",
                parent.name
            ),
        )
        .with_details(json!({
            "candidates": found.iter().map(Relationship::describe).collect::<Vec<_>>()
        }))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub use crate::rest::fixture::library;

    fn t<'a>(cache: &'a SchemaCache, name: &str) -> &'a Table {
        cache.table_ref("public", name).unwrap()
    }

    #[test]
    fn directions() {
        let c = library();
        let r = find(&c, t(&c, "comments"), "books", None).unwrap();
        assert!(r.is_to_one());
        assert_eq!(r.target().name, "books");
        let r = find(&c, t(&c, "books"), "comments", None).unwrap();
        assert!(matches!(r, Relationship::ToMany { .. }));
        let r = find(&c, t(&c, "books"), "tags", None).unwrap();
        assert!(matches!(r, Relationship::ManyToMany { .. }));
        let r = find(&c, t(&c, "tags"), "books", None).unwrap();
        assert!(matches!(r, Relationship::ManyToMany { .. }));
        // A to-one by its column name.
        let r = find(&c, t(&c, "books"), "author_id", None).unwrap();
        assert!(r.is_to_one());
    }

    #[test]
    fn ambiguity_and_hints() {
        let c = library();
        let e = find(&c, t(&c, "books"), "authors", None).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_ref()),
            (300, "AMBIGUOUS_EMBED")
        );
        assert_eq!(
            e.details.unwrap()["candidates"].as_array().unwrap().len(),
            2
        );
        let r = find(&c, t(&c, "books"), "authors", Some("books_editor_id_fkey")).unwrap();
        assert!(matches!(r, Relationship::ToOne { fk, .. } if fk.columns == ["editor_id"]));
        let r = find(&c, t(&c, "books"), "authors", Some("author_id")).unwrap();
        assert!(matches!(r, Relationship::ToOne { fk, .. } if fk.columns == ["author_id"]));
        // authors → books is ambiguous too (two keys point at authors).
        assert_eq!(
            find(&c, t(&c, "authors"), "books", None).unwrap_err().code,
            "AMBIGUOUS_EMBED"
        );
        assert!(find(&c, t(&c, "authors"), "books", Some("editor_id")).is_ok());
    }

    #[test]
    fn unknown() {
        let c = library();
        let e = find(&c, t(&c, "authors"), "comments", None).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_ref()),
            (400, "UNKNOWN_RELATIONSHIP")
        );
        let e = find(&c, t(&c, "books"), "authors", Some("nope")).unwrap_err();
        assert_eq!(e.code, "UNKNOWN_RELATIONSHIP");
        let e = find(&c, t(&c, "books"), "x;drop", None).unwrap_err();
        assert!(!e.message.contains("drop"));
    }
}

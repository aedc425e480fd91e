//! SQL generation from the typed tree ([`super::tree`]): [`read`] for GET/HEAD and the
//! representation of writes, [`write`] for INSERT/UPDATE/DELETE.
//!
//! The rules, each of which the tests check:
//! - identifiers come only from the schema cache (and aliases, which the parser restricts
//!   to plain identifiers), and are always double-quoted (with `"` doubled);
//! - values are never written into the SQL text: each is a bind parameter passed as text and
//!   cast to the column's type (`$1::text::integer`), so PostgreSQL parses it with the type's
//!   own input function, exactly as if it were a literal of that type; JSON path keys and
//!   text-search configurations are bind parameters too;
//! - the only other things spliced in are fixed keywords, the cached `format_type` of a
//!   column (which PostgreSQL itself produced), casts from a fixed list, and integers the
//!   builder formats itself (JSON array indexes).
//!
//! Every statement returns at most one row whose first column is the response body as
//! `text` (JSON or CSV built by PostgreSQL), so the HTTP layer never converts values itself.
pub mod read;
pub mod write;

use super::schema_cache::Table;
use tokio_postgres::types::ToSql;

/// A bind parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    TextArray(Vec<String>),
    Int(i64),
}

/// SQL text plus its parameters, `$1` being `params[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Statement {
    /// The parameters as `tokio_postgres` takes them.
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| match p {
                Param::Text(s) => s as &(dyn ToSql + Sync),
                Param::TextArray(v) => v as &(dyn ToSql + Sync),
                Param::Int(i) => i as &(dyn ToSql + Sync),
            })
            .collect()
    }
}

/// `"name"` with any `"` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn relation(table: &Table) -> String {
    format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.name)
    )
}

/// The state of one statement being built: its parameters and the next table alias.
#[derive(Debug, Default)]
pub struct Builder {
    params: Vec<Param>,
    aliases: usize,
}

impl Builder {
    /// Adds a parameter; returns its placeholder (`$n`).
    pub fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    /// A fresh alias (`_t0`, `_t1`, …): every relation in a statement gets its own, so a
    /// correlated subquery can always name its parent.
    pub fn alias(&mut self) -> String {
        let alias = format!("_t{}", self.aliases);
        self.aliases += 1;
        alias
    }

    pub fn finish(self, sql: String) -> Statement {
        Statement {
            sql,
            params: self.params,
        }
    }
}

pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::schema_cache::tests::posts;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("posts"), "\"posts\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(relation(&posts()), "\"public\".\"posts\"");
    }

    #[test]
    fn placeholders_and_aliases() {
        let mut b = Builder::default();
        assert_eq!(b.param(Param::Int(1)), "$1");
        assert_eq!(b.param(Param::Text("x".into())), "$2");
        assert_eq!((b.alias(), b.alias()), ("_t0".to_owned(), "_t1".to_owned()));
        let s = b.finish("SELECT".into());
        assert_eq!(s.param_refs().len(), 2);
        assert_eq!(to_i64(u64::MAX), i64::MAX);
    }
}

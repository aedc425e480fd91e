//! A small fixed schema (authors, books, comments, tags, book_tags) for the parser's tests,
//! property tests and fuzz target: every kind of relationship, an ambiguous one, and
//! columns of the types the operators care about (jsonb, text[], int4range, tsvector).
use super::schema_cache::{Column, ForeignKey, RelationKind, SchemaCache, Table};

fn col(name: &str, ty: &str) -> Column {
    Column {
        name: name.into(),
        type_sql: ty.into(),
        not_null: false,
        has_default: false,
    }
}

fn table(name: &str, columns: Vec<Column>, pk: &[&str]) -> Table {
    Table {
        schema: "public".into(),
        name: name.into(),
        kind: RelationKind::Table,
        columns,
        primary_key: pk.iter().map(|s| (*s).to_owned()).collect(),
        rls_enabled: true,
        security_invoker: false,
        unprotected_source: false,
    }
}

fn fk(name: &str, from: &str, cols: &[&str], to: &str, ref_cols: &[&str]) -> ForeignKey {
    ForeignKey {
        name: name.into(),
        schema: "public".into(),
        table: from.into(),
        columns: cols.iter().map(|s| (*s).to_owned()).collect(),
        ref_schema: "public".into(),
        ref_table: to.into(),
        ref_columns: ref_cols.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// authors ← books (author_id, editor_id both → authors) ← comments; tags ↔ books via
/// book_tags (PK (book_id, tag_id)).
pub fn library() -> SchemaCache {
    SchemaCache::from_parts(
        [
            table(
                "authors",
                vec![col("id", "integer"), col("name", "text")],
                &["id"],
            ),
            table(
                "books",
                vec![
                    col("id", "integer"),
                    col("title", "text"),
                    col("author_id", "integer"),
                    col("editor_id", "integer"),
                    col("data", "jsonb"),
                    col("tags", "text[]"),
                    col("during", "int4range"),
                    col("doc", "tsvector"),
                ],
                &["id"],
            ),
            table(
                "comments",
                vec![
                    col("id", "integer"),
                    col("book_id", "integer"),
                    col("body", "text"),
                    col("status", "text"),
                ],
                &["id"],
            ),
            table(
                "tags",
                vec![col("id", "integer"), col("label", "text")],
                &["id"],
            ),
            table(
                "book_tags",
                vec![col("book_id", "integer"), col("tag_id", "integer")],
                &["book_id", "tag_id"],
            ),
        ],
        vec![
            fk(
                "books_author_id_fkey",
                "books",
                &["author_id"],
                "authors",
                &["id"],
            ),
            fk(
                "books_editor_id_fkey",
                "books",
                &["editor_id"],
                "authors",
                &["id"],
            ),
            fk(
                "comments_book_id_fkey",
                "comments",
                &["book_id"],
                "books",
                &["id"],
            ),
            fk(
                "book_tags_book_id_fkey",
                "book_tags",
                &["book_id"],
                "books",
                &["id"],
            ),
            fk(
                "book_tags_tag_id_fkey",
                "book_tags",
                &["tag_id"],
                "tags",
                &["id"],
            ),
        ],
    )
}

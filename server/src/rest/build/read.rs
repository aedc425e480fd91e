//! SELECT statements: the rows of a [`Node`] with their embeds, as one JSON (or CSV) text.
//!
//! Embedding is correlated subqueries in the select list, so the whole response is ONE
//! statement and every embedded table is read under the request's role and RLS exactly as
//! if it were queried alone: a hidden row is never nested, a hidden to-one target is null.
//!
//! ```text
//! SELECT <body>, count(*)::int8, <total>
//! FROM (SELECT _t0."id" AS "id",
//!              (SELECT coalesce(json_agg(_e1), '[]') FROM (SELECT … FROM "public"."comments" _t1
//!                  WHERE _t1."book_id" = _t0."id" AND <filters> ORDER BY … LIMIT …) _e1) AS "comments",
//!              (SELECT row_to_json(_e2) FROM (SELECT … FROM "public"."authors" _t2
//!                  WHERE _t2."id" = _t0."author_id" LIMIT 1) _e2) AS "author"
//!       FROM "public"."books" _t0 WHERE <filters> ORDER BY … LIMIT $n OFFSET $m) _r
//! ```
use super::{quote_ident, relation, to_i64, Builder, Param, Statement};
use crate::rest::parse::range::Page;
use crate::rest::relationships::Relationship;
use crate::rest::tree::{
    Condition, Embed, Field, Filter, JsonKey, LogicOp, Node, Nulls, Operation, OrderTerm,
    SelectItem,
};

/// What the first column of the statement holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A JSON array of the rows.
    Json,
    /// The first row as a JSON object (the caller checks that there was exactly one).
    Single,
    /// CSV: a header line, then one line per row.
    Csv,
    /// Nothing (HEAD): NULL.
    None,
}

/// What the third column of a read holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    None,
    /// `count(*)` of every matching row.
    Exact,
    /// `count(*)` of at most this many rows (for `count=estimated`).
    Capped(u64),
}

/// The read of `root`: one row `(body text, returned int8, total int8)`.
pub fn read(root: &Node<'_>, page: Page, body: Body, total: Total, max_rows: u64) -> Statement {
    let mut b = Builder::default();
    let body = body_expr(body, root, &mut b);
    let alias = b.alias();
    let projection = projection(root, &alias, max_rows, &mut b);
    // Built once, used twice (rows and total): the same placeholders mean the same values.
    let conditions = where_clause(&node_conditions(root, &alias, &mut b));
    let rel = relation(root.table);
    let total = match total {
        Total::None => "NULL::int8".to_owned(),
        Total::Exact => format!("(SELECT count(*) FROM {rel} {alias}{conditions})"),
        Total::Capped(cap) => {
            let cap = b.param(Param::Int(to_i64(cap.saturating_add(1))));
            format!(
                "(SELECT count(*) FROM (SELECT 1 FROM {rel} {alias}{conditions} LIMIT {cap}) _c)"
            )
        }
    };
    let order = order_clause(&root.order, &alias, &mut b);
    let limit = b.param(Param::Int(to_i64(page.limit)));
    let offset = match page.offset {
        0 => String::new(),
        n => format!(" OFFSET {}", b.param(Param::Int(to_i64(n)))),
    };
    let sql = format!(
        "SELECT {body}, count(*)::int8, {total} FROM (SELECT {projection} FROM {rel} {alias}{conditions}{order} LIMIT {limit}{offset}) _r"
    );
    b.finish(sql)
}

/// `EXPLAIN (FORMAT JSON)` of the rows `root` matches: the planner's row estimate is the
/// `count=planned` total.
pub fn explain_count(root: &Node<'_>) -> Statement {
    let mut b = Builder::default();
    let alias = b.alias();
    let conditions = where_clause(&node_conditions(root, &alias, &mut b));
    let sql = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM {} {alias}{conditions}",
        relation(root.table)
    );
    b.finish(sql)
}

/// The body expression over the rows `_r`.
pub fn body_expr(body: Body, node: &Node<'_>, b: &mut Builder) -> String {
    match body {
        Body::Json => "coalesce(json_agg(_r), '[]')::text".to_owned(),
        Body::Single => "(json_agg(_r) -> 0)::text".to_owned(),
        Body::None => "NULL::text".to_owned(),
        Body::Csv => {
            let names = node.output_names();
            let header = b.param(Param::Text(
                names
                    .iter()
                    .map(|n| csv_field(n))
                    .collect::<Vec<_>>()
                    .join(","),
            ));
            let cells: Vec<String> = names
                .iter()
                .map(|n| {
                    let v = format!("_r.{}::text", quote_ident(n));
                    // RFC 4180: quote a field that has a quote, comma or line break.
                    format!(
                        "CASE WHEN {v} IS NULL THEN '' WHEN {v} ~ E'[\",\\\\r\\\\n]' THEN '\"' || replace({v}, '\"', '\"\"') || '\"' ELSE {v} END"
                    )
                })
                .collect();
            let row = if cells.is_empty() {
                "''".to_owned()
            } else {
                cells.join(" || ',' || ")
            };
            format!("{header}::text || coalesce(E'\\n' || string_agg({row}, E'\\n'), '')")
        }
    }
}

/// A CSV header field, quoted when needed (names come from the cache or are aliases).
fn csv_field(name: &str) -> String {
    if name.contains(['"', ',', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_owned()
    }
}

/// The select list of `node` read from `alias`: columns `AS` their output names, embeds as
/// correlated subqueries.
pub fn projection(node: &Node<'_>, alias: &str, max_rows: u64, b: &mut Builder) -> String {
    let mut items = Vec::new();
    for item in &node.select {
        match item {
            SelectItem::Column(c) => {
                let expr = field_sql(&c.field, alias, b);
                let expr = match c.cast {
                    Some(cast) => format!("CAST({expr} AS {})", cast.sql()),
                    None => expr,
                };
                items.push(format!("{expr} AS {}", quote_ident(c.output_name())));
            }
            SelectItem::Embed(e) if !e.hidden => {
                let sub = embed_subquery(e, alias, max_rows, b);
                items.push(format!("{sub} AS {}", quote_ident(&e.name)));
            }
            SelectItem::Embed(_) => {}
        }
    }
    if items.is_empty() {
        // Only hidden embeds: rows without columns are still rows.
        "NULL AS \"_\"".to_owned()
    } else {
        items.join(", ")
    }
}

/// The FROM and the join conditions of an embed read as `alias` under `parent`.
fn embed_source(
    embed: &Embed<'_>,
    alias: &str,
    parent: &str,
    b: &mut Builder,
) -> (String, Vec<String>) {
    let eq = |left: &str, lcols: &[String], right: &str, rcols: &[String]| -> Vec<String> {
        lcols
            .iter()
            .zip(rcols)
            .map(|(l, r)| format!("{left}.{} = {right}.{}", quote_ident(l), quote_ident(r)))
            .collect()
    };
    match &embed.relationship {
        Relationship::ToOne { fk, target } => (
            format!("{} {alias}", relation(target)),
            eq(alias, &fk.ref_columns, parent, &fk.columns),
        ),
        Relationship::ToMany { fk, target } => (
            format!("{} {alias}", relation(target)),
            eq(alias, &fk.columns, parent, &fk.ref_columns),
        ),
        Relationship::ManyToMany {
            junction,
            to_parent,
            to_target,
            target,
        } => {
            let j = b.alias();
            let on = eq(&j, &to_target.columns, alias, &to_target.ref_columns).join(" AND ");
            (
                format!(
                    "{} {alias} JOIN {} {j} ON {on}",
                    relation(target),
                    relation(junction)
                ),
                eq(&j, &to_parent.columns, parent, &to_parent.ref_columns),
            )
        }
    }
}

/// `(SELECT row_to_json(…) …)` for a to-one, `(SELECT coalesce(json_agg(…), '[]') …)` for
/// the others.
fn embed_subquery(embed: &Embed<'_>, parent: &str, max_rows: u64, b: &mut Builder) -> String {
    let alias = b.alias();
    let (from, mut conditions) = embed_source(embed, &alias, parent, b);
    conditions.extend(node_conditions(&embed.node, &alias, b));
    let projection = projection(&embed.node, &alias, max_rows, b);
    let row = format!("_e{}", &alias[2..]);
    let conditions = where_clause(&conditions);
    if embed.relationship.is_to_one() {
        return format!(
            "(SELECT row_to_json({row}) FROM (SELECT {projection} FROM {from}{conditions} LIMIT 1) {row})"
        );
    }
    let order = order_clause(&embed.node.order, &alias, b);
    let limit = embed.node.limit.unwrap_or(max_rows).min(max_rows);
    let limit = b.param(Param::Int(to_i64(limit)));
    let offset = match embed.node.offset {
        None | Some(0) => String::new(),
        Some(n) => format!(" OFFSET {}", b.param(Param::Int(to_i64(n)))),
    };
    format!(
        "(SELECT coalesce(json_agg({row}), '[]') FROM (SELECT {projection} FROM {from}{conditions}{order} LIMIT {limit}{offset}) {row})"
    )
}

/// The conditions of a node read as `alias`: its filters, and an `EXISTS` for each
/// `!inner` embed.
pub fn node_conditions(node: &Node<'_>, alias: &str, b: &mut Builder) -> Vec<String> {
    let mut conditions: Vec<String> = node
        .filters
        .iter()
        .map(|c| condition_sql(c, alias, b))
        .collect();
    for embed in node.embeds().filter(|e| e.inner) {
        let inner = b.alias();
        let (from, mut conds) = embed_source(embed, &inner, alias, b);
        conds.extend(node_conditions(&embed.node, &inner, b));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM {from}{})",
            where_clause(&conds)
        ));
    }
    conditions
}

pub fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// A field read from `alias`: the quoted column, then `-> $n::text` per JSON key (or
/// `-> 3` per array index).
pub fn field_sql(field: &Field<'_>, alias: &str, b: &mut Builder) -> String {
    let mut expr = format!("{alias}.{}", quote_ident(&field.column.name));
    for step in &field.path {
        let arrow = if step.as_text { "->>" } else { "->" };
        let key = match &step.key {
            JsonKey::Name(name) => format!("{}::text", b.param(Param::Text(name.clone()))),
            JsonKey::Index(i) => format!("({i})"),
        };
        expr = format!("({expr} {arrow} {key})");
    }
    expr
}

pub fn condition_sql(condition: &Condition<'_>, alias: &str, b: &mut Builder) -> String {
    match condition {
        Condition::Filter(f) => filter_sql(f, alias, b),
        Condition::Logic {
            op,
            negated,
            children,
        } => {
            let joiner = match op {
                LogicOp::And => " AND ",
                LogicOp::Or => " OR ",
            };
            let parts: Vec<String> = children
                .iter()
                .map(|c| condition_sql(c, alias, b))
                .collect();
            let group = format!("({})", parts.join(joiner));
            if *negated {
                format!("NOT {group}")
            } else {
                group
            }
        }
    }
}

fn filter_sql(f: &Filter<'_>, alias: &str, b: &mut Builder) -> String {
    let expr = field_sql(&f.field, alias, b);
    let ty = f.field.type_sql();
    let sql = match &f.operation {
        Operation::Scalar(op, value) => {
            let p = b.param(Param::Text(value.clone()));
            if op.is_pattern() {
                format!("{expr}::text {} {p}::text", op.sql())
            } else {
                format!("{expr} {} {p}::text::{ty}", op.sql())
            }
        }
        Operation::Quantified(op, quantifier, values) => {
            let p = b.param(Param::TextArray(values.clone()));
            let q = match quantifier {
                crate::rest::tree::Quantifier::Any => "ANY",
                crate::rest::tree::Quantifier::All => "ALL",
            };
            if op.is_pattern() {
                format!("{expr}::text {} {q}({p}::text[])", op.sql())
            } else {
                format!("{expr} {} {q}({p}::text[]::{ty}[])", op.sql())
            }
        }
        Operation::In(values) if values.is_empty() => "false".to_owned(),
        Operation::In(values) => {
            let p = b.param(Param::TextArray(values.clone()));
            format!("{expr} = ANY({p}::text[]::{ty}[])")
        }
        Operation::Is(value) => format!("{expr} {}", value.sql()),
        Operation::IsDistinct(value) => {
            let p = b.param(Param::Text(value.clone()));
            format!("{expr} IS DISTINCT FROM {p}::text::{ty}")
        }
        Operation::FullText(op, config, query) => {
            let config = config
                .as_ref()
                .map(|c| format!("{}::text::regconfig", b.param(Param::Text(c.clone()))));
            let q = b.param(Param::Text(query.clone()));
            let vector = match (&config, ty == "tsvector") {
                (_, true) => expr,
                (Some(c), false) => format!("to_tsvector({c}, {expr}::text)"),
                (None, false) => format!("to_tsvector({expr}::text)"),
            };
            let query = match &config {
                Some(c) => format!("{}({c}, {q}::text)", op.function()),
                None => format!("{}({q}::text)", op.function()),
            };
            format!("{vector} @@ {query}")
        }
        Operation::Range(op, value) => {
            let p = b.param(Param::Text(value.clone()));
            format!("{expr} {} {p}::text::{ty}", op.sql())
        }
    };
    if f.negated {
        format!("NOT ({sql})")
    } else {
        sql
    }
}

pub fn order_clause(order: &[OrderTerm<'_>], alias: &str, b: &mut Builder) -> String {
    if order.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = order
        .iter()
        .map(|o| {
            let mut s = format!(
                "{} {}",
                field_sql(&o.field, alias, b),
                if o.descending { "DESC" } else { "ASC" }
            );
            match o.nulls {
                Some(Nulls::First) => s.push_str(" NULLS FIRST"),
                Some(Nulls::Last) => s.push_str(" NULLS LAST"),
                None => {}
            }
            s
        })
        .collect();
    format!(" ORDER BY {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::parse::{decode_pairs, parse_query, Purpose};
    use crate::rest::relationships::tests::library;
    use crate::rest::schema_cache::tests::posts;
    use crate::rest::schema_cache::SchemaCache;

    const EVIL: &str = "x'); DROP TABLE posts; --";

    fn enc(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    fn stmt(raw: &str, cache: &SchemaCache, table: &str, body: Body, total: Total) -> Statement {
        let t = cache.table_ref("public", table).unwrap();
        let q = parse_query(&decode_pairs(Some(raw)).unwrap(), cache, t, Purpose::Read).unwrap();
        let page = crate::rest::parse::range::page(q.root.limit, q.root.offset, None, 1000);
        read(&q.root, page, body, total, 1000)
    }

    #[test]
    fn plain_read() {
        let c = SchemaCache::from_tables([posts()]);
        let s = stmt("select=id,title", &c, "posts", Body::Json, Total::None);
        assert_eq!(
            s.sql,
            "SELECT coalesce(json_agg(_r), '[]')::text, count(*)::int8, NULL::int8 FROM \
             (SELECT _t0.\"id\" AS \"id\", _t0.\"title\" AS \"title\" FROM \"public\".\"posts\" _t0 LIMIT $1) _r"
        );
        assert_eq!(s.params, vec![Param::Int(1000)]);
    }

    #[test]
    fn filters_order_and_values_as_parameters() {
        let c = SchemaCache::from_tables([posts()]);
        let raw = format!("select=id&title=eq.{}&views=gt.3&published=is.null&id=in.(a,b)&title=not.like.*x*&order=views.desc.nullsfirst&limit=5000&offset=20&or=(views.lt.1,and(title.eq.a,views.gte.2))", enc(EVIL));
        let s = stmt(&raw, &c, "posts", Body::Json, Total::Exact);
        let where_ = "WHERE _t0.\"title\" = $1::text::text AND _t0.\"views\" > $2::text::integer AND _t0.\"published\" IS NULL \
             AND _t0.\"id\" = ANY($3::text[]::uuid[]) AND NOT (_t0.\"title\"::text LIKE $4::text) \
             AND (_t0.\"views\" < $5::text::integer OR (_t0.\"title\" = $6::text::text AND _t0.\"views\" >= $7::text::integer))";
        assert_eq!(
            s.sql,
            format!(
                "SELECT coalesce(json_agg(_r), '[]')::text, count(*)::int8, (SELECT count(*) FROM \"public\".\"posts\" _t0 {where_}) \
                 FROM (SELECT _t0.\"id\" AS \"id\" FROM \"public\".\"posts\" _t0 {where_} \
                 ORDER BY _t0.\"views\" DESC NULLS FIRST LIMIT $8 OFFSET $9) _r"
            )
        );
        assert_eq!(s.params[0], Param::Text(EVIL.into()));
        assert_eq!(s.params[7], Param::Int(1000)); // capped at max_rows
        assert_eq!(s.params[8], Param::Int(20));
        assert!(!s.sql.contains("DROP"));
    }

    #[test]
    fn every_operator_shape() {
        let c = library();
        let s = stmt(
            "select=id&title=match.^a&title=imatch.b&tags=cs.{a,b}&during=adj.[1,5)&doc=fts(english).cat&title=plfts.dog&title=wfts.x&id=isdistinct.3&id=eq(any).{1,2}&title=ilike(all).{a*,*b}&data->a->>b=eq.x&data->0=eq.1&tags=ov.{c}&id=in.()",
            &c,
            "books",
            Body::Json,
            Total::None,
        );
        for part in [
            "_t0.\"title\"::text ~ $1::text",
            "_t0.\"title\"::text ~* $2::text",
            "_t0.\"tags\" @> $3::text::text[]",
            "_t0.\"during\" -|- $4::text::int4range",
            "_t0.\"doc\" @@ to_tsquery($5::text::regconfig, $6::text)",
            "to_tsvector(_t0.\"title\"::text) @@ plainto_tsquery($7::text)",
            "websearch_to_tsquery($8::text)",
            "_t0.\"id\" IS DISTINCT FROM $9::text::integer",
            "_t0.\"id\" = ANY($10::text[]::integer[])",
            "_t0.\"title\"::text ILIKE ALL($11::text[])",
            "((_t0.\"data\" -> $12::text) ->> $13::text) = $14::text::text",
            "(_t0.\"data\" -> (0)) = $15::text::jsonb",
            "_t0.\"tags\" && $16::text::text[]",
            "AND false LIMIT",
        ] {
            assert!(s.sql.contains(part), "{part} not in {}", s.sql);
        }
        assert_eq!(s.params[4], Param::Text("english".into()));
    }

    #[test]
    fn embeds_are_correlated_subqueries() {
        let c = library();
        let s = stmt(
            "select=title,writer:authors!author_id(name),comments(body)&comments.status=eq.ok&comments.order=id.desc&comments.limit=2",
            &c,
            "books",
            Body::Json,
            Total::None,
        );
        assert_eq!(
            s.sql,
            "SELECT coalesce(json_agg(_r), '[]')::text, count(*)::int8, NULL::int8 FROM (SELECT _t0.\"title\" AS \"title\", \
             (SELECT row_to_json(_e1) FROM (SELECT _t1.\"name\" AS \"name\" FROM \"public\".\"authors\" _t1 \
             WHERE _t1.\"id\" = _t0.\"author_id\" LIMIT 1) _e1) AS \"writer\", \
             (SELECT coalesce(json_agg(_e2), '[]') FROM (SELECT _t2.\"body\" AS \"body\" FROM \"public\".\"comments\" _t2 \
             WHERE _t2.\"book_id\" = _t0.\"id\" AND _t2.\"status\" = $1::text::text ORDER BY _t2.\"id\" DESC LIMIT $2) _e2) AS \"comments\" \
             FROM \"public\".\"books\" _t0 LIMIT $3) _r"
        );
        assert_eq!(s.params[1], Param::Int(2));
    }

    #[test]
    fn inner_and_many_to_many() {
        let c = library();
        let s = stmt(
            "select=id,comments!inner()&comments.status=eq.ok",
            &c,
            "books",
            Body::Json,
            Total::None,
        );
        assert!(s.sql.contains(
            "FROM \"public\".\"books\" _t0 WHERE EXISTS (SELECT 1 FROM \"public\".\"comments\" _t1 WHERE _t1.\"book_id\" = _t0.\"id\" AND _t1.\"status\" = $1::text::text) LIMIT"
        ), "{}", s.sql);
        assert!(!s.sql.contains("AS \"comments\""));
        let s = stmt(
            "select=id,tags(label)",
            &c,
            "books",
            Body::Json,
            Total::None,
        );
        assert!(s.sql.contains(
            "FROM \"public\".\"tags\" _t1 JOIN \"public\".\"book_tags\" _t2 ON _t2.\"tag_id\" = _t1.\"id\" WHERE _t2.\"book_id\" = _t0.\"id\""
        ), "{}", s.sql);
    }

    #[test]
    fn bodies_and_totals() {
        let c = SchemaCache::from_tables([posts()]);
        let s = stmt(
            "select=id,t:title",
            &c,
            "posts",
            Body::Csv,
            Total::Capped(100),
        );
        assert!(s.sql.starts_with(
            "SELECT $1::text || coalesce(E'\\n' || string_agg(CASE WHEN _r.\"id\"::text IS NULL"
        ));
        assert_eq!(s.params[0], Param::Text("id,t".into()));
        assert!(s.sql.contains("LIMIT $2) _c)"));
        assert_eq!(s.params[1], Param::Int(101));
        let s = stmt("", &c, "posts", Body::Single, Total::None);
        assert!(s.sql.starts_with("SELECT (json_agg(_r) -> 0)::text"));
        let s = stmt("", &c, "posts", Body::None, Total::None);
        assert!(s.sql.starts_with("SELECT NULL::text"));
        let t = c.table_ref("public", "posts").unwrap();
        let q = parse_query(
            &decode_pairs(Some("views=gt.1")).unwrap(),
            &c,
            t,
            Purpose::Read,
        )
        .unwrap();
        let e = explain_count(&q.root);
        assert_eq!(
            e.sql,
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM \"public\".\"posts\" _t0 WHERE _t0.\"views\" > $1::text::integer"
        );
    }

    #[test]
    fn casts_are_fixed_type_names() {
        let c = SchemaCache::from_tables([posts()]);
        let s = stmt(
            "select=views::text,n:views::int8",
            &c,
            "posts",
            Body::Json,
            Total::None,
        );
        assert!(s.sql.contains(
            "CAST(_t0.\"views\" AS text) AS \"views\", CAST(_t0.\"views\" AS bigint) AS \"n\""
        ));
    }
}

//! The SQL of one `/rpc` call: a chosen [`Function`], the client's arguments, and the
//! [`ResultQuery`] over its result.
//!
//! The rules (the unit tests check each):
//! - the function and argument names come only from the function cache, and are always
//!   double-quoted; calls use named notation (`"f"("a" => ...)`), so the overload PostgreSQL
//!   picks is the one the cache chose;
//! - the arguments are never written into the SQL text: the client's JSON object is one bind
//!   parameter, turned into typed values inside PostgreSQL by `json_to_record($1::text::json)
//!   AS _args("a" integer, ...)`, the cached argument types giving the column list. This is
//!   how PostgREST passes arguments, and it keeps every JSON value exact (numbers are not
//!   parsed by the server, arrays and objects reach array, json and composite arguments as
//!   themselves);
//! - filter values are bind parameters cast to the result column's type, as in the tables
//!   API.
//!
//! Every statement answers in one row: for a set, the JSON array (text), the number of rows
//! in it, the total when asked for (`Prefer: count=exact`), and its first element (for
//! `Accept: application/vnd.pgrst.object+json`).
use super::result_query::{FilterOp, ResultQuery};
use super::{Argument, Function, Returns};
use crate::rest::build::quote_ident;
use tokio_postgres::types::ToSql;

/// The arguments of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallArgs<'f> {
    /// Named arguments: these (in the function's order) are given, the others take their
    /// defaults. `json` is a JSON object holding (at least) their values.
    Named {
        given: Vec<&'f Argument>,
        json: String,
    },
    /// The whole request body as the single unnamed json/jsonb argument.
    WholeBody(String),
}

/// A bind parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    TextArray(Vec<String>),
    Int(i64),
}

/// What the statement's single row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Nothing worth reading (`RETURNS void`).
    Void,
    /// One JSON text (`null` when the function returned NULL).
    Value,
    /// `(array text, rows int8, total int8 or NULL, first element text or NULL)`.
    Set,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatement {
    pub sql: String,
    pub params: Vec<Param>,
    pub shape: Shape,
}

impl CallStatement {
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

/// How many rows a set result may hold, and whether to count them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// `api.max_rows`: the cap on `limit`, and the limit when none is given.
    pub max_rows: u64,
    pub count_total: bool,
}

#[derive(Default)]
struct Params(Vec<Param>);

impl Params {
    fn push(&mut self, p: Param) -> String {
        self.0.push(p);
        format!("${}", self.0.len())
    }
}

/// The `FROM` items that supply the arguments (if any) and the call expression.
fn call_parts(f: &Function, args: &CallArgs<'_>, params: &mut Params) -> (Option<String>, String) {
    let function = format!("{}.{}", quote_ident(&f.schema), quote_ident(&f.name));
    match args {
        CallArgs::WholeBody(body) => {
            let p = params.push(Param::Text(body.clone()));
            let ty = f
                .arguments
                .first()
                .map(|a| a.type_sql.as_str())
                .unwrap_or("json");
            (None, format!("{function}({p}::text::{ty})"))
        }
        CallArgs::Named { given, .. } if given.is_empty() => (None, format!("{function}()")),
        CallArgs::Named { given, json } => {
            let p = params.push(Param::Text(json.clone()));
            let definitions: Vec<String> = given
                .iter()
                .map(|a| format!("{} {}", quote_ident(&a.name), a.type_sql))
                .collect();
            let named: Vec<String> = given
                .iter()
                .map(|a| {
                    let name = quote_ident(&a.name);
                    let variadic = if a.variadic { "VARIADIC " } else { "" };
                    format!("{variadic}{name} => _args.{name}")
                })
                .collect();
            (
                Some(format!(
                    "pg_catalog.json_to_record({p}::text::json) AS _args({})",
                    definitions.join(", ")
                )),
                format!("{function}({})", named.join(", ")),
            )
        }
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The projection of a row result (`*`, or the selected columns of the relation `from` with
/// their renames).
/// The result columns to return. `*` is qualified (`_f.*`): the call's FROM list also holds
/// the decoded arguments (`_args`), which must never be echoed back in the result.
fn projection(q: &ResultQuery<'_>, from: &str) -> String {
    match &q.select {
        None => format!("{from}.*"),
        Some(items) => items
            .iter()
            .map(|s| {
                let column = format!("{from}.{}", quote_ident(&s.column.name));
                match &s.alias {
                    Some(alias) => format!("{column} AS {}", quote_ident(alias)),
                    None => column,
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn where_clause(q: &ResultQuery<'_>, params: &mut Params) -> String {
    if q.filters.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = q
        .filters
        .iter()
        .map(|f| {
            let col = format!("_f.{}", quote_ident(&f.column.name));
            let ty = &f.column.type_sql;
            let expr = match &f.op {
                FilterOp::Compare(op, value) => {
                    let p = params.push(Param::Text(value.clone()));
                    format!("{col} {op} {p}::text::{ty}")
                }
                FilterOp::Like(op, pattern) => {
                    let p = params.push(Param::Text(pattern.clone()));
                    format!("{col}::text {op} {p}::text")
                }
                FilterOp::In(values) if values.is_empty() => "false".to_owned(),
                FilterOp::In(values) => {
                    let p = params.push(Param::TextArray(values.clone()));
                    format!("{col} = ANY({p}::text[]::{ty}[])")
                }
                FilterOp::Is(what) => format!("{col} IS {what}"),
            };
            if f.negated {
                format!("NOT ({expr})")
            } else {
                expr
            }
        })
        .collect();
    format!(" WHERE {}", parts.join(" AND "))
}

fn order_clause(q: &ResultQuery<'_>) -> String {
    if q.order.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = q
        .order
        .iter()
        .map(|o| {
            // Qualified, so a rename in `select` cannot redirect the order to another column.
            let mut s = format!(
                "_src.{} {}",
                quote_ident(&o.column.name),
                if o.descending { "DESC" } else { "ASC" }
            );
            match o.nulls_first {
                Some(true) => s.push_str(" NULLS FIRST"),
                Some(false) => s.push_str(" NULLS LAST"),
                None => {}
            }
            s
        })
        .collect();
    format!(" ORDER BY {}", parts.join(", "))
}

/// Builds the statement. The caller has checked that `q` only shapes rows where there are
/// rows (see [`ResultQuery::shapes_rows`]).
pub fn build(
    f: &Function,
    args: &CallArgs<'_>,
    q: &ResultQuery<'_>,
    paging: Paging,
) -> CallStatement {
    let mut params = Params::default();
    let (from, call) = call_parts(f, args, &mut params);
    let from_args = |lateral: &str| match &from {
        Some(from) => format!(" FROM {from}, {lateral}"),
        None => format!(" FROM {lateral}"),
    };
    let (sql, shape) = match &f.returns {
        Returns::Void => (
            match &from {
                Some(from) => format!("SELECT {call} FROM {from}"),
                None => format!("SELECT {call}"),
            },
            Shape::Void,
        ),
        Returns::Scalar { set: false } => (
            match &from {
                Some(from) => format!("SELECT pg_catalog.to_json({call})::text FROM {from}"),
                None => format!("SELECT pg_catalog.to_json({call})::text"),
            },
            Shape::Value,
        ),
        Returns::Rows { set: false, .. } => (
            format!(
                "SELECT pg_catalog.to_json(_r)::text FROM (SELECT {} {}) _r",
                projection(q, "_f"),
                from_args(&format!("{call} AS _f")).trim_start()
            ),
            Shape::Value,
        ),
        Returns::Scalar { set: true } | Returns::Rows { set: true, .. } => {
            let scalar = matches!(f.returns, Returns::Scalar { .. });
            let source = if scalar {
                format!("{call} AS _f(v)")
            } else {
                format!("{call} AS _f")
            };
            let filters = where_clause(q, &mut params);
            let limit = params.push(Param::Int(to_i64(
                q.limit.unwrap_or(paging.max_rows).min(paging.max_rows),
            )));
            let offset = match q.offset {
                Some(n) if n > 0 => format!(" OFFSET {}", params.push(Param::Int(to_i64(n)))),
                _ => String::new(),
            };
            let total = if paging.count_total {
                "(SELECT pg_catalog.count(*) FROM _src)"
            } else {
                "NULL::int8"
            };
            let (proj, item) = if scalar {
                ("_src.v".to_owned(), "_page.v")
            } else {
                (projection(q, "_src"), "_page")
            };
            (
                format!(
                    "WITH _src AS (SELECT _f.*{}{filters}), \
                     _page AS (SELECT {proj} FROM _src{} LIMIT {limit}{offset}) \
                     SELECT coalesce(pg_catalog.json_agg({item}), '[]')::text, pg_catalog.count(*), {total}, \
                     (pg_catalog.json_agg({item}) -> 0)::text FROM _page",
                    from_args(&source),
                    order_clause(q),
                ),
                Shape::Set,
            )
        }
    };
    CallStatement {
        sql,
        params: params.0,
        shape,
    }
}

#[cfg(test)]
mod tests {
    use super::super::result_query::parse;
    use super::super::tests::{add_them, list_notes};
    use super::*;

    const PAGING: Paging = Paging {
        max_rows: 100,
        count_total: false,
    };

    #[test]
    fn a_scalar_call_binds_the_arguments_as_one_json_object() {
        let f = add_them();
        let json = r#"{"a": 1, "b": "2'); DROP TABLE x; --"}"#.to_owned();
        let args = CallArgs::Named {
            given: f.arguments.iter().collect(),
            json: json.clone(),
        };
        let s = build(&f, &args, &ResultQuery::default(), PAGING);
        assert_eq!(
            s.sql,
            "SELECT pg_catalog.to_json(\"public\".\"add_them\"(\"a\" => _args.\"a\", \"b\" => _args.\"b\"))::text \
             FROM pg_catalog.json_to_record($1::text::json) AS _args(\"a\" integer, \"b\" integer)"
        );
        assert_eq!(s.params, vec![Param::Text(json)]);
        assert_eq!(s.shape, Shape::Value);
        assert!(!s.sql.contains("DROP"));
    }

    #[test]
    fn defaults_are_left_out_and_no_arguments_need_no_record() {
        let f = add_them();
        let args = CallArgs::Named {
            given: vec![&f.arguments[0]],
            json: "{\"a\":1}".into(),
        };
        let s = build(&f, &args, &ResultQuery::default(), PAGING);
        assert!(s.sql.contains("(\"a\" => _args.\"a\")"), "{}", s.sql);
        assert!(s.sql.contains("AS _args(\"a\" integer)"), "{}", s.sql);
        let args = CallArgs::Named {
            given: vec![],
            json: "{}".into(),
        };
        let s = build(&f, &args, &ResultQuery::default(), PAGING);
        assert_eq!(
            s.sql,
            "SELECT pg_catalog.to_json(\"public\".\"add_them\"())::text"
        );
        assert!(s.params.is_empty());
    }

    #[test]
    fn set_results_are_filtered_ordered_and_capped() {
        let f = list_notes();
        let Returns::Rows { columns, .. } = &f.returns else {
            unreachable!()
        };
        let q = parse(
            &[
                ("select", "title,n:id"),
                ("id", "gte.2"),
                ("title", "in.(a,b)"),
                ("order", "id.desc"),
                ("limit", "1000"),
                ("offset", "3"),
            ],
            columns,
        )
        .unwrap();
        let args = CallArgs::Named {
            given: f.arguments.iter().collect(),
            json: "{\"max\": 10}".into(),
        };
        let s = build(
            &f,
            &args,
            &q,
            Paging {
                max_rows: 50,
                count_total: true,
            },
        );
        assert_eq!(s.shape, Shape::Set);
        assert!(
            s.sql.contains(
                "FROM pg_catalog.json_to_record($1::text::json) AS _args(\"max\" integer), \"public\".\"list_notes\"(\"max\" => _args.\"max\") AS _f \
                 WHERE _f.\"id\" >= $2::text::bigint AND _f.\"title\" = ANY($3::text[]::text[])"
            ),
            "{}",
            s.sql
        );
        assert!(
            s.sql.contains(
                "_page AS (SELECT _src.\"title\", _src.\"id\" AS \"n\" FROM _src ORDER BY _src.\"id\" DESC LIMIT $4 OFFSET $5)"
            ),
            "{}",
            s.sql
        );
        assert!(s.sql.contains("(SELECT pg_catalog.count(*) FROM _src)"));
        assert_eq!(s.params[3], Param::Int(50), "limit capped at max_rows");
        assert_eq!(s.params[4], Param::Int(3));
        assert_eq!(
            s.params[1..3],
            [
                Param::Text("2".into()),
                Param::TextArray(vec!["a".into(), "b".into()])
            ]
        );
    }

    #[test]
    fn void_and_whole_body_calls() {
        let mut f = add_them();
        f.returns = Returns::Void;
        let args = CallArgs::Named {
            given: vec![],
            json: "{}".into(),
        };
        let s = build(&f, &args, &ResultQuery::default(), PAGING);
        assert_eq!(
            (s.sql.as_str(), s.shape),
            ("SELECT \"public\".\"add_them\"()", Shape::Void)
        );
        let mut f = add_them();
        f.arguments.truncate(1);
        f.arguments[0].name.clear();
        f.arguments[0].type_sql = "jsonb".into();
        let s = build(
            &f,
            &CallArgs::WholeBody("[1,2]".into()),
            &ResultQuery::default(),
            PAGING,
        );
        assert_eq!(
            s.sql,
            "SELECT pg_catalog.to_json(\"public\".\"add_them\"($1::text::jsonb))::text"
        );
        assert_eq!(s.params, vec![Param::Text("[1,2]".into())]);
    }

    #[test]
    fn names_are_quoted() {
        let mut f = add_them();
        f.name = "we\"ird".into();
        f.arguments[0].name = "a\"b".into();
        let args = CallArgs::Named {
            given: vec![&f.arguments[0]],
            json: "{}".into(),
        };
        let s = build(&f, &args, &ResultQuery::default(), PAGING);
        assert!(
            s.sql
                .contains("\"public\".\"we\"\"ird\"(\"a\"\"b\" => _args.\"a\"\"b\")"),
            "{}",
            s.sql
        );
    }

    #[test]
    fn a_single_row_result_never_echoes_the_arguments() {
        let mut f = list_notes();
        f.returns = match f.returns {
            Returns::Rows { columns, .. } => Returns::Rows {
                set: false,
                columns,
            },
            other => other,
        };
        let Returns::Rows { columns, .. } = &f.returns else {
            unreachable!()
        };
        let q = parse(&[], columns).unwrap();
        let args = CallArgs::Named {
            given: f.arguments.iter().collect(),
            json: "{\"max\": 10}".into(),
        };
        let s = build(
            &f,
            &args,
            &q,
            Paging {
                max_rows: 50,
                count_total: false,
            },
        );
        assert_eq!(s.shape, Shape::Value);
        assert!(
            s.sql
                .starts_with("SELECT pg_catalog.to_json(_r)::text FROM (SELECT _f.* FROM "),
            "{}",
            s.sql
        );
    }
}

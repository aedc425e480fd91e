//! The query string over a function's result rows: `select` (with `alias:column` renames),
//! filters `column=[not.]op.value` (`eq neq gt gte lt lte like ilike in is`), `order`,
//! `limit`, `offset`, as PostgREST allows on `/rpc` results.
//!
//! Why a parser of its own rather than the tables one ([`crate::rest::parse`]): that one
//! resolves against a [`crate::rest::schema_cache::Table`] and grows with the tables dialect
//! (embedding, `or`, ...), none of which applies to a function call. This one covers the
//! subset that makes sense on a result set and resolves every name against the function's
//! result columns, so, as there, only cached names ever reach the SQL.
use crate::error::ApiError;
use crate::rest::parse::is_plain_name;
use crate::rest::schema_cache::Column;

/// A parsed, resolved query over a function's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultQuery<'c> {
    /// `None` is `*`. Each item is a column and the name it is returned under.
    pub select: Option<Vec<Selected<'c>>>,
    pub filters: Vec<ResultFilter<'c>>,
    pub order: Vec<ResultOrder<'c>>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

impl ResultQuery<'_> {
    /// Whether anything but `limit`/`offset` was asked for (only rows can be shaped).
    pub fn shapes_rows(&self) -> bool {
        self.select.is_some() || !self.filters.is_empty() || !self.order.is_empty()
    }

    pub fn pages(&self) -> bool {
        self.limit.is_some() || self.offset.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected<'c> {
    pub column: &'c Column,
    /// `alias:column`; `None` keeps the column's name.
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFilter<'c> {
    pub column: &'c Column,
    pub negated: bool,
    pub op: FilterOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOp {
    /// A comparison operator (`=`, `<>`, ...) and the raw value.
    Compare(&'static str, String),
    /// `LIKE` / `ILIKE`, `*` already turned into `%`.
    Like(&'static str, String),
    In(Vec<String>),
    /// `IS NULL`, `IS TRUE`, `IS FALSE`, `IS UNKNOWN`.
    Is(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultOrder<'c> {
    pub column: &'c Column,
    pub descending: bool,
    /// `Some(true)`: NULLS FIRST, `Some(false)`: NULLS LAST.
    pub nulls_first: Option<bool>,
}

/// Parameters that are not filters.
const RESERVED: [&str; 5] = ["select", "order", "limit", "offset", "columns"];

pub fn is_reserved(key: &str) -> bool {
    RESERVED.contains(&key)
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// `UNKNOWN_COLUMN`, echoing the name only when it looks like one.
fn unknown_column(name: &str) -> ApiError {
    invalid(
        "UNKNOWN_COLUMN",
        if is_plain_name(name) {
            format!("The function's result has no column \"{name}\"")
        } else {
            "The function's result has no such column: the name is not a valid column name"
                .to_owned()
        },
    )
}

fn resolve<'c>(columns: &'c [Column], name: &str) -> Result<&'c Column, ApiError> {
    columns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| unknown_column(name))
}

/// Parses `pairs` (the query string without the function's arguments) against the result
/// `columns` (empty for a scalar result, where only `limit`/`offset` mean anything).
pub fn parse<'c>(
    pairs: &[(&str, &str)],
    columns: &'c [Column],
) -> Result<ResultQuery<'c>, ApiError> {
    let mut q = ResultQuery::default();
    let mut seen: Vec<&str> = Vec::new();
    for &(key, value) in pairs {
        if is_reserved(key) {
            if seen.contains(&key) {
                return Err(invalid(
                    "INVALID_PARAMETER",
                    format!("The parameter \"{key}\" is given twice"),
                ));
            }
            seen.push(key);
            match key {
                "select" => q.select = parse_select(value, columns)?,
                "order" => q.order = parse_order(value, columns)?,
                "limit" => q.limit = Some(parse_count(key, value)?),
                "offset" => q.offset = Some(parse_count(key, value)?),
                _ => {
                    return Err(invalid(
                        "INVALID_PARAMETER",
                        "\"columns\" is not supported on /rpc",
                    ))
                }
            }
        } else {
            let column = resolve(columns, key)?;
            q.filters.push(parse_filter(column, value)?);
        }
    }
    Ok(q)
}

fn parse_select<'c>(
    value: &str,
    columns: &'c [Column],
) -> Result<Option<Vec<Selected<'c>>>, ApiError> {
    let value = value.trim();
    if value == "*" {
        return Ok(None);
    }
    let mut selected = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item.is_empty() || item == "*" {
            return Err(invalid(
                "INVALID_SELECT",
                "The select list has an empty item or a \"*\" beside columns",
            ));
        }
        let (alias, name) = match item.split_once(':') {
            Some((alias, name)) => (Some(alias.trim()), name.trim()),
            None => (None, item),
        };
        if let Some(alias) = alias {
            if !is_plain_name(alias) {
                return Err(invalid(
                    "INVALID_SELECT",
                    "A rename in select must be a plain name (letters, digits, _)",
                ));
            }
        }
        let column = resolve(columns, name)?;
        selected.push(Selected {
            column,
            alias: alias.map(str::to_owned),
        });
    }
    Ok(Some(selected))
}

fn parse_order<'c>(value: &str, columns: &'c [Column]) -> Result<Vec<ResultOrder<'c>>, ApiError> {
    let mut order = Vec::new();
    for item in value.split(',').map(str::trim) {
        let mut parts = item.split('.');
        let name = parts.next().unwrap_or_default();
        let column = resolve(columns, name)?;
        let mut o = ResultOrder {
            column,
            descending: false,
            nulls_first: None,
        };
        let mut direction_seen = false;
        for modifier in parts {
            match modifier {
                "asc" | "desc" if !direction_seen => {
                    direction_seen = true;
                    o.descending = modifier == "desc";
                }
                "nullsfirst" if o.nulls_first.is_none() => o.nulls_first = Some(true),
                "nullslast" if o.nulls_first.is_none() => o.nulls_first = Some(false),
                _ => {
                    return Err(invalid(
                        "INVALID_PARAMETER",
                        "order items are column[.asc|.desc][.nullsfirst|.nullslast]",
                    ))
                }
            }
        }
        order.push(o);
    }
    Ok(order)
}

fn parse_count(name: &str, value: &str) -> Result<u64, ApiError> {
    let refuse = || {
        invalid(
            "INVALID_PARAMETER",
            format!("\"{name}\" must be a non-negative integer"),
        )
    };
    // Digits only: `u64::from_str` would also take a leading `+`.
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    value.parse().map_err(|_| refuse())
}

fn parse_filter<'c>(column: &'c Column, value: &str) -> Result<ResultFilter<'c>, ApiError> {
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let bad = || {
        invalid(
            "INVALID_FILTER",
            "A filter must look like column=operator.value, e.g. id=eq.5",
        )
    };
    let (op, operand) = rest.split_once('.').ok_or_else(bad)?;
    let compare = |sql: &'static str| FilterOp::Compare(sql, operand.to_owned());
    let op = match op {
        "eq" => compare("="),
        "neq" => compare("<>"),
        "gt" => compare(">"),
        "gte" => compare(">="),
        "lt" => compare("<"),
        "lte" => compare("<="),
        "like" => FilterOp::Like("LIKE", operand.replace('*', "%")),
        "ilike" => FilterOp::Like("ILIKE", operand.replace('*', "%")),
        "in" => FilterOp::In(parse_list(operand)?),
        "is" => FilterOp::Is(match operand {
            "null" => "NULL",
            "true" => "TRUE",
            "false" => "FALSE",
            "unknown" => "UNKNOWN",
            _ => {
                return Err(invalid(
                    "INVALID_FILTER",
                    "is. takes null, true, false or unknown",
                ))
            }
        }),
        _ => {
            return Err(invalid(
                "INVALID_FILTER",
                if is_plain_name(op) {
                    format!("Unknown or unsupported filter operator \"{op}\" on /rpc results")
                } else {
                    "Unknown filter operator".to_owned()
                },
            ))
        }
    };
    Ok(ResultFilter {
        column,
        negated,
        op,
    })
}

/// `(a,b,"c,d")`: items separated by commas; double quotes keep commas and parentheses,
/// a backslash escapes the next character inside them.
fn parse_list(operand: &str) -> Result<Vec<String>, ApiError> {
    let inner = operand
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| invalid("INVALID_FILTER", "in. takes a list: in.(a,b,c)"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => current.extend(chars.next()),
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err(invalid(
            "INVALID_FILTER",
            "An in. list has an unclosed quote",
        ));
    }
    items.push(current);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<Column> {
        ["id", "title", "score"]
            .iter()
            .zip(["bigint", "text", "numeric"])
            .map(|(n, t)| Column {
                name: n.to_string(),
                type_sql: t.to_string(),
                not_null: false,
                has_default: false,
            })
            .collect()
    }

    #[test]
    fn a_full_query() {
        let cols = columns();
        let q = parse(
            &[
                ("select", "id,name:title"),
                ("id", "gt.2"),
                ("title", "not.ilike.*a*"),
                ("score", "in.(1,\"2,5\")"),
                ("order", "score.desc.nullslast,id"),
                ("limit", "5"),
                ("offset", "1"),
            ],
            &cols,
        )
        .unwrap();
        let select = q.select.as_ref().unwrap();
        assert_eq!(select[1].alias.as_deref(), Some("name"));
        assert_eq!(select[1].column.name, "title");
        assert_eq!(q.filters.len(), 3);
        assert_eq!(q.filters[1].op, FilterOp::Like("ILIKE", "%a%".into()));
        assert!(q.filters[1].negated);
        assert_eq!(
            q.filters[2].op,
            FilterOp::In(vec!["1".into(), "2,5".into()])
        );
        assert_eq!(q.order.len(), 2);
        assert!(q.order[0].descending);
        assert_eq!(q.order[0].nulls_first, Some(false));
        assert_eq!((q.limit, q.offset), (Some(5), Some(1)));
        assert!(q.shapes_rows() && q.pages());
    }

    #[test]
    fn bad_queries_are_400() {
        let cols = columns();
        for (k, v) in [
            ("select", "nope"),
            ("select", "id,*"),
            ("select", "a b:id"),
            ("nope", "eq.1"),
            ("id", "eq"),
            ("id", "regex.x"),
            ("id", "in.1,2"),
            ("id", "in.(\"1)"),
            ("id", "is.maybe"),
            ("order", "id.sideways"),
            ("order", "title;drop"),
            ("limit", "-1"),
            ("limit", "+1"),
            ("columns", "id"),
            ("id\"; drop table x; --", "eq.1"),
        ] {
            let e = parse(&[(k, v)], &cols).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{k}={v}");
            assert!(!e.message.contains("drop"), "{}", e.message);
        }
        assert!(parse(&[("limit", "1"), ("limit", "2")], &cols).is_err());
        // A scalar result has no columns at all.
        assert!(parse(&[("select", "id")], &[]).is_err());
        assert!(parse(&[("limit", "2")], &[]).is_ok());
    }
}

//! Parsing the PostgREST query dialect (`select`, `col=op.value`, `order`, `limit`, `offset`,
//! `columns`) against one table of the schema cache.
//!
//! Why resolve here: every column name is looked up in the [`Table`] while parsing, so what
//! comes out holds references to cached [`Column`]s, never client strings. The SQL builder
//! can only be handed names that exist; a name with quotes, semicolons or spaces is simply
//! not a column and is refused with `UNKNOWN_COLUMN` before any SQL is built.
use super::schema_cache::{Column, Table};
use crate::error::ApiError;

/// Query parameters that are not filters.
const RESERVED: [&str; 5] = ["select", "order", "limit", "offset", "columns"];
/// PostgREST parameters we do not support yet: refused rather than misread as filters.
const UNSUPPORTED: [&str; 4] = ["or", "and", "not", "on_conflict"];

/// A parsed, resolved request query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiQuery<'t> {
    /// `None` is `*`. Deduplicated, in request order.
    pub select: Option<Vec<&'t Column>>,
    pub filters: Vec<Filter<'t>>,
    pub order: Vec<Order<'t>>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    /// `columns=` (POST): which body keys to insert.
    pub columns: Option<Vec<&'t Column>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<'t> {
    pub column: &'t Column,
    /// `not.` prefix.
    pub negated: bool,
    pub op: FilterOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOp {
    /// `eq`, `neq`, `gt`, `gte`, `lt`, `lte` with the raw text value.
    Compare(CompareOp, String),
    /// `like` / `ilike`; `*` in the pattern is already turned into `%`.
    Like {
        case_insensitive: bool,
        pattern: String,
    },
    /// `in.(a,b,"c,d")`.
    In(Vec<String>),
    /// `is.null`, `is.true`, `is.false`.
    Is(IsValue),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CompareOp {
    pub fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Neq => "<>",
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    True,
    False,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order<'t> {
    pub column: &'t Column,
    pub descending: bool,
    pub nulls: Option<Nulls>,
}

impl ApiQuery<'_> {
    pub fn has_filters(&self) -> bool {
        !self.filters.is_empty()
    }
}

/// Decodes a raw query string (`a=b&c=d`, percent-encoded) into pairs.
pub fn decode_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    match raw {
        None | Some("") => Ok(Vec::new()),
        Some(raw) => serde_urlencoded::from_str::<Vec<(String, String)>>(raw).map_err(|_| {
            ApiError::bad_request("INVALID_PARAMETER", "The query string is malformed")
        }),
    }
}

/// Parses `pairs` against `table`.
pub fn parse<'t>(pairs: &[(String, String)], table: &'t Table) -> Result<ApiQuery<'t>, ApiError> {
    let mut q = ApiQuery::default();
    let mut seen_reserved: Vec<&str> = Vec::new();
    for (key, value) in pairs {
        let key = key.as_str();
        if let Some(reserved) = RESERVED.iter().find(|r| **r == key) {
            if seen_reserved.contains(reserved) {
                return Err(invalid_parameter(format!(
                    "The parameter \"{key}\" is given twice"
                )));
            }
            seen_reserved.push(reserved);
            match key {
                "select" => q.select = parse_select(value, table)?,
                "order" => q.order = parse_order(value, table)?,
                "limit" => q.limit = Some(parse_count("limit", value)?),
                "offset" => q.offset = Some(parse_count("offset", value)?),
                _ => q.columns = Some(parse_columns(value, table)?),
            }
        } else if UNSUPPORTED.contains(&key) {
            return Err(ApiError::bad_request(
                "UNSUPPORTED_PARAMETER",
                format!("The parameter \"{key}\" is not supported yet"),
            ));
        } else {
            let column = resolve(table, key)?;
            q.filters.push(parse_filter(column, value)?);
        }
    }
    Ok(q)
}

/// Looks a client-given column name up in the table.
pub fn resolve<'t>(table: &'t Table, name: &str) -> Result<&'t Column, ApiError> {
    table
        .column(name)
        .ok_or_else(|| unknown_column(name, table))
}

/// `UNKNOWN_COLUMN`, naming the column when the name looks like one. A name that does not
/// (an injection attempt, say) is not echoed, so the message never carries SQL.
pub fn unknown_column(name: &str, table: &Table) -> ApiError {
    let message = if is_plain_name(name) {
        format!(
            "Unknown column \"{name}\" in table \"{}.{}\"",
            table.schema, table.name
        )
    } else {
        format!(
            "Unknown column in table \"{}.{}\": the name is not a valid column name",
            table.schema, table.name
        )
    };
    ApiError::bad_request("UNKNOWN_COLUMN", message)
}

/// Letters, digits, `_`, `$` and `-`, at most 63 bytes: safe and useful to echo.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '-')
}

fn invalid_parameter(message: String) -> ApiError {
    ApiError::bad_request("INVALID_PARAMETER", message)
}

fn invalid_filter(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALID_FILTER", message)
}

fn parse_select<'t>(value: &str, table: &'t Table) -> Result<Option<Vec<&'t Column>>, ApiError> {
    let value = value.trim();
    if value == "*" {
        return Ok(None);
    }
    let mut columns: Vec<&Column> = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(ApiError::bad_request(
                "INVALID_SELECT",
                "The select list has an empty item",
            ));
        }
        if item == "*" {
            return Err(ApiError::bad_request(
                "INVALID_SELECT",
                "\"*\" cannot be combined with columns",
            ));
        }
        let column = resolve(table, item)?;
        if !columns.iter().any(|c| c.name == column.name) {
            columns.push(column);
        }
    }
    Ok(Some(columns))
}

/// `columns="a","b"` as postgrest-js sends it (quotes optional).
fn parse_columns<'t>(value: &str, table: &'t Table) -> Result<Vec<&'t Column>, ApiError> {
    let mut columns: Vec<&Column> = Vec::new();
    for item in value.split(',').map(str::trim) {
        let name = item
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(item);
        if name.is_empty() {
            return Err(invalid_parameter(
                "The columns list has an empty item".to_owned(),
            ));
        }
        let column = resolve(table, name)?;
        if !columns.iter().any(|c| c.name == column.name) {
            columns.push(column);
        }
    }
    Ok(columns)
}

fn parse_order<'t>(value: &str, table: &'t Table) -> Result<Vec<Order<'t>>, ApiError> {
    let mut order = Vec::new();
    for item in value.split(',').map(str::trim) {
        let mut parts = item.split('.');
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            return Err(invalid_parameter(
                "The order list has an empty item".to_owned(),
            ));
        }
        let column = resolve(table, name)?;
        let mut o = Order {
            column,
            descending: false,
            nulls: None,
        };
        let mut direction_seen = false;
        for modifier in parts {
            match modifier {
                "asc" | "desc" if !direction_seen => {
                    direction_seen = true;
                    o.descending = modifier == "desc";
                }
                "nullsfirst" if o.nulls.is_none() => o.nulls = Some(Nulls::First),
                "nullslast" if o.nulls.is_none() => o.nulls = Some(Nulls::Last),
                _ => {
                    return Err(invalid_parameter(
                        "order items are column[.asc|.desc][.nullsfirst|.nullslast]".to_owned(),
                    ))
                }
            }
        }
        order.push(o);
    }
    Ok(order)
}

fn parse_count(name: &str, value: &str) -> Result<u64, ApiError> {
    // Digits only: `u64::from_str` would also take a leading `+`.
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_parameter(format!(
            "\"{name}\" must be a non-negative integer"
        )));
    }
    value
        .parse()
        .map_err(|_| invalid_parameter(format!("\"{name}\" must be a non-negative integer")))
}

fn parse_filter<'t>(column: &'t Column, value: &str) -> Result<Filter<'t>, ApiError> {
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (op, operand) = rest.split_once('.').ok_or_else(|| {
        invalid_filter("A filter must look like column=operator.value, e.g. id=eq.5")
    })?;
    let compare = |c| Ok(FilterOp::Compare(c, operand.to_owned()));
    let op = match op {
        "eq" => compare(CompareOp::Eq),
        "neq" => compare(CompareOp::Neq),
        "gt" => compare(CompareOp::Gt),
        "gte" => compare(CompareOp::Gte),
        "lt" => compare(CompareOp::Lt),
        "lte" => compare(CompareOp::Lte),
        "like" | "ilike" => Ok(FilterOp::Like {
            case_insensitive: op == "ilike",
            pattern: operand.replace('*', "%"),
        }),
        "in" => parse_in_list(operand).map(FilterOp::In),
        "is" => match operand {
            "null" => Ok(FilterOp::Is(IsValue::Null)),
            "true" => Ok(FilterOp::Is(IsValue::True)),
            "false" => Ok(FilterOp::Is(IsValue::False)),
            _ => Err(invalid_filter("\"is\" takes null, true or false")),
        },
        _ if is_plain_name(op) => Err(invalid_filter(format!("Unknown filter operator \"{op}\""))),
        _ => Err(invalid_filter("Unknown filter operator")),
    }?;
    Ok(Filter {
        column,
        negated,
        op,
    })
}

/// `(a,b,"c,d","e \"f\"")`: comma-separated, double quotes protect commas and parentheses,
/// backslash escapes inside quotes.
fn parse_in_list(operand: &str) -> Result<Vec<String>, ApiError> {
    let inner = operand
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| invalid_filter("\"in\" takes a list in parentheses, e.g. id=in.(1,2,3)"))?;
    let mut items = Vec::new();
    if inner.is_empty() {
        return Ok(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => item.push(chars.next().ok_or_else(|| {
                        invalid_filter("Unterminated quoted value in \"in\" list")
                    })?),
                    Some('"') => break,
                    Some(c) => item.push(c),
                    None => return Err(invalid_filter("Unterminated quoted value in \"in\" list")),
                }
            }
            match chars.next() {
                None => {
                    items.push(item);
                    return Ok(items);
                }
                Some(',') => items.push(item),
                Some(_) => {
                    return Err(invalid_filter(
                        "Unexpected text after a quoted value in \"in\" list",
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        items.push(item);
                        return Ok(items);
                    }
                    Some(',') => break,
                    Some(c) => item.push(c),
                }
            }
            items.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::schema_cache::tests::posts;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        decode_pairs(Some(raw)).unwrap()
    }

    fn names(cols: &[&Column]) -> Vec<String> {
        cols.iter().map(|c| c.name.clone()).collect()
    }

    #[test]
    fn empty_query_is_star_without_filters() {
        let t = posts();
        let q = parse(&pairs(""), &t).unwrap();
        assert_eq!(q.select, None);
        assert!(!q.has_filters());
        assert_eq!((q.limit, q.offset), (None, None));
    }

    #[test]
    fn select_list() {
        let t = posts();
        let q = parse(&pairs("select=id,%20title,id"), &t).unwrap();
        assert_eq!(names(&q.select.unwrap()), vec!["id", "title"]);
        assert_eq!(parse(&pairs("select=*"), &t).unwrap().select, None);
        let err = parse(&pairs("select=id,,title"), &t).unwrap_err();
        assert_eq!(err.code, "INVALID_SELECT");
    }

    #[test]
    fn unknown_column_is_named_when_plain() {
        let t = posts();
        let err = parse(&pairs("select=id,titel"), &t).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code.as_ref()),
            (400, "UNKNOWN_COLUMN")
        );
        assert!(err.message.contains("\"titel\""));
        let err = parse(&pairs("nope=eq.1"), &t).unwrap_err();
        assert_eq!(err.code, "UNKNOWN_COLUMN");
        assert!(err.message.contains("nope"));
    }

    #[test]
    fn bad_identifiers_are_rejected_and_not_echoed() {
        let t = posts();
        for raw in [
            "select=id;drop%20table%20posts",
            "select=%22id%22",
            "select=i%20d",
            "select=title::text",
            "select=(select%201)",
            "select=auth.users",
            "id%22%3Bdrop=eq.1",
            "order=id;select%201",
            "we%22%22ird=eq.1",
        ] {
            let err = parse(&pairs(raw), &t).unwrap_err();
            assert_eq!(err.code, "UNKNOWN_COLUMN", "{raw}");
            assert!(
                !err.message.to_lowercase().contains("drop"),
                "{raw}: {}",
                err.message
            );
            assert!(
                !err.message.to_lowercase().contains("select 1"),
                "{raw}: {}",
                err.message
            );
        }
        // A real column whose name has a quote is found by its exact name.
        let q = parse(&pairs("we%22ird=eq.x"), &t).unwrap();
        assert_eq!(q.filters[0].column.name, "we\"ird");
    }

    #[test]
    fn filters() {
        let t = posts();
        let q = parse(&pairs("views=gte.10&title=eq.a.b&published=is.true&id=not.eq.x&title=ilike.*rust*&views=in.(1,2,%223,4%22)"), &t).unwrap();
        assert_eq!(q.filters.len(), 6);
        assert_eq!(
            q.filters[0].op,
            FilterOp::Compare(CompareOp::Gte, "10".into())
        );
        assert_eq!(
            q.filters[1].op,
            FilterOp::Compare(CompareOp::Eq, "a.b".into())
        );
        assert_eq!(q.filters[2].op, FilterOp::Is(IsValue::True));
        assert!(q.filters[3].negated);
        assert_eq!(
            q.filters[4].op,
            FilterOp::Like {
                case_insensitive: true,
                pattern: "%rust%".into()
            }
        );
        assert_eq!(
            q.filters[5].op,
            FilterOp::In(vec!["1".into(), "2".into(), "3,4".into()])
        );
        let q = parse(&pairs("title=eq."), &t).unwrap();
        assert_eq!(
            q.filters[0].op,
            FilterOp::Compare(CompareOp::Eq, String::new())
        );
    }

    #[test]
    fn bad_filters() {
        let t = posts();
        for raw in [
            "id=5",
            "id=regex.x",
            "published=is.maybe",
            "views=in.1,2",
            "views=in.(%22a)",
            "id=eq",
        ] {
            let err = parse(&pairs(raw), &t).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code.as_ref()),
                (400, "INVALID_FILTER"),
                "{raw}"
            );
        }
        let err = parse(&pairs("or=(id.eq.1)"), &t).unwrap_err();
        assert_eq!(err.code, "UNSUPPORTED_PARAMETER");
    }

    #[test]
    fn order_limit_offset() {
        let t = posts();
        let q = parse(
            &pairs("order=views.desc.nullslast,title&limit=5&offset=10"),
            &t,
        )
        .unwrap();
        assert_eq!(q.order.len(), 2);
        assert!(q.order[0].descending);
        assert_eq!(q.order[0].nulls, Some(Nulls::Last));
        assert!(!q.order[1].descending);
        assert_eq!((q.limit, q.offset), (Some(5), Some(10)));
        for raw in [
            "limit=-1",
            "limit=abc",
            "limit=+3",
            "offset=1.5",
            "limit=",
            "order=views.sideways",
            "limit=1&limit=2",
        ] {
            let err = parse(&pairs(raw), &t).unwrap_err();
            assert_eq!(err.code, "INVALID_PARAMETER", "{raw}");
        }
    }

    #[test]
    fn columns_param() {
        let t = posts();
        let q = parse(&pairs("columns=%22title%22,%22views%22"), &t).unwrap();
        assert_eq!(names(&q.columns.unwrap()), vec!["title", "views"]);
        let err = parse(&pairs("columns=bogus"), &t).unwrap_err();
        assert_eq!(err.code, "UNKNOWN_COLUMN");
    }

    #[test]
    fn decoding() {
        assert_eq!(
            pairs("a=1&b=x%20y"),
            vec![("a".into(), "1".into()), ("b".into(), "x y".into())]
        );
        assert!(decode_pairs(None).unwrap().is_empty());
    }
}

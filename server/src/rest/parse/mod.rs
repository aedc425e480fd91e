//! Parsing the PostgREST query dialect against the schema cache, into the typed tree of
//! [`super::tree`].
//!
//! Why resolve here: every column and relationship name is looked up in the cache while
//! parsing, so what comes out holds references to cached objects, never client strings. A
//! name with quotes, semicolons or spaces is simply not a column and is refused with
//! `UNKNOWN_COLUMN` before any SQL is built.
//!
//! Stages, one module each: [`select`] (`select=`, embeds), [`filter`] (fields, operators,
//! values), [`logic`] (`or=(…)`, `and=(…)`), [`order`], and the headers: [`prefer`],
//! [`range`]. This module routes each query parameter to its node: `comments.order=id.desc`
//! goes to the embed `comments`, `comments.status=eq.x` filters it.
pub mod filter;
pub mod logic;
pub mod order;
pub mod prefer;
pub mod range;
pub mod select;

use super::schema_cache::{Column, SchemaCache, Table};
use super::tree::{Condition, LogicOp, Node};
use crate::error::ApiError;
use prefer::CountMethod;

/// How deep `select` embeds and `or`/`and` trees may nest. Far beyond real use; keeps a
/// hostile query from recursing without bound.
pub const MAX_DEPTH: usize = 16;

/// What the request is for: decides which parameters are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Read,
    Insert,
    Update,
    Delete,
}

/// A parsed, resolved query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedQuery<'c> {
    pub root: Node<'c>,
    /// `columns=` (POST): which body keys to insert.
    pub columns: Option<Vec<&'c Column>>,
    /// `on_conflict=` (POST upsert).
    pub on_conflict: Option<Vec<&'c Column>>,
    /// Fluxbase's `count=exact` query parameter (the `Prefer` header is the PostgREST way).
    pub count: Option<CountMethod>,
}

/// Decodes a raw query string (`a=b&c=d`, percent-encoded) into pairs.
///
/// A NUL byte (`%00`) is refused here, in names and values alike: PostgreSQL text cannot
/// hold one, and a JSON path key becomes an output column name, an identifier in the SQL
/// text, where a NUL would cut the statement short (the driver refuses it, which looked
/// like a broken connection: 503).
pub fn decode_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = match raw {
        None | Some("") => return Ok(Vec::new()),
        Some(raw) => serde_urlencoded::from_str::<Vec<(String, String)>>(raw).map_err(|_| {
            ApiError::bad_request("INVALID_PARAMETER", "The query string is malformed")
        })?,
    };
    if pairs
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::bad_request(
            "INVALID_PARAMETER",
            "The query string contains a NUL byte (%00)",
        ));
    }
    Ok(pairs)
}

/// Parses `pairs` for a request on `table`.
pub fn parse_query<'c>(
    pairs: &[(String, String)],
    cache: &'c SchemaCache,
    table: &'c Table,
    purpose: Purpose,
) -> Result<ParsedQuery<'c>, ApiError> {
    let mut selects = pairs.iter().filter(|(k, _)| k == "select");
    let select_text = selects.next().map(|(_, v)| v.as_str());
    if selects.next().is_some() {
        return Err(given_twice("select"));
    }
    let mut root = Node::new(table);
    root.select = match select_text {
        Some(text) => select::parse_select(text, cache, table, 0)?,
        None => select::star(table),
    };
    let mut q = ParsedQuery {
        root,
        columns: None,
        on_conflict: None,
        count: None,
    };
    for (key, value) in pairs {
        match key.as_str() {
            "select" => {}
            "columns" => {
                set_once(&mut q.columns, "columns", parse_column_list(value, table)?)?;
            }
            "on_conflict" => {
                set_once(
                    &mut q.on_conflict,
                    "on_conflict",
                    parse_column_list(value, table)?,
                )?;
            }
            "count" => set_once(&mut q.count, "count", CountMethod::parse(value)?)?,
            _ => route(&mut q.root, key, value)?,
        }
    }
    check_purpose(&q, purpose)?;
    Ok(q)
}

/// Sends one non-select parameter to the node its path names.
fn route(root: &mut Node<'_>, key: &str, value: &str) -> Result<(), ApiError> {
    let segments: Vec<&str> = key.split('.').collect();
    // Walk down the embeds named by the leading segments.
    let mut path = Vec::new();
    {
        let mut node: &Node<'_> = root;
        for segment in &segments[..segments.len() - 1] {
            match node.embeds().find(|e| e.name == *segment) {
                Some(embed) => {
                    path.push(*segment);
                    node = &embed.node;
                }
                None => break,
            }
        }
    }
    let node = node_at(root, &path)?;
    let tail = segments[path.len()..].join(".");
    let embedded = !path.is_empty();
    match tail.as_str() {
        "order" => {
            if !node.order.is_empty() {
                return Err(given_twice(key));
            }
            node.order = order::parse_order(value, node.table)?;
            if node.order.is_empty() {
                return Err(invalid_parameter("The order list is empty"));
            }
        }
        "limit" => set_once(&mut node.limit, key, parse_count(key, value)?)?,
        "offset" => set_once(&mut node.offset, key, parse_count(key, value)?)?,
        "or" | "and" | "not.or" | "not.and" => {
            let negated = tail.starts_with("not.");
            let op = if tail.ends_with("or") {
                LogicOp::Or
            } else {
                LogicOp::And
            };
            node.filters
                .push(logic::parse_logic_value(op, negated, value, node.table, 0)?);
        }
        "select" | "columns" | "on_conflict" | "count" if embedded => {
            return Err(invalid_parameter(format!(
                "\"{tail}\" cannot be given for an embedded resource"
            )));
        }
        _ => {
            if tail.contains('.') {
                // `x.y=…` where `x` is not an embed of this select: a column name never has
                // a dot here, so the client meant an embed that is not there.
                let first = segments[path.len()];
                return Err(ApiError::bad_request(
                    "UNKNOWN_RELATIONSHIP",
                    if is_plain_name(first) {
                        format!("\"{first}\" is not an embedded resource of this select")
                    } else {
                        "A filter names an embedded resource that is not in the select".to_owned()
                    },
                ));
            }
            let field = filter::parse_field(&tail, node.table)?;
            node.filters.push(Condition::Filter(filter::parse_filter(
                field, value, false,
            )?));
        }
    }
    Ok(())
}

/// The node at `path` (embed names from the root), mutably.
fn node_at<'a, 'c>(root: &'a mut Node<'c>, path: &[&str]) -> Result<&'a mut Node<'c>, ApiError> {
    let mut node = root;
    for name in path {
        node = &mut node
            .embed_mut(name)
            .ok_or_else(|| ApiError::bad_request("UNKNOWN_RELATIONSHIP", "Unknown embed"))?
            .node;
    }
    Ok(node)
}

/// Refuses query parts that a request of `purpose` would otherwise silently ignore.
fn check_purpose(q: &ParsedQuery<'_>, purpose: Purpose) -> Result<(), ApiError> {
    let root = &q.root;
    let method = match purpose {
        Purpose::Read => "GET",
        Purpose::Insert => "POST",
        Purpose::Update => "PATCH",
        Purpose::Delete => "DELETE",
    };
    let mut refused: Vec<&str> = Vec::new();
    if purpose == Purpose::Insert && !root.filters.is_empty() {
        refused.push("filters");
    }
    if purpose != Purpose::Read {
        if !root.order.is_empty() {
            refused.push("order");
        }
        if root.limit.is_some() {
            refused.push("limit");
        }
        if root.offset.is_some() {
            refused.push("offset");
        }
    }
    if purpose != Purpose::Insert {
        if q.columns.is_some() {
            refused.push("columns");
        }
        if q.on_conflict.is_some() {
            refused.push("on_conflict");
        }
    }
    match refused.first() {
        Some(what) => Err(invalid_parameter(format!(
            "\"{what}\" is not supported on {method}"
        ))),
        None => Ok(()),
    }
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(given_twice(name));
    }
    *slot = Some(value);
    Ok(())
}

fn given_twice(name: &str) -> ApiError {
    if is_plain_name(&name.replace('.', "_")) {
        invalid_parameter(format!("The parameter \"{name}\" is given twice"))
    } else {
        invalid_parameter("A parameter is given twice")
    }
}

/// `columns="a","b"` / `on_conflict=a,b` as postgrest-js sends them (quotes optional).
fn parse_column_list<'c>(value: &str, table: &'c Table) -> Result<Vec<&'c Column>, ApiError> {
    let mut columns: Vec<&Column> = Vec::new();
    for item in value.split(',').map(str::trim) {
        let name = item
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(item);
        if name.is_empty() {
            return Err(invalid_parameter("A column list has an empty item"));
        }
        let column = resolve(table, name)?;
        if !columns.iter().any(|c| c.name == column.name) {
            columns.push(column);
        }
    }
    Ok(columns)
}

/// `limit`/`offset`: digits only (`u64::from_str` would also take a leading `+`).
fn parse_count(name: &str, value: &str) -> Result<u64, ApiError> {
    let bad = || {
        if is_plain_name(&name.replace('.', "_")) {
            invalid_parameter(format!("\"{name}\" must be a non-negative integer"))
        } else {
            invalid_parameter("limit and offset must be non-negative integers")
        }
    };
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// Looks a client-given column name up in the table.
pub fn resolve<'c>(table: &'c Table, name: &str) -> Result<&'c Column, ApiError> {
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

/// An alias: an identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes). Stricter than a
/// column name, because an alias is the one piece of client text that becomes an
/// identifier in SQL (an output label, still quoted).
pub fn is_alias(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALID_PARAMETER", message)
}

pub fn invalid_filter(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALID_FILTER", message)
}

/// Splits `text` at `sep` where it is not inside parentheses, braces or double quotes
/// (backslash escapes inside quotes). Unbalanced text is an error.
pub fn split_top_level(text: &str, sep: char) -> Result<Vec<&str>, ApiError> {
    let mut parts = Vec::new();
    let mut depth: usize = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if in_quotes {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '(' | '{' => depth += 1,
            ')' | '}' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| invalid_parameter("Unbalanced parentheses"))?;
            }
            _ if c == sep && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if in_quotes {
        return Err(invalid_parameter("Unterminated double quote"));
    }
    if depth != 0 {
        return Err(invalid_parameter("Unbalanced parentheses"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::relationships::tests::library;
    use crate::rest::schema_cache::tests::posts;
    use crate::rest::tree::{Operation, ScalarOp, SelectItem};

    fn pairs(raw: &str) -> Vec<(String, String)> {
        decode_pairs(Some(raw)).unwrap()
    }

    fn read<'c>(
        raw: &str,
        cache: &'c SchemaCache,
        table: &str,
    ) -> Result<ParsedQuery<'c>, ApiError> {
        let t = cache.table_ref("public", table).unwrap();
        parse_query(&pairs(raw), cache, t, Purpose::Read)
    }

    #[test]
    fn empty_query_is_star_without_filters() {
        let cache = SchemaCache::from_tables([posts()]);
        let q = read("", &cache, "posts").unwrap();
        assert_eq!(q.root.select.len(), 6);
        assert!(q.root.filters.is_empty());
        assert_eq!((q.root.limit, q.root.offset), (None, None));
    }

    #[test]
    fn embedded_parameters_are_routed() {
        let c = library();
        let q = read(
            "select=id,comments(id,body)&comments.status=eq.ok&comments.order=id.desc&comments.limit=2&comments.or=(id.eq.1,id.eq.2)&id=gt.0",
            &c,
            "books",
        )
        .unwrap();
        assert_eq!(q.root.filters.len(), 1);
        let embed = q.root.embeds().next().unwrap();
        assert_eq!(embed.node.filters.len(), 2);
        assert_eq!(embed.node.order.len(), 1);
        assert_eq!(embed.node.limit, Some(2));
        let e = read("select=id&comments.status=eq.ok", &c, "books").unwrap_err();
        assert_eq!(e.code, "UNKNOWN_RELATIONSHIP");
        let e = read("select=id,comments(id)&comments.select=id", &c, "books").unwrap_err();
        assert_eq!(e.code, "INVALID_PARAMETER");
    }

    #[test]
    fn unknown_and_hostile_names() {
        let cache = SchemaCache::from_tables([posts()]);
        for raw in [
            "select=id;drop%20table%20posts",
            "select=%22id%22",
            "select=i%20d",
            "select=(select%201)",
            "select=auth.users",
            "id%22%3Bdrop=eq.1",
            "order=id;select%201",
            "we%22%22ird=eq.1",
            "nope=eq.1",
        ] {
            let err = read(raw, &cache, "posts").unwrap_err();
            assert_eq!(err.status.as_u16(), 400, "{raw}");
            let m = err.message.to_lowercase();
            assert!(!m.contains("drop") && !m.contains("select 1"), "{raw}: {m}");
        }
        let q = read("we%22ird=eq.x", &cache, "posts").unwrap();
        let Condition::Filter(f) = &q.root.filters[0] else {
            panic!()
        };
        assert_eq!(f.field.column.name, "we\"ird");
        assert_eq!(f.operation, Operation::Scalar(ScalarOp::Eq, "x".into()));
    }

    #[test]
    fn reserved_parameters() {
        let cache = SchemaCache::from_tables([posts()]);
        let q = read("limit=5&offset=10&count=exact", &cache, "posts").unwrap();
        assert_eq!((q.root.limit, q.root.offset), (Some(5), Some(10)));
        assert_eq!(q.count, Some(CountMethod::Exact));
        for raw in [
            "limit=-1",
            "limit=abc",
            "limit=+3",
            "offset=1.5",
            "limit=",
            "limit=1&limit=2",
            "select=id&select=id",
            "count=lots",
            "columns=id",
        ] {
            let err = read(raw, &cache, "posts").unwrap_err();
            assert_eq!(err.code, "INVALID_PARAMETER", "{raw}");
        }
    }

    #[test]
    fn purposes() {
        let cache = SchemaCache::from_tables([posts()]);
        let t = cache.table_ref("public", "posts").unwrap();
        let p = |raw: &str, purpose| parse_query(&pairs(raw), &cache, t, purpose);
        let q = p("columns=%22title%22,views&on_conflict=id", Purpose::Insert).unwrap();
        assert_eq!(q.columns.unwrap().len(), 2);
        assert_eq!(q.on_conflict.unwrap()[0].name, "id");
        assert!(p("id=eq.1", Purpose::Insert).is_err());
        assert!(p("limit=1&id=eq.1", Purpose::Update).is_err());
        assert!(p("order=id&id=eq.1", Purpose::Delete).is_err());
        assert!(p("on_conflict=id&id=eq.1", Purpose::Update).is_err());
        assert!(p("id=eq.1", Purpose::Delete).is_ok());
        assert_eq!(
            p("columns=bogus", Purpose::Insert).unwrap_err().code,
            "UNKNOWN_COLUMN"
        );
    }

    #[test]
    fn splitting() {
        assert_eq!(
            split_top_level("a,b(c,d),\"e,f\",{g,h}", ',').unwrap(),
            vec!["a", "b(c,d)", "\"e,f\"", "{g,h}"]
        );
        assert_eq!(
            split_top_level("\"a\\\",b\",c", ',').unwrap(),
            vec!["\"a\\\",b\"", "c"]
        );
        assert!(split_top_level("a(b", ',').is_err());
        assert!(split_top_level("a)b", ',').is_err());
        assert!(split_top_level("\"ab", ',').is_err());
        assert!(matches!(
            read("select=id", &library(), "books").unwrap().root.select[0],
            SelectItem::Column(_)
        ));
    }

    #[test]
    fn decoding() {
        assert_eq!(
            pairs("a=1&b=x%20y"),
            vec![("a".into(), "1".into()), ("b".into(), "x y".into())]
        );
        assert!(decode_pairs(None).unwrap().is_empty());
        for nul in ["select=data->>%00", "a%00=1", "id=eq.%00", "title=eq.a%00b"] {
            assert_eq!(
                decode_pairs(Some(nul)).unwrap_err().code,
                "INVALID_PARAMETER",
                "{nul}"
            );
        }
    }
}

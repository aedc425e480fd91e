//! Fields (`col`, `col->a->>b`) and filters (`[not.]operator[(modifier)].value`).
//!
//! Operators, as PostgREST: `eq neq gt gte lt lte like ilike match imatch in is isdistinct
//! fts plfts phfts wfts cs cd ov sl sr nxr nxl adj`, the scalar ones also quantified
//! (`eq(any).{a,b}`, `like(all).{…}`), full-text ones with a config (`fts(english).cat`).
use super::{invalid_filter, is_plain_name, resolve, split_top_level};
use crate::error::ApiError;
use crate::rest::schema_cache::Table;
use crate::rest::tree::{
    Field, Filter, FtsOp, IsValue, JsonKey, JsonStep, Operation, Quantifier, RangeOp, ScalarOp,
};

/// `col` or `col->key->>key` (array indexes as integers; `->>` only last).
pub fn parse_field<'c>(text: &str, table: &'c Table) -> Result<Field<'c>, ApiError> {
    let Some(arrow) = text.find("->") else {
        return Ok(Field::plain(resolve(table, text)?));
    };
    let column = resolve(table, &text[..arrow])?;
    let mut path = Vec::new();
    let mut rest = &text[arrow..];
    while !rest.is_empty() {
        let after = rest
            .strip_prefix("->")
            .ok_or_else(|| invalid_path("A JSON path looks like col->key->>key"))?;
        let (as_text, after) = match after.strip_prefix('>') {
            Some(after) => (true, after),
            None => (false, after),
        };
        let end = after.find("->").unwrap_or(after.len());
        let key = &after[..end];
        if key.is_empty() {
            return Err(invalid_path("A JSON path has an empty key"));
        }
        if path.last().is_some_and(|s: &JsonStep| s.as_text) {
            return Err(invalid_path("->> can only be the last step of a JSON path"));
        }
        let key = match key.parse::<i64>() {
            Ok(index) if key.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
                JsonKey::Index(index)
            }
            _ => JsonKey::Name(key.to_owned()),
        };
        path.push(JsonStep { key, as_text });
        rest = &after[end..];
    }
    Ok(Field { column, path })
}

fn invalid_path(message: &str) -> ApiError {
    ApiError::bad_request("INVALID_PARAMETER", message)
}

/// Parses the `[not.]operator.value` of a filter on `field`. `in_logic`: the value comes
/// from an `or=(…)` tree, where a double-quoted value has its quotes removed.
pub fn parse_filter<'c>(
    field: Field<'c>,
    text: &str,
    in_logic: bool,
) -> Result<Filter<'c>, ApiError> {
    let (negated, rest) = match text.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (op, modifier, value) = split_operator(rest)?;
    let value_text = |value: &str| {
        if in_logic {
            unquote(value)
        } else {
            Ok(value.to_owned())
        }
    };
    let operation = if let Some(scalar) = ScalarOp::ALL.iter().find(|o| o.name() == op) {
        match modifier {
            None => Operation::Scalar(*scalar, pattern(*scalar, &value_text(value)?)),
            Some(m) => {
                let quantifier = match m {
                    "any" => Quantifier::Any,
                    "all" => Quantifier::All,
                    _ => return Err(invalid_filter("A quantifier is (any) or (all)")),
                };
                let values = parse_list(value, '{', '}')?
                    .into_iter()
                    .map(|v| pattern(*scalar, &v))
                    .collect();
                Operation::Quantified(*scalar, quantifier, values)
            }
        }
    } else if let Some(fts) = FtsOp::ALL.iter().find(|o| o.name() == op) {
        if let Some(config) = modifier {
            if !is_plain_name(config) {
                return Err(invalid_filter(
                    "A text search configuration is a plain name, e.g. fts(english)",
                ));
            }
        }
        Operation::FullText(*fts, modifier.map(str::to_owned), value_text(value)?)
    } else {
        if modifier.is_some() {
            return Err(invalid_filter("This operator takes no (modifier)"));
        }
        match op {
            "in" => Operation::In(parse_list(value, '(', ')')?),
            "is" => Operation::Is(
                *IsValue::ALL
                    .iter()
                    .find(|v| v.name() == value.to_ascii_lowercase())
                    .ok_or_else(|| {
                        invalid_filter("\"is\" takes null, not_null, true, false or unknown")
                    })?,
            ),
            "isdistinct" => Operation::IsDistinct(value_text(value)?),
            _ => match RangeOp::ALL.iter().find(|o| o.name() == op) {
                Some(range) => Operation::Range(*range, value_text(value)?),
                None if is_plain_name(op) => {
                    return Err(ApiError::bad_request(
                        "INVALID_OPERATOR",
                        format!("Unknown filter operator \"{op}\""),
                    ))
                }
                None => {
                    return Err(ApiError::bad_request(
                        "INVALID_OPERATOR",
                        "Unknown filter operator",
                    ))
                }
            },
        }
    };
    Ok(Filter {
        field,
        negated,
        operation,
    })
}

/// `like`/`ilike` take `*` for `%` (URL-friendly, as PostgREST).
fn pattern(op: ScalarOp, value: &str) -> String {
    match op {
        ScalarOp::Like | ScalarOp::Ilike => value.replace('*', "%"),
        _ => value.to_owned(),
    }
}

/// `op.value`, `op(modifier).value`; the modifier may contain dots (`fts(pg_catalog.english)`
/// is refused later, but must not be misread).
fn split_operator(text: &str) -> Result<(&str, Option<&str>, &str), ApiError> {
    let shape = || invalid_filter("A filter looks like column=operator.value, e.g. id=eq.5");
    let dot = text.find('.');
    let paren = text.find('(');
    match (dot, paren) {
        (_, Some(p)) if dot.is_none_or(|d| p < d) => {
            let close = text[p..].find(')').map(|c| p + c).ok_or_else(shape)?;
            let rest = text[close + 1..].strip_prefix('.').ok_or_else(shape)?;
            Ok((&text[..p], Some(&text[p + 1..close]), rest))
        }
        (Some(d), _) => Ok((&text[..d], None, &text[d + 1..])),
        _ => Err(shape()),
    }
}

/// A value from a logic tree: `"a,b"` loses its quotes (backslash escapes), a bare value is
/// as given.
fn unquote(value: &str) -> Result<String, ApiError> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_owned());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    loop {
        match chars.next() {
            Some('\\') => out.push(
                chars
                    .next()
                    .ok_or_else(|| invalid_filter("Unterminated quoted value"))?,
            ),
            Some('"') => break,
            Some(c) => out.push(c),
            None => return Err(invalid_filter("Unterminated quoted value")),
        }
    }
    if chars.next().is_some() {
        return Err(invalid_filter("Unexpected text after a quoted value"));
    }
    Ok(out)
}

/// `(a,b,"c,d","e \"f\"")` (or with braces): comma-separated, double quotes protect commas
/// and parentheses, backslash escapes inside quotes. `()` is the empty list.
pub fn parse_list(value: &str, open: char, close: char) -> Result<Vec<String>, ApiError> {
    let inner = value
        .strip_prefix(open)
        .and_then(|s| s.strip_suffix(close))
        .ok_or_else(|| {
            invalid_filter(format!(
                "This operator takes a list in {open}{close}, e.g. id=in.(1,2,3)"
            ))
        })?;
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    split_top_level(inner, ',')
        .map_err(|e| invalid_filter(e.message))?
        .into_iter()
        .map(|item| {
            if item.starts_with('"') {
                unquote(item)
            } else {
                Ok(item.to_owned())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::relationships::tests::library;

    fn f(text: &str) -> Result<Operation, ApiError> {
        let c = library();
        let t = c.table_ref("public", "books").unwrap();
        let field = parse_field("title", t)?;
        parse_filter(field, text, false).map(|f| f.operation)
    }

    #[test]
    fn every_operator() {
        use Operation as O;
        assert_eq!(f("eq.a.b").unwrap(), O::Scalar(ScalarOp::Eq, "a.b".into()));
        assert_eq!(f("eq.").unwrap(), O::Scalar(ScalarOp::Eq, String::new()));
        for op in ScalarOp::ALL {
            assert!(f(&format!("{}.x", op.name())).is_ok());
        }
        assert_eq!(
            f("ilike.*rust*").unwrap(),
            O::Scalar(ScalarOp::Ilike, "%rust%".into())
        );
        assert_eq!(
            f("match.^a*").unwrap(),
            O::Scalar(ScalarOp::Match, "^a*".into())
        );
        assert_eq!(
            f("in.(1,2,%223,4%22)".replace("%22", "\"").as_str()).unwrap(),
            O::In(vec!["1".into(), "2".into(), "3,4".into()])
        );
        assert_eq!(f("in.()").unwrap(), O::In(vec![]));
        assert_eq!(f("is.NULL").unwrap(), O::Is(IsValue::Null));
        assert_eq!(f("is.not_null").unwrap(), O::Is(IsValue::NotNull));
        assert_eq!(f("isdistinct.x").unwrap(), O::IsDistinct("x".into()));
        assert_eq!(
            f("fts(english).cat & dog").unwrap(),
            O::FullText(FtsOp::Fts, Some("english".into()), "cat & dog".into())
        );
        assert_eq!(
            f("wfts.cat").unwrap(),
            O::FullText(FtsOp::Web, None, "cat".into())
        );
        for op in RangeOp::ALL {
            assert!(
                matches!(f(&format!("{}.[1,5)", op.name())).unwrap(), O::Range(o, _) if o == op)
            );
        }
        assert_eq!(
            f("like(any).{a*,*b}").unwrap(),
            O::Quantified(
                ScalarOp::Like,
                Quantifier::Any,
                vec!["a%".into(), "%b".into()]
            )
        );
        assert_eq!(
            f("gt(all).{1,2}").unwrap(),
            O::Quantified(ScalarOp::Gt, Quantifier::All, vec!["1".into(), "2".into()])
        );
    }

    #[test]
    fn bad_filters() {
        for (bad, code) in [
            ("5", "INVALID_FILTER"),
            ("regex.x", "INVALID_OPERATOR"),
            ("drop table;.x", "INVALID_OPERATOR"),
            ("is.maybe", "INVALID_FILTER"),
            ("in.1,2", "INVALID_FILTER"),
            ("in.(\"a)", "INVALID_FILTER"),
            ("eq", "INVALID_FILTER"),
            ("eq(some).{1}", "INVALID_FILTER"),
            ("eq(any).1", "INVALID_FILTER"),
            ("fts(pg_catalog.english).x", "INVALID_FILTER"),
            ("fts(a'b).x", "INVALID_FILTER"),
            ("in(any).(1)", "INVALID_FILTER"),
            ("fts(english", "INVALID_FILTER"),
        ] {
            let e = f(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code.as_ref()), (400, code), "{bad}");
            assert!(!e.message.contains("drop"));
        }
    }

    #[test]
    fn logic_values_are_unquoted() {
        let c = library();
        let t = c.table_ref("public", "books").unwrap();
        let g = |text: &str| parse_filter(parse_field("title", t).unwrap(), text, true);
        assert_eq!(
            g("eq.\"a,b)\"").unwrap().operation,
            Operation::Scalar(ScalarOp::Eq, "a,b)".into())
        );
        assert_eq!(
            g("eq.\"say \\\"hi\\\"\"").unwrap().operation,
            Operation::Scalar(ScalarOp::Eq, "say \"hi\"".into())
        );
        assert!(g("eq.\"open").is_err());
        assert!(g("eq.\"a\"b").is_err());
    }

    #[test]
    fn fields() {
        let c = library();
        let t = c.table_ref("public", "books").unwrap();
        assert!(parse_field("data->a->>b", t).is_ok());
        assert!(parse_field("data->-1", t).is_ok());
        assert_eq!(
            parse_field("data->-1", t).unwrap().path[0].key,
            JsonKey::Index(-1)
        );
        assert_eq!(parse_field("data->>a", t).unwrap().type_sql(), "text");
        assert_eq!(parse_field("data->a", t).unwrap().type_sql(), "jsonb");
        for bad in ["data->", "data->>a->b", "nope->a", "data-->a"] {
            assert!(parse_field(bad, t).is_err(), "{bad}");
        }
    }
}

//! `order=a.desc.nullslast,b,data->>k.asc`.
use super::filter::parse_field;
use super::invalid_parameter;
use crate::error::ApiError;
use crate::rest::schema_cache::Table;
use crate::rest::tree::{Nulls, OrderTerm};

pub fn parse_order<'c>(value: &str, table: &'c Table) -> Result<Vec<OrderTerm<'c>>, ApiError> {
    let mut order = Vec::new();
    for item in value.split(',').map(str::trim) {
        let mut parts = item.split('.');
        let field = parts.next().unwrap_or_default();
        if field.is_empty() {
            return Err(invalid_parameter("The order list has an empty item"));
        }
        if field.contains('(') {
            return Err(ApiError::bad_request(
                "UNSUPPORTED_PARAMETER",
                "Ordering by an embedded resource's column is not supported; order the embed with embed.order=",
            ));
        }
        let mut term = OrderTerm {
            field: parse_field(field, table)?,
            descending: false,
            nulls: None,
        };
        let mut direction_seen = false;
        for modifier in parts {
            match modifier {
                "asc" | "desc" if !direction_seen => {
                    direction_seen = true;
                    term.descending = modifier == "desc";
                }
                "nullsfirst" if term.nulls.is_none() => term.nulls = Some(Nulls::First),
                "nullslast" if term.nulls.is_none() => term.nulls = Some(Nulls::Last),
                _ => {
                    return Err(invalid_parameter(
                        "order items are column[.asc|.desc][.nullsfirst|.nullslast]",
                    ))
                }
            }
        }
        order.push(term);
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::schema_cache::tests::posts;

    #[test]
    fn order_terms() {
        let t = posts();
        let o = parse_order("views.desc.nullslast,title,id.nullsfirst", &t).unwrap();
        assert_eq!(o.len(), 3);
        assert!(o[0].descending);
        assert_eq!(o[0].nulls, Some(Nulls::Last));
        assert!(!o[1].descending);
        assert_eq!(o[2].nulls, Some(Nulls::First));
        for bad in [
            "views.sideways",
            "views.desc.asc",
            ",id",
            "nope",
            "id;drop",
            "a(b).desc",
            "views.nullslast.nullsfirst",
        ] {
            assert!(parse_order(bad, &t).is_err(), "{bad}");
        }
    }
}

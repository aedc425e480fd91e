//! Logic trees: `or=(a.eq.1,and(b.gt.2,c.is.null))`, `and=(…)`, `not.or=(…)`, nested to
//! [`MAX_DEPTH`]. Each item is `field.[not.]operator.value`, or a nested
//! `[not.]and(…)`/`[not.]or(…)`; values with commas or parentheses are double-quoted.
use super::filter::{parse_field, parse_filter};
use super::{invalid_filter, split_top_level, MAX_DEPTH};
use crate::error::ApiError;
use crate::rest::schema_cache::Table;
use crate::rest::tree::{Condition, LogicOp};

/// The value of an `or=`/`and=` parameter: `(item,item,…)`.
pub fn parse_logic_value<'c>(
    op: LogicOp,
    negated: bool,
    value: &str,
    table: &'c Table,
    depth: usize,
) -> Result<Condition<'c>, ApiError> {
    if depth > MAX_DEPTH {
        return Err(invalid_filter("Logic trees are nested too deeply"));
    }
    let inner = value
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| {
            invalid_filter("A logic filter looks like or=(a.eq.1,b.gt.2), in parentheses")
        })?;
    let mut children = Vec::new();
    for item in split_top_level(inner, ',').map_err(|e| invalid_filter(e.message))? {
        let item = item.trim();
        if item.is_empty() {
            return Err(invalid_filter("A logic filter has an empty item"));
        }
        children.push(parse_item(item, table, depth)?);
    }
    Ok(Condition::Logic {
        op,
        negated,
        children,
    })
}

fn parse_item<'c>(item: &str, table: &'c Table, depth: usize) -> Result<Condition<'c>, ApiError> {
    let (negated, rest) = match item.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, item),
    };
    for (name, op) in [("and", LogicOp::And), ("or", LogicOp::Or)] {
        if let Some(group) = rest.strip_prefix(name) {
            if group.starts_with('(') {
                return parse_logic_value(op, negated, group, table, depth + 1);
            }
        }
    }
    // `field.[not.]op.value` (a field never contains a dot); a leading `not.` negates too.
    let (field, filter) = rest
        .split_once('.')
        .ok_or_else(|| invalid_filter("A logic filter item looks like column.operator.value"))?;
    let mut filter = parse_filter(parse_field(field, table)?, filter, true)?;
    filter.negated ^= negated;
    Ok(Condition::Filter(filter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::relationships::tests::library;
    use crate::rest::tree::{Operation, ScalarOp};

    #[test]
    fn nesting_and_quoting() {
        let c = library();
        let t = c.table_ref("public", "books").unwrap();
        let cond = parse_logic_value(
            LogicOp::Or,
            false,
            "(id.eq.1,and(title.like.*a*,not.or(id.gt.5,title.is.null)),title.eq.\"x,(y)\",id.in.(1,2),not.title.eq.z)",
            t,
            0,
        )
        .unwrap();
        let Condition::Logic { op, children, .. } = &cond else {
            panic!()
        };
        assert_eq!(*op, LogicOp::Or);
        assert_eq!(children.len(), 5);
        let Condition::Logic {
            op: LogicOp::And,
            children: inner,
            ..
        } = &children[1]
        else {
            panic!()
        };
        assert!(matches!(
            &inner[1],
            Condition::Logic {
                op: LogicOp::Or,
                negated: true,
                ..
            }
        ));
        let Condition::Filter(quoted) = &children[2] else {
            panic!()
        };
        assert_eq!(
            quoted.operation,
            Operation::Scalar(ScalarOp::Eq, "x,(y)".into())
        );
        let Condition::Filter(negated) = &children[4] else {
            panic!()
        };
        assert!(negated.negated);
    }

    #[test]
    fn bad_trees() {
        let c = library();
        let t = c.table_ref("public", "books").unwrap();
        for bad in [
            "id.eq.1",
            "(id.eq.1",
            "()",
            "(id.eq.1,)",
            "(nope.eq.1)",
            "(id)",
            "(and(id.eq.1)",
            "(comments.id.eq.1)",
        ] {
            assert!(
                parse_logic_value(LogicOp::Or, false, bad, t, 0).is_err(),
                "{bad}"
            );
        }
        let mut deep = "id.eq.1".to_owned();
        for _ in 0..40 {
            deep = format!("or({deep})");
        }
        let e = parse_logic_value(LogicOp::Or, false, &format!("({deep})"), t, 0).unwrap_err();
        assert_eq!(e.code, "INVALID_FILTER");
    }
}

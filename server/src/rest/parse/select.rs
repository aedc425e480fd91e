//! `select=`: columns, `alias:column`, casts (`col::text`), JSON paths (`data->a->>b`), `*`,
//! and embedded resources `alias:target!hint!inner(…)` nested to any depth (up to
//! [`MAX_DEPTH`]).
use super::filter::parse_field;
use super::{is_alias, is_plain_name, split_top_level, MAX_DEPTH};
use crate::error::ApiError;
use crate::rest::relationships;
use crate::rest::schema_cache::{SchemaCache, Table};
use crate::rest::tree::{Cast, Embed, Field, Node, SelectColumn, SelectItem};

fn invalid_select(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALID_SELECT", message)
}

/// Every column of `table`, in attribute order (what `*` means).
pub fn star(table: &Table) -> Vec<SelectItem<'_>> {
    table
        .columns
        .iter()
        .map(|column| {
            SelectItem::Column(SelectColumn {
                field: Field::plain(column),
                alias: None,
                cast: None,
            })
        })
        .collect()
}

/// Parses a select list for `table` at embedding depth `depth`.
pub fn parse_select<'c>(
    text: &str,
    cache: &'c SchemaCache,
    table: &'c Table,
    depth: usize,
) -> Result<Vec<SelectItem<'c>>, ApiError> {
    if depth > MAX_DEPTH {
        return Err(invalid_select("Embedded resources are nested too deeply"));
    }
    let text = text.trim();
    if text.is_empty() {
        // `select=` is `*`; an embed's `()` selects nothing (it only filters).
        return Ok(if depth == 0 { star(table) } else { Vec::new() });
    }
    let mut items = Vec::new();
    for raw in split_top_level(text, ',').map_err(|e| invalid_select(e.message))? {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(invalid_select("The select list has an empty item"));
        }
        if raw == "*" {
            items.extend(star(table));
        } else if let Some(open) = raw.find('(') {
            if !raw.ends_with(')') {
                return Err(invalid_select(
                    "An embedded resource looks like name(columns)",
                ));
            }
            let inner = &raw[open + 1..raw.len() - 1];
            let embed = parse_embed(&raw[..open], inner, cache, table, depth)?;
            if items
                .iter()
                .any(|i| matches!(i, SelectItem::Embed(e) if e.name == embed.name))
            {
                return Err(invalid_select(format!(
                    "The embedded resource \"{}\" is selected twice: give one an alias",
                    embed.name
                )));
            }
            items.push(SelectItem::Embed(embed));
        } else {
            items.push(SelectItem::Column(parse_column(raw, table)?));
        }
    }
    Ok(items)
}

/// `alias:field::cast`.
fn parse_column<'c>(raw: &str, table: &'c Table) -> Result<SelectColumn<'c>, ApiError> {
    let (alias, rest) = split_alias(raw)?;
    let (field_text, cast) = match rest.split_once("::") {
        Some((field, cast)) => {
            let cast = Cast::from_name(cast.trim()).ok_or_else(|| {
                invalid_select(if is_plain_name(cast) {
                    format!("Casting to \"{cast}\" is not supported")
                } else {
                    "Casting to that type is not supported".to_owned()
                })
            })?;
            (field, Some(cast))
        }
        None => (rest, None),
    };
    Ok(SelectColumn {
        field: parse_field(field_text.trim(), table)?,
        alias,
        cast,
    })
}

/// Splits `alias:rest` (a single colon; `::` is a cast).
fn split_alias(raw: &str) -> Result<(Option<String>, &str), ApiError> {
    let Some(i) = raw.find(':') else {
        return Ok((None, raw));
    };
    if raw[i + 1..].starts_with(':') {
        return Ok((None, raw));
    }
    let alias = raw[..i].trim();
    if !is_alias(alias) {
        return Err(invalid_select(
            "An alias must be a plain identifier (letters, digits, _)",
        ));
    }
    Ok((Some(alias.to_owned()), raw[i + 1..].trim()))
}

/// `alias:name!hint!inner` with the inner select list.
fn parse_embed<'c>(
    head: &str,
    inner: &str,
    cache: &'c SchemaCache,
    parent: &'c Table,
    depth: usize,
) -> Result<Embed<'c>, ApiError> {
    let (alias, rest) = split_alias(head.trim())?;
    if rest.starts_with("...") {
        return Err(ApiError::bad_request(
            "UNSUPPORTED_PARAMETER",
            "Spread embeds (...name) are not supported",
        ));
    }
    let mut parts = rest.split('!');
    let name = parts.next().unwrap_or_default().trim();
    let mut hint = None;
    let mut inner_join = false;
    for modifier in parts {
        match modifier.trim() {
            "inner" if !inner_join => inner_join = true,
            "left" => {}
            m if hint.is_none() && !m.is_empty() => hint = Some(m),
            _ => {
                return Err(invalid_select(
                    "An embed takes at most one hint and one !inner",
                ))
            }
        }
    }
    if name.is_empty() {
        return Err(invalid_select("An embedded resource needs a name"));
    }
    let relationship = relationships::find(cache, parent, name, hint)?;
    let target = relationship.target();
    let mut node = Node::new(target);
    node.select = parse_select(inner, cache, target, depth + 1)?;
    let hidden = inner.trim().is_empty();
    Ok(Embed {
        name: alias.unwrap_or_else(|| name.to_owned()),
        relationship,
        node,
        inner: inner_join,
        hidden,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::relationships::tests::library;
    use crate::rest::relationships::Relationship;
    use crate::rest::tree::{JsonKey, JsonStep};

    fn sel<'c>(
        text: &str,
        c: &'c SchemaCache,
        table: &str,
    ) -> Result<Vec<SelectItem<'c>>, ApiError> {
        parse_select(text, c, c.table_ref("public", table).unwrap(), 0)
    }

    fn column<'a>(item: &'a SelectItem<'_>) -> &'a SelectColumn<'a> {
        match item {
            SelectItem::Column(c) => c,
            SelectItem::Embed(_) => panic!("not a column"),
        }
    }

    #[test]
    fn columns_aliases_casts_paths() {
        let c = library();
        let items = sel("id,t:title,id::text,data->a->>b,x:data->0", &c, "books").unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(column(&items[1]).output_name(), "t");
        assert_eq!(column(&items[2]).cast, Some(Cast::Text));
        let path = &column(&items[3]).field.path;
        assert_eq!(
            path,
            &vec![
                JsonStep {
                    key: JsonKey::Name("a".into()),
                    as_text: false
                },
                JsonStep {
                    key: JsonKey::Name("b".into()),
                    as_text: true
                }
            ]
        );
        assert_eq!(column(&items[3]).output_name(), "b");
        assert_eq!(column(&items[4]).field.path[0].key, JsonKey::Index(0));
        assert_eq!(sel("*", &c, "books").unwrap().len(), 8);
        assert_eq!(sel("*,id", &c, "books").unwrap().len(), 9);
    }

    #[test]
    fn bad_selects() {
        let c = library();
        for bad in [
            "id,,title",
            "id::regclass",
            "id::text;drop",
            "a b:id",
            "1x:id",
            "data->",
            "data->a->>b->c",
            "comments(id",
            "comments(id)x",
            "comments!inner!inner(id)",
            "comments!a!b(id)",
            "...authors(name)",
            "comments(id),comments(body)",
        ] {
            let e = sel(bad, &c, "books").unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{bad}: {e}");
        }
    }

    #[test]
    fn embeds_nest() {
        let c = library();
        let items = sel(
            "title,writer:authors!author_id(name),comments!inner(body,books(title,tags(label)))",
            &c,
            "books",
        )
        .unwrap();
        let embeds: Vec<&Embed> = items
            .iter()
            .filter_map(|i| match i {
                SelectItem::Embed(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(embeds.len(), 2);
        assert_eq!(embeds[0].name, "writer");
        assert!(embeds[0].relationship.is_to_one());
        assert!(embeds[1].inner);
        assert!(matches!(
            embeds[1].relationship,
            Relationship::ToMany { .. }
        ));
        let nested = embeds[1].node.embeds().next().unwrap();
        assert!(nested.relationship.is_to_one());
        let tags = nested.node.embeds().next().unwrap();
        assert!(matches!(tags.relationship, Relationship::ManyToMany { .. }));
        let hidden = sel("id,comments!inner()", &c, "books").unwrap();
        assert!(matches!(&hidden[1], SelectItem::Embed(e) if e.hidden && e.node.select.is_empty()));
    }

    #[test]
    fn depth_is_bounded() {
        let c = library();
        let mut text = "id".to_owned();
        for _ in 0..40 {
            text = format!("id,books(id,comments({text}))");
        }
        let e = sel(&format!("id,comments({text})"), &c, "books").unwrap_err();
        assert_eq!(e.code, "INVALID_SELECT");
    }
}

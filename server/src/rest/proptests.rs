//! Property tests of the REST parser and builder, on the [`super::fixture`] schema.
//!
//! 1. Arbitrary input (any string as the query, and strings built from the dialect's own
//!    punctuation, and arbitrary header values) never panics, and is either accepted or
//!    refused with a 4xx (300 for an ambiguous embed): the same entry the fuzz target calls.
//! 2. Round trip: a query generated from the grammar parses; printing the parsed tree back
//!    into query parameters and parsing again gives the same tree.
use super::fixture::library;
use super::parse::{parse_query, prefer, range, Purpose};
use super::relationships::Relationship;
use super::respond;
use super::tree::{Condition, Field, Filter, JsonKey, Node, Nulls, Operation, SelectItem};
use super::{parse_request_for_fuzzing, schema_cache::SchemaCache};
use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

fn assert_client_error(
    result: Result<Vec<String>, crate::error::ApiError>,
) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        let status = e.status.as_u16();
        prop_assert!(
            (400..500).contains(&status) || status == 300,
            "{status} {}",
            e.message
        );
    }
    Ok(())
}

/// Pieces of the dialect, so random input gets past the first checks often.
fn dialect_noise() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("select=".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("id".to_owned()),
        Just("title".to_owned()),
        Just("data->".to_owned()),
        Just("->>".to_owned()),
        Just("comments".to_owned()),
        Just("authors!books_author_id_fkey".to_owned()),
        Just("tags".to_owned()),
        Just("!inner".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(",".to_owned()),
        Just(".".to_owned()),
        Just(":".to_owned()),
        Just("::".to_owned()),
        Just("*".to_owned()),
        Just("%22".to_owned()),
        Just("\\".to_owned()),
        Just("not.".to_owned()),
        Just("eq.".to_owned()),
        Just("in.".to_owned()),
        Just("fts(english).".to_owned()),
        Just("cs.{".to_owned()),
        Just("}".to_owned()),
        Just("or=".to_owned()),
        Just("and(".to_owned()),
        Just("order=".to_owned()),
        Just(".desc".to_owned()),
        Just("limit=".to_owned()),
        Just("on_conflict=".to_owned()),
        Just("columns=".to_owned()),
        "[a-z0-9]{1,3}",
        "\\PC{1,3}",
    ];
    proptest::collection::vec(token, 0..24).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_queries_never_panic(query in "\\PC{0,200}") {
        assert_client_error(parse_request_for_fuzzing(&query))?;
    }

    #[test]
    fn dialect_shaped_noise_never_panics(query in dialect_noise()) {
        assert_client_error(parse_request_for_fuzzing(&query))?;
    }

    #[test]
    fn arbitrary_headers_never_panic(value in "[ -~]{0,80}") {
        if let Ok(v) = HeaderValue::from_str(&value) {
            for name in ["prefer", "range", "range-unit", "accept"] {
                let mut h = HeaderMap::new();
                h.insert(name, v.clone());
                for status in [
                    prefer::parse(&h).err().map(|e| e.status),
                    range::parse(&h).err().map(|e| e.status),
                    respond::negotiate(&h).err().map(|e| e.status),
                ].into_iter().flatten() {
                    prop_assert!(status.is_client_error(), "{name}: {value}: {status}");
                }
            }
        }
    }

    #[test]
    fn generated_queries_round_trip(pairs in query_pairs()) {
        let cache = library();
        let books = cache.table_ref("public", "books").unwrap();
        let first = parse_query(&pairs, &cache, books, Purpose::Read);
        prop_assert!(first.is_ok(), "{pairs:?}: {:?}", first.err());
        let first = first.unwrap();
        let printed = print_node(&first.root);
        let second = parse_query(&printed, &cache, books, Purpose::Read);
        prop_assert!(second.is_ok(), "{printed:?}: {:?}", second.err());
        prop_assert_eq!(&first.root, &second.unwrap().root, "{:?} → {:?}", pairs, printed);
        // And the builder takes whatever the parser accepted.
        let page = range::page(first.root.limit, first.root.offset, None, 10);
        let stmt = super::build::read::read(&first.root, page, super::build::read::Body::Json, super::build::read::Total::Exact, 10);
        prop_assert!(stmt.sql.starts_with("SELECT "));
    }
}

// ---- generators (text, from the grammar) ----

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_]{0,4}",
        (-3i64..20).prop_map(|i| i.to_string())
    ]
}

/// A field of `books`: a column, or a JSON path on `data`.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["id", "title", "author_id", "tags", "during", "doc"])
            .prop_map(str::to_owned),
        (proptest::collection::vec(json_key(), 1..3), any::<bool>()).prop_map(|(keys, text)| {
            let mut s = "data".to_owned();
            for (i, k) in keys.iter().enumerate() {
                let last = i + 1 == keys.len();
                s.push_str(if last && text { "->>" } else { "->" });
                s.push_str(k);
            }
            s
        }),
    ]
}

/// A value as a top-level parameter takes it: anything.
fn top_value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.()\"'*%{}\\[\\]-]{0,10}"
}

fn list_item() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.()'*-]{0,6}".prop_map(|v| quote(&v))
}

/// `[not.]op.value` with a value of the right shape for the operator; `logic`: inside an
/// `or=(…)`, where scalar values are quoted.
fn operation(logic: bool) -> impl Strategy<Value = String> {
    let scalar = (
        prop::sample::select(vec![
            "eq",
            "neq",
            "gt",
            "gte",
            "lt",
            "lte",
            "like",
            "ilike",
            "match",
            "imatch",
            "isdistinct",
            "cs",
            "cd",
            "ov",
            "sl",
            "sr",
            "nxr",
            "nxl",
            "adj",
        ]),
        top_value(),
    )
        .prop_map(move |(op, v)| format!("{op}.{}", if logic { quote(&v) } else { v }));
    let list = || proptest::collection::vec(list_item(), 0..4);
    let op = prop_oneof![
        scalar,
        list().prop_map(|items| format!("in.({})", items.join(","))),
        (
            prop::sample::select(vec!["eq", "like", "gt", "imatch"]),
            prop::sample::select(vec!["any", "all"]),
            list()
        )
            .prop_map(|(op, q, items)| format!("{op}({q}).{{{}}}", items.join(","))),
        prop::sample::select(vec!["null", "not_null", "true", "false", "unknown"])
            .prop_map(|v| format!("is.{v}")),
        (
            prop::sample::select(vec!["fts", "plfts", "phfts", "wfts"]),
            prop::option::of(Just("english")),
            top_value()
        )
            .prop_map(move |(op, config, v)| {
                let config = config.map(|c| format!("({c})")).unwrap_or_default();
                format!("{op}{config}.{}", if logic { quote(&v) } else { v })
            }),
    ];
    (any::<bool>(), op).prop_map(|(not, op)| if not { format!("not.{op}") } else { op })
}

fn logic_tree() -> impl Strategy<Value = String> {
    let leaf = (field(), operation(true)).prop_map(|(f, o)| format!("{f}.{o}"));
    leaf.prop_recursive(3, 12, 4, |inner| {
        (
            any::<bool>(),
            prop::sample::select(vec!["and", "or"]),
            proptest::collection::vec(inner, 1..4),
        )
            .prop_map(|(not, op, items)| {
                format!("{}{op}({})", if not { "not." } else { "" }, items.join(","))
            })
    })
}

fn logic_value() -> impl Strategy<Value = String> {
    proptest::collection::vec(logic_tree(), 1..4).prop_map(|items| format!("({})", items.join(",")))
}

fn order() -> impl Strategy<Value = String> {
    let term = (
        field(),
        prop::option::of(prop::sample::select(vec!["asc", "desc"])),
        prop::option::of(prop::sample::select(vec!["nullsfirst", "nullslast"])),
    )
        .prop_map(|(f, d, n)| {
            let mut s = f;
            for m in [d, n].into_iter().flatten() {
                s.push('.');
                s.push_str(m);
            }
            s
        });
    proptest::collection::vec(term, 1..3).prop_map(|t| t.join(","))
}

fn select_column() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-z][a-z0-9_]{0,5}"),
        field(),
        prop::option::of(prop::sample::select(vec!["text", "int", "float8", "jsonb"])),
    )
        .prop_map(|(alias, f, cast)| {
            let mut s = alias.map(|a| format!("{a}:")).unwrap_or_default();
            s.push_str(&f);
            if let Some(c) = cast {
                s.push_str("::");
                s.push_str(c);
            }
            s
        })
}

/// `select=` of books with embeds (uniquely aliased), and embedded parameters.
fn query_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let columns = proptest::collection::vec(select_column(), 1..4);
    let embeds = proptest::collection::vec(
        (
            prop::sample::select(vec![
                "authors!books_author_id_fkey(id,name)",
                "authors!editor_id(*)",
                "comments(id,body)",
                "comments!inner(body)",
                "comments()",
                "tags(label)",
                "book_tags(*)",
                "comments(body,books(title,tags(*)))",
            ]),
            prop::option::of((field_of_comments(), operation(false))),
        ),
        0..3,
    );
    (
        columns,
        embeds,
        proptest::collection::vec((field(), operation(false)), 0..3),
        prop::option::of(logic_value()),
        prop::option::of(order()),
        prop::option::of((0u64..1000, 0u64..1000)),
    )
        .prop_map(|(columns, embeds, filters, logic, order, page)| {
            let mut select = columns;
            let mut pairs = Vec::new();
            for (i, (embed, filter)) in embeds.into_iter().enumerate() {
                let name = format!("e{i}");
                select.push(format!("{name}:{embed}"));
                // Only comments embeds take the comments filter.
                if let (true, Some((f, o))) = (embed.starts_with("comments"), filter) {
                    pairs.push((format!("{name}.{f}"), o));
                }
            }
            pairs.insert(0, ("select".to_owned(), select.join(",")));
            for (f, o) in filters {
                pairs.push((f, o));
            }
            if let Some(l) = logic {
                pairs.push(("or".to_owned(), l));
            }
            if let Some(o) = order {
                pairs.push(("order".to_owned(), o));
            }
            if let Some((limit, offset)) = page {
                pairs.push(("limit".to_owned(), limit.to_string()));
                pairs.push(("offset".to_owned(), offset.to_string()));
            }
            pairs
        })
}

fn field_of_comments() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["id", "body", "status", "book_id"]).prop_map(str::to_owned)
}

fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

// ---- the printer: a tree back into query parameters ----

fn print_field(f: &Field<'_>) -> String {
    let mut s = f.column.name.clone();
    for step in &f.path {
        s.push_str(if step.as_text { "->>" } else { "->" });
        match &step.key {
            JsonKey::Name(n) => s.push_str(n),
            JsonKey::Index(i) => s.push_str(&i.to_string()),
        }
    }
    s
}

fn print_operation(f: &Filter<'_>, logic: bool) -> String {
    let v = |s: &str| if logic { quote(s) } else { s.to_owned() };
    let list = |items: &[String]| items.iter().map(|i| quote(i)).collect::<Vec<_>>().join(",");
    let op = match &f.operation {
        Operation::Scalar(op, value) => format!("{}.{}", op.name(), v(value)),
        Operation::Quantified(op, q, items) => {
            format!("{}({}).{{{}}}", op.name(), q.name(), list(items))
        }
        Operation::In(items) => format!("in.({})", list(items)),
        Operation::Is(value) => format!("is.{}", value.name()),
        Operation::IsDistinct(value) => format!("isdistinct.{}", v(value)),
        Operation::FullText(op, config, value) => format!(
            "{}{}.{}",
            op.name(),
            config
                .as_ref()
                .map(|c| format!("({c})"))
                .unwrap_or_default(),
            v(value)
        ),
        Operation::Range(op, value) => format!("{}.{}", op.name(), v(value)),
    };
    if f.negated {
        format!("not.{op}")
    } else {
        op
    }
}

fn print_logic_items(children: &[Condition<'_>]) -> String {
    let items: Vec<String> = children
        .iter()
        .map(|c| match c {
            Condition::Filter(f) => {
                format!("{}.{}", print_field(&f.field), print_operation(f, true))
            }
            Condition::Logic {
                op,
                negated,
                children,
            } => format!(
                "{}{}{}",
                if *negated { "not." } else { "" },
                op.name(),
                print_logic_items(children)
            ),
        })
        .collect();
    format!("({})", items.join(","))
}

fn print_select(items: &[SelectItem<'_>]) -> String {
    items
        .iter()
        .map(|item| match item {
            SelectItem::Column(c) => {
                let mut s = c
                    .alias
                    .as_ref()
                    .map(|a| format!("{a}:"))
                    .unwrap_or_default();
                s.push_str(&print_field(&c.field));
                if let Some(cast) = c.cast {
                    s.push_str("::");
                    s.push_str(cast.name());
                }
                s
            }
            SelectItem::Embed(e) => {
                let hint = match &e.relationship {
                    Relationship::ToOne { fk, .. } | Relationship::ToMany { fk, .. } => &fk.name,
                    Relationship::ManyToMany { junction, .. } => &junction.name,
                };
                format!(
                    "{}:{}!{hint}{}({})",
                    e.name,
                    e.relationship.target().name,
                    if e.inner { "!inner" } else { "" },
                    print_select(&e.node.select)
                )
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn print_params(node: &Node<'_>, prefix: &str, out: &mut Vec<(String, String)>) {
    for c in &node.filters {
        match c {
            Condition::Filter(f) => out.push((
                format!("{prefix}{}", print_field(&f.field)),
                print_operation(f, false),
            )),
            Condition::Logic {
                op,
                negated,
                children,
            } => out.push((
                format!(
                    "{prefix}{}{}",
                    if *negated { "not." } else { "" },
                    op.name()
                ),
                print_logic_items(children),
            )),
        }
    }
    if !node.order.is_empty() {
        let terms: Vec<String> = node
            .order
            .iter()
            .map(|o| {
                let mut s = print_field(&o.field);
                s.push_str(if o.descending { ".desc" } else { ".asc" });
                match o.nulls {
                    Some(Nulls::First) => s.push_str(".nullsfirst"),
                    Some(Nulls::Last) => s.push_str(".nullslast"),
                    None => {}
                }
                s
            })
            .collect();
        out.push((format!("{prefix}order"), terms.join(",")));
    }
    if let Some(l) = node.limit {
        out.push((format!("{prefix}limit"), l.to_string()));
    }
    if let Some(o) = node.offset {
        out.push((format!("{prefix}offset"), o.to_string()));
    }
    for e in node.embeds() {
        print_params(&e.node, &format!("{prefix}{}.", e.name), out);
    }
}

fn print_node(root: &Node<'_>) -> Vec<(String, String)> {
    let mut out = vec![("select".to_owned(), print_select(&root.select))];
    print_params(root, "", &mut out);
    out
}

#[test]
fn printer_round_trips_a_known_query() {
    let cache: SchemaCache = library();
    let books = cache.table_ref("public", "books").unwrap();
    let pairs = super::parse::decode_pairs(Some(
        "select=id,t:title::text,data->a->>b,w:authors!author_id(name),comments!inner(body)&comments.body=like.*x*&or=(id.eq.1,not.and(title.in.(%22a,b%22,c),data->0.is.null))&order=id.desc.nullslast&limit=5",
    ))
    .unwrap();
    let first = parse_query(&pairs, &cache, books, Purpose::Read).unwrap();
    let printed = print_node(&first.root);
    let second = parse_query(&printed, &cache, books, Purpose::Read).unwrap();
    assert_eq!(first.root, second.root, "{printed:?}");
}

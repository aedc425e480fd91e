//! The typed query tree: what a request asks for, resolved against the schema cache.
//!
//! Why a tree of references: every column is a `&Column` of the cache and every embed a
//! [`Relationship`] between cached tables, so the SQL builder ([`super::build`]) can only
//! be handed names that exist. Client text survives only as *values* (filter operands, JSON
//! path keys), which the builder passes as bind parameters, and as aliases, which the
//! parser restricts to plain identifiers.
use super::relationships::Relationship;
use super::schema_cache::{Column, Table};

/// One relation of the request: the root table, or an embedded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'c> {
    pub table: &'c Table,
    /// Never empty for a visible node: `*` is expanded to the table's columns.
    pub select: Vec<SelectItem<'c>>,
    /// ANDed together.
    pub filters: Vec<Condition<'c>>,
    pub order: Vec<OrderTerm<'c>>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

impl<'c> Node<'c> {
    pub fn new(table: &'c Table) -> Self {
        Node {
            table,
            select: Vec::new(),
            filters: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }

    /// The embeds of this node, in select order.
    pub fn embeds(&self) -> impl Iterator<Item = &Embed<'c>> {
        self.select.iter().filter_map(|item| match item {
            SelectItem::Embed(e) => Some(e),
            SelectItem::Column(_) => None,
        })
    }

    pub fn embed_mut(&mut self, name: &str) -> Option<&mut Embed<'c>> {
        self.select.iter_mut().find_map(|item| match item {
            SelectItem::Embed(e) if e.name == name => Some(e),
            _ => None,
        })
    }

    /// The output names of the columns this node returns (embeds included), in order.
    pub fn output_names(&self) -> Vec<&str> {
        self.select
            .iter()
            .filter_map(|item| match item {
                SelectItem::Column(c) => Some(c.output_name()),
                SelectItem::Embed(e) if !e.hidden => Some(e.name.as_str()),
                SelectItem::Embed(_) => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem<'c> {
    Column(SelectColumn<'c>),
    Embed(Embed<'c>),
}

/// `alias:field::cast`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectColumn<'c> {
    pub field: Field<'c>,
    pub alias: Option<String>,
    pub cast: Option<Cast>,
}

impl SelectColumn<'_> {
    /// The JSON key: the alias, else the last JSON path key, else the column name (as
    /// PostgREST names them).
    pub fn output_name(&self) -> &str {
        if let Some(alias) = &self.alias {
            return alias;
        }
        match self.field.path.last() {
            Some(JsonStep {
                key: JsonKey::Name(name),
                ..
            }) => name,
            _ => &self.field.column.name,
        }
    }
}

/// A column, possibly followed by a JSON path (`data->a->>b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'c> {
    pub column: &'c Column,
    pub path: Vec<JsonStep>,
}

impl<'c> Field<'c> {
    pub fn plain(column: &'c Column) -> Self {
        Field {
            column,
            path: Vec::new(),
        }
    }

    /// The SQL type of the field's value: the column's, or `text` after `->>`, or the JSON
    /// column's type after `->`.
    pub fn type_sql(&self) -> &str {
        match self.path.last() {
            Some(step) if step.as_text => "text",
            _ => &self.column.type_sql,
        }
    }
}

/// One `->key` / `->>key` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    pub key: JsonKey,
    /// `->>` (text) rather than `->` (json).
    pub as_text: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonKey {
    /// An object key: sent as a bind parameter.
    Name(String),
    /// An array index (`->0`, `->-1`): an integer the builder prints itself.
    Index(i64),
}

/// The types a select item may be cast to (`col::text`). A fixed list, so client text never
/// becomes a type name in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    Text,
    SmallInt,
    Integer,
    BigInt,
    Numeric,
    Real,
    Double,
    Boolean,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Json,
    Jsonb,
}

impl Cast {
    /// The client spellings accepted for each type.
    pub const NAMES: [(&'static str, Cast); 25] = [
        ("text", Cast::Text),
        ("varchar", Cast::Text),
        ("smallint", Cast::SmallInt),
        ("int2", Cast::SmallInt),
        ("int", Cast::Integer),
        ("integer", Cast::Integer),
        ("int4", Cast::Integer),
        ("bigint", Cast::BigInt),
        ("int8", Cast::BigInt),
        ("numeric", Cast::Numeric),
        ("decimal", Cast::Numeric),
        ("real", Cast::Real),
        ("float4", Cast::Real),
        ("float8", Cast::Double),
        ("boolean", Cast::Boolean),
        ("bool", Cast::Boolean),
        ("date", Cast::Date),
        ("time", Cast::Time),
        ("timestamp", Cast::Timestamp),
        ("timestamptz", Cast::TimestampTz),
        ("interval", Cast::Interval),
        ("uuid", Cast::Uuid),
        ("json", Cast::Json),
        ("jsonb", Cast::Jsonb),
        ("double", Cast::Double),
    ];

    pub fn from_name(name: &str) -> Option<Cast> {
        let lower = name.to_ascii_lowercase();
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, c)| *c)
    }

    /// The canonical client spelling (what the printer writes).
    pub fn name(self) -> &'static str {
        match self {
            Cast::Text => "text",
            Cast::SmallInt => "smallint",
            Cast::Integer => "integer",
            Cast::BigInt => "bigint",
            Cast::Numeric => "numeric",
            Cast::Real => "real",
            Cast::Double => "float8",
            Cast::Boolean => "boolean",
            Cast::Date => "date",
            Cast::Time => "time",
            Cast::Timestamp => "timestamp",
            Cast::TimestampTz => "timestamptz",
            Cast::Interval => "interval",
            Cast::Uuid => "uuid",
            Cast::Json => "json",
            Cast::Jsonb => "jsonb",
        }
    }

    /// The SQL type name (fixed text).
    pub fn sql(self) -> &'static str {
        match self {
            Cast::Text => "text",
            Cast::SmallInt => "smallint",
            Cast::Integer => "integer",
            Cast::BigInt => "bigint",
            Cast::Numeric => "numeric",
            Cast::Real => "real",
            Cast::Double => "double precision",
            Cast::Boolean => "boolean",
            Cast::Date => "date",
            Cast::Time => "time",
            Cast::Timestamp => "timestamp",
            Cast::TimestampTz => "timestamptz",
            Cast::Interval => "interval",
            Cast::Uuid => "uuid",
            Cast::Json => "json",
            Cast::Jsonb => "jsonb",
        }
    }
}

/// An embedded resource: `alias:target!hint!inner(select…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed<'c> {
    /// The JSON key (the alias, else the name used in the request); also the path prefix of
    /// its parameters (`comments.order=…`).
    pub name: String,
    pub relationship: Relationship<'c>,
    pub node: Node<'c>,
    /// `!inner`: parent rows only where this embed has rows.
    pub inner: bool,
    /// `comments()`: used only to filter (with `!inner`), not returned.
    pub hidden: bool,
}

/// A WHERE condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition<'c> {
    Filter(Filter<'c>),
    /// `or=(…)`, `and=(…)`, `not.or=(…)`; never empty.
    Logic {
        op: LogicOp,
        negated: bool,
        children: Vec<Condition<'c>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicOp {
    And,
    Or,
}

impl LogicOp {
    pub fn name(self) -> &'static str {
        match self {
            LogicOp::And => "and",
            LogicOp::Or => "or",
        }
    }
}

/// `field=[not.]operator.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<'c> {
    pub field: Field<'c>,
    pub negated: bool,
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `eq`…`imatch` with one value. For `like`/`ilike` the value already has `*` turned into `%`.
    Scalar(ScalarOp, String),
    /// `eq(any).{a,b}`, `like(all).{…}`: the operator against every element.
    Quantified(ScalarOp, Quantifier, Vec<String>),
    /// `in.(a,b,"c,d")`.
    In(Vec<String>),
    /// `is.null|not_null|true|false|unknown`.
    Is(IsValue),
    /// `isdistinct.value`.
    IsDistinct(String),
    /// `fts(config).query` and friends; the config is a bind parameter cast to `regconfig`.
    FullText(FtsOp, Option<String>, String),
    /// `cs cd ov sl sr nxr nxl adj`: array/range/jsonb operators, the value a literal of the
    /// column's type (`{1,2}`, `[1,5)`).
    Range(RangeOp, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Match,
    Imatch,
}

impl ScalarOp {
    pub const ALL: [ScalarOp; 10] = [
        ScalarOp::Eq,
        ScalarOp::Neq,
        ScalarOp::Gt,
        ScalarOp::Gte,
        ScalarOp::Lt,
        ScalarOp::Lte,
        ScalarOp::Like,
        ScalarOp::Ilike,
        ScalarOp::Match,
        ScalarOp::Imatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScalarOp::Eq => "eq",
            ScalarOp::Neq => "neq",
            ScalarOp::Gt => "gt",
            ScalarOp::Gte => "gte",
            ScalarOp::Lt => "lt",
            ScalarOp::Lte => "lte",
            ScalarOp::Like => "like",
            ScalarOp::Ilike => "ilike",
            ScalarOp::Match => "match",
            ScalarOp::Imatch => "imatch",
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            ScalarOp::Eq => "=",
            ScalarOp::Neq => "<>",
            ScalarOp::Gt => ">",
            ScalarOp::Gte => ">=",
            ScalarOp::Lt => "<",
            ScalarOp::Lte => "<=",
            ScalarOp::Like => "LIKE",
            ScalarOp::Ilike => "ILIKE",
            ScalarOp::Match => "~",
            ScalarOp::Imatch => "~*",
        }
    }

    /// Pattern operators compare the field as text with a text pattern; the others compare
    /// with a value of the field's own type.
    pub fn is_pattern(self) -> bool {
        matches!(
            self,
            ScalarOp::Like | ScalarOp::Ilike | ScalarOp::Match | ScalarOp::Imatch
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

impl Quantifier {
    pub fn name(self) -> &'static str {
        match self {
            Quantifier::Any => "any",
            Quantifier::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

impl IsValue {
    pub const ALL: [IsValue; 5] = [
        IsValue::Null,
        IsValue::NotNull,
        IsValue::True,
        IsValue::False,
        IsValue::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IsValue::Null => "null",
            IsValue::NotNull => "not_null",
            IsValue::True => "true",
            IsValue::False => "false",
            IsValue::Unknown => "unknown",
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            IsValue::Null => "IS NULL",
            IsValue::NotNull => "IS NOT NULL",
            IsValue::True => "IS TRUE",
            IsValue::False => "IS FALSE",
            IsValue::Unknown => "IS UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtsOp {
    Fts,
    Plain,
    Phrase,
    Web,
}

impl FtsOp {
    pub const ALL: [FtsOp; 4] = [FtsOp::Fts, FtsOp::Plain, FtsOp::Phrase, FtsOp::Web];

    pub fn name(self) -> &'static str {
        match self {
            FtsOp::Fts => "fts",
            FtsOp::Plain => "plfts",
            FtsOp::Phrase => "phfts",
            FtsOp::Web => "wfts",
        }
    }

    /// The tsquery constructor.
    pub fn function(self) -> &'static str {
        match self {
            FtsOp::Fts => "to_tsquery",
            FtsOp::Plain => "plainto_tsquery",
            FtsOp::Phrase => "phraseto_tsquery",
            FtsOp::Web => "websearch_to_tsquery",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    Contains,
    ContainedIn,
    Overlaps,
    StrictlyLeft,
    StrictlyRight,
    NotExtendsRight,
    NotExtendsLeft,
    Adjacent,
}

impl RangeOp {
    pub const ALL: [RangeOp; 8] = [
        RangeOp::Contains,
        RangeOp::ContainedIn,
        RangeOp::Overlaps,
        RangeOp::StrictlyLeft,
        RangeOp::StrictlyRight,
        RangeOp::NotExtendsRight,
        RangeOp::NotExtendsLeft,
        RangeOp::Adjacent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RangeOp::Contains => "cs",
            RangeOp::ContainedIn => "cd",
            RangeOp::Overlaps => "ov",
            RangeOp::StrictlyLeft => "sl",
            RangeOp::StrictlyRight => "sr",
            RangeOp::NotExtendsRight => "nxr",
            RangeOp::NotExtendsLeft => "nxl",
            RangeOp::Adjacent => "adj",
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            RangeOp::Contains => "@>",
            RangeOp::ContainedIn => "<@",
            RangeOp::Overlaps => "&&",
            RangeOp::StrictlyLeft => "<<",
            RangeOp::StrictlyRight => ">>",
            RangeOp::NotExtendsRight => "&<",
            RangeOp::NotExtendsLeft => "&>",
            RangeOp::Adjacent => "-|-",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

/// `field[.asc|.desc][.nullsfirst|.nullslast]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm<'c> {
    pub field: Field<'c>,
    pub descending: bool,
    pub nulls: Option<Nulls>,
}

//! What tables, views, columns and foreign keys the exposed schemas have, read from
//! `pg_catalog`.
//!
//! Why a cache: every table, column and relationship name in a request is checked against it
//! *before* any SQL is built, so a name that is not a real column of an exposed table
//! (quotes, semicolons, `auth.users`…) never reaches SQL at all. It also supplies each
//! column's type (`format_type`), which the SQL builder casts bind parameters to.
//!
//! Why `pg_catalog`: it is readable by every role, including the server's login role, which
//! has no other privilege. Privileges on the tables themselves are still checked by
//! PostgreSQL per request role (a listed table can still answer 401/403).
//!
//! When it changes: at start, and whenever [`super::listener`] hears a DDL notification.
//! Requests never query the catalog (except a state that never loaded, see
//! [`SchemaCacheHandle::claim_first_load`]).
//!
//! Strict RLS (`api.strict_rls`, default on): a relation whose rows RLS cannot protect is not
//! exposed at all — tables with RLS off, views without `security_invoker` (they read their
//! tables as the view's owner, so the owner's RLS exemption applies), materialized views and
//! foreign tables (RLS does not exist for them). Each is logged once per load.
use crate::config::{is_forbidden_schema, ApiConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One column of a table or view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, atttypmod)`, e.g. `integer`, `character varying(20)`,
    /// `timestamp with time zone`, `public."Mood"`. Produced by PostgreSQL, so it is a valid,
    /// properly quoted type expression.
    pub type_sql: String,
    pub not_null: bool,
    pub has_default: bool,
}

/// What kind of relation a [`Table`] is (`pg_class.relkind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
}

impl RelationKind {
    fn from_relkind(relkind: &str) -> Option<Self> {
        Some(match relkind {
            "r" => Self::Table,
            "p" => Self::PartitionedTable,
            "v" => Self::View,
            "m" => Self::MaterializedView,
            "f" => Self::ForeignTable,
            _ => return None,
        })
    }
}

/// A table or view of an exposed schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    /// In attribute order.
    pub columns: Vec<Column>,
    /// Primary-key column names in key order (empty for views and keyless tables).
    pub primary_key: Vec<String>,
    pub rls_enabled: bool,
    /// Views only: `WITH (security_invoker = true)`.
    pub security_invoker: bool,
    /// Views only: reads (directly or through security_invoker views) a relation RLS does
    /// not protect, e.g. a table with RLS off.
    pub unprotected_source: bool,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Why strict RLS refuses to expose this relation, or `None` when RLS protects it.
    pub fn rls_gap(&self) -> Option<&'static str> {
        match self.kind {
            RelationKind::Table | RelationKind::PartitionedTable if !self.rls_enabled => {
                Some("row-level security is disabled")
            }
            RelationKind::View if !self.security_invoker => {
                Some("the view is not security_invoker (it reads as its owner)")
            }
            RelationKind::View if self.unprotected_source => Some(
                "the view reads a relation row-level security does not protect (a table with RLS off, a view that is not security_invoker, a materialized view or a foreign table)",
            ),
            RelationKind::MaterializedView => Some("a materialized view has no row-level security"),
            RelationKind::ForeignTable => Some("a foreign table has no row-level security"),
            _ => None,
        }
    }
}

/// A foreign key: `schema.table(columns)` references `ref_schema.ref_table(ref_columns)`,
/// `columns[i]` pointing at `ref_columns[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

impl ForeignKey {
    pub fn is_from(&self, table: &Table) -> bool {
        self.schema == table.schema && self.table == table.name
    }

    pub fn is_to(&self, table: &Table) -> bool {
        self.ref_schema == table.schema && self.ref_table == table.name
    }
}

/// A snapshot of the exposed schemas.
#[derive(Debug, Default, Clone)]
pub struct SchemaCache {
    tables: HashMap<(String, String), Arc<Table>>,
    /// Only keys whose both ends are exposed tables of this cache.
    foreign_keys: Vec<ForeignKey>,
}

impl SchemaCache {
    pub fn from_tables(tables: impl IntoIterator<Item = Table>) -> Self {
        Self::from_parts(tables, Vec::new())
    }

    /// A cache of `tables` and those `foreign_keys` whose both ends are among them.
    pub fn from_parts(
        tables: impl IntoIterator<Item = Table>,
        foreign_keys: Vec<ForeignKey>,
    ) -> Self {
        let tables: HashMap<(String, String), Arc<Table>> = tables
            .into_iter()
            .map(|t| ((t.schema.clone(), t.name.clone()), Arc::new(t)))
            .collect();
        let known =
            |schema: &str, name: &str| tables.contains_key(&(schema.to_owned(), name.to_owned()));
        let foreign_keys = foreign_keys
            .into_iter()
            .filter(|fk| known(&fk.schema, &fk.table) && known(&fk.ref_schema, &fk.ref_table))
            .collect();
        Self {
            tables,
            foreign_keys,
        }
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<Arc<Table>> {
        self.table_ref(schema, name).cloned()
    }

    pub fn table_ref(&self, schema: &str, name: &str) -> Option<&Arc<Table>> {
        self.tables.get(&(schema.to_owned(), name.to_owned()))
    }

    pub fn tables(&self) -> impl Iterator<Item = &Arc<Table>> {
        self.tables.values()
    }

    pub fn foreign_keys(&self) -> &[ForeignKey] {
        &self.foreign_keys
    }

    pub fn len(&self) -> usize {
        self.tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Reads the exposed schemas' relations, columns and foreign keys from `pg_catalog`.
    /// Forbidden schemas are dropped again here, so a config bug could not expose `auth`
    /// anyway. Under `strict_rls` relations with an RLS gap are left out; every gap is
    /// logged either way.
    pub async fn load(
        client: &tokio_postgres::Client,
        schemas: &[String],
        strict_rls: bool,
    ) -> Result<Self, tokio_postgres::Error> {
        let schemas: Vec<String> = schemas
            .iter()
            .filter(|s| !is_forbidden_schema(s))
            .cloned()
            .collect();
        let rows = client.query(RELATIONS_SQL, &[&schemas]).await?;
        // Per table: the table and its primary-key columns with their key positions.
        type Building = (Table, Vec<(i32, String)>);
        let mut by_key: HashMap<(String, String), Building> = HashMap::new();
        for row in rows {
            let schema: String = row.try_get(0)?;
            let name: String = row.try_get(1)?;
            let relkind: String = row.try_get(2)?;
            let Some(kind) = RelationKind::from_relkind(&relkind) else {
                continue;
            };
            let rls_enabled: bool = row.try_get(3)?;
            let security_invoker: bool = row.try_get(4)?;
            let column = Column {
                name: row.try_get(5)?,
                type_sql: row.try_get(6)?,
                not_null: row.try_get(7)?,
                has_default: row.try_get(8)?,
            };
            let pk_position: i32 = row.try_get(9)?;
            let unprotected_source: bool = row.try_get(10)?;
            let entry = by_key
                .entry((schema.clone(), name.clone()))
                .or_insert_with(|| {
                    let table = Table {
                        schema,
                        name,
                        kind,
                        columns: Vec::new(),
                        primary_key: Vec::new(),
                        rls_enabled,
                        security_invoker,
                        unprotected_source,
                    };
                    (table, Vec::new())
                });
            if pk_position > 0 {
                entry.1.push((pk_position, column.name.clone()));
            }
            entry.0.columns.push(column);
        }
        let mut tables: Vec<Table> = by_key
            .into_values()
            .map(|(mut table, mut pk)| {
                pk.sort();
                table.primary_key = pk.into_iter().map(|(_, name)| name).collect();
                table
            })
            .collect();
        tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        let tables = apply_rls_policy(tables, strict_rls);
        let mut foreign_keys = Vec::new();
        for row in client.query(FOREIGN_KEYS_SQL, &[&schemas]).await? {
            foreign_keys.push(ForeignKey {
                name: row.try_get(0)?,
                schema: row.try_get(1)?,
                table: row.try_get(2)?,
                columns: row.try_get(3)?,
                ref_schema: row.try_get(4)?,
                ref_table: row.try_get(5)?,
                ref_columns: row.try_get(6)?,
            });
        }
        Ok(Self::from_parts(tables, foreign_keys))
    }
}

/// Logs every relation with an RLS gap and, under `strict`, leaves it out.
pub fn apply_rls_policy(tables: Vec<Table>, strict: bool) -> Vec<Table> {
    tables
        .into_iter()
        .filter(|t| match t.rls_gap() {
            None => true,
            Some(reason) => {
                let relation = format!("{}.{}", t.schema, t.name);
                if strict {
                    tracing::warn!(%relation, reason, "not exposed (api.strict_rls)");
                } else {
                    tracing::warn!(%relation, reason, "exposed without row-level security protection (api.strict_rls is off)");
                }
                !strict
            }
        })
        .collect()
}

/// See `sql/server/schema_cache_relations.sql`.
const RELATIONS_SQL: &str = include_str!("../../../sql/server/schema_cache_relations.sql");
/// See `sql/server/schema_cache_foreign_keys.sql`.
const FOREIGN_KEYS_SQL: &str = include_str!("../../../sql/server/schema_cache_foreign_keys.sql");

/// The shared, reloadable cache.
pub struct SchemaCacheHandle {
    schemas: Vec<String>,
    strict_rls: bool,
    current: RwLock<Arc<SchemaCache>>,
    /// Serialises reloads.
    reloading: tokio::sync::Mutex<()>,
    /// Whether a load ever succeeded (read on every request: no lock).
    loaded: AtomicBool,
    /// When a never-loaded state last tried to load on demand.
    first_load_try: std::sync::Mutex<Option<Instant>>,
}

/// How often a state that never loaded may try again on a request.
pub const FIRST_LOAD_RETRY: Duration = Duration::from_secs(1);

impl SchemaCacheHandle {
    pub fn new(api: &ApiConfig, initial: SchemaCache, loaded: bool) -> Self {
        Self {
            schemas: api.exposed_schemas.clone(),
            strict_rls: api.strict_rls,
            current: RwLock::new(Arc::new(initial)),
            reloading: tokio::sync::Mutex::new(()),
            loaded: AtomicBool::new(loaded),
            first_load_try: std::sync::Mutex::new(None),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<SchemaCache> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc; the value is whole.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn replace(&self, cache: SchemaCache) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cache);
    }

    /// Reloads from the database now.
    pub async fn reload(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        let _one_at_a_time = self.reloading.lock().await;
        let cache = SchemaCache::load(client, &self.schemas, self.strict_rls).await?;
        tracing::info!(
            tables = cache.len(),
            foreign_keys = cache.foreign_keys().len(),
            "schema cache loaded"
        );
        self.replace(cache);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the cache has ever loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// For a state that never loaded (a lazy state, or a start while the listener had not
    /// yet reached the database): whether this request may try to load now (at most once
    /// per [`FIRST_LOAD_RETRY`]). A loaded cache never reloads on requests.
    pub async fn claim_first_load(&self) -> bool {
        if self.is_loaded() {
            return false;
        }
        let mut last = self
            .first_load_try
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if at.elapsed() < FIRST_LOAD_RETRY => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            type_sql: ty.into(),
            not_null: false,
            has_default: false,
        }
    }

    pub fn table(name: &str, columns: Vec<Column>, pk: &[&str]) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            kind: RelationKind::Table,
            columns,
            primary_key: pk.iter().map(|s| (*s).to_owned()).collect(),
            rls_enabled: true,
            security_invoker: false,
            unprotected_source: false,
        }
    }

    /// A table used by the parser and builder tests.
    pub fn posts() -> Table {
        table(
            "posts",
            vec![
                col("id", "uuid"),
                col("title", "text"),
                col("views", "integer"),
                col("published", "boolean"),
                col("created_at", "timestamp with time zone"),
                col("we\"ird", "character varying(20)"),
            ],
            &["id"],
        )
    }

    #[test]
    fn lookup() {
        let cache = SchemaCache::from_tables([posts()]);
        assert_eq!(cache.len(), 1);
        let t = cache.table("public", "posts").unwrap();
        assert_eq!(
            t.column("views").map(|c| c.type_sql.as_str()),
            Some("integer")
        );
        assert!(t.column("nope").is_none());
        assert!(cache.table("public", "Posts").is_none());
        assert!(cache.table("auth", "posts").is_none());
    }

    #[test]
    fn foreign_keys_need_both_ends() {
        let fk = |name: &str, to: &str| ForeignKey {
            name: name.into(),
            schema: "public".into(),
            table: "posts".into(),
            columns: vec!["id".into()],
            ref_schema: "public".into(),
            ref_table: to.into(),
            ref_columns: vec!["id".into()],
        };
        let cache =
            SchemaCache::from_parts([posts()], vec![fk("self_fk", "posts"), fk("out", "hidden")]);
        assert_eq!(cache.foreign_keys().len(), 1);
        assert_eq!(cache.foreign_keys()[0].name, "self_fk");
    }

    #[test]
    fn strict_rls_refuses_unprotected_relations() {
        let mut open = table("open", vec![col("id", "int")], &["id"]);
        open.rls_enabled = false;
        let mut definer_view = table("v", vec![col("id", "int")], &[]);
        definer_view.kind = RelationKind::View;
        let mut invoker_view = definer_view.clone();
        invoker_view.name = "iv".into();
        invoker_view.security_invoker = true;
        let mut invoker_over_open = invoker_view.clone();
        invoker_over_open.name = "iv_open".into();
        invoker_over_open.unprotected_source = true;
        let mut matview = definer_view.clone();
        matview.name = "mv".into();
        matview.kind = RelationKind::MaterializedView;
        let all = vec![
            posts(),
            open,
            definer_view,
            invoker_view,
            invoker_over_open,
            matview,
        ];
        let names = |ts: Vec<Table>| ts.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(
            names(apply_rls_policy(all.clone(), true)),
            vec!["posts", "iv"]
        );
        assert_eq!(names(apply_rls_policy(all, false)).len(), 6);
    }

    #[tokio::test]
    async fn first_load_retries_are_rate_limited() {
        let handle = SchemaCacheHandle::new(&ApiConfig::default(), SchemaCache::default(), false);
        assert!(handle.claim_first_load().await, "never loaded: may load");
        assert!(!handle.claim_first_load().await, "just claimed: must wait");
        let loaded = SchemaCacheHandle::new(&ApiConfig::default(), SchemaCache::default(), true);
        assert!(
            !loaded.claim_first_load().await,
            "loaded: never on requests"
        );
        handle.replace(SchemaCache::from_tables([posts()]));
        assert!(handle.snapshot().table("public", "posts").is_some());
    }

    #[test]
    fn relkinds() {
        assert_eq!(RelationKind::from_relkind("v"), Some(RelationKind::View));
        assert_eq!(RelationKind::from_relkind("i"), None);
        assert_eq!(RelationKind::from_relkind("S"), None);
    }
}

//! What tables, views and columns the exposed schemas have, read from `pg_catalog`.
//!
//! Why a cache: every table and column name in a request is checked against it *before* any
//! SQL is built, so a name that is not a real column of an exposed table (quotes,
//! semicolons, `auth.users`…) never reaches SQL at all. It also supplies each column's type
//! (`format_type`), which the SQL builder casts bind parameters to.
//!
//! Why `pg_catalog`: it is readable by every role, including the server's login role, which
//! has no other privilege. Privileges on the tables themselves are still checked by
//! PostgreSQL per request role (a listed table can still answer 401/403).
use crate::config::is_forbidden_schema;
use std::collections::HashMap;
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
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A snapshot of the exposed schemas.
#[derive(Debug, Default, Clone)]
pub struct SchemaCache {
    tables: HashMap<(String, String), Arc<Table>>,
}

impl SchemaCache {
    pub fn from_tables(tables: impl IntoIterator<Item = Table>) -> Self {
        let tables = tables
            .into_iter()
            .map(|t| ((t.schema.clone(), t.name.clone()), Arc::new(t)))
            .collect();
        Self { tables }
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<Arc<Table>> {
        self.tables
            .get(&(schema.to_owned(), name.to_owned()))
            .cloned()
    }

    pub fn tables(&self) -> impl Iterator<Item = &Arc<Table>> {
        self.tables.values()
    }

    pub fn len(&self) -> usize {
        self.tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Reads the exposed schemas' relations and columns from `pg_catalog`. Forbidden schemas
    /// are dropped again here, so a config bug could not expose `auth` anyway.
    pub async fn load(
        client: &tokio_postgres::Client,
        schemas: &[String],
    ) -> Result<Self, tokio_postgres::Error> {
        let schemas: Vec<String> = schemas
            .iter()
            .filter(|s| !is_forbidden_schema(s))
            .cloned()
            .collect();
        let rows = client.query(LOAD_SQL, &[&schemas]).await?;
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
            let column = Column {
                name: row.try_get(4)?,
                type_sql: row.try_get(5)?,
                not_null: row.try_get(6)?,
                has_default: row.try_get(7)?,
            };
            let pk_position: i32 = row.try_get(8)?;
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
                    };
                    (table, Vec::new())
                });
            if pk_position > 0 {
                entry.1.push((pk_position, column.name.clone()));
            }
            entry.0.columns.push(column);
        }
        Ok(Self::from_tables(by_key.into_values().map(
            |(mut table, mut pk)| {
                pk.sort();
                table.primary_key = pk.into_iter().map(|(_, name)| name).collect();
                table
            },
        )))
    }
}

/// One row per column of every table, view, materialized view and foreign table in the
/// given schemas, in attribute order.
const LOAD_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity,
       a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef,
       coalesce(pg_catalog.array_position(pk.conkey, a.attnum), 0)::int4
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
WHERE n.nspname::text = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY n.nspname, c.relname, a.attnum";

/// The shared, reloadable cache.
///
/// Why reload on a miss: until DDL notifications exist, a table created after the server
/// started would otherwise stay invisible until restart. Reloading at most once per
/// [`MISS_RELOAD_INTERVAL`] keeps a client that asks for nonexistent tables in a loop from
/// turning each request into a catalog scan.
pub struct SchemaCacheHandle {
    schemas: Vec<String>,
    current: RwLock<Arc<SchemaCache>>,
    /// When the cache was last (re)loaded, or tried to be; also serialises reloads.
    last_reload: tokio::sync::Mutex<Option<Instant>>,
}

pub const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl SchemaCacheHandle {
    pub fn new(schemas: Vec<String>, initial: SchemaCache, loaded: bool) -> Self {
        Self {
            schemas,
            current: RwLock::new(Arc::new(initial)),
            last_reload: tokio::sync::Mutex::new(loaded.then(Instant::now)),
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
        let mut last = self.last_reload.lock().await;
        *last = Some(Instant::now());
        let cache = SchemaCache::load(client, &self.schemas).await?;
        tracing::info!(tables = cache.len(), "schema cache loaded");
        self.replace(cache);
        Ok(())
    }

    /// Whether a miss may trigger a reload now (none in the last interval). Reserves the slot,
    /// so concurrent misses reload once.
    pub async fn claim_miss_reload(&self) -> bool {
        let mut last = self.last_reload.lock().await;
        match *last {
            Some(at) if at.elapsed() < MISS_RELOAD_INTERVAL => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    /// Reloads without touching the rate-limit slot (the caller claimed it).
    pub async fn reload_claimed(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        let cache = SchemaCache::load(client, &self.schemas).await?;
        tracing::info!(tables = cache.len(), "schema cache reloaded after a miss");
        self.replace(cache);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A table used by the parser and builder tests.
    pub fn posts() -> Table {
        let col = |name: &str, ty: &str| Column {
            name: name.into(),
            type_sql: ty.into(),
            not_null: false,
            has_default: false,
        };
        Table {
            schema: "public".into(),
            name: "posts".into(),
            kind: RelationKind::Table,
            columns: vec![
                col("id", "uuid"),
                col("title", "text"),
                col("views", "integer"),
                col("published", "boolean"),
                col("created_at", "timestamp with time zone"),
                col("we\"ird", "character varying(20)"),
            ],
            primary_key: vec!["id".into()],
            rls_enabled: true,
        }
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

    #[tokio::test]
    async fn miss_reloads_are_rate_limited() {
        let handle = SchemaCacheHandle::new(vec!["public".into()], SchemaCache::default(), false);
        assert!(handle.claim_miss_reload().await, "never loaded: may reload");
        assert!(!handle.claim_miss_reload().await, "just claimed: must wait");
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

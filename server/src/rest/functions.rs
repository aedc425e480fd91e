//! What functions the exposed schemas have, read from `pg_catalog`, and which overload a
//! call means. The HTTP handlers are in [`crate::routes::rpc`]; the SQL of a call is built in
//! [`call`], the query string over a function's result rows is parsed in [`result_query`].
//!
//! Why a cache, as for tables ([`super::schema_cache`]): every function and argument name a
//! request gives is looked up here *before* any SQL is built, so a name that is not a real
//! argument of a real function of an exposed schema never reaches SQL. It also supplies each
//! argument's type (`format_type`), which the call casts the client's values to, and the
//! result's columns, which `select=`, filters and `order` are checked against.
//!
//! Why functions of forbidden schemas are dropped here again: `/rpc/authenticate` or
//! `/rpc/auth/sign_in` must answer 404 even if a configuration bug listed `auth`.
use super::schema_cache::Column;
use crate::config::is_forbidden_schema;
use crate::error::ApiError;
use crate::rest::parse::is_plain_name;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub mod call;
pub mod result_query;

/// `pg_proc.provolatile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

impl Volatility {
    fn from_provolatile(code: &str) -> Self {
        match code {
            "i" => Self::Immutable,
            "s" => Self::Stable,
            // Anything unknown is treated as the most dangerous kind.
            _ => Self::Volatile,
        }
    }

    /// Whether the function promises not to write (so a read-only transaction suffices and
    /// GET may call it).
    pub fn is_read_only(self) -> bool {
        !matches!(self, Self::Volatile)
    }
}

/// One input argument (`IN`, `INOUT` or `VARIADIC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    /// Empty only for the single unnamed json/jsonb argument (see
    /// [`Function::takes_whole_body`]).
    pub name: String,
    /// `format_type(type, NULL)`, a valid, quoted type expression made by PostgreSQL.
    pub type_sql: String,
    pub has_default: bool,
    pub variadic: bool,
}

/// What a call gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returns {
    /// `RETURNS void`: the HTTP answer is 204.
    Void,
    /// A scalar (or an unnamed record, or one `OUT` argument): the JSON value, or with `set`
    /// a JSON array of them.
    Scalar { set: bool },
    /// A composite type, `RETURNS TABLE (...)` or several `OUT` arguments: one JSON object,
    /// or with `set` a JSON array of objects. `columns` are what `select=` and filters name.
    Rows { columns: Vec<Column>, set: bool },
}

impl Returns {
    pub fn is_set(&self) -> bool {
        matches!(
            self,
            Returns::Scalar { set: true } | Returns::Rows { set: true, .. }
        )
    }
}

/// A function of an exposed schema that `/rpc` can call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub schema: String,
    pub name: String,
    /// Input arguments in declaration order.
    pub arguments: Vec<Argument>,
    pub returns: Returns,
    pub volatility: Volatility,
    /// `SECURITY DEFINER`: runs with its owner's privileges (PostgreSQL still checks that the
    /// caller may EXECUTE it). Kept for the start-up report and for callers that want to know.
    pub security_definer: bool,
    /// Whether the function has its own `SET search_path`.
    pub pins_search_path: bool,
}

impl Function {
    /// PostgREST's rule: a function whose only argument is an unnamed `json` or `jsonb` takes
    /// the whole request body as that argument.
    pub fn takes_whole_body(&self) -> bool {
        matches!(self.arguments.as_slice(), [only] if only.name.is_empty())
    }

    pub fn argument(&self, name: &str) -> Option<&Argument> {
        self.arguments
            .iter()
            .find(|a| !a.name.is_empty() && a.name == name)
    }

    /// Whether `keys` name arguments of this function only, and every argument without a
    /// default among them.
    fn accepts(&self, keys: &[&str]) -> bool {
        keys.iter().all(|k| self.argument(k).is_some())
            && self
                .arguments
                .iter()
                .filter(|a| !a.has_default)
                .all(|a| keys.contains(&a.name.as_str()))
    }
}

/// One row of `sql/server/function_cache.sql`, before deciding whether it is callable.
#[derive(Debug, Clone, Default)]
pub struct CatalogRow {
    pub schema: String,
    pub name: String,
    pub volatility: String,
    pub security_definer: bool,
    pub returns_set: bool,
    pub returns_void: bool,
    pub returns_record: bool,
    pub defaults: i32,
    pub arg_names: Vec<String>,
    pub arg_modes: Vec<String>,
    pub arg_types: Vec<String>,
    pub pseudo_input: bool,
    pub column_names: Vec<String>,
    pub column_types: Vec<String>,
    pub return_schema: String,
    pub pins_search_path: bool,
}

fn column(name: &str, type_sql: &str) -> Column {
    Column {
        name: name.to_owned(),
        type_sql: type_sql.to_owned(),
        not_null: false,
        has_default: false,
    }
}

impl CatalogRow {
    /// The callable function this row describes, or `None` when HTTP cannot call it: an input
    /// of a pseudo-type, an unnamed input (other than the single json/jsonb one PostgREST
    /// allows), or `SETOF record` without the column list a caller would have to write. Also
    /// left out: functions returning rows of a type from a forbidden schema (`SETOF
    /// auth.users`), so no function, however defined, serves `auth` rows over HTTP.
    pub fn into_function(self) -> Option<Function> {
        if !self.column_names.is_empty() && is_forbidden_schema(&self.return_schema) {
            tracing::warn!(
                function = %format!("{}.{}", self.schema, self.name),
                return_type_schema = %self.return_schema,
                "function returns rows of an internal schema: not callable over /rpc"
            );
            return None;
        }
        let mode = |i: usize| self.arg_modes.get(i).map(String::as_str).unwrap_or("i");
        let name = |i: usize| self.arg_names.get(i).cloned().unwrap_or_default();
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut table_columns = false;
        for (i, type_sql) in self.arg_types.iter().enumerate() {
            let mode = mode(i);
            if matches!(mode, "i" | "b" | "v") {
                inputs.push((name(i), type_sql.clone(), mode == "v"));
            }
            if matches!(mode, "o" | "b" | "t") {
                table_columns |= mode == "t";
                outputs.push(column(&name(i), type_sql));
            }
        }
        if self.pseudo_input {
            return None;
        }
        let first_default = inputs
            .len()
            .saturating_sub(usize::try_from(self.defaults).unwrap_or(0));
        let arguments: Vec<Argument> = inputs
            .into_iter()
            .enumerate()
            .map(|(i, (name, type_sql, variadic))| Argument {
                name,
                type_sql,
                has_default: i >= first_default,
                variadic,
            })
            .collect();
        let unnamed = arguments.iter().any(|a| a.name.is_empty());
        let whole_body = matches!(arguments.as_slice(), [only]
            if only.name.is_empty() && matches!(only.type_sql.as_str(), "json" | "jsonb"));
        if unnamed && !whole_body {
            return None;
        }
        let set = self.returns_set;
        let returns = if self.returns_void {
            Returns::Void
        } else if !self.column_names.is_empty() {
            let columns = self
                .column_names
                .iter()
                .zip(&self.column_types)
                .map(|(n, t)| column(n, t))
                .collect();
            Returns::Rows { columns, set }
        } else if table_columns || outputs.len() > 1 {
            // An unnamed output column cannot be selected or filtered by name.
            if outputs.iter().any(|c| c.name.is_empty()) {
                return None;
            }
            Returns::Rows {
                columns: outputs,
                set,
            }
        } else if self.returns_record && set {
            return None;
        } else {
            Returns::Scalar { set }
        };
        Some(Function {
            schema: self.schema,
            name: self.name,
            arguments,
            returns,
            volatility: Volatility::from_provolatile(&self.volatility),
            security_definer: self.security_definer,
            pins_search_path: self.pins_search_path,
        })
    }
}

/// A snapshot of the exposed schemas' functions, overloads grouped by name.
#[derive(Debug, Default, Clone)]
pub struct FunctionCache {
    functions: HashMap<(String, String), Vec<Arc<Function>>>,
}

/// The catalog query (a file of its own, commented there).
const LOAD_SQL: &str = include_str!("../../../sql/server/function_cache.sql");

impl FunctionCache {
    pub fn from_functions(functions: impl IntoIterator<Item = Function>) -> Self {
        let mut map: HashMap<(String, String), Vec<Arc<Function>>> = HashMap::new();
        for f in functions {
            map.entry((f.schema.clone(), f.name.clone()))
                .or_default()
                .push(Arc::new(f));
        }
        Self { functions: map }
    }

    /// Every overload named `schema.name` (empty when there is none).
    pub fn overloads(&self, schema: &str, name: &str) -> &[Arc<Function>] {
        self.functions
            .get(&(schema.to_owned(), name.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn functions(&self) -> impl Iterator<Item = &Arc<Function>> {
        self.functions.values().flatten()
    }

    /// The number of callable functions (overloads counted one by one).
    pub fn len(&self) -> usize {
        self.functions.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// Reads the callable functions of `schemas` (forbidden ones dropped) from `pg_catalog`.
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
        let mut functions = Vec::with_capacity(rows.len());
        for row in rows {
            let catalog = CatalogRow {
                schema: row.try_get("schema")?,
                name: row.try_get("name")?,
                volatility: row.try_get("volatility")?,
                security_definer: row.try_get("security_definer")?,
                returns_set: row.try_get("returns_set")?,
                returns_void: row.try_get("returns_void")?,
                returns_record: row.try_get("returns_record")?,
                defaults: row.try_get("defaults")?,
                arg_names: row.try_get("arg_names")?,
                arg_modes: row.try_get("arg_modes")?,
                arg_types: row.try_get("arg_types")?,
                pseudo_input: row.try_get("pseudo_input")?,
                column_names: row.try_get("column_names")?,
                column_types: row.try_get("column_types")?,
                return_schema: row.try_get("return_schema")?,
                pins_search_path: row.try_get("pins_search_path")?,
            };
            if is_forbidden_schema(&catalog.schema) {
                continue;
            }
            functions.extend(catalog.into_function());
        }
        Ok(Self::from_functions(functions))
    }
}

/// Warns about every callable SECURITY DEFINER function without its own `search_path`: it
/// runs with its owner's rights but resolves names through the caller's search path, the
/// classic way to hijack one (PostgreSQL's docs, "Writing SECURITY DEFINER Functions Safely").
pub fn report_unpinned_definers(cache: &FunctionCache) {
    let mut names: Vec<String> = cache
        .functions()
        .filter(|f| f.security_definer && !f.pins_search_path)
        .map(|f| format!("{}.{}", f.schema, f.name))
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        tracing::warn!(
            function = %name,
            "exposed SECURITY DEFINER function has no SET search_path"
        );
    }
}

/// The overload a call means, by PostgREST's rule: the one whose arguments include every
/// given key and whose arguments without a default are all given. With `whole_body` (a POST
/// body), a function taking the whole body as its single unnamed json argument matches too.
///
/// `overloads` must not be empty. Two or more matches: 300 `AMBIGUOUS_FUNCTION` (PostgREST
/// answers 300 too). None: 400 naming the unknown or the missing arguments.
pub fn choose<'f>(
    overloads: &'f [Arc<Function>],
    keys: &[&str],
    whole_body: bool,
) -> Result<&'f Arc<Function>, ApiError> {
    let matches: Vec<&Arc<Function>> = overloads
        .iter()
        .filter(|f| {
            if f.takes_whole_body() {
                whole_body
            } else {
                f.accepts(keys)
            }
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(no_overload(overloads, keys)),
        _ => Err(ApiError::new(
            StatusCode::MULTIPLE_CHOICES,
            "AMBIGUOUS_FUNCTION",
            format!(
                "Several overloads of {} take these arguments; rename the arguments so one matches",
                display_name(&overloads[0])
            ),
        )),
    }
}

/// `"schema.name"` for messages (names from the catalog: not client text, but quoted anyway).
fn display_name(f: &Function) -> String {
    format!("\"{}.{}\"", f.schema, f.name)
}

/// Names for a message: each plain name quoted; anything else (an injection attempt, say)
/// not echoed.
fn name_list(names: &[&str]) -> String {
    let plain: Vec<String> = names
        .iter()
        .filter(|n| is_plain_name(n))
        .map(|n| format!("\"{n}\""))
        .collect();
    let hidden = names.len() - plain.len();
    let mut text = plain.join(", ");
    if hidden > 0 {
        if !text.is_empty() {
            text.push_str(" and ");
        }
        text.push_str(&format!("{hidden} invalid name(s)"));
    }
    text
}

fn no_overload(overloads: &[Arc<Function>], keys: &[&str]) -> ApiError {
    let Some(first) = overloads.first() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "FUNCTION_NOT_FOUND",
            "Function not found",
        );
    };
    let name = display_name(first);
    let unknown: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !overloads.iter().any(|f| f.argument(k).is_some()))
        .collect();
    if !unknown.is_empty() {
        return ApiError::bad_request(
            "UNKNOWN_ARGUMENT",
            format!("{name} has no argument(s) {}", name_list(&unknown)),
        )
        .with_details(serde_json::json!({
            "unknown": unknown.iter().filter(|n| is_plain_name(n)).collect::<Vec<_>>()
        }));
    }
    if let [only] = overloads {
        let missing: Vec<&str> = only
            .arguments
            .iter()
            .filter(|a| !a.has_default && !keys.contains(&a.name.as_str()))
            .map(|a| a.name.as_str())
            .collect();
        if only.takes_whole_body() {
            return ApiError::bad_request(
                "INVALID_ARGUMENTS",
                format!("{name} takes the whole request body as its argument; call it with POST"),
            );
        }
        return ApiError::bad_request(
            "MISSING_ARGUMENT",
            format!("{name} needs the argument(s) {}", name_list(&missing)),
        )
        .with_details(serde_json::json!({ "missing": missing }));
    }
    ApiError::bad_request(
        "INVALID_ARGUMENTS",
        if keys.is_empty() {
            format!("No overload of {name} can be called without arguments")
        } else {
            format!(
                "No overload of {name} takes exactly the arguments {}",
                name_list(keys)
            )
        },
    )
}

/// How often a state whose function cache never loaded may try again on a request.
pub const FIRST_LOAD_RETRY: Duration = Duration::from_secs(1);

/// The shared, reloadable cache, with the same rules as
/// [`super::schema_cache::SchemaCacheHandle`]: it loads at start and reloads on every DDL
/// notification ([`super::listener`]); requests never query the catalog, except a state that
/// never loaded (a lazy state), which tries on a request at most once per
/// [`FIRST_LOAD_RETRY`]. So asking for nonexistent functions in a loop costs no catalog scan.
pub struct FunctionCacheHandle {
    schemas: Vec<String>,
    current: RwLock<Arc<FunctionCache>>,
    loaded: AtomicBool,
    first_load_try: tokio::sync::Mutex<Option<Instant>>,
}

impl FunctionCacheHandle {
    pub fn new(schemas: Vec<String>, initial: FunctionCache, loaded: bool) -> Self {
        Self {
            schemas,
            current: RwLock::new(Arc::new(initial)),
            loaded: AtomicBool::new(loaded),
            first_load_try: tokio::sync::Mutex::new(None),
        }
    }

    pub fn snapshot(&self) -> Arc<FunctionCache> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc; the value is whole.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn replace(&self, cache: FunctionCache) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cache);
    }

    /// Reloads from the database now (at start, and from the DDL listener).
    pub async fn reload(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        let cache = FunctionCache::load(client, &self.schemas).await?;
        tracing::info!(functions = cache.len(), "function cache loaded");
        self.replace(cache);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether a request may load a cache that never loaded (none tried in the last
    /// [`FIRST_LOAD_RETRY`]). A loaded cache never reloads on requests. Reserves the slot, so
    /// concurrent requests load once.
    pub async fn claim_first_load(&self) -> bool {
        if self.loaded.load(Ordering::Acquire) {
            return false;
        }
        let mut last = self.first_load_try.lock().await;
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

    fn row(name: &str, names: &[&str], modes: &[&str], types: &[&str]) -> CatalogRow {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        CatalogRow {
            schema: "public".into(),
            name: name.into(),
            volatility: "v".into(),
            arg_names: strings(names),
            arg_modes: strings(modes),
            arg_types: strings(types),
            ..CatalogRow::default()
        }
    }

    /// `add_them(a integer, b integer DEFAULT 1) RETURNS integer`, immutable.
    pub fn add_them() -> Function {
        let mut r = row("add_them", &["a", "b"], &[], &["integer", "integer"]);
        r.defaults = 1;
        r.volatility = "i".into();
        r.into_function().unwrap()
    }

    /// `list_notes(max integer) RETURNS TABLE (id bigint, title text)`, stable.
    pub fn list_notes() -> Function {
        let mut r = row(
            "list_notes",
            &["max", "id", "title"],
            &["i", "t", "t"],
            &["integer", "bigint", "text"],
        );
        r.returns_set = true;
        r.returns_record = true;
        r.volatility = "s".into();
        r.into_function().unwrap()
    }

    #[test]
    fn arguments_and_defaults() {
        let f = add_them();
        assert_eq!(f.arguments.len(), 2);
        assert!(!f.arguments[0].has_default);
        assert!(f.arguments[1].has_default);
        assert_eq!(f.returns, Returns::Scalar { set: false });
        assert_eq!(f.volatility, Volatility::Immutable);
        assert!(f.volatility.is_read_only());
        assert!(!f.takes_whole_body());
    }

    #[test]
    fn table_results_have_columns() {
        let f = list_notes();
        assert_eq!(f.arguments.len(), 1);
        assert_eq!(f.arguments[0].name, "max");
        let Returns::Rows { columns, set } = &f.returns else {
            panic!("rows expected: {:?}", f.returns)
        };
        assert!(set);
        assert_eq!(
            columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["id", "title"]
        );
        // A single-column RETURNS TABLE is still rows (PostgREST #1930).
        let mut r = row("one", &["x"], &["t"], &["integer"]);
        r.returns_set = true;
        assert!(matches!(
            r.into_function().unwrap().returns,
            Returns::Rows { set: true, .. }
        ));
        // One OUT argument is a scalar.
        let r = row("out1", &["a", "x"], &["i", "o"], &["integer", "integer"]);
        assert_eq!(
            r.into_function().unwrap().returns,
            Returns::Scalar { set: false }
        );
        // A composite return type: its columns.
        let mut r = row("me", &[], &[], &[]);
        r.column_names = vec!["id".into(), "email".into()];
        r.column_types = vec!["uuid".into(), "text".into()];
        assert!(matches!(
            r.into_function().unwrap().returns,
            Returns::Rows { set: false, .. }
        ));
        let mut r = row("nothing", &[], &[], &[]);
        r.returns_void = true;
        assert_eq!(r.into_function().unwrap().returns, Returns::Void);
    }

    #[test]
    fn uncallable_functions_are_left_out() {
        let mut r = row("poly", &["x"], &[], &["anyelement"]);
        r.pseudo_input = true;
        assert!(r.into_function().is_none(), "pseudo-typed input");
        assert!(
            row("unnamed", &[], &[], &["integer"])
                .into_function()
                .is_none(),
            "unnamed non-json input"
        );
        assert!(
            row("half", &["a", ""], &[], &["integer", "text"])
                .into_function()
                .is_none(),
            "one unnamed input among named ones"
        );
        let mut r = row("recs", &[], &[], &[]);
        r.returns_set = true;
        r.returns_record = true;
        assert!(r.into_function().is_none(), "SETOF record without columns");
        let f = row("body", &[], &[], &["jsonb"]).into_function().unwrap();
        assert!(f.takes_whole_body());
        // Names are taken as they are: a name needing quotes is still just a name.
        let f = row("q", &["we\"ird"], &[], &["text"])
            .into_function()
            .unwrap();
        assert!(f.argument("we\"ird").is_some());
        assert!(f.argument("").is_none());
    }

    #[test]
    fn rows_of_internal_schemas_are_never_served() {
        let mut r = row("all_users", &[], &[], &[]);
        r.returns_set = true;
        r.column_names = vec!["id".into(), "encrypted_password".into()];
        r.column_types = vec!["uuid".into(), "text".into()];
        r.return_schema = "auth".into();
        assert!(r.clone().into_function().is_none());
        r.return_schema = "public".into();
        assert!(r.into_function().is_some());
    }

    #[test]
    fn variadic_arguments() {
        let r = row("many", &["xs"], &["v"], &["integer[]"]);
        let f = r.into_function().unwrap();
        assert!(f.arguments[0].variadic);
    }

    fn overloads(fs: Vec<Function>) -> Vec<Arc<Function>> {
        fs.into_iter().map(Arc::new).collect()
    }

    #[test]
    fn overloads_are_chosen_by_argument_names() {
        let one = row("f", &["a"], &[], &["integer"]).into_function().unwrap();
        let two = row("f", &["a", "b"], &[], &["integer", "text"])
            .into_function()
            .unwrap();
        let fs = overloads(vec![one.clone(), two.clone()]);
        assert_eq!(**choose(&fs, &["a"], true).unwrap(), one);
        assert_eq!(**choose(&fs, &["b", "a"], true).unwrap(), two);
        let e = choose(&fs, &["c"], true).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::BAD_REQUEST, "UNKNOWN_ARGUMENT")
        );
        assert!(e.message.contains("\"c\""), "{}", e.message);
        let e = choose(&fs, &[], true).unwrap_err();
        assert_eq!(e.code, "INVALID_ARGUMENTS");
        // An injection attempt as an argument name is refused without being echoed.
        let e = choose(&fs, &["a\"; drop table x; --"], true).unwrap_err();
        assert_eq!(e.code, "UNKNOWN_ARGUMENT");
        assert!(!e.message.contains("drop"), "{}", e.message);
    }

    #[test]
    fn ambiguous_and_missing() {
        let mut with_default = row("g", &["a", "b"], &[], &["integer", "integer"]);
        with_default.defaults = 1;
        let fs = overloads(vec![
            row("g", &["a"], &[], &["text"]).into_function().unwrap(),
            with_default.into_function().unwrap(),
        ]);
        let e = choose(&fs, &["a"], true).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::MULTIPLE_CHOICES, "AMBIGUOUS_FUNCTION")
        );
        let fs = overloads(vec![add_them()]);
        let e = choose(&fs, &["b"], true).unwrap_err();
        assert_eq!(e.code, "MISSING_ARGUMENT");
        assert!(e.message.contains("\"a\""), "{}", e.message);
        assert_eq!(choose(&fs, &["a", "b"], false).unwrap().name, "add_them");
    }

    #[test]
    fn whole_body_functions_match_post_only() {
        let body = row("hook", &[], &[], &["json"]).into_function().unwrap();
        let fs = overloads(vec![body]);
        assert!(choose(&fs, &["anything"], true).is_ok());
        assert!(choose(&fs, &[], false).is_err());
    }

    #[tokio::test]
    async fn only_a_never_loaded_cache_loads_on_requests_and_at_most_once_a_second() {
        let handle =
            FunctionCacheHandle::new(vec!["public".into()], FunctionCache::default(), false);
        assert!(handle.claim_first_load().await);
        assert!(!handle.claim_first_load().await);
        let loaded =
            FunctionCacheHandle::new(vec!["public".into()], FunctionCache::default(), true);
        assert!(
            !loaded.claim_first_load().await,
            "a loaded cache never reloads on a request"
        );
        handle.replace(FunctionCache::from_functions([add_them(), list_notes()]));
        let snap = handle.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap.overloads("public", "add_them").len(), 1);
        assert!(snap.overloads("auth", "add_them").is_empty());
        assert!(snap.overloads("public", "nope").is_empty());
    }
}

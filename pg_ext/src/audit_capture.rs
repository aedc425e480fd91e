//! The capture trigger of tracked tables, `fluxbase.audit_capture()`: one audit row per changed
//! row, in the same transaction as the change.
//!
//! Why in Rust: the PL/pgSQL version (one `INSERT ... SELECT` over the transition table, with the
//! hash computed in a LATERAL call) spent most of its time starting executors and evaluating
//! expressions, and held single-row inserts to ~0.35× of an untracked table's CPU throughput.
//! Here the row is serialised with PostgreSQL's own `to_jsonb`, the canonical text and hash are
//! built in Rust, and each audit row is one prepared `INSERT ... VALUES` (`sql/kernel/`).
//!
//! What it writes is exactly what the SQL side would: [`canonical`] reproduces
//! `audit.canonical()` byte for byte (a pg_test compares them), so `audit.verify()` checks rows
//! from either writer.
//!
//! Whose rights: the row is turned into jsonb as the caller (a cast to json a user created runs
//! with that user's rights, never the owner's); the lookups and the insert run as the extension's
//! owner in a security-restricted context (the caller has no privilege on the audit schema).
use crate::audit;
use crate::claims;
use crate::errors::raise;
use crate::kernel_queries::{as_owner, prepared};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, PgMemoryContexts, PgOid};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

const TRACKED: &str = include_str!("../../sql/kernel/audit_tracked.sql");
const INSERT: &str = include_str!("../../sql/kernel/audit_insert.sql");
const INSERT_MANY: &str = include_str!("../../sql/kernel/audit_insert_many.sql");
const TRUNCATE: &str = include_str!("../../sql/kernel/audit_truncate.sql");

/// How one tracked table is audited; None: not tracked. Shared (Rc) between the cache and the
/// statement using it, so an invalidation in mid-statement (any lock taken processes them) only
/// drops the cache's hold and the arrays live until the statement is done with them.
type Tracking = Option<Rc<TrackedColumns>>;

/// A tracked table's column lists as the text[] datums `jsonb - text[]` takes, built once when
/// audit.tracked is read rather than for every statement.
struct TrackedColumns {
    /// The columns left out of its rows; None: none are.
    excluded: Option<KeptDatum>,
    /// The columns outside its primary key; None: it has none. Some(None): every column is in it.
    non_key: Option<Option<KeptDatum>>,
}

/// A datum allocated in TopMemoryContext (it outlives statements and transactions), freed when
/// dropped.
struct KeptDatum(pg_sys::Datum);

impl KeptDatum {
    /// A text[] of `names` kept for the backend's life, or None when there are none.
    fn text_array(names: &[String]) -> Option<KeptDatum> {
        if names.is_empty() {
            return None;
        }
        // SAFETY: the array is built in TopMemoryContext and only freed by Drop.
        unsafe {
            PgMemoryContexts::TopMemoryContext
                .switch_to(|_| names.to_vec().into_datum())
                .map(KeptDatum)
        }
    }
}

impl Drop for KeptDatum {
    fn drop(&mut self) {
        // SAFETY: allocated by text_array (a varlena in TopMemoryContext), freed once.
        unsafe { pg_sys::pfree(self.0.cast_mut_ptr()) }
    }
}

thread_local! {
    static TRACKED_PLAN: OnceCell<OwnedPreparedStatement> = const { OnceCell::new() };
    static INSERT_PLAN: OnceCell<OwnedPreparedStatement> = const { OnceCell::new() };
    static INSERT_MANY_PLAN: OnceCell<OwnedPreparedStatement> = const { OnceCell::new() };
    /// audit.tracked as this backend last read it, per table. An entry is forgotten when the
    /// table's relcache entry is invalidated: every change to audit.tracked invalidates the
    /// table it names (trigger audit.tracked_changed), and so do ALTER TABLE and the trigger
    /// changes of audit.enable / audit.disable — in this backend at once, in the others when
    /// they next take a lock, i.e. before their next statement on the table.
    static TRACKING: RefCell<HashMap<pg_sys::Oid, Tracking>> = RefCell::new(HashMap::new());
    static FORGET_CALLBACKS: Cell<bool> = const { Cell::new(false) };
    static AUDIT_OBJECTS: Cell<Option<AuditObjects>> = const { Cell::new(None) };
    /// `schema.table` per table, forgotten with the table's relcache entry (a rename, SET
    /// SCHEMA), and all of them on any change to a schema (forget_labels: a schema rename
    /// invalidates no table).
    static LABELS: RefCell<HashMap<pg_sys::Oid, String>> = RefCell::new(HashMap::new());
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_tracking(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    AUDIT_OBJECTS.with(|o| {
        if matches!(o.get(), Some(known) if relid == pg_sys::InvalidOid || relid == known.log) {
            o.set(None);
        }
    });
    TRACKING.with(|t| forget_entry(&mut t.borrow_mut(), relid));
    LABELS.with(|l| forget_entry(&mut l.borrow_mut(), relid));
}

/// Drops what `map` knows of `relid`; everything for InvalidOid (the whole relcache).
fn forget_entry<V>(map: &mut HashMap<pg_sys::Oid, V>, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid {
        map.clear();
    } else {
        map.remove(&relid);
    }
}

/// A schema was renamed (or changed): the labels naming it are stale. A schema rename does not
/// invalidate the relcache entries of its tables, so it needs a callback of its own.
#[pg_guard]
unsafe extern "C-unwind" fn forget_labels(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    LABELS.with(|l| l.borrow_mut().clear());
}

/// Registers forget_tracking with the relcache and forget_labels with the schema cache, once
/// per backend.
fn register_forget_callback() {
    if !FORGET_CALLBACKS.with(|c| c.replace(true)) {
        // SAFETY: registered once per backend; the callbacks only touch this module's caches.
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(forget_tracking), pg_sys::Datum::from(0));
            pg_sys::CacheRegisterSyscacheCallback(
                pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
                Some(forget_labels),
                pg_sys::Datum::from(0),
            );
        }
    }
}

/// Whether what was just read may be kept: only in READ COMMITTED, where the lookup ran on a
/// fresh snapshot. An older snapshot (REPEATABLE READ) could miss a change whose invalidation
/// this backend has already processed, and the stale answer would then outlive it.
fn may_keep_tracking() -> bool {
    unsafe { pg_sys::XactIsoLevel == pg_sys::XACT_READ_COMMITTED as i32 }
}

/// The most audit rows written by one INSERT (bounds the memory a huge statement's rows take).
const WRITE_BATCH: usize = 1000;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const UNIX_TO_POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Who and when, the same for every row of one statement (`audit.context` on the SQL side).
struct Context {
    xact_id: i64,
    /// The id of the statement's first audit row (set when that id is taken).
    statement_id: i64,
    actor_id: Option<pgrx::Uuid>,
    actor_role: Option<String>,
    session_id: Option<pgrx::Uuid>,
    db_role: String,
    login_role: String,
    /// The client address as an `inet` datum, and its `host()` text (what the hash covers).
    client_addr: Option<(pg_sys::Datum, String)>,
}

/// Where a change sits in the hash chain.
struct Link {
    lane: i32,
    seq: i64,
    hash: Vec<u8>,
}

/// One row change, ready to chain and store.
struct Change {
    id: i64,
    ts: i64,
    pk: Option<pg_sys::Datum>,
    old_row: Option<pg_sys::Datum>,
    new_row: Option<pg_sys::Datum>,
}

/// The oids of the audit schema's objects the trigger uses, looked up once per backend and
/// forgotten when audit.log's relcache entry is invalidated (dropping the extension drops the
/// log, so a re-created extension is followed).
#[derive(Clone, Copy)]
struct AuditObjects {
    log: pg_sys::Oid,
    log_id_seq: pg_sys::Oid,
}

fn audit_objects() -> AuditObjects {
    if let Some(known) = AUDIT_OBJECTS.with(Cell::get) {
        return known;
    }
    register_forget_callback();
    let objects = unsafe {
        let namespace = pg_sys::get_namespace_oid(c"audit".as_ptr(), false);
        let find = |name: &CStr| {
            let oid = pg_sys::get_relname_relid(name.as_ptr(), namespace);
            if oid == pg_sys::InvalidOid {
                raise(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                    format!("the audit schema has no {}", name.to_string_lossy()),
                )
            }
            oid
        };
        AuditObjects {
            log: find(c"log"),
            log_id_seq: find(c"log_id_seq"),
        }
    };
    AUDIT_OBJECTS.with(|o| o.set(Some(objects)));
    objects
}

fn nextval(sequence: pg_sys::Oid) -> i64 {
    // SAFETY: nextval_oid takes one non-null oid argument and returns an int8.
    unsafe { pgrx::direct_function_call::<i64>(pg_sys::nextval_oid, &[Some(sequence.into())]) }
        .unwrap_or_else(|| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "nextval gave NULL"))
}

fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: noerr=true turns a missing role into NULL.
    unsafe {
        let name = pg_sys::GetUserNameFromId(role, true);
        if name.is_null() {
            return String::new();
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

fn context() -> Context {
    // SAFETY: plain reads of backend state; inet_client_addr/host take and return valid datums.
    let (xact_id, client_addr) = unsafe {
        let xact_id = pg_sys::GetTopFullTransactionId().value as i64;
        let addr = pgrx::fcinfo::direct_function_call_as_datum(pg_sys::inet_client_addr, &[]);
        let client_addr = addr.map(|inet| {
            let host = pgrx::direct_function_call::<String>(pg_sys::network_host, &[Some(inet)])
                .unwrap_or_default();
            (inet, host)
        });
        (xact_id, client_addr)
    };
    Context {
        xact_id,
        statement_id: 0,
        actor_id: claims::verified_uid(),
        actor_role: claims::verified_role(),
        session_id: claims::verified_session_id(),
        db_role: audit::outer_role_name(),
        login_role: role_name(unsafe { pg_sys::GetSessionUserId() }),
        client_addr,
    }
}

/// Appends `s` as a JSON string the way PostgreSQL's `escape_json` does (PG 15), so the text
/// is the same as jsonb's output of that string.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// jsonb's text output of a jsonb datum.
fn jsonb_text(value: pg_sys::Datum) -> String {
    // SAFETY: jsonb_out takes a jsonb datum and returns a palloc'd C string.
    unsafe {
        let text = pgrx::fcinfo::direct_function_call_as_datum(pg_sys::jsonb_out, &[Some(value)])
            .unwrap_or_else(|| {
                raise(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    "jsonb_out gave NULL",
                )
            });
        CStr::from_ptr(text.cast_mut_ptr::<std::ffi::c_char>())
            .to_string_lossy()
            .into_owned()
    }
}

/// One element of the canonical array.
enum Item<'a> {
    Number(i64),
    Text(Option<&'a str>),
    Uuid(Option<pgrx::Uuid>),
    Jsonb(Option<pg_sys::Datum>),
}

/// The canonical text of an audit row, identical to `audit.canonical(...)` — the jsonb text of
/// `jsonb_build_array(id, ts as epoch µs, xact_id, statement_id, op, table_oid, table_name, pk,
/// old_row, new_row, actor_id, actor_role, session_id, db_role, login_role, host(client_addr),
/// details)`. jsonb prints an array as `[a, b, ...]`.
fn canonical(items: &[Item<'_>]) -> String {
    let mut out = String::with_capacity(512);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match item {
            Item::Number(n) => out.push_str(&n.to_string()),
            Item::Text(Some(s)) => push_json_string(&mut out, s),
            Item::Uuid(Some(u)) => {
                push_json_string(&mut out, &uuid::Uuid::from_bytes(*u.as_bytes()).to_string())
            }
            Item::Jsonb(Some(d)) => out.push_str(&jsonb_text(*d)),
            Item::Text(None) | Item::Uuid(None) | Item::Jsonb(None) => out.push_str("null"),
        }
    }
    out.push(']');
    out
}

/// `to_jsonb` of whole rows of one row type: the function needs to know its argument's type,
/// which it reads from the call expression, so one is built.
struct ToJsonb {
    flinfo: pg_sys::FmgrInfo,
}

impl ToJsonb {
    fn new(row_type: pg_sys::Oid) -> ToJsonb {
        // SAFETY: fmgr_info fills the struct; the expression nodes live in the current memory
        // context, which outlives this statement's use.
        unsafe {
            let mut flinfo = pg_sys::FmgrInfo::default();
            let to_jsonb = pg_sys::Oid::from(pg_sys::F_TO_JSONB);
            pg_sys::fmgr_info(to_jsonb, &mut flinfo);
            let argument = pg_sys::makeNullConst(row_type, -1, pg_sys::InvalidOid);
            let args = pg_sys::lappend(std::ptr::null_mut(), argument.cast());
            let call = pg_sys::makeFuncExpr(
                to_jsonb,
                pg_sys::JSONBOID,
                args,
                pg_sys::InvalidOid,
                pg_sys::InvalidOid,
                pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
            );
            flinfo.fn_expr = call.cast();
            ToJsonb { flinfo }
        }
    }

    /// The row in `slot` as jsonb.
    fn row(&mut self, slot: *mut pg_sys::TupleTableSlot) -> pg_sys::Datum {
        // SAFETY: the slot holds a tuple of the row type the call was built for.
        unsafe {
            let row = pg_sys::ExecFetchSlotHeapTupleDatum(slot);
            pg_sys::FunctionCall1Coll(&mut self.flinfo, pg_sys::InvalidOid, row)
        }
    }
}

/// `value - keys` (jsonb minus a text[] of keys); `keys` is a text[] datum.
fn without_keys(value: pg_sys::Datum, keys: Option<pg_sys::Datum>) -> pg_sys::Datum {
    match keys {
        None => value,
        // SAFETY: jsonb_delete_array takes a jsonb and a text[] and returns a jsonb.
        Some(keys) => unsafe {
            pgrx::fcinfo::direct_function_call_as_datum(
                pg_sys::jsonb_delete_array,
                &[Some(value), Some(keys)],
            )
            .unwrap_or(value)
        },
    }
}

/// Reads a transition table from its start with a read pointer of its own (another trigger of
/// the same statement may read the same tuplestore), as PostgreSQL's own scans do.
struct TransitionRows {
    store: *mut pg_sys::Tuplestorestate,
    pointer: i32,
    slot: *mut pg_sys::TupleTableSlot,
}

impl TransitionRows {
    fn open(store: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc) -> Option<Self> {
        if store.is_null() {
            return None;
        }
        // SAFETY: a live tuplestore of the trigger's statement and the relation's descriptor.
        unsafe {
            let pointer = pg_sys::tuplestore_alloc_read_pointer(store, 0);
            let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple);
            pg_sys::tuplestore_select_read_pointer(store, pointer);
            pg_sys::tuplestore_rescan(store);
            Some(TransitionRows {
                store,
                pointer,
                slot,
            })
        }
    }

    /// The next row, in the slot; false at the end.
    fn next(&self) -> bool {
        // SAFETY: as in open; the read pointer is selected again in case another reader moved.
        unsafe {
            pg_sys::tuplestore_select_read_pointer(self.store, self.pointer);
            pg_sys::tuplestore_gettupleslot(self.store, true, false, self.slot)
        }
    }
}

impl Drop for TransitionRows {
    fn drop(&mut self) {
        // SAFETY: the slot was made by open and is dropped once.
        unsafe { pg_sys::ExecDropSingleTupleTableSlot(self.slot) }
    }
}

/// Chains one change onto this backend's lane: its place and hash.
fn chain(
    objects: &AuditObjects,
    ctx: &Context,
    op: &str,
    table_oid: pg_sys::Oid,
    table_name: &str,
    change: &Change,
) -> Link {
    let host = ctx.client_addr.as_ref().map(|(_, host)| host.as_str());
    let content = canonical(&[
        Item::Number(change.id),
        Item::Number(change.ts + UNIX_TO_POSTGRES_EPOCH_MICROS),
        Item::Number(ctx.xact_id),
        Item::Number(ctx.statement_id),
        Item::Text(Some(op)),
        Item::Number(u32::from(table_oid) as i64),
        Item::Text(Some(table_name)),
        Item::Jsonb(change.pk),
        Item::Jsonb(change.old_row),
        Item::Jsonb(change.new_row),
        Item::Uuid(ctx.actor_id),
        Item::Text(ctx.actor_role.as_deref()),
        Item::Uuid(ctx.session_id),
        Item::Text(Some(&ctx.db_role)),
        Item::Text(Some(&ctx.login_role)),
        Item::Text(host),
        Item::Jsonb(None),
    ]);
    let (lane, seq, hash) = audit::link(objects.log, &content);
    Link { lane, seq, hash }
}

/// A one-dimensional array of `datums` (None: NULL) of a built-in element type.
fn array_of(
    datums: impl Iterator<Item = Option<pg_sys::Datum>>,
    element: pg_sys::Oid,
) -> pg_sys::Datum {
    let (mut values, mut nulls): (Vec<pg_sys::Datum>, Vec<bool>) = datums
        .map(|d| (d.unwrap_or(pg_sys::Datum::from(0)), d.is_none()))
        .unzip();
    // SAFETY: the element type's storage is looked up; the arrays have one entry per element.
    unsafe {
        let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(element, &mut len, &mut byval, &mut align);
        let mut dims = [values.len() as i32];
        let mut lower_bounds = [1i32];
        let array = pg_sys::construct_md_array(
            values.as_mut_ptr(),
            nulls.as_mut_ptr(),
            1,
            dims.as_mut_ptr(),
            lower_bounds.as_mut_ptr(),
            element,
            len.into(),
            byval,
            align,
        );
        pg_sys::Datum::from(array)
    }
}

/// Stores the chained changes of one statement: one prepared `INSERT ... VALUES` for a single
/// row (the common case, and the cheapest), one `INSERT ... SELECT FROM unnest(...)` for more.
#[allow(clippy::too_many_arguments)]
fn write(
    client: &mut pgrx::spi::SpiClient<'_>,
    ctx: &Context,
    op: &str,
    table_oid: pg_sys::Oid,
    table_name: &str,
    changes: &[(Change, Link)],
) {
    let Some((first, first_link)) = changes.first() else {
        return;
    };
    let jsonb = |d: Option<pg_sys::Datum>| unsafe { DatumWithOid::new(d, pg_sys::JSONBOID) };
    let many = changes.len() > 1;
    // SAFETY: each datum is of the type named beside it.
    let args = unsafe {
        let column = |f: fn(&Change) -> Option<pg_sys::Datum>, element: pg_sys::Oid| {
            array_of(changes.iter().map(|(c, _)| f(c)), element)
        };
        let (id, ts, pk, old_row, new_row, seq, hash) = if many {
            (
                DatumWithOid::from(changes.iter().map(|(c, _)| c.id).collect::<Vec<i64>>()),
                DatumWithOid::new(
                    column(|c| Some(pg_sys::Datum::from(c.ts)), pg_sys::TIMESTAMPTZOID),
                    pg_sys::TIMESTAMPTZARRAYOID,
                ),
                DatumWithOid::new(column(|c| c.pk, pg_sys::JSONBOID), pg_sys::JSONBARRAYOID),
                DatumWithOid::new(
                    column(|c| c.old_row, pg_sys::JSONBOID),
                    pg_sys::JSONBARRAYOID,
                ),
                DatumWithOid::new(
                    column(|c| c.new_row, pg_sys::JSONBOID),
                    pg_sys::JSONBARRAYOID,
                ),
                DatumWithOid::from(changes.iter().map(|(_, l)| l.seq).collect::<Vec<i64>>()),
                DatumWithOid::from(
                    changes
                        .iter()
                        .map(|(_, l)| l.hash.clone())
                        .collect::<Vec<Vec<u8>>>(),
                ),
            )
        } else {
            (
                DatumWithOid::from(first.id),
                DatumWithOid::new(pg_sys::Datum::from(first.ts), pg_sys::TIMESTAMPTZOID),
                jsonb(first.pk),
                jsonb(first.old_row),
                jsonb(first.new_row),
                DatumWithOid::from(first_link.seq),
                DatumWithOid::from(first_link.hash.clone()),
            )
        };
        [
            id,
            ts,
            DatumWithOid::from(ctx.xact_id),
            DatumWithOid::from(ctx.statement_id),
            DatumWithOid::from(op),
            DatumWithOid::from(table_oid),
            DatumWithOid::from(table_name),
            pk,
            old_row,
            new_row,
            DatumWithOid::from(ctx.actor_id),
            DatumWithOid::from(ctx.actor_role.clone()),
            DatumWithOid::from(ctx.session_id),
            DatumWithOid::from(ctx.db_role.as_str()),
            DatumWithOid::from(ctx.login_role.as_str()),
            DatumWithOid::new(ctx.client_addr.as_ref().map(|(d, _)| *d), pg_sys::INETOID),
            // One backend writes one lane: every row of the statement is on it.
            DatumWithOid::from(first_link.lane),
            seq,
            hash,
        ]
    };
    let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let (cell, sql) = if many {
        (&INSERT_MANY_PLAN, INSERT_MANY)
    } else {
        (&INSERT_PLAN, INSERT)
    };
    let result = cell.with(|cell| {
        let plan = prepared(&*client, cell, sql, &types);
        client.update(plan, None, &args).map(|_| ())
    });
    if let Err(e) = result {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("cannot write the audit rows: {e}"),
        )
    }
}

/// The excluded columns and non-key columns of a tracked table; None when it is not tracked.
/// Read from audit.tracked on a fresh snapshot, then kept until invalidated (see TRACKING).
fn tracked(client: &pgrx::spi::SpiClient<'_>, relid: pg_sys::Oid) -> Tracking {
    if let Some(known) = TRACKING.with(|t| t.borrow().get(&relid).cloned()) {
        return known;
    }
    register_forget_callback();
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let tracking = read_tracked(client, relid);
    unsafe { pg_sys::PopActiveSnapshot() };
    if may_keep_tracking() {
        TRACKING.with(|t| t.borrow_mut().insert(relid, tracking.clone()));
    }
    tracking
}

fn read_tracked(client: &pgrx::spi::SpiClient<'_>, relid: pg_sys::Oid) -> Tracking {
    let types = [PgOid::BuiltIn(PgBuiltInOids::OIDOID)];
    let row = TRACKED_PLAN.with(|cell| {
        let plan = prepared(client, cell, TRACKED, &types);
        let table = client.select(plan, Some(1), &[relid.into()])?;
        if table.is_empty() {
            return Ok(None);
        }
        let row = table.first();
        let excluded = row.get::<Vec<String>>(1)?.unwrap_or_default();
        let non_key = row.get::<Vec<String>>(2)?;
        Ok::<_, pgrx::spi::Error>(Some(Rc::new(TrackedColumns {
            excluded: KeptDatum::text_array(&excluded),
            non_key: non_key.map(|columns| KeptDatum::text_array(&columns)),
        })))
    });
    row.unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("cannot read audit.tracked: {e}"),
        )
    })
}

/// `schema.table` quoted as `format('%I.%I')` does, remembered per table (see LABELS).
fn table_label(relid: pg_sys::Oid) -> String {
    if let Some(known) = LABELS.with(|l| l.borrow().get(&relid).cloned()) {
        return known;
    }
    register_forget_callback();
    let label = quoted_name(relid);
    LABELS.with(|l| l.borrow_mut().insert(relid, label.clone()));
    label
}

fn quoted_name(relid: pg_sys::Oid) -> String {
    // SAFETY: the trigger's relation exists; quote_identifier returns its input or a palloc'd copy.
    unsafe {
        let quote = |s: *const std::ffi::c_char| {
            CStr::from_ptr(pg_sys::quote_identifier(s))
                .to_string_lossy()
                .into_owned()
        };
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        let name = pg_sys::get_rel_name(relid);
        format!("{}.{}", quote(schema), quote(name))
    }
}

#[pg_schema]
pub mod fluxbase {
    use super::*;

    /// Internal: makes every backend forget what it knew of how `table` is audited (a relcache
    /// invalidation of the table, sent at commit). Called by the trigger on audit.tracked.
    #[pg_extern(volatile, parallel_unsafe)]
    fn audit_forget_tracking(table: pg_sys::Oid) {
        // SAFETY: queue invalidation messages. InvalidOid (TRUNCATE audit.tracked) means every
        // table; a dropped table needs none (its DROP invalidated it) and would be an error.
        unsafe {
            if table == pg_sys::InvalidOid {
                pg_sys::CacheInvalidateRelcacheAll();
            } else if !pg_sys::get_rel_name(table).is_null() {
                pg_sys::CacheInvalidateRelcacheByRelid(table);
            }
        }
    }

    /// Internal: the AFTER ... FOR EACH STATEMENT trigger of tracked tables (INSERT, UPDATE,
    /// DELETE with transition tables, and TRUNCATE), installed by `audit.enable`.
    #[pg_trigger]
    fn audit_capture<'a>(
        trigger: &'a pgrx::PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByRust>>, std::convert::Infallible> {
        super::capture(trigger.trigger_data());
        Ok(None)
    }
}

fn capture(data: &pg_sys::TriggerData) {
    let event = data.tg_event;
    if event & pg_sys::TRIGGER_EVENT_ROW != 0 {
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "fluxbase.audit_capture() must run FOR EACH STATEMENT (use audit.enable)",
        )
    }
    // SAFETY: the trigger's relation is open while it runs.
    let (relid, desc, row_type) = unsafe {
        let rel = data.tg_relation;
        ((*rel).rd_id, (*rel).rd_att, (*(*rel).rd_rel).reltype)
    };
    let op = match event & pg_sys::TRIGGER_EVENT_OPMASK {
        pg_sys::TRIGGER_EVENT_INSERT => "INSERT",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        _ => "TRUNCATE",
    };
    let label = table_label(relid);
    Spi::connect_mut(|client| {
        let Some(columns) = as_owner(|| tracked(client, relid)) else {
            return;
        };
        if op == "TRUNCATE" {
            let args = [
                DatumWithOid::from(relid),
                DatumWithOid::from(label.as_str()),
            ];
            if let Err(e) = as_owner(|| client.update(TRUNCATE, None, &args)) {
                raise(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    format!("cannot record the TRUNCATE: {e}"),
                )
            }
            return;
        }
        let objects = audit_objects();
        let mut ctx = as_owner(context);
        let excluded = columns.excluded.as_ref().map(|kept| kept.0);
        // pk = row - non_key - excluded; the excluded ones are gone already.
        let non_key = columns
            .non_key
            .as_ref()
            .map(|kept| kept.as_ref().map(|kept| kept.0));
        let mut to_jsonb = ToJsonb::new(row_type);
        let mut changes: Vec<(Change, Link)> = Vec::new();
        let old_rows = TransitionRows::open(data.tg_oldtable, desc);
        let new_rows = TransitionRows::open(data.tg_newtable, desc);
        loop {
            // UPDATE: the n-th old row is the n-th new row's former self (PostgreSQL stores them
            // in the two transition tables together, row by row).
            let old_row = match &old_rows {
                Some(rows) if rows.next() => Some(without_keys(to_jsonb.row(rows.slot), excluded)),
                Some(_) => break,
                None => None,
            };
            let new_row = match &new_rows {
                Some(rows) if rows.next() => Some(without_keys(to_jsonb.row(rows.slot), excluded)),
                Some(_) => break,
                None => None,
            };
            // The key of the row before the change (UPDATE, DELETE) or the new row (INSERT).
            let Some(row) = old_row.or(new_row) else {
                break;
            };
            let pk = non_key.map(|columns| without_keys(row, columns));
            let change = as_owner(|| Change {
                id: nextval(objects.log_id_seq),
                ts: unsafe { pg_sys::GetCurrentTimestamp() },
                pk,
                old_row,
                new_row,
            });
            if ctx.statement_id == 0 {
                ctx.statement_id = change.id;
            }
            // As the owner: a backend's first row reads its lane's head from audit.log.
            let link = as_owner(|| chain(&objects, &ctx, op, relid, &label, &change));
            changes.push((change, link));
            if changes.len() == WRITE_BATCH {
                as_owner(|| write(client, &ctx, op, relid, &label, &changes));
                changes.clear();
            }
        }
        as_owner(|| write(client, &ctx, op, relid, &label, &changes));
    })
}

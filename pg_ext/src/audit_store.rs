//! Stores the capture trigger's audit rows straight into the partition of `audit.log` that holds
//! them, the way PostgreSQL's logical replication applies a row (`ExecSimpleRelationInsert`:
//! the partition's constraints, partition check, indexes and triggers all apply), instead of
//! through an SQL `INSERT`.
//!
//! Why: on a single-row insert with audit on, the SQL `INSERT` of the audit row was the biggest
//! cost of the trigger — a plan-cache check, an executor start and end, and tuple routing set up
//! anew for every statement (routing alone cost as much as two indexes: a copy of the log without
//! partitions took 0.69× where the partitioned one took 0.60×). Here the partition is found with
//! PostgreSQL's own search over the relcache's partition bounds, and the row goes in directly.
//!
//! Whenever the log is not partitioned the way this module knows (by range on `ts`, leaf
//! partitions) it writes nothing and says so; the caller then uses the SQL `INSERT`, which gives
//! PostgreSQL's own answer (e.g. "no partition of relation found for row").
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;

/// One audit row, every column of `audit.log` (details is always NULL for a row change).
pub(crate) struct Row<'a> {
    pub id: i64,
    pub ts: i64,
    pub xact_id: i64,
    pub statement_id: i64,
    pub op: &'a str,
    pub table_oid: pg_sys::Oid,
    pub table_name: &'a str,
    pub pk: Option<pg_sys::Datum>,
    pub old_row: Option<pg_sys::Datum>,
    pub new_row: Option<pg_sys::Datum>,
    pub actor_id: Option<pgrx::Uuid>,
    pub actor_role: Option<&'a str>,
    pub session_id: Option<pgrx::Uuid>,
    pub db_role: &'a str,
    pub login_role: &'a str,
    pub client_addr: Option<pg_sys::Datum>,
    pub lane: i32,
    pub seq: i64,
    pub hash: &'a [u8],
}

/// The value of the column `name` of `row` (None: NULL, or a column this module does not know,
/// which a superuser may have added: it gets NULL, or its NOT NULL constraint refuses the row).
fn column(row: &Row<'_>, name: &[u8]) -> Option<pg_sys::Datum> {
    match name {
        b"id" => Some(pg_sys::Datum::from(row.id)),
        b"ts" => Some(pg_sys::Datum::from(row.ts)),
        b"xact_id" => Some(pg_sys::Datum::from(row.xact_id)),
        b"statement_id" => Some(pg_sys::Datum::from(row.statement_id)),
        b"op" => row.op.into_datum(),
        b"table_oid" => row.table_oid.into_datum(),
        b"table_name" => row.table_name.into_datum(),
        b"pk" => row.pk,
        b"old_row" => row.old_row,
        b"new_row" => row.new_row,
        b"actor_id" => row.actor_id.and_then(|u| u.into_datum()),
        b"actor_role" => row.actor_role.and_then(|r| r.into_datum()),
        b"session_id" => row.session_id.and_then(|u| u.into_datum()),
        b"db_role" => row.db_role.into_datum(),
        b"login_role" => row.login_role.into_datum(),
        b"client_addr" => row.client_addr,
        b"chain_lane" => Some(pg_sys::Datum::from(row.lane)),
        b"chain_seq" => Some(pg_sys::Datum::from(row.seq)),
        b"hash" => row.hash.into_datum(),
        _ => None,
    }
}

/// The leaf partition of the log (open, locked) that holds a row of time `ts`, or None when the
/// log is not range-partitioned into leaves or no partition takes the row.
///
/// # Safety
/// `log` must be open and locked.
unsafe fn partition_for(log: pg_sys::Relation, ts: i64) -> Option<pg_sys::Oid> {
    let desc = pg_sys::RelationGetPartitionDesc(log, true);
    if desc.is_null() || (*desc).boundinfo.is_null() && (*desc).nparts == 0 {
        return None;
    }
    let bounds = (*desc).boundinfo;
    if bounds.is_null() || (*bounds).strategy as u8 != pg_sys::PARTITION_STRATEGY_RANGE {
        return None;
    }
    // PostgreSQL's own search (what tuple routing does): the greatest bound <= ts; the partition
    // above it, or else the default partition.
    let mut compare = pg_sys::FmgrInfo::default();
    pg_sys::fmgr_info(pg_sys::Oid::from(pg_sys::F_TIMESTAMPTZ_CMP), &mut compare);
    let mut collation = pg_sys::InvalidOid;
    let mut value = [pg_sys::Datum::from(ts)];
    let mut equal = false;
    let offset = pg_sys::partition_range_datum_bsearch(
        &mut compare,
        &mut collation,
        bounds,
        1,
        value.as_mut_ptr(),
        &mut equal,
    );
    let mut index = *(*bounds).indexes.offset((offset + 1) as isize);
    if index < 0 {
        index = (*bounds).default_index;
    }
    if index < 0 || index >= (*desc).nparts || !*(*desc).is_leaf.offset(index as isize) {
        return None;
    }
    Some(*(*desc).oids.offset(index as isize))
}

/// A partition open for inserting: its executor state, result relation and slot.
struct Target {
    oid: pg_sys::Oid,
    rel: pg_sys::Relation,
    estate: *mut pg_sys::EState,
    result: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    /// Per attribute of the partition, its name (None: dropped).
    names: Vec<Option<Vec<u8>>>,
}

impl Target {
    /// Opens `oid` as logical replication's apply worker does (a one-entry range table, a result
    /// relation with its indexes, AFTER triggers collected for this insert alone).
    unsafe fn open(oid: pg_sys::Oid) -> Target {
        let rel = pg_sys::table_open(oid, pg_sys::RowExclusiveLock as i32);
        let estate = pg_sys::CreateExecutorState();
        let mut rte = PgBox::<pg_sys::RangeTblEntry>::alloc_node(pg_sys::NodeTag::T_RangeTblEntry);
        rte.rtekind = pg_sys::RTEKind::RTE_RELATION;
        rte.relid = oid;
        rte.relkind = (*(*rel).rd_rel).relkind;
        rte.rellockmode = pg_sys::RowExclusiveLock as i32;
        let range_table = pg_sys::lappend(std::ptr::null_mut(), rte.into_pg().cast());
        pg_sys::ExecInitRangeTable(estate, range_table);
        let result =
            PgBox::<pg_sys::ResultRelInfo>::alloc_node(pg_sys::NodeTag::T_ResultRelInfo).into_pg();
        pg_sys::InitResultRelInfo(result, rel, 1, std::ptr::null_mut(), 0);
        (*estate).es_output_cid = pg_sys::GetCurrentCommandId(true);
        pg_sys::ExecOpenIndices(result, false);
        pg_sys::AfterTriggerBeginQuery();
        let desc = (*rel).rd_att;
        let slot = pg_sys::ExecInitExtraTupleSlot(estate, desc, &pg_sys::TTSOpsVirtual);
        let names = (0..(*desc).natts as usize)
            .map(|i| {
                let attr = &*(*desc).attrs.as_ptr().add(i);
                (!attr.attisdropped).then(|| {
                    CStr::from_ptr(attr.attname.data.as_ptr())
                        .to_bytes()
                        .to_vec()
                })
            })
            .collect();
        Target {
            oid,
            rel,
            estate,
            result,
            slot,
            names,
        }
    }

    unsafe fn insert(&mut self, row: &Row<'_>) {
        let slot = self.slot;
        pg_sys::ExecClearTuple(slot);
        for (i, name) in self.names.iter().enumerate() {
            let value = name.as_deref().and_then(|n| column(row, n));
            *(*slot).tts_values.add(i) = value.unwrap_or(pg_sys::Datum::from(0));
            *(*slot).tts_isnull.add(i) = value.is_none();
        }
        pg_sys::ExecStoreVirtualTuple(slot);
        pg_sys::ExecSimpleRelationInsert(self.result, self.estate, slot);
    }

    /// Fires the AFTER triggers the inserts queued (a superuser's, if any) and releases it all;
    /// the lock is kept until the transaction ends, as for any INSERT.
    unsafe fn close(self) {
        pg_sys::AfterTriggerEndQuery(self.estate);
        pg_sys::ExecCloseIndices(self.result);
        pg_sys::ExecResetTupleTable((*self.estate).es_tupleTable, false);
        pg_sys::FreeExecutorState(self.estate);
        pg_sys::table_close(self.rel, pg_sys::NoLock as i32);
    }
}

/// Writes `rows` into the partitions of the log `log` that hold them. False, with nothing
/// written, when the log is not partitioned the way this module knows (see the module comment).
/// Runs as the caller of the capture trigger's choosing (the extension's owner).
pub(crate) fn store(log: pg_sys::Oid, rows: &[Row<'_>]) -> bool {
    if rows.is_empty() {
        return true;
    }
    // SAFETY: the log is opened and locked (as an INSERT into it would) before its partition
    // bounds are read, so they cannot change underneath; each partition is opened the same way.
    unsafe {
        let parent = pg_sys::table_open(log, pg_sys::RowExclusiveLock as i32);
        let mut partitions = Vec::with_capacity(1);
        for row in rows {
            match partition_for(parent, row.ts) {
                Some(oid) => partitions.push(oid),
                None => {
                    pg_sys::table_close(parent, pg_sys::NoLock as i32);
                    return false;
                }
            }
        }
        pg_sys::table_close(parent, pg_sys::NoLock as i32);
        let mut target: Option<Target> = None;
        for (row, oid) in rows.iter().zip(partitions) {
            if target.as_ref().map(|t| t.oid) != Some(oid) {
                if let Some(done) = target.take() {
                    done.close();
                }
                target = Some(Target::open(oid));
            }
            target.as_mut().expect("just opened").insert(row);
        }
        if let Some(done) = target {
            done.close();
        }
    }
    true
}

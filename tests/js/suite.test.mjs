// @supabase/postgrest-js, unchanged, against a real Fluxbase server.
//
// Run by tests/tests/postgrest_js.rs, which creates the schema (tests/sql/postgrest_js_fixture.sql)
// before the server starts, signs two users up over HTTP, writes the rows
// (tests/sql/postgrest_js_seed.sql) and passes:
//   BASE               the server, e.g. http://127.0.0.1:41234
//   TOKEN_A, USER_A    Alice's access token and user id (projects Alpha, Apollo (public), Scratch)
//   TOKEN_B, USER_B    Bob's (project Bravo)
//
// Every assertion is what PostgREST's semantics promise, not what the server happens to do.
// Tests run in file order (node:test runs a file's top-level tests one after another): the
// reading tests first, then the writing ones, which only touch the Scratch project and labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostgrestClient } from '@supabase/postgrest-js';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through tests/tests/postgrest_js.rs`);
  return value;
};
const BASE = env('BASE');
const TOKEN_A = env('TOKEN_A');
const TOKEN_B = env('TOKEN_B');
const USER_A = env('USER_A');
const TABLES = `${BASE}/api/v1/tables`;
const API = `${BASE}/api/v1`;
const ALPHA = 1;
const SCRATCH = 4;

const bearer = (token) => ({ Authorization: `Bearer ${token}` });
const alice = new PostgrestClient(TABLES, { headers: bearer(TOKEN_A) });
const bob = new PostgrestClient(TABLES, { headers: bearer(TOKEN_B) });
const anon = new PostgrestClient(TABLES);
// rpc() appends /rpc/{fn} to the client's URL, so this one points at /api/v1.
const aliceRpc = new PostgrestClient(API, { headers: bearer(TOKEN_A) });
const anonRpc = new PostgrestClient(API);

const T = { timeout: 20_000 };

/** Fails with the server's answer when a call did not succeed. */
function ok(res, what) {
  assert.equal(res.error, null, `${what}: ${JSON.stringify(res.error)} (status ${res.status})`);
  return res.data;
}

const sorted = (values) => [...values].sort();
const titles = (rows) => sorted(rows.map((r) => r.title));

test('wire format: select with count exact and eq is GET /tasks?select=*&done=eq.false', T, async () => {
  const sent = [];
  const recording = async (url, init) => {
    sent.push({ url: String(url), method: init?.method, headers: new Headers(init?.headers) });
    return fetch(url, init);
  };
  const client = new PostgrestClient(TABLES, { headers: bearer(TOKEN_A), fetch: recording });
  const res = await client.from('tasks').select('*', { count: 'exact' }).eq('done', false);
  assert.equal(sent.length, 1);
  const url = new URL(sent[0].url);
  assert.equal(sent[0].method, 'GET');
  assert.equal(url.pathname, '/api/v1/tables/tasks');
  assert.equal(url.search, '?select=*&done=eq.false');
  assert.equal(sent[0].headers.get('prefer'), 'count=exact');
  assert.equal(sent[0].headers.get('authorization'), `Bearer ${TOKEN_A}`);
  assert.deepEqual(titles(ok(res, 'select')), ['launch', 'ship it', 'write spec']);
});

test('select with columns and renames', T, async () => {
  const data = ok(await alice.from('tasks').select('title, prio:priority').eq('id', 1), 'rename');
  assert.deepEqual(data, [{ title: 'write spec', prio: 3 }]);
});

test('embedding: to-one (tasks → projects), with and without an alias', T, async () => {
  let data = ok(await alice.from('tasks').select('title, projects(name)').eq('id', 4), 'to-one');
  assert.deepEqual(data, [{ title: 'launch', projects: { name: 'Apollo' } }]);
  data = ok(await alice.from('tasks').select('title, project:projects(name, is_public)').eq('id', 1), 'aliased');
  assert.deepEqual(data, [{ title: 'write spec', project: { name: 'Alpha', is_public: false } }]);
});

test('embedding: to-many (projects → tasks)', T, async () => {
  const data = ok(await alice.from('projects').select('name, tasks(title)').eq('id', ALPHA), 'to-many');
  assert.equal(data.length, 1);
  assert.equal(data[0].name, 'Alpha');
  assert.deepEqual(titles(data[0].tasks), ['review spec', 'ship it', 'write spec']);
  // Bob's project is not there to embed from, and his task is not embedded in a public one.
  assert.deepEqual(ok(await alice.from('projects').select('name, tasks(title)').eq('id', 3), 'bravo'), []);
  const apollo = ok(await bob.from('projects').select('name, tasks(title)').eq('id', 2), 'apollo for bob');
  assert.deepEqual(apollo, [{ name: 'Apollo', tasks: [{ title: 'launch' }] }]);
});

test('embedding: nested (projects → tasks → comments)', T, async () => {
  const data = ok(
    await alice.from('projects').select('name, tasks(title, comments(body))').eq('id', ALPHA),
    'nested',
  );
  const spec = data[0].tasks.find((t) => t.title === 'write spec');
  assert.ok(spec, JSON.stringify(data));
  assert.deepEqual(sorted(spec.comments.map((c) => c.body)), ['first draft', 'looks good']);
  assert.deepEqual(data[0].tasks.find((t) => t.title === 'ship it').comments, []);
});

test('embedding: !inner filters the parent by the embedded table', T, async () => {
  const data = ok(
    await alice.from('tasks').select('title, projects!inner(name)').eq('projects.name', 'Apollo'),
    'inner',
  );
  assert.deepEqual(data, [{ title: 'launch', projects: { name: 'Apollo' } }]);
});

test('filters: eq, neq, gt, lt, like, ilike, in, is', T, async () => {
  const q = () => alice.from('tasks').select('title');
  assert.deepEqual(titles(ok(await q().eq('priority', 3), 'eq')), ['write spec']);
  assert.deepEqual(titles(ok(await q().neq('title', 'launch'), 'neq')), ['review spec', 'ship it', 'write spec']);
  assert.deepEqual(titles(ok(await q().gt('priority', 2), 'gt')), ['ship it', 'write spec']);
  assert.deepEqual(titles(ok(await q().lt('priority', 2), 'lt')), ['review spec']);
  assert.deepEqual(titles(ok(await q().like('title', '%spec'), 'like')), ['review spec', 'write spec']);
  assert.deepEqual(titles(ok(await q().ilike('title', '%SPEC%'), 'ilike')), ['review spec', 'write spec']);
  assert.deepEqual(titles(ok(await q().in('priority', [1, 5]), 'in')), ['review spec', 'ship it']);
  assert.deepEqual(titles(ok(await q().is('done', true), 'is')), ['review spec']);
});

test('filters: contains on an array and on jsonb', T, async () => {
  const q = () => alice.from('tasks').select('title');
  assert.deepEqual(titles(ok(await q().contains('tags', ['docs']), 'cs array')), ['review spec', 'write spec']);
  assert.deepEqual(titles(ok(await q().contains('tags', ['docs', 'urgent']), 'cs array 2')), ['write spec']);
  assert.deepEqual(titles(ok(await q().contains('meta', { estimate: 3 }), 'cs jsonb')), ['write spec']);
});

test('filters: or(...) and not', T, async () => {
  const q = () => alice.from('tasks').select('title');
  assert.deepEqual(titles(ok(await q().or('priority.gt.4,title.eq.launch'), 'or')), ['launch', 'ship it']);
  assert.deepEqual(titles(ok(await q().not('done', 'is', true), 'not')), ['launch', 'ship it', 'write spec']);
  assert.deepEqual(
    titles(ok(await q().or('and(priority.gte.2,priority.lte.3),title.like.review*'), 'or with and')),
    ['launch', 'review spec', 'write spec'],
  );
});

test('order', T, async () => {
  const data = ok(await alice.from('tasks').select('title').order('priority', { ascending: false }), 'order');
  assert.deepEqual(data.map((r) => r.title), ['ship it', 'write spec', 'launch', 'review spec']);
});

test('range with count exact gives the page and the total', T, async () => {
  const res = await alice.from('tasks').select('title', { count: 'exact' }).order('priority').range(1, 2);
  assert.deepEqual(ok(res, 'range').map((r) => r.title), ['launch', 'write spec']);
  assert.equal(res.count, 4);
});

test('count exact on a filtered select', T, async () => {
  const res = await alice.from('tasks').select('*', { count: 'exact' }).eq('done', false);
  ok(res, 'count');
  assert.equal(res.count, 3);
});

test('head: true counts without rows', T, async () => {
  const res = await alice.from('tasks').select('*', { count: 'exact', head: true });
  ok(res, 'head');
  assert.equal(res.data, null);
  assert.equal(res.count, 4);
});

test('.single() gives one object, and an error for none', T, async () => {
  const data = ok(await alice.from('projects').select('name').eq('id', ALPHA).single(), 'single');
  assert.deepEqual(data, { name: 'Alpha' });
  const res = await alice.from('projects').select('name').eq('name', 'Nope').single();
  assert.ok(res.error, 'single() of no rows must fail');
  assert.equal(res.status, 406);
  assert.equal(res.data, null);
});

test('.maybeSingle() gives one object or null', T, async () => {
  assert.deepEqual(ok(await alice.from('projects').select('name').eq('id', 2).maybeSingle(), 'one'), { name: 'Apollo' });
  const res = await alice.from('projects').select('name').eq('name', 'Nope').maybeSingle();
  assert.equal(ok(res, 'none'), null);
});

test('RLS: each user sees their own rows and public ones; anon only public ones', T, async () => {
  assert.deepEqual(titles(ok(await alice.from('tasks').select('title'), 'alice')), [
    'launch',
    'review spec',
    'ship it',
    'write spec',
  ]);
  assert.deepEqual(titles(ok(await bob.from('tasks').select('title'), 'bob')), ['bob task', 'launch']);
  assert.deepEqual(titles(ok(await anon.from('tasks').select('title'), 'anon')), ['launch']);
  const names = (rows) => sorted(rows.map((r) => r.name));
  assert.deepEqual(names(ok(await alice.from('projects').select('name'), 'alice projects')), ['Alpha', 'Apollo', 'Scratch']);
  assert.deepEqual(names(ok(await bob.from('projects').select('name'), 'bob projects')), ['Apollo', 'Bravo']);
  assert.deepEqual(names(ok(await anon.from('projects').select('name'), 'anon projects')), ['Apollo']);
  // Bob's private rows are absent for Alice even when asked for by id.
  assert.deepEqual(ok(await alice.from('tasks').select('title').eq('id', 5), 'bob task by id'), []);
  assert.deepEqual(ok(await alice.from('projects').select('name').eq('id', 3), 'bravo by id'), []);
});

test('RLS: anonymous writes are refused', T, async () => {
  const res = await anon.from('projects').insert({ name: 'anon project' }).select();
  assert.ok(res.error, 'anon insert must fail');
  assert.equal(res.status, 401);
});

test('rpc: a scalar, and auth.uid() of the verified token', T, async () => {
  assert.equal(ok(await aliceRpc.rpc('add_numbers', { a: 2, b: 3 }), 'add_numbers'), 5);
  assert.equal(ok(await aliceRpc.rpc('my_uid'), 'my_uid'), USER_A);
  assert.equal(ok(await anonRpc.rpc('my_uid'), 'anon my_uid'), null);
  assert.equal(ok(await aliceRpc.rpc('add_numbers', { a: 2, b: 3 }, { get: true }), 'GET'), 5);
});

test('rpc: a set of rows with select, filters and order on the result', T, async () => {
  const data = ok(
    await aliceRpc.rpc('tasks_by_priority', { min_priority: 2 }).select('title').neq('title', 'launch').order('priority'),
    'tasks_by_priority',
  );
  assert.deepEqual(data, [{ title: 'write spec' }, { title: 'ship it' }]);
  const res = await aliceRpc.rpc('tasks_by_priority', {}, { count: 'exact', head: true });
  ok(res, 'rpc head count');
  assert.equal(res.count, 4);
  const one = ok(await aliceRpc.rpc('tasks_by_priority', { min_priority: 5 }).select('title').single(), 'single');
  assert.deepEqual(one, { title: 'ship it' });
});

test('rpc: errors in the PostgREST shape', T, async () => {
  const res = await aliceRpc.rpc('add_numbers', { a: 1, c: 2 });
  assert.ok(res.error);
  assert.equal(res.status, 400);
  assert.match(res.error.message, /"c"/);
  const missing = await aliceRpc.rpc('no_such_function');
  assert.equal(missing.status, 404);
});

test('insert: one row and many, with .select()', T, async () => {
  const one = ok(
    await alice.from('tasks').insert({ project_id: SCRATCH, title: 'tmp one', priority: 7 }).select(),
    'insert one',
  );
  assert.equal(one.length, 1);
  assert.equal(one[0].title, 'tmp one');
  assert.equal(one[0].owner_id, USER_A, 'owner_id comes from the verified token');
  assert.equal(one[0].done, false, 'defaults apply');
  const many = ok(
    await alice
      .from('tasks')
      .insert([
        { project_id: SCRATCH, title: 'tmp two', done: false },
        { project_id: SCRATCH, title: 'tmp three', done: true },
      ])
      .select('title, done'),
    'insert many',
  );
  assert.deepEqual(sorted(many.map((r) => `${r.title}:${r.done}`)), ['tmp three:true', 'tmp two:false']);
  // Without .select() nothing comes back, and it still happened.
  const res = await alice.from('tasks').insert({ project_id: SCRATCH, title: 'tmp four' });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 201);
  assert.equal(res.data, null);
  const scratch = ok(await alice.from('tasks').select('title').eq('project_id', SCRATCH), 'scratch');
  assert.deepEqual(titles(scratch), ['tmp four', 'tmp one', 'tmp three', 'tmp two']);
});

test('insert: RLS refuses a row in someone else\'s project', T, async () => {
  const res = await bob.from('tasks').insert({ project_id: SCRATCH, title: 'intruder' }).select();
  assert.ok(res.error, 'must be refused');
  assert.equal(res.status, 403);
});

test('upsert: merge on conflict, and ignoreDuplicates', T, async () => {
  const merged = ok(
    await alice.from('labels').upsert({ slug: 'bug', name: 'Bug', color: 'orange' }, { onConflict: 'slug' }).select(),
    'merge',
  );
  assert.deepEqual(merged, [{ slug: 'bug', name: 'Bug', color: 'orange' }]);
  const created = ok(
    await alice
      .from('labels')
      .upsert([
        { slug: 'docs', name: 'Docs', color: 'blue' },
        { slug: 'bug', name: 'Bug', color: 'yellow' },
      ], { onConflict: 'slug' })
      .select('slug, color'),
    'bulk merge',
  );
  assert.deepEqual(sorted(created.map((r) => `${r.slug}:${r.color}`)), ['bug:yellow', 'docs:blue']);
  const ignored = ok(
    await alice
      .from('labels')
      .upsert({ slug: 'feature', name: 'Feature', color: 'purple' }, { onConflict: 'slug', ignoreDuplicates: true })
      .select(),
    'ignore',
  );
  assert.deepEqual(ignored, [], 'an ignored duplicate returns no row');
  const feature = ok(await alice.from('labels').select('color').eq('slug', 'feature').single(), 'feature');
  assert.equal(feature.color, 'green');
});

test('update with a filter', T, async () => {
  const data = ok(
    await alice.from('tasks').update({ done: true }).eq('project_id', SCRATCH).eq('title', 'tmp one').select('title, done'),
    'update',
  );
  assert.deepEqual(data, [{ title: 'tmp one', done: true }]);
  // Bob's update of Alice's rows matches nothing under RLS.
  const bobs = ok(await bob.from('tasks').update({ title: 'hacked' }).eq('id', 1).select(), 'bob update');
  assert.deepEqual(bobs, []);
  assert.deepEqual(ok(await alice.from('tasks').select('title').eq('id', 1), 'after'), [{ title: 'write spec' }]);
});

test('delete with a filter', T, async () => {
  const bobs = ok(await bob.from('tasks').delete().eq('project_id', SCRATCH).select(), 'bob delete');
  assert.deepEqual(bobs, []);
  const gone = ok(await alice.from('tasks').delete().eq('project_id', SCRATCH).like('title', 'tmp t*').select('title'), 'delete');
  assert.deepEqual(titles(gone), ['tmp three', 'tmp two']);
  const left = ok(await alice.from('tasks').select('title').eq('project_id', SCRATCH), 'left');
  assert.deepEqual(titles(left), ['tmp four', 'tmp one']);
});

test('rpc: a volatile function that writes returns its row', T, async () => {
  const row = ok(await aliceRpc.rpc('create_task', { project_id: SCRATCH, title: 'via rpc' }), 'create_task');
  assert.equal(row.title, 'via rpc');
  assert.equal(row.owner_id, USER_A);
  const res = await aliceRpc.rpc('create_task', { project_id: SCRATCH, title: 'by GET' }, { get: true });
  assert.equal(res.status, 405, 'a volatile function cannot be called by GET');
});

-- Rows for the postgrest-js suite, written as superuser once both users have signed up
-- (tests/tests/postgrest_js.rs sets fixture.user_a and fixture.user_b to their ids first).
-- Fixed ids so the suite can name them; the identities restart above them.

-- Alice: Alpha (private), Apollo (public), Scratch (private, for the suite's own writes).
-- Bob: Bravo (private).
INSERT INTO public.projects (id, owner_id, name, is_public) VALUES
  (1, current_setting('fixture.user_a')::uuid, 'Alpha', false),
  (2, current_setting('fixture.user_a')::uuid, 'Apollo', true),
  (3, current_setting('fixture.user_b')::uuid, 'Bravo', false),
  (4, current_setting('fixture.user_a')::uuid, 'Scratch', false);

INSERT INTO public.tasks (id, project_id, owner_id, title, done, priority, tags, meta) VALUES
  (1, 1, current_setting('fixture.user_a')::uuid, 'write spec', false, 3, '{docs,urgent}', '{"estimate": 3}'),
  (2, 1, current_setting('fixture.user_a')::uuid, 'review spec', true, 1, '{docs}', '{"estimate": 1}'),
  (3, 1, current_setting('fixture.user_a')::uuid, 'ship it', false, 5, '{}', '{}'),
  (4, 2, current_setting('fixture.user_a')::uuid, 'launch', false, 2, '{space}', '{"public": true}'),
  (5, 3, current_setting('fixture.user_b')::uuid, 'bob task', false, 4, '{}', '{}');

INSERT INTO public.comments (id, task_id, owner_id, body) VALUES
  (1, 1, current_setting('fixture.user_a')::uuid, 'first draft'),
  (2, 1, current_setting('fixture.user_a')::uuid, 'looks good'),
  (3, 5, current_setting('fixture.user_b')::uuid, 'bob was here');

INSERT INTO public.labels (slug, name, color) VALUES
  ('bug', 'Bug', 'red'),
  ('feature', 'Feature', 'green');

ALTER TABLE public.projects ALTER COLUMN id RESTART WITH 100;
ALTER TABLE public.tasks ALTER COLUMN id RESTART WITH 100;
ALTER TABLE public.comments ALTER COLUMN id RESTART WITH 100;

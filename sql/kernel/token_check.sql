-- Everything auth.authenticate needs from the database about a token whose signature and
-- times have been verified, in one round (it runs on every request):
--   issuer, audience  the values tokens must name (auth.settings)
--   active            $1 jti not on the blacklist, and for a user token ($3 = sub) its
--                     session $2 live, the refresh token row it was issued with ($4, claim
--                     rt) there (a rolled-back refresh leaves none), and its user present
--                     and not banned
--   session_expires   when that session ends (epoch seconds), so a remembered answer
--                     can lapse by itself
-- Prepared once per backend and run as the extension's owner, so every table and operator is
-- schema-qualified: the caller's search_path cannot redirect it.
SELECT
  (SELECT s.value FROM auth.settings s WHERE s.key OPERATOR(pg_catalog.=) 'jwt_issuer') AS issuer,
  (SELECT s.value FROM auth.settings s WHERE s.key OPERATOR(pg_catalog.=) 'jwt_audience') AS audience,
  NOT EXISTS (SELECT FROM auth.revoked_tokens r WHERE r.jti OPERATOR(pg_catalog.=) $1)
   AND ($3 IS NULL OR (
         $2 IS NOT NULL
     AND EXISTS (SELECT FROM auth.sessions s
                 WHERE s.id OPERATOR(pg_catalog.=) $2 AND s.user_id OPERATOR(pg_catalog.=) $3
                   AND s.revoked_at IS NULL AND s.expires_at OPERATOR(pg_catalog.>) pg_catalog.now())
     AND ($4 IS NULL OR EXISTS (SELECT FROM auth.refresh_tokens t
                                WHERE t.id OPERATOR(pg_catalog.=) $4 AND t.session_id OPERATOR(pg_catalog.=) $2))
     AND EXISTS (SELECT FROM auth.users u
                 WHERE u.id OPERATOR(pg_catalog.=) $3
                   AND (u.banned_until IS NULL OR u.banned_until OPERATOR(pg_catalog.<=) pg_catalog.now())))) AS active,
  (SELECT pg_catalog.floor(pg_catalog.date_part('epoch', s.expires_at))::pg_catalog.int8
   FROM auth.sessions s WHERE s.id OPERATOR(pg_catalog.=) $2) AS session_expires

-- Fluxbase extension, part 1: settings.
-- Every tunable rule lives in this one table so an administrator reads and changes them in
-- SQL; the server writes the `auth:` keys of fluxbase.yaml here at start. The signing secret
-- is NOT here: it is the superuser-only setting fluxbase.jwt_secret.

-- One row per setting, with the reason it exists.
CREATE TABLE auth.settings (
  key         text PRIMARY KEY,
  value       text NOT NULL,
  description text NOT NULL
);
COMMENT ON TABLE auth.settings IS 'Fluxbase settings (SQL-first). Change with auth.set_setting(key, value).';

INSERT INTO auth.settings (key, value, description) VALUES
  ('jwt_issuer', 'fluxbase',
   'The iss claim written into tokens and required when verifying them: tokens minted by another system are refused.'),
  ('jwt_audience', 'authenticated',
   'The aud claim written into tokens and required when verifying them.'),
  ('access_token_expiry', '15m',
   'Lifetime of an access token. Short, because an access token cannot be recalled from a client.');

-- Reads one setting; raises when the key is unknown so a typo never silently means "default".
CREATE FUNCTION auth.setting(setting_key text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  result text;
BEGIN
  SELECT s.value INTO result FROM auth.settings s WHERE s.key = setting_key;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown Fluxbase setting "%"', setting_key USING ERRCODE = '22023';
  END IF;
  RETURN result;
END
$$;
COMMENT ON FUNCTION auth.setting(text) IS 'The value of one Fluxbase setting (see auth.settings).';

-- Parses a duration setting such as 15m, 7d, 1h or 30s; anything else is refused with the key named.
CREATE FUNCTION auth.setting_interval(setting_key text) RETURNS interval
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  raw text := auth.setting(setting_key);
  parts text[];
BEGIN
  parts := regexp_match(raw, '^([0-9]+)(s|m|h|d)$');
  IF parts IS NULL OR parts[1]::bigint = 0 THEN
    RAISE EXCEPTION 'setting "%" must be a positive duration like 30s, 15m, 1h or 7d, not "%"', setting_key, raw
      USING ERRCODE = '22023';
  END IF;
  RETURN make_interval(secs => parts[1]::bigint * CASE parts[2]
    WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600 ELSE 86400 END);
END
$$;
COMMENT ON FUNCTION auth.setting_interval(text) IS 'A duration setting (30s, 15m, 1h, 7d) as an interval; raises 22023 naming the key when malformed.';

-- Changes one setting (superuser, or whoever the administrator grants it to).
CREATE FUNCTION auth.set_setting(setting_key text, new_value text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  UPDATE auth.settings SET value = new_value WHERE key = setting_key;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown Fluxbase setting "%"', setting_key USING ERRCODE = '22023';
  END IF;
  IF setting_key LIKE '%\_expiry' THEN
    PERFORM auth.setting_interval(setting_key);  -- validates, raising before commit
  END IF;
END
$$;
COMMENT ON FUNCTION auth.set_setting(text, text) IS 'Change one Fluxbase setting; an unknown key or malformed value is refused (22023).';
REVOKE ALL ON FUNCTION auth.set_setting(text, text) FROM PUBLIC;

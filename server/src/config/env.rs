//! Environment overrides (`FLUXBASE_<SECTION>_<KEY>`) and `_FILE` secrets.
//!
//! How a variable name finds its key: the schema of keys is the leaves of
//! `fluxbase.example.yaml` (compiled in), each flattened by joining its path with `_` and upper-
//! casing it (`server.max_body_bytes` → `SERVER_MAX_BODY_BYTES`). A variable matches a key when
//! its name after `FLUXBASE_` equals that flattened form, so nested keys and keys with
//! underscores resolve the same way and never need guessing (a unit test checks that no two
//! keys flatten alike). `…_FILE` reads the value from the file it names (trailing newline
//! removed), as Docker and Kubernetes mount secrets.
//!
//! Which `FLUXBASE_` variables are overrides: every one whose name continues with a section
//! of the schema and `_` (`FLUXBASE_SERVER_…`, `FLUXBASE_DATABASE_…`, …). Such a variable that
//! matches no key stops the server, naming it (a typo must not be ignored). The project's
//! other variables never start with a section name, so they cannot collide:
//! [`NON_CONFIG_VARIABLES`] lists them. Any other `FLUXBASE_` variable is refused too (a typo
//! in the section, `FLUXBASE_SEVER_PORT`), unless the file refers to it as `${NAME}` (or to
//! `NAME` without `_FILE`): then it is an interpolation input, not an override.
//!
//! Values are typed by the example's value: numbers and booleans are parsed (an invalid one is
//! refused naming the variable), strings are taken verbatim (a password `123456` stays text),
//! lists are a YAML flow list (`["a", "b"]`) or comma-separated (`GET,POST`).
use super::ConfigError;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Every key, documented; the schema of the overrides.
const EXAMPLE: &str = include_str!("../../../fluxbase.example.yaml");

/// The prefix of every Fluxbase variable.
pub const PREFIX: &str = "FLUXBASE_";

/// `FLUXBASE_` variables the project uses that are not configuration keys (the cluster
/// scripts', the tests', the log filter's). None starts with a section name.
pub const NON_CONFIG_VARIABLES: [&str; 10] = [
    "FLUXBASE_LOG",
    "FLUXBASE_DB_PASSWORD",
    "FLUXBASE_DB_PORT",
    "FLUXBASE_JWT_SECRET",
    "FLUXBASE_JWT_SECRET_FILE",
    "FLUXBASE_MFA_ENCRYPTION_KEY",
    "FLUXBASE_MFA_ENCRYPTION_KEY_FILE",
    "FLUXBASE_TEST_STATE",
    "FLUXBASE_REPO",
    "FLUXBASE_EXPOSE_SECRET_FOR_TESTS",
];

/// What kind of value a key holds (from the example).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Number,
    Text,
    List,
}

/// A key of the schema: its dotted path and kind.
#[derive(Debug, Clone)]
pub struct SchemaKey {
    pub path: Vec<String>,
    pub kind: Kind,
}

impl SchemaKey {
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// The schema: flattened upper-case name (without the prefix) → key.
pub fn schema() -> &'static BTreeMap<String, SchemaKey> {
    static SCHEMA: OnceLock<BTreeMap<String, SchemaKey>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // The example is part of the source and checked by a unit test; an unparsable one
        // yields an empty schema (every override is then refused, naming it).
        let root: Value = serde_norway::from_str(EXAMPLE).unwrap_or(Value::Null);
        let mut out = BTreeMap::new();
        collect(&root, &mut Vec::new(), &mut out);
        out
    })
}

fn collect(value: &Value, path: &mut Vec<String>, out: &mut BTreeMap<String, SchemaKey>) {
    let kind = match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                if let Some(k) = k.as_str() {
                    path.push(k.to_owned());
                    collect(v, path, out);
                    path.pop();
                }
            }
            return;
        }
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::Sequence(_) => Kind::List,
        _ => Kind::Text,
    };
    out.insert(
        path.join("_").to_ascii_uppercase(),
        SchemaKey {
            path: path.clone(),
            kind,
        },
    );
}

/// The top-level sections of the schema, upper case (`SERVER`, `DATABASE`, …).
fn sections() -> Vec<String> {
    let mut out: Vec<String> = schema()
        .values()
        .filter_map(|k| k.path.first())
        .map(|s| s.to_ascii_uppercase())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One override found in the environment.
#[derive(Debug, Clone)]
pub struct Override {
    pub variable: String,
    pub key: SchemaKey,
    pub value: Value,
}

/// Finds the overrides among `vars`, reading `_FILE` variables. `text` is the config file
/// before interpolation (to tell interpolation inputs from overrides).
pub fn overrides(text: &str, vars: &[(String, String)]) -> Result<Vec<Override>, ConfigError> {
    let schema = schema();
    let sections = sections();
    let mut out = Vec::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if let Some(key) = schema.get(rest) {
            out.push(Override {
                variable: name.clone(),
                key: key.clone(),
                value: typed(name, key.kind, raw)?,
            });
            continue;
        }
        if let Some(key) = rest.strip_suffix("_FILE").and_then(|k| schema.get(k)) {
            let content = read_secret_file(name, raw)?;
            out.push(Override {
                variable: name.clone(),
                key: key.clone(),
                value: typed(name, key.kind, &content)?,
            });
            continue;
        }
        let in_section = sections
            .iter()
            .any(|s| rest.starts_with(s.as_str()) && rest[s.len()..].starts_with('_'));
        if !in_section && NON_CONFIG_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let base = name.strip_suffix("_FILE").unwrap_or(name);
        if !in_section
            && (text.contains(&format!("${{{name}}}")) || text.contains(&format!("${{{base}}}")))
        {
            continue;
        }
        return Err(ConfigError::UnknownVariable(name.clone()));
    }
    Ok(out)
}

/// Reads a `_FILE` secret: the file's content without its trailing line break.
pub fn read_secret_file(variable: &str, path: &str) -> Result<String, ConfigError> {
    let content = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        variable: variable.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let trimmed = content
        .strip_suffix("\r\n")
        .or_else(|| content.strip_suffix('\n'))
        .unwrap_or(&content);
    Ok(trimmed.to_owned())
}

fn typed(variable: &str, kind: Kind, raw: &str) -> Result<Value, ConfigError> {
    let bad = |expected: &str| ConfigError::BadVariable {
        variable: variable.to_owned(),
        message: format!("must be {expected}"),
    };
    match kind {
        Kind::Text => Ok(Value::String(raw.to_owned())),
        Kind::Bool => match raw.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad("true or false")),
        },
        Kind::Number => {
            let trimmed = raw.trim();
            if let Ok(n) = trimmed.parse::<u64>() {
                Ok(Value::Number(n.into()))
            } else if let Ok(n) = trimmed.parse::<i64>() {
                Ok(Value::Number(n.into()))
            } else {
                Err(bad("a whole number"))
            }
        }
        Kind::List => {
            let trimmed = raw.trim();
            if trimmed.starts_with('[') {
                match serde_norway::from_str::<Value>(trimmed) {
                    Ok(list @ Value::Sequence(_)) => Ok(list),
                    _ => Err(bad("a list such as [\"a\", \"b\"] or a,b")),
                }
            } else {
                Ok(Value::Sequence(
                    trimmed
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ))
            }
        }
    }
}

/// Sets `value` at `path` inside `root`, creating the sections on the way.
pub fn apply(root: &mut Value, ov: &Override) -> Result<(), ConfigError> {
    let mut node = root;
    for (i, part) in ov.key.path.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(ConfigError::BadVariable {
                variable: ov.variable.clone(),
                message: format!(
                    "cannot set {}: {} in the file is not a section",
                    ov.key.dotted(),
                    ov.key.path[..i].join(".")
                ),
            });
        };
        let key = Value::String(part.clone());
        if i + 1 == ov.key.path.len() {
            map.insert(key, ov.value.clone());
            return Ok(());
        }
        node = map.entry(key).or_insert(Value::Null);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_schema_knows_nested_and_underscored_keys() {
        let s = schema();
        assert_eq!(s["SERVER_MAX_BODY_BYTES"].dotted(), "server.max_body_bytes");
        assert_eq!(s["SERVER_TLS_MIN_VERSION"].kind, Kind::Text);
        assert_eq!(s["DATABASE_MAX_CONNECTIONS"].kind, Kind::Number);
        assert_eq!(
            s["SECURITY_HEADERS_HSTS_MAX_AGE"].dotted(),
            "security.headers.hsts.max_age"
        );
        assert_eq!(s["SERVER_CORS_ALLOWED_ORIGINS"].kind, Kind::List);
        assert_eq!(s["AUTH_SMTP_PASSWORD"].kind, Kind::Text);
        assert_eq!(
            s["RATE_LIMITING_PER_USER_PER_MINUTE"].dotted(),
            "rate_limiting.per_user.per_minute"
        );
        assert_eq!(s["MONITORING_PORT"].kind, Kind::Number);
        assert_eq!(s["SERVER_TRUSTED_PROXIES"].kind, Kind::List);
        assert_eq!(
            s["LOGGING_ALERTS_FAILED_LOGINS_THRESHOLD"].dotted(),
            "logging.alerts.failed_logins.threshold"
        );
        assert_eq!(s["LOGGING_AUDIT_ENABLED"].kind, Kind::Bool);
        assert!(s.len() > 50, "{}", s.len());
    }

    #[test]
    fn no_two_keys_flatten_alike() {
        // collect() would overwrite one with the other: count the leaves independently.
        fn leaves(v: &Value) -> usize {
            match v {
                Value::Mapping(m) => m.values().map(leaves).sum(),
                _ => 1,
            }
        }
        let root: Value = serde_norway::from_str(EXAMPLE).unwrap();
        assert_eq!(leaves(&root), schema().len());
    }

    #[test]
    fn project_variables_cannot_collide_with_sections() {
        for name in NON_CONFIG_VARIABLES {
            let rest = name.strip_prefix(PREFIX).unwrap();
            for s in sections() {
                assert!(
                    !rest.starts_with(&format!("{s}_")),
                    "{name} starts with {s}"
                );
            }
        }
        assert!(overrides(
            "",
            &vars(&[
                ("FLUXBASE_DB_PASSWORD", "x"),
                ("FLUXBASE_LOG", "debug"),
                ("HOME", "/")
            ])
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn typed_values() {
        let found = overrides(
            "",
            &vars(&[
                ("FLUXBASE_SERVER_PORT", "9000"),
                ("FLUXBASE_SERVER_TLS_ENABLED", "true"),
                ("FLUXBASE_AUTH_SMTP_PASSWORD", "123456"),
                ("FLUXBASE_SERVER_CORS_ALLOWED_METHODS", "GET, POST"),
                ("FLUXBASE_API_EXPOSED_SCHEMAS", "[\"a\", \"b\"]"),
            ]),
        )
        .unwrap();
        let values: Vec<Value> = found.iter().map(|o| o.value.clone()).collect();
        assert_eq!(values[0], Value::Number(9000.into()));
        assert_eq!(values[1], Value::Bool(true));
        assert_eq!(values[2], Value::String("123456".into()));
        assert_eq!(
            values[3],
            serde_norway::from_str::<Value>("[GET, POST]").unwrap()
        );
        assert_eq!(
            values[4],
            serde_norway::from_str::<Value>("[a, b]").unwrap()
        );
        for (name, value) in [
            ("FLUXBASE_SERVER_PORT", "ninety"),
            ("FLUXBASE_SERVER_TLS_ENABLED", "yes"),
        ] {
            let err = overrides("", &vars(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn unknown_variables_are_named() {
        for name in [
            "FLUXBASE_SERVER_PROT",
            "FLUXBASE_DATABASE_MAX_CONECTIONS",
            "FLUXBASE_SEVER_PORT",
            "FLUXBASE_SERVER_TLS",
        ] {
            let err = overrides("", &vars(&[(name, "1")])).unwrap_err();
            assert!(
                matches!(&err, ConfigError::UnknownVariable(v) if v == name),
                "{err}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        // A variable the file interpolates is an input, not an override.
        let text = "database: { url: \"postgres://u:${FLUXBASE_SECRET_PW}@h/db\" }";
        assert!(overrides(text, &vars(&[("FLUXBASE_SECRET_PW", "x")]))
            .unwrap()
            .is_empty());
        assert!(overrides(text, &vars(&[("FLUXBASE_SECRET_PW_FILE", "/x")]))
            .unwrap()
            .is_empty());
        // …but never inside a section's namespace.
        let text = "database: { url: \"postgres://u:${FLUXBASE_SERVER_PW}@h/db\" }";
        assert!(overrides(text, &vars(&[("FLUXBASE_SERVER_PW", "x")])).is_err());
    }

    #[test]
    fn file_variables() {
        let dir = std::env::temp_dir().join(format!("fluxbase-env-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "from-the-file-secret\n").unwrap();
        let found = overrides(
            "",
            &vars(&[("FLUXBASE_DATABASE_PASSWORD_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(found[0].key.dotted(), "database.password");
        assert_eq!(found[0].value, Value::String("from-the-file-secret".into()));
        let missing = dir.join("missing");
        let err = overrides(
            "",
            &vars(&[("FLUXBASE_DATABASE_PASSWORD_FILE", missing.to_str().unwrap())]),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("FLUXBASE_DATABASE_PASSWORD_FILE"), "{text}");
        assert!(text.contains("missing"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

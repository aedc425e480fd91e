//! The `Prefer` header (RFC 7240), PostgREST's preferences: `return=`, `count=`,
//! `resolution=`, `missing=`, `tx=`, `handling=`.
//!
//! Lenient by default, as PostgREST: unknown or malformed preferences are ignored, unless
//! the client asks for `handling=strict`, which makes them a 400 (`INVALID_PREFERENCE`).
//! The refused preferences are never echoed (they are client text).
use crate::error::ApiError;
use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    HeadersOnly,
    Representation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMethod {
    Exact,
    Planned,
    Estimated,
}

impl CountMethod {
    pub fn name(self) -> &'static str {
        match self {
            CountMethod::Exact => "exact",
            CountMethod::Planned => "planned",
            CountMethod::Estimated => "estimated",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "exact" => Some(CountMethod::Exact),
            "planned" => Some(CountMethod::Planned),
            "estimated" => Some(CountMethod::Estimated),
            _ => None,
        }
    }

    /// The `count=` query parameter.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        Self::from_name(value).ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_PARAMETER",
                "\"count\" is exact, planned or estimated",
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::MergeDuplicates => "merge-duplicates",
            Resolution::IgnoreDuplicates => "ignore-duplicates",
        }
    }
}

/// What the client prefers. `None`s are "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub return_: Option<Return>,
    pub count: Option<CountMethod>,
    pub resolution: Option<Resolution>,
    /// `missing=default`: keys absent from a bulk row take the column DEFAULT, not NULL.
    pub missing_default: bool,
    /// `tx=rollback`: run, answer, then roll back.
    pub tx_rollback: bool,
    pub strict: bool,
    /// How many preferences were not understood.
    pub invalid: usize,
}

impl Preferences {
    /// `return=` as a `Preference-Applied` item.
    pub fn return_name(r: Return) -> &'static str {
        match r {
            Return::Minimal => "return=minimal",
            Return::HeadersOnly => "return=headers-only",
            Return::Representation => "return=representation",
        }
    }
}

/// Parses every `Prefer` header (comma-separated, several headers allowed).
pub fn parse(headers: &HeaderMap) -> Result<Preferences, ApiError> {
    let mut p = Preferences::default();
    for value in headers.get_all("prefer") {
        let Ok(value) = value.to_str() else {
            p.invalid += 1;
            continue;
        };
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            // Preference parameters (`; x=y`) are not used by any preference here.
            let item = item.split(';').next().unwrap_or_default().trim();
            let (key, val) = item.split_once('=').unwrap_or((item, ""));
            let (key, val) = (
                key.trim().to_ascii_lowercase(),
                val.trim().trim_matches('"').to_ascii_lowercase(),
            );
            let understood = match (key.as_str(), val.as_str()) {
                ("return", "minimal") => set(&mut p.return_, Return::Minimal),
                ("return", "headers-only") => set(&mut p.return_, Return::HeadersOnly),
                ("return", "representation") => set(&mut p.return_, Return::Representation),
                ("count", name) => match CountMethod::from_name(name) {
                    Some(c) => set(&mut p.count, c),
                    None => false,
                },
                ("resolution", "merge-duplicates") => {
                    set(&mut p.resolution, Resolution::MergeDuplicates)
                }
                ("resolution", "ignore-duplicates") => {
                    set(&mut p.resolution, Resolution::IgnoreDuplicates)
                }
                ("missing", "default") => {
                    p.missing_default = true;
                    true
                }
                ("missing", "null") => true,
                ("tx", "rollback") => {
                    p.tx_rollback = true;
                    true
                }
                ("tx", "commit") => true,
                ("handling", "strict") => {
                    p.strict = true;
                    true
                }
                ("handling", "lenient") => true,
                _ => false,
            };
            if !understood {
                p.invalid += 1;
            }
        }
    }
    if p.strict && p.invalid > 0 {
        return Err(ApiError::bad_request(
            "INVALID_PREFERENCE",
            format!(
                "{} preference(s) in the Prefer header are not understood (handling=strict)",
                p.invalid
            ),
        ));
    }
    Ok(p)
}

/// Sets a preference given once; a second, different value of the same preference counts
/// as not understood.
fn set<T: PartialEq>(slot: &mut Option<T>, value: T) -> bool {
    match slot {
        Some(existing) => *existing == value,
        None => {
            *slot = Some(value);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn prefs(values: &[&str]) -> Result<Preferences, ApiError> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("prefer", HeaderValue::from_str(v).unwrap());
        }
        parse(&h)
    }

    #[test]
    fn known_preferences() {
        let p = prefs(&[
            "return=representation, count=exact",
            "resolution=merge-duplicates,missing=default, tx=rollback",
        ])
        .unwrap();
        assert_eq!(p.return_, Some(Return::Representation));
        assert_eq!(p.count, Some(CountMethod::Exact));
        assert_eq!(p.resolution, Some(Resolution::MergeDuplicates));
        assert!(p.missing_default && p.tx_rollback && !p.strict);
        assert_eq!(p.invalid, 0);
        assert_eq!(prefs(&[]).unwrap(), Preferences::default());
        assert_eq!(
            prefs(&["return=headers-only"]).unwrap().return_,
            Some(Return::HeadersOnly)
        );
        assert_eq!(
            prefs(&["count=planned"]).unwrap().count,
            Some(CountMethod::Planned)
        );
    }

    #[test]
    fn lenient_unless_strict() {
        let p = prefs(&["foo, return=everything, count=lots; drop table x"]).unwrap();
        assert_eq!(p.invalid, 3);
        assert_eq!(p.return_, None);
        let e = prefs(&["handling=strict, foo"]).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_ref()),
            (400, "INVALID_PREFERENCE")
        );
        assert!(!e.message.contains("foo"));
        assert!(prefs(&["handling=strict, return=minimal"]).is_ok());
        // Two different values of one preference are not understood.
        assert!(prefs(&["handling=strict, return=minimal, return=representation"]).is_err());
    }
}

//! The `Range: 0-9` request header (`Range-Unit: items`) and the page it makes together
//! with `limit`/`offset`: as PostgREST, the intersection of both, capped at `api.max_rows`.
use crate::error::ApiError;
use axum::http::{HeaderMap, StatusCode};

/// `first-[last]`, inclusive, as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeHeader {
    pub first: u64,
    pub last: Option<u64>,
}

/// The rows to return: `LIMIT limit OFFSET offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

fn invalid_range() -> ApiError {
    ApiError::bad_request(
        "INVALID_RANGE",
        "The Range header must look like \"Range: 0-9\" (items)",
    )
}

pub fn not_satisfiable() -> ApiError {
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "RANGE_NOT_SATISFIABLE",
        "The requested range is not satisfiable",
    )
}

fn number(text: &str) -> Result<u64, ApiError> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_range());
    }
    text.parse().map_err(|_| invalid_range())
}

/// Parses `Range` (and checks `Range-Unit`). `None` when absent.
pub fn parse(headers: &HeaderMap) -> Result<Option<RangeHeader>, ApiError> {
    if let Some(unit) = headers.get("range-unit") {
        let unit = unit.to_str().map_err(|_| invalid_range())?;
        if !unit.trim().eq_ignore_ascii_case("items") {
            return Err(invalid_range());
        }
    }
    let mut values = headers.get_all("range").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid_range());
    }
    let value = value.to_str().map_err(|_| invalid_range())?.trim();
    // RFC 7233 form `items=0-9` is accepted too.
    let value = value.strip_prefix("items=").unwrap_or(value);
    let (first, last) = value.split_once('-').ok_or_else(invalid_range)?;
    let first = number(first.trim())?;
    let last = match last.trim() {
        "" => None,
        last => Some(number(last)?),
    };
    if last.is_some_and(|l| l < first) {
        return Err(not_satisfiable());
    }
    Ok(Some(RangeHeader { first, last }))
}

/// The page of `limit`/`offset` intersected with `range`, at most `max_rows` long.
pub fn page(
    limit: Option<u64>,
    offset: Option<u64>,
    range: Option<RangeHeader>,
    max_rows: u64,
) -> Page {
    let query_first = offset.unwrap_or(0);
    let query_last = limit.map(|l| query_first.saturating_add(l).checked_sub(1));
    let (mut first, mut last): (u64, Option<Option<u64>>) = (query_first, query_last);
    if let Some(r) = range {
        first = first.max(r.first);
        last = match (last, r.last) {
            (Some(a), Some(b)) => Some(a.map(|a| a.min(b))),
            (None, Some(b)) => Some(Some(b)),
            (l, None) => l,
        };
    }
    let limit = match last {
        None => max_rows,
        // `limit=0`: nothing.
        Some(None) => 0,
        Some(Some(last)) if last < first => 0,
        Some(Some(last)) => (last - first).saturating_add(1).min(max_rows),
    };
    Page {
        offset: first,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn range_headers() {
        assert_eq!(parse(&headers(&[])).unwrap(), None);
        assert_eq!(
            parse(&headers(&[("range", "0-9"), ("range-unit", "items")])).unwrap(),
            Some(RangeHeader {
                first: 0,
                last: Some(9)
            })
        );
        assert_eq!(
            parse(&headers(&[("range", "5-")])).unwrap(),
            Some(RangeHeader {
                first: 5,
                last: None
            })
        );
        for bad in [
            "abc",
            "1-2-3",
            "-5",
            "0-9; DROP TABLE x",
            "1 - x",
            "99999999999999999999-",
        ] {
            let e = parse(&headers(&[("range", bad)])).unwrap_err();
            assert_eq!(e.code, "INVALID_RANGE", "{bad}");
        }
        assert_eq!(
            parse(&headers(&[("range", "5-2")])).unwrap_err().status,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert!(parse(&headers(&[("range", "0-1"), ("range-unit", "bytes")])).is_err());
    }

    #[test]
    fn pages() {
        let r = |first, last| Some(RangeHeader { first, last });
        assert_eq!(
            page(None, None, None, 100),
            Page {
                offset: 0,
                limit: 100
            }
        );
        assert_eq!(page(Some(5000), None, None, 100).limit, 100);
        assert_eq!(
            page(Some(10), Some(20), None, 100),
            Page {
                offset: 20,
                limit: 10
            }
        );
        assert_eq!(
            page(None, None, r(0, Some(9)), 100),
            Page {
                offset: 0,
                limit: 10
            }
        );
        assert_eq!(
            page(None, None, r(5, None), 100),
            Page {
                offset: 5,
                limit: 100
            }
        );
        // Intersection: rows 3..=9 of the header and 5..=14 of limit/offset.
        assert_eq!(
            page(Some(10), Some(5), r(3, Some(9)), 100),
            Page {
                offset: 5,
                limit: 5
            }
        );
        assert_eq!(page(Some(0), None, None, 100).limit, 0);
        assert_eq!(page(Some(2), Some(0), r(5, Some(9)), 100).limit, 0);
    }
}

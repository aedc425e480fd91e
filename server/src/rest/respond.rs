//! Content negotiation and the response headers of the tables API.
//!
//! `Accept`: `application/json` (and `*/*`, `application/*`, none), PostgREST's
//! `application/vnd.pgrst.object+json` (exactly one row, as an object) and `text/csv`;
//! anything else is 406. `Content-Range: first-last/total` on every read (`*` when the
//! total was not asked for, `*/total` for no rows); 206 when a count shows more rows than
//! returned, 416 when the offset is past the total (as PostgREST: offset > total).
use super::build::read::Body;
use crate::error::ApiError;
use axum::body::Body as HttpBody;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    SingleObject,
    Csv,
}

impl Format {
    pub fn body(self) -> Body {
        match self {
            Format::Json => Body::Json,
            Format::SingleObject => Body::Single,
            Format::Csv => Body::Csv,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::SingleObject => "application/vnd.pgrst.object+json; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

fn media_format(media: &str) -> Option<Format> {
    match media {
        "*/*" | "application/*" | "application/json" => Some(Format::Json),
        "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
            Some(Format::SingleObject)
        }
        "text/csv" | "text/*" => Some(Format::Csv),
        _ => None,
    }
}

/// Picks the response format from `Accept` (highest `q` first, then the client's order).
pub fn negotiate(headers: &HeaderMap) -> Result<Format, ApiError> {
    negotiate_among(headers, &[Format::Json, Format::SingleObject, Format::Csv])?
        .ok_or_else(not_acceptable)
}

/// The best of the formats `producible` the client accepts (highest `q` first, then the
/// client's order; a range naming a format not producible falls through to the next one).
/// `Ok(None)`: nothing producible is accepted (the caller words its 406).
pub fn negotiate_among(
    headers: &HeaderMap,
    producible: &[Format],
) -> Result<Option<Format>, ApiError> {
    Ok(match accepted_formats(headers)? {
        None => Some(Format::Json),
        Some(ranges) => ranges.into_iter().find(|f| producible.contains(f)),
    })
}

/// The formats `Accept` names, best first; `None` without an `Accept` header.
fn accepted_formats(headers: &HeaderMap) -> Result<Option<Vec<Format>>, ApiError> {
    let mut ranges: Vec<(u16, usize, String)> = Vec::new();
    let mut given = false;
    for value in headers.get_all(header::ACCEPT) {
        let value = value.to_str().map_err(|_| not_acceptable())?;
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            given = true;
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut q = 1000u16;
            for param in parts {
                // Parameter names are case-insensitive (RFC 9110): `Q=0` is `q=0`.
                let param = param.to_ascii_lowercase();
                if let Some(v) = param.strip_prefix("q=") {
                    q = v
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .map(|q| (q * 1000.0) as u16)
                        .unwrap_or(0);
                }
            }
            if q > 0 {
                let order = ranges.len();
                ranges.push((q, order, media));
            }
        }
    }
    if !given {
        return Ok(None);
    }
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(Some(
        ranges
            .iter()
            .filter_map(|(_, _, media)| media_format(media))
            .collect(),
    ))
}

pub fn not_acceptable() -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_ACCEPTABLE",
        "None of the accepted media types can be produced: use application/json, application/vnd.pgrst.object+json or text/csv",
    )
}

/// 406 for `application/vnd.pgrst.object+json` when the result is not exactly one row.
pub fn not_single_object(rows: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_SINGLE_OBJECT",
        format!("A single object was requested, but the result has {rows} rows"),
    )
    .with_details(serde_json::json!({ "rows": rows }))
}

/// `first-last/total`, `*/total` when nothing was returned.
pub fn content_range(offset: u64, returned: i64, total: Option<i64>) -> String {
    let total = total.map_or_else(|| "*".to_owned(), |t| t.to_string());
    match u64::try_from(returned) {
        Ok(n) if n > 0 => format!("{offset}-{}/{total}", offset + n - 1),
        _ => format!("*/{total}"),
    }
}

/// 200, or 206 when the total shows rows beyond this page; 416 past the end.
pub fn read_status(offset: u64, returned: i64, total: Option<i64>) -> Result<StatusCode, ApiError> {
    let Some(total) = total else {
        return Ok(StatusCode::OK);
    };
    let total = u64::try_from(total).unwrap_or(0);
    // As PostgREST: only an offset *past* the total is unsatisfiable; asking for the page
    // just after the last row (offset == total) is an empty page, so a client that pages
    // until it gets an empty one never sees an error.
    if offset > total {
        return Err(
            super::parse::range::not_satisfiable().with_details(serde_json::json!({
                "content_range": format!("*/{total}")
            })),
        );
    }
    let returned = u64::try_from(returned).unwrap_or(0);
    if offset.saturating_add(returned) < total {
        Ok(StatusCode::PARTIAL_CONTENT)
    } else {
        Ok(StatusCode::OK)
    }
}

/// A response with `body` (none: empty) of `format`, plus `headers`.
pub fn response(
    status: StatusCode,
    format: Format,
    body: Option<String>,
    headers: Vec<(HeaderName, String)>,
) -> Response {
    let mut response = match body {
        Some(text) => {
            let mut r = (status, HttpBody::from(text)).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            r
        }
        None => status.into_response(),
    };
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Result<Format, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        negotiate(&h)
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&HeaderMap::new()).unwrap(), Format::Json);
        assert_eq!(accept("*/*").unwrap(), Format::Json);
        assert_eq!(accept("application/json").unwrap(), Format::Json);
        assert_eq!(
            accept("application/vnd.pgrst.object+json; nulls=stripped").unwrap(),
            Format::SingleObject
        );
        assert_eq!(accept("text/csv").unwrap(), Format::Csv);
        assert_eq!(
            accept("text/html, text/csv;q=0.5, application/json;q=0.9").unwrap(),
            Format::Json
        );
        assert_eq!(
            accept("application/json;q=0, text/csv").unwrap(),
            Format::Csv
        );
        for bad in [
            "text/html",
            "application/xml",
            "application/json;q=0",
            "'; drop",
        ] {
            let e = accept(bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code.as_ref()),
                (406, "NOT_ACCEPTABLE")
            );
        }
    }

    #[test]
    fn ranges_and_statuses() {
        assert_eq!(content_range(0, 10, None), "0-9/*");
        assert_eq!(content_range(0, 10, Some(42)), "0-9/42");
        assert_eq!(content_range(5, 0, Some(0)), "*/0");
        assert_eq!(content_range(0, 0, None), "*/*");
        assert_eq!(read_status(0, 10, None).unwrap(), StatusCode::OK);
        assert_eq!(read_status(0, 10, Some(10)).unwrap(), StatusCode::OK);
        assert_eq!(
            read_status(0, 10, Some(42)).unwrap(),
            StatusCode::PARTIAL_CONTENT
        );
        assert_eq!(read_status(0, 0, Some(0)).unwrap(), StatusCode::OK);
        assert_eq!(
            read_status(50, 0, Some(42)).unwrap_err().status,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(read_status(42, 0, Some(42)).unwrap(), StatusCode::OK);
    }
}

//! The history's filters and paging, shared by `/runs` and `GET /api/runs`: which runs
//! a caller may list (their own; an admin's: everyone's; only of tools they may run),
//! the filters they asked for, checked, and a cursor (never an offset) to the next page,
//! so paging stays fast with a million runs and stable while new runs arrive.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::State;
use super::identity::Authed;
use super::problem::Problem;
use crate::runs::Status;
use crate::store::{RunQuery, RunRecord};

/// Rows on a page unless the caller asks for another number.
pub const PAGE: usize = 50;
/// The most rows one page holds.
pub const MAX_PAGE: usize = 200;

/// The filters as asked for (kept to fill the filter form again and for the links).
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub tool: String,
    pub user: String,
    pub status: String,
    pub since: String,
    pub until: String,
}

impl Filters {
    fn from_query(q: &HashMap<String, String>) -> Filters {
        let get = |k: &str| q.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        Filters {
            tool: get("tool"),
            user: get("user"),
            status: get("status"),
            since: get("since"),
            until: get("until"),
        }
    }

    /// The query string of these filters (without the cursor), `&`-joined.
    pub fn query_string(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("tool", &self.tool),
            ("user", &self.user),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    pub fn any(&self) -> bool {
        !self.query_string().is_empty()
    }
}

/// One page of the history.
pub struct Page {
    pub rows: Vec<RunRecord>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<String>,
    pub filters: Filters,
    /// The viewer sees everyone's runs.
    pub admin: bool,
}

/// The page of the history `query` asks for, as `authed` may see it. Bad filters are a
/// 400 with the reason.
pub async fn page(
    state: &State,
    authed: &Authed,
    query: &HashMap<String, String>,
    cursor_key: &str,
) -> Result<Page, Problem> {
    let manifest = state.manifest();
    let admin = manifest.auth.is_admin(&authed.user);
    let filters = Filters::from_query(query);
    let bad = |why: String| Problem::BadFilter(why);
    if !filters.status.is_empty() && !Status::WORDS.contains(&filters.status.as_str()) {
        return Err(bad(format!(
            "status must be one of {}",
            Status::WORDS.join(", ")
        )));
    }
    let user = if admin {
        Some(filters.user.clone()).filter(|u| !u.is_empty())
    } else {
        Some(authed.user.name.clone())
    };
    let since = parse_time(&filters.since, false).map_err(|e| bad(format!("since: {e}")))?;
    let until = parse_time(&filters.until, true).map_err(|e| bad(format!("until: {e}")))?;
    let before =
        match query.get(cursor_key).map(String::as_str) {
            None | Some("") => None,
            Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                bad(format!("{cursor_key} is not a cursor from a previous page"))
            })?),
        };
    let limit = match query.get("limit") {
        None => PAGE,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| bad(format!("limit must be a number from 1 to {MAX_PAGE}")))?,
    };
    let mut rows = state
        .runs
        .list(RunQuery {
            user,
            tools: None,
            not_tools: super::access::hidden_tools(&manifest, &authed.user),
            tool: Some(filters.tool.clone()).filter(|t| !t.is_empty()),
            status: Some(filters.status.clone()).filter(|s| !s.is_empty()),
            since,
            until,
            before,
            limit: limit + 1,
        })
        .await
        .map_err(|e| Problem::Internal(e.message))?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(Page {
        rows,
        next,
        filters,
        admin,
    })
}

/// A date (`2026-12-04`, the whole UTC day) or an RFC 3339 time. `end`: a date means
/// the end of that day, so `until=2026-12-04` includes the 4th.
fn parse_time(text: &str, end: bool) -> Result<Option<SystemTime>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(Some(t.into()));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format)
        .map_err(|_| format!("{text:?} is not a date such as 2026-12-04"))?;
    let start: SystemTime = date.midnight().assume_utc().into();
    Ok(Some(if end {
        start + Duration::from_secs(86_400)
    } else {
        start
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_cover_whole_days() {
        let since = parse_time("2026-12-04", false).unwrap().unwrap();
        let until = parse_time("2026-12-04", true).unwrap().unwrap();
        assert_eq!(
            until.duration_since(since).unwrap(),
            Duration::from_secs(86_400)
        );
        assert!(parse_time("2026-12-04T10:00:00Z", false).unwrap().is_some());
        assert!(parse_time("yesterday", false).is_err());
        assert_eq!(parse_time("", true), Ok(None));
    }
}

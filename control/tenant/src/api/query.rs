//! List and show query parameters, as the Neutron api-ref describes them: filters on top-level
//! attributes (a repeated key is an OR, different keys an AND), `fields=` (repeatable),
//! `sort_key`/`sort_dir` (repeatable, in pairs), and `limit`/`marker`/`page_reverse`
//! pagination with `<collection>_links` (`rel` next / previous).
//!
//! Contract:
//! - The caller passes the attribute names the caller's view has; a filter or sort key that is
//!   not one of them is a 400 (the `filter-validation` and `sort-key-validation` extensions,
//!   which strato lists), as are a bad `limit`, an unknown `marker` or unequal sort pairs.
//! - Sorting always ends with `id`, so pages are stable; without `sort_key` the order is by
//!   `id`. Without `limit` (or with `limit=0`) everything is returned and no links are added.
//! - Next/previous links repeat every other parameter of the request.

use super::view::{Link, Page};
use crate::error::ApiError;
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// A parsed query string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// `fields=` values (empty: all).
    pub fields: Vec<String>,
    /// Filters: attribute -> accepted values (OR).
    pub filters: Vec<(String, Vec<String>)>,
    /// `sort_key` with ascending flag.
    pub sorts: Vec<(String, bool)>,
    /// Page size (None or 0: all).
    pub limit: Option<usize>,
    /// Id of the item before (or, reversed, after) the page.
    pub marker: Option<String>,
    /// Page backwards from the marker.
    pub page_reverse: bool,
    /// Every pair except marker / page_reverse (for links).
    keep: Vec<(String, String)>,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "True" | "TRUE" | "1" => Ok(true),
        "false" | "False" | "FALSE" | "0" => Ok(false),
        _ => Err(ApiError::BadRequest(format!(
            "Invalid input for {key}. Reason: '{v}' cannot be converted to boolean."
        ))),
    }
}

impl ListQuery {
    /// Parses a raw query string (`None`: no query).
    pub fn parse(raw: Option<&str>) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery::default();
        let mut sort_keys = Vec::new();
        let mut sort_dirs = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
            match k.as_str() {
                "marker" => {
                    q.marker = Some(v);
                    continue;
                }
                "page_reverse" => {
                    q.page_reverse = parse_bool("page_reverse", &v)?;
                    continue;
                }
                "fields" => q
                    .fields
                    .extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_string)),
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        ApiError::BadRequest(format!(
                            "Limit must be an integer 0 or greater and not '{v}'"
                        ))
                    })?;
                    if n < 0 {
                        return Err(ApiError::BadRequest(format!(
                            "Limit must be an integer 0 or greater and not '{v}'"
                        )));
                    }
                    q.limit = if n == 0 {
                        None
                    } else {
                        Some(usize::try_from(n).unwrap_or(usize::MAX))
                    };
                    continue;
                }
                "sort_key" => sort_keys.push(v.clone()),
                "sort_dir" => match v.as_str() {
                    "asc" => sort_dirs.push(true),
                    "desc" => sort_dirs.push(false),
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "Sort direction '{v}' is not supported (asc, desc)"
                        )))
                    }
                },
                _ => match q.filters.iter_mut().find(|(f, _)| *f == k) {
                    Some((_, vals)) => vals.push(v.clone()),
                    None => q.filters.push((k.clone(), vec![v.clone()])),
                },
            }
            q.keep.push((k, v));
        }
        if !sort_dirs.is_empty() && sort_dirs.len() != sort_keys.len() {
            return Err(ApiError::BadRequest(
                "The number of sort_keys and sort_dirs must be same".into(),
            ));
        }
        q.sorts = sort_keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, sort_dirs.get(i).copied().unwrap_or(true)))
            .collect();
        Ok(q)
    }

    /// Keeps only the `fields=` attributes of `item` (all when none were asked for).
    pub fn project(&self, item: Map<String, Value>) -> Map<String, Value> {
        if self.fields.is_empty() {
            return item;
        }
        item.into_iter()
            .filter(|(k, _)| self.fields.iter().any(|f| f == k))
            .collect()
    }

    /// Filters, sorts, pages and projects `items` (each the full view of one resource, as
    /// [`super::view::to_map`] gives it) into a [`Page`], `{"<collection>": [...],
    /// "<collection>_links": [...]}`. `attrs` are the attribute names of the caller's view;
    /// `base` is the URL of the collection (for links).
    pub fn list(
        &self,
        collection: &'static str,
        items: Vec<Map<String, Value>>,
        attrs: &[&str],
        base: &str,
    ) -> Result<Page, ApiError> {
        for (k, _) in &self.filters {
            if !attrs.contains(&k.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "'{k}' is not an attribute of {collection} that can be filtered on"
                )));
            }
        }
        for (k, _) in &self.sorts {
            if !attrs.contains(&k.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "'{k}' is an invalid attribute for sort key"
                )));
            }
        }
        let mut kept = Vec::with_capacity(items.len());
        'items: for it in items {
            for (k, vals) in &self.filters {
                let v = it.get(k).unwrap_or(&Value::Null);
                let mut any = false;
                for want in vals {
                    if value_matches(k, v, want)? {
                        any = true;
                        break;
                    }
                }
                if !any {
                    continue 'items;
                }
            }
            kept.push(it);
        }
        for (k, _) in &self.sorts {
            if kept
                .iter()
                .any(|i| matches!(i.get(k), Some(Value::Array(_)) | Some(Value::Object(_))))
            {
                return Err(ApiError::BadRequest(format!(
                    "'{k}' is an invalid attribute for sort key (not a scalar)"
                )));
            }
        }
        kept.sort_by(|a, b| {
            for (k, asc) in &self.sorts {
                let o = cmp_values(a.get(k), b.get(k));
                if o != Ordering::Equal {
                    return if *asc { o } else { o.reverse() };
                }
            }
            cmp_values(a.get("id"), b.get("id"))
        });
        let id_of =
            |m: &Map<String, Value>| m.get("id").and_then(Value::as_str).map(str::to_string);
        let pos = match &self.marker {
            Some(m) => Some(
                kept.iter()
                    .position(|i| id_of(i).as_deref() == Some(m.as_str()))
                    .ok_or_else(|| ApiError::BadRequest(format!("Invalid marker '{m}'")))?,
            ),
            None => None,
        };
        let n = kept.len();
        let mut links = Vec::new();
        let page: Vec<Map<String, Value>> = match self.limit {
            None => {
                let (lo, hi) = match (pos, self.page_reverse) {
                    (Some(p), false) => (p + 1, n),
                    (Some(p), true) => (0, p),
                    (None, _) => (0, n),
                };
                kept.drain(lo..hi).collect()
            }
            Some(limit) => {
                let (lo, hi) = if self.page_reverse {
                    let hi = pos.unwrap_or(n);
                    (hi.saturating_sub(limit), hi)
                } else {
                    let lo = pos.map_or(0, |p| p + 1);
                    (lo, lo.saturating_add(limit).min(n))
                };
                let page: Vec<_> = kept.drain(lo..hi).collect();
                let first = page.first().and_then(id_of);
                let last = page.last().and_then(id_of);
                let (more_after, more_before) = if self.page_reverse {
                    (self.marker.is_some(), lo > 0)
                } else {
                    (hi < n, self.marker.is_some())
                };
                if more_after {
                    if let Some(l) = &last {
                        links.push(self.link(base, limit, l, false, "next"));
                    }
                }
                if more_before {
                    if let Some(f) = &first {
                        links.push(self.link(base, limit, f, true, "previous"));
                    }
                }
                page
            }
        };
        Ok(Page {
            collection,
            items: page.into_iter().map(|i| self.project(i)).collect(),
            links: self.limit.is_some().then_some(links),
        })
    }

    fn link(
        &self,
        base: &str,
        limit: usize,
        marker: &str,
        reverse: bool,
        rel: &'static str,
    ) -> Link {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.keep {
            if k != "limit" {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("limit", &limit.to_string());
        ser.append_pair("marker", marker);
        if reverse {
            ser.append_pair("page_reverse", "True");
        }
        Link {
            href: format!("{base}?{}", ser.finish()),
            rel,
        }
    }
}

/// Whether a value matches one filter value (strings exactly; booleans Neutron-style; numbers
/// by value; null by "" / "None" / "null"; a list if any element matches; a list of objects by
/// `key=value` on their fields, e.g. `fixed_ips=ip_address=10.0.0.5`).
pub fn value_matches(key: &str, v: &Value, want: &str) -> Result<bool, ApiError> {
    Ok(match v {
        Value::Null => want.is_empty() || want == "None" || want == "null",
        Value::Bool(b) => *b == parse_bool(key, want)?,
        Value::Number(n) => match (n.as_i64(), want.parse::<i64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => n.to_string() == want,
        },
        Value::String(s) => s == want,
        Value::Array(items) => {
            for i in items {
                let hit = match i {
                    Value::Object(o) => match want.split_once('=') {
                        Some((f, w)) => match o.get(f) {
                            Some(x) => value_matches(key, x, w)?,
                            None => false,
                        },
                        None => false,
                    },
                    other => value_matches(key, other, want)?,
                };
                if hit {
                    return Ok(true);
                }
            }
            false
        }
        Value::Object(_) => {
            return Err(ApiError::BadRequest(format!(
                "'{key}' is a dictionary and cannot be filtered on"
            )))
        }
    })
}

fn rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        Some(_) => 4,
    }
}

/// Orders scalar JSON values: null < booleans < numbers < strings.
pub fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items() -> Vec<Map<String, Value>> {
        (0..5)
            .map(|i| {
                json!({"id": format!("id{i}"), "name": format!("n{}", i % 2), "admin_state_up": i % 2 == 0,
                       "num": 10 - i, "tags": ["a"], "fixed_ips": [{"ip_address": format!("10.0.0.{i}")}]})
                .as_object()
                .cloned()
                .unwrap()
            })
            .collect()
    }
    const ATTRS: &[&str] = &["id", "name", "admin_state_up", "num", "tags", "fixed_ips"];

    fn ids(v: &Value, coll: &str) -> Vec<String> {
        v[coll]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn run(q: &str) -> Result<Value, ApiError> {
        let page =
            ListQuery::parse(Some(q))?.list("things", items(), ATTRS, "http://h/v2.0/things")?;
        Ok(serde_json::to_value(page).unwrap())
    }

    #[test]
    fn filters_or_and() {
        assert_eq!(
            ids(&run("name=n0").unwrap(), "things"),
            ["id0", "id2", "id4"]
        );
        assert_eq!(ids(&run("name=n0&num=8").unwrap(), "things"), ["id2"]);
        assert_eq!(ids(&run("num=8&num=9").unwrap(), "things"), ["id1", "id2"]);
        assert_eq!(
            ids(&run("admin_state_up=False").unwrap(), "things"),
            ["id1", "id3"]
        );
        assert_eq!(
            ids(&run("fixed_ips=ip_address%3D10.0.0.3").unwrap(), "things"),
            ["id3"]
        );
        assert_eq!(ids(&run("tags=a").unwrap(), "things").len(), 5);
        assert!(run("admin_state_up=maybe").is_err());
        let e = run("nope=1").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(ListQuery::parse(Some("limit=x")).is_err());
        assert!(ListQuery::parse(Some("limit=-1")).is_err());
        assert!(ListQuery::parse(Some("sort_key=a&sort_key=b&sort_dir=asc")).is_err());
        assert!(ListQuery::parse(Some("sort_key=a&sort_dir=up")).is_err());
        assert!(run("sort_key=nope").is_err());
        assert!(run("sort_key=tags").is_err());
    }

    #[test]
    fn sort_and_fields() {
        let v = run("sort_key=num&sort_dir=asc").unwrap();
        assert_eq!(ids(&v, "things"), ["id4", "id3", "id2", "id1", "id0"]);
        let v = run("sort_key=name&sort_dir=desc&sort_key=num&sort_dir=asc").unwrap();
        assert_eq!(ids(&v, "things"), ["id3", "id1", "id4", "id2", "id0"]);
        let v = run("fields=id&fields=name").unwrap();
        let first = v["things"][0].as_object().unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.contains_key("name"));
        let v = run("fields=id,num").unwrap();
        assert_eq!(v["things"][0].as_object().unwrap().len(), 2);
        assert!(v.get("things_links").is_none());
    }

    #[test]
    fn pagination_links() {
        let v = run("limit=2").unwrap();
        assert_eq!(ids(&v, "things"), ["id0", "id1"]);
        let links = v["things_links"].as_array().unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0]["rel"], "next");
        assert_eq!(links[0]["href"], "http://h/v2.0/things?limit=2&marker=id1");
        let v = run("limit=2&marker=id1&name=n0&name=n1").unwrap();
        assert_eq!(ids(&v, "things"), ["id2", "id3"]);
        let links = v["things_links"].as_array().unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(
            links[0]["href"],
            "http://h/v2.0/things?name=n0&name=n1&limit=2&marker=id3"
        );
        assert_eq!(links[1]["rel"], "previous");
        assert_eq!(
            links[1]["href"],
            "http://h/v2.0/things?name=n0&name=n1&limit=2&marker=id2&page_reverse=True"
        );
        // Last page: no next.
        let v = run("limit=2&marker=id3").unwrap();
        assert_eq!(ids(&v, "things"), ["id4"]);
        let rels: Vec<_> = v["things_links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].clone())
            .collect();
        assert_eq!(rels, [json!("previous")]);
        // Backwards from id2.
        let v = run("limit=2&marker=id2&page_reverse=True").unwrap();
        assert_eq!(ids(&v, "things"), ["id0", "id1"]);
        let rels: Vec<_> = v["things_links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].clone())
            .collect();
        assert_eq!(rels, [json!("next")]);
        // Walking all pages visits every item once.
        let mut seen = Vec::new();
        let mut q = "limit=2".to_string();
        loop {
            let v = run(&q).unwrap();
            seen.extend(ids(&v, "things"));
            let next = v["things_links"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["rel"] == "next")
                .cloned();
            match next {
                Some(l) => {
                    q = l["href"]
                        .as_str()
                        .unwrap()
                        .split_once('?')
                        .unwrap()
                        .1
                        .to_string()
                }
                None => break,
            }
        }
        assert_eq!(seen, ["id0", "id1", "id2", "id3", "id4"]);
        assert_eq!(run("marker=zzz&limit=1").unwrap_err().status(), 400);
        // limit=0: everything, no links.
        let v = run("limit=0").unwrap();
        assert_eq!(ids(&v, "things").len(), 5);
        assert!(v.get("things_links").is_none());
    }
}

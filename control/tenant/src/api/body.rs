//! Request bodies: JSON parsed with serde_json into a map, unwrapped from its envelope
//! (`{"network": {...}}`) and read attribute by attribute, so every problem is a NeutronError
//! naming the attribute (never axum's plain-text rejection).
//!
//! Contract:
//! - Malformed JSON is `MalformedRequestBody`; a missing envelope, a list (bulk), an attribute
//!   of the wrong type or a read-only attribute is `HTTPBadRequest`; attributes the resource
//!   does not have are `Unrecognized attribute(s)`. All 400.
//! - Booleans also accept Neutron's strings ("true", "True", "false", "False", "1", "0").

use crate::error::ApiError;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Largest accepted body.
pub const MAX_BODY: usize = 1 << 20;

/// Unwraps `{"<key>": {...}}`; `plural` (e.g. "networks") names a bulk request, which is refused.
pub fn envelope(bytes: &[u8], key: &str, plural: &str) -> Result<Attrs, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::BadRequest("Resource body required".into()));
    }
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    let Value::Object(mut top) = v else {
        return Err(ApiError::MalformedBody(
            "the body is not a JSON object".into(),
        ));
    };
    if top.contains_key(plural) {
        return Err(ApiError::BadRequest(format!(
            "Bulk operation is not supported ('{plural}'); send one '{key}' per request"
        )));
    }
    let inner = top
        .remove(key)
        .ok_or_else(|| ApiError::BadRequest(format!("Unable to find '{key}' in request body")))?;
    if !top.is_empty() {
        let extra: Vec<&str> = top.keys().map(String::as_str).collect();
        return Err(ApiError::UnknownAttributes(extra.join(", ")));
    }
    let Value::Object(map) = inner else {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for {key}. Reason: the body of '{key}' is not a JSON object."
        )));
    };
    Ok(Attrs { map })
}

fn invalid(key: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("Invalid input for {key}. Reason: {why}."))
}

/// The attributes of one resource in a request; each `take_*` removes what it reads.
#[derive(Debug)]
pub struct Attrs {
    map: Map<String, Value>,
}

impl Attrs {
    /// From a map (Net Objects bodies).
    pub fn from_map(map: Map<String, Value>) -> Attrs {
        Attrs { map }
    }

    /// Whether `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The raw value.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// A string (null is an error).
    pub fn string(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(invalid(key, format!("'{v}' is not a valid string"))),
        }
    }

    /// A string or null (`Some(None)`).
    pub fn nullable_string(&mut self, key: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(v) => Err(invalid(key, format!("'{v}' is not a valid string"))),
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => match s.as_str() {
                "true" | "True" | "1" => Ok(Some(true)),
                "false" | "False" | "0" => Ok(Some(false)),
                _ => Err(invalid(
                    key,
                    format!("'{s}' cannot be converted to boolean"),
                )),
            },
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
            Some(v) => Err(invalid(
                key,
                format!("'{v}' cannot be converted to boolean"),
            )),
        }
    }

    /// A non-negative integer that fits in u32 (also as a decimal string).
    pub fn u32(&mut self, key: &str) -> Result<Option<u32>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| invalid(key, format!("'{n}' is not a valid integer"))),
            Some(Value::String(s)) => s
                .parse::<u32>()
                .map(Some)
                .map_err(|_| invalid(key, format!("'{s}' is not a valid integer"))),
            Some(v) => Err(invalid(key, format!("'{v}' is not a valid integer"))),
        }
    }

    /// An IP address, or null (`Some(None)`).
    pub fn nullable_ip(&mut self, key: &str) -> Result<Option<Option<IpAddr>>, ApiError> {
        match self.nullable_string(key)? {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(s)) => parse_ip(key, &s).map(|ip| Some(Some(ip))),
        }
    }

    /// A list of JSON values (null: absent).
    pub fn list(&mut self, key: &str) -> Result<Option<Vec<Value>>, ApiError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(invalid(key, format!("'{v}' is not a list"))),
        }
    }

    /// `tenant_id` and `project_id` (both accepted; equal when both are given).
    pub fn tenant(&mut self) -> Result<Option<String>, ApiError> {
        let t = self.string("tenant_id")?;
        let p = self.string("project_id")?;
        match (t, p) {
            (Some(a), Some(b)) if a != b => Err(ApiError::BadRequest(
                "'project_id' and 'tenant_id' do not match".into(),
            )),
            (a, b) => Ok(a.or(b)),
        }
    }

    /// Fails on whatever is left: `read_only` names get a read-only message (`create` says
    /// which verb), anything else is unrecognized.
    pub fn finish(self, read_only: &[&str], create: bool) -> Result<(), ApiError> {
        if let Some(k) = self.map.keys().find(|k| read_only.contains(&k.as_str())) {
            return Err(ApiError::BadRequest(if create {
                format!("Attribute '{k}' not allowed in POST")
            } else {
                format!("Cannot update read-only attribute {k}")
            }));
        }
        if !self.map.is_empty() {
            let mut keys: Vec<&str> = self.map.keys().map(String::as_str).collect();
            keys.sort_unstable();
            return Err(ApiError::UnknownAttributes(keys.join(", ")));
        }
        Ok(())
    }
}

/// Parses an address attribute.
pub fn parse_ip(key: &str, s: &str) -> Result<IpAddr, ApiError> {
    s.parse()
        .map_err(|_| invalid(key, format!("'{s}' is not a valid IP address")))
}

/// Reads a string field of a JSON object inside a list attribute.
pub fn obj_str(key: &str, o: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(invalid(
            key,
            format!("'{v}' is not a valid string for {field}"),
        )),
    }
}

/// Checks that a list element is an object with only `fields`.
pub fn obj<'a>(
    key: &str,
    v: &'a Value,
    fields: &[&str],
) -> Result<&'a Map<String, Value>, ApiError> {
    let Value::Object(o) = v else {
        return Err(invalid(key, format!("'{v}' is not a dictionary")));
    };
    if let Some(k) = o.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(invalid(
            key,
            format!("unexpected key '{k}' (expected {})", fields.join(", ")),
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors() {
        let e = |b: &str| envelope(b.as_bytes(), "network", "networks").unwrap_err();
        assert_eq!(e("{").neutron_type(), "MalformedRequestBody");
        assert_eq!(e("[1]").neutron_type(), "MalformedRequestBody");
        assert_eq!(e("").neutron_type(), "HTTPBadRequest");
        assert_eq!(
            e("{}").to_string(),
            "Unable to find 'network' in request body"
        );
        assert!(e("{\"networks\": []}").to_string().contains("Bulk"));
        assert_eq!(e("{\"network\": 5}").neutron_type(), "HTTPBadRequest");
        assert_eq!(
            e("{\"network\": {}, \"x\": 1}").to_string(),
            "Unrecognized attribute(s) 'x'"
        );
    }

    #[test]
    fn attrs() {
        let mut a = envelope(
            br#"{"network": {"name": "n", "admin_state_up": "True", "x": 1, "y": 2, "status": "UP"}}"#,
            "network",
            "networks",
        )
        .unwrap();
        assert_eq!(a.string("name").unwrap().as_deref(), Some("n"));
        assert_eq!(a.boolean("admin_state_up").unwrap(), Some(true));
        let e = a.finish(&["status"], true).unwrap_err();
        assert_eq!(e.to_string(), "Attribute 'status' not allowed in POST");
        let mut a = envelope(br#"{"network": {"x": 1, "y": 2}}"#, "network", "networks").unwrap();
        assert!(a.boolean("missing").unwrap().is_none());
        assert_eq!(
            a.finish(&[], true).unwrap_err().to_string(),
            "Unrecognized attribute(s) 'x, y'"
        );
        let mut a = envelope(
            br#"{"p": {"b": "maybe", "s": 5, "tenant_id": "a", "project_id": "b"}}"#,
            "p",
            "ps",
        )
        .unwrap();
        assert!(a.boolean("b").unwrap_err().to_string().contains("boolean"));
        assert!(a.string("s").is_err());
        assert!(a.tenant().is_err());
    }
}

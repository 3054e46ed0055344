//! A person's contacts in HubSpot, for data subject requests: found with the search API on the
//! property the pipeline wrote a value of theirs to (`EQ`), exported with the properties the
//! matches name, and erased with HubSpot's GDPR delete (`POST …/gdpr-delete` by record id):
//! permanent, unlike archiving (which keeps the contact in the recycle bin for 90 days), and it
//! also keeps that email address from being added again. Only contacts found are deleted, so
//! nothing about a person HubSpot does not hold is sent beyond the lookup itself.

use super::client::HubSpot;
use crate::rows::{RecordsById, json_text};
use crate::{FoundRow, RowMatch};
use hushflow_core::Error;
use serde_json::{Value, json};

/// The most contacts one lookup reads (one person, a handful of records at most).
const MAX_FOUND: usize = 1000;

/// The rows of a HubSpot sink.
pub(super) struct HubSpotRows {
    api: HubSpot,
}

impl HubSpotRows {
    pub(super) fn new(api: HubSpot) -> HubSpotRows {
        HubSpotRows { api }
    }
}

impl RecordsById for HubSpotRows {
    /// The ids and properties of the contacts matching any of `matches`, each once.
    fn lookup(
        &self,
        matches: &[RowMatch],
        wanted: &[String],
    ) -> Result<Vec<(String, FoundRow)>, Error> {
        let mut properties: Vec<&str> = matches.iter().map(|m| m.field.as_str()).collect();
        for w in wanted {
            if !properties.contains(&w.as_str()) {
                properties.push(w);
            }
        }
        let mut found: Vec<(String, FoundRow)> = Vec::new();
        for m in matches {
            let mut after: Option<String> = None;
            loop {
                let mut body = json!({
                    "filterGroups": [{"filters": [
                        {"propertyName": m.field, "operator": "EQ", "value": m.value}
                    ]}],
                    "properties": properties,
                    "limit": 100,
                });
                if let Some(a) = &after {
                    body["after"] = Value::String(a.clone());
                }
                let page = self.api.search(&body)?;
                for contact in &page.results {
                    let Some(id) = contact.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    if found.iter().any(|(seen, _)| seen == id) {
                        continue;
                    }
                    let mut fields = vec![("id".to_string(), Some(id.to_string()))];
                    if let Some(props) = contact.get("properties").and_then(Value::as_object) {
                        fields.extend(props.iter().map(|(k, v)| (k.clone(), json_text(v))));
                    }
                    found.push((id.to_string(), FoundRow { line: None, fields }));
                }
                if found.len() >= MAX_FOUND {
                    return Err(Error::Config(format!(
                        "HubSpot: more than {MAX_FOUND} contacts match one person's value of \
                         `{}`; that is not one person: check the pipeline's key",
                        m.field
                    )));
                }
                match page.next_after() {
                    Some(next) => after = Some(next.to_string()),
                    None => break,
                }
            }
        }
        Ok(found)
    }

    fn delete_id(&self, id: &str) -> Result<(), Error> {
        self.api.gdpr_delete(id)
    }
}

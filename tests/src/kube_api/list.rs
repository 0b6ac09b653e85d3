//! Lists (`<Kind>List` with `metadata.resourceVersion`, `continue`, `remainingItemCount`) and gets of one
//! object. Bodies are assembled from the objects' stored JSON, not re-serialized.

use serde_json::{Value, json};

use super::kinds::KINDS;
use super::options::ListOptions;
use super::routes::ResourcePath;
use super::status::ApiError;
use super::store::Store;

/// The body of a list, or of the one object `resource.name` names.
pub fn respond(
    store: &Store,
    resource: &ResourcePath,
    options: &ListOptions,
) -> Result<String, ApiError> {
    let kind = &KINDS[resource.kind];
    if let Some(name) = &resource.name {
        let namespace = resource.namespace.as_deref().unwrap_or("");
        return store
            .get(resource.kind, namespace, name)
            .map(|stored| stored.json.clone())
            .ok_or_else(|| {
                let resource_name = if kind.group.is_empty() {
                    kind.plural.to_string()
                } else {
                    format!("{}.{}", kind.plural, kind.group)
                };
                ApiError::not_found(format!("{resource_name} {name:?} not found"))
            });
    }
    let page = store.list(
        resource.kind,
        resource.namespace.as_deref(),
        |stored| options.matches(&stored.value),
        options.limit,
        options.continuation.as_ref(),
    )?;
    let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continuation {
        metadata["continue"] = Value::from(token.as_str());
        metadata["remainingItemCount"] = Value::from(page.remaining);
    }
    let items_len: usize = page.items.iter().map(|s| s.json.len() + 1).sum();
    let mut body = String::with_capacity(items_len + 200);
    body.push_str(&format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{metadata},\"items\":[",
        kind.kind,
        kind.api_version()
    ));
    for (i, stored) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&stored.json);
    }
    body.push_str("]}");
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::routes::resource_path;
    use crate::kube_api::wire::{Request, parse_query};

    fn options(query: &str) -> ListOptions {
        ListOptions::from_request(&Request {
            method: "GET".into(),
            path: String::new(),
            target: String::new(),
            query: parse_query(query),
            close: false,
        })
        .unwrap()
    }

    fn store() -> Store {
        let store = Store::new();
        for (name, app) in [("web", "web"), ("db", "db"), ("web-canary", "web")] {
            store
                .apply(json!({"apiVersion": "v1", "kind": "Service",
                              "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}}))
                .unwrap();
        }
        store
    }

    fn list(store: &Store, path: &str, query: &str) -> Value {
        let body = respond(store, &resource_path(path).unwrap(), &options(query)).unwrap();
        serde_json::from_str(&body).unwrap()
    }

    #[test]
    fn a_list_has_its_kind_version_and_items() {
        let store = store();
        let list = list(
            &store,
            "/api/v1/namespaces/shop/services",
            "labelSelector=app%3Dweb",
        );
        assert_eq!(list["kind"], "ServiceList");
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["metadata"]["resourceVersion"], "3");
        let names: Vec<_> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, ["web", "web-canary"]);
        assert_eq!(list["items"][0]["kind"], "Service");
        assert!(list["metadata"].get("continue").is_none());
    }

    #[test]
    fn a_limited_list_says_how_to_continue() {
        let store = store();
        let first = list(&store, "/api/v1/services", "limit=2");
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        assert_eq!(first["metadata"]["remainingItemCount"], 1);
        let token = first["metadata"]["continue"].as_str().unwrap();
        let rest = list(
            &store,
            "/api/v1/services",
            &format!("limit=2&continue={token}"),
        );
        assert_eq!(rest["items"][0]["metadata"]["name"], "web-canary");
        assert!(rest["metadata"].get("continue").is_none());
    }

    #[test]
    fn a_missing_object_is_a_404_naming_it() {
        let store = store();
        let path = resource_path("/api/v1/namespaces/shop/services/cache").unwrap();
        let error = respond(&store, &path, &options("")).unwrap_err();
        assert_eq!(error.code, 404);
        assert_eq!(error.message, "services \"cache\" not found");
        let path = resource_path("/api/v1/namespaces/shop/services/db").unwrap();
        let db: Value =
            serde_json::from_str(&respond(&store, &path, &options("")).unwrap()).unwrap();
        assert_eq!(db["metadata"]["name"], "db");
    }
}

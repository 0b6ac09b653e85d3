//! The model's [`model::HashPolicy`] as Envoy's `RouteAction.HashPolicy`, field for field as
//! istiod's `ConsistentHashToHashPolicy` writes it.

use envoy_types::pb::envoy::config::route::v3::route_action::HashPolicy;
use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::{
    ConnectionProperties, Cookie, CookieAttribute, Header, PolicySpecifier, QueryParameter,
};

use super::common::duration;
use crate::model;

/// The Envoy hash policy for `policy`.
#[must_use]
pub fn route_hash_policy(policy: &model::HashPolicy) -> HashPolicy {
    let specifier = match policy {
        model::HashPolicy::Header { name } => PolicySpecifier::Header(Header {
            header_name: name.clone(),
            ..Header::default()
        }),
        model::HashPolicy::Cookie {
            name,
            path,
            ttl,
            attributes,
        } => PolicySpecifier::Cookie(Cookie {
            name: name.clone(),
            ttl: ttl.map(duration),
            path: path.clone().unwrap_or_default(),
            attributes: attributes
                .iter()
                .map(|a| CookieAttribute {
                    name: a.name.clone(),
                    value: a.value.clone().unwrap_or_default(),
                })
                .collect(),
        }),
        model::HashPolicy::SourceIp => {
            PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true })
        }
        model::HashPolicy::QueryParameter { name } => {
            PolicySpecifier::QueryParameter(QueryParameter { name: name.clone() })
        }
    };
    HashPolicy {
        policy_specifier: Some(specifier),
        terminal: false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn cookie_carries_name_path_ttl_and_attributes() {
        let policy = route_hash_policy(&model::HashPolicy::Cookie {
            name: "sticky".into(),
            path: Some("/".into()),
            ttl: Some(Duration::from_secs(3600)),
            attributes: vec![model::CookieAttribute {
                name: "SameSite".into(),
                value: Some("Strict".into()),
            }],
        });
        let Some(PolicySpecifier::Cookie(cookie)) = policy.policy_specifier else {
            panic!("cookie policy")
        };
        assert_eq!(cookie.name, "sticky");
        assert_eq!(cookie.path, "/");
        assert_eq!(cookie.ttl.map(|t| t.seconds), Some(3600));
        assert_eq!(cookie.attributes[0].name, "SameSite");
        assert_eq!(cookie.attributes[0].value, "Strict");
    }

    #[test]
    fn cookie_without_ttl_never_generates() {
        let policy = route_hash_policy(&model::HashPolicy::Cookie {
            name: "s".into(),
            path: None,
            ttl: None,
            attributes: vec![],
        });
        let Some(PolicySpecifier::Cookie(cookie)) = policy.policy_specifier else {
            panic!("cookie policy")
        };
        assert!(cookie.ttl.is_none());
        assert_eq!(cookie.path, "");
    }

    #[test]
    fn source_ip_header_and_query() {
        assert_eq!(
            route_hash_policy(&model::HashPolicy::SourceIp).policy_specifier,
            Some(PolicySpecifier::ConnectionProperties(
                ConnectionProperties { source_ip: true }
            ))
        );
        assert_eq!(
            route_hash_policy(&model::HashPolicy::QueryParameter {
                name: "user".into()
            })
            .policy_specifier,
            Some(PolicySpecifier::QueryParameter(QueryParameter {
                name: "user".into()
            }))
        );
        let Some(PolicySpecifier::Header(header)) = route_hash_policy(&model::HashPolicy::Header {
            name: "x-user".into(),
        })
        .policy_specifier
        else {
            panic!("header policy")
        };
        assert_eq!(header.header_name, "x-user");
    }
}

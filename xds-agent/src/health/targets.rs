//! Which endpoints the agent checks (services with `healthCheck.by: agent`), and the verdicts
//! applied to a configuration before it is published: a failed endpoint becomes
//! [`EndpointHealth::Unhealthy`], so the ring is sized from the healthy ones
//! ([`crate::lb_defaults`]) and only the failed host's keys move. Pure functions.

use std::collections::{BTreeMap, BTreeSet};

use super::board::Target;
use crate::model::{AgentConfig, EndpointHealth, HealthCheck, HealthCheckBy};

/// Every endpoint the agent checks, with its service's check.
#[must_use]
pub fn targets(config: &AgentConfig) -> BTreeMap<Target, HealthCheck> {
    config
        .services
        .iter()
        .filter_map(|service| {
            let check = service.health_check.as_ref()?;
            (check.by == HealthCheckBy::Agent).then_some((service, check))
        })
        .flat_map(|(service, check)| {
            service.endpoints.iter().map(move |endpoint| {
                let target = Target {
                    service: service.name.clone(),
                    address: endpoint.address.to_string(),
                };
                (target, check.clone())
            })
        })
        .collect()
}

/// Mark the serving endpoints in `unhealthy` as [`EndpointHealth::Unhealthy`] (draining ones stay
/// draining); returns how many were marked.
pub fn apply(config: &mut AgentConfig, unhealthy: &BTreeSet<Target>) -> usize {
    let mut marked = 0;
    for service in &mut config.services {
        let by_agent = service
            .health_check
            .as_ref()
            .is_some_and(|c| c.by == HealthCheckBy::Agent);
        if !by_agent {
            continue;
        }
        for endpoint in &mut service.endpoints {
            let target = Target {
                service: service.name.clone(),
                address: endpoint.address.to_string(),
            };
            if endpoint.health == EndpointHealth::Serving && unhealthy.contains(&target) {
                endpoint.health = EndpointHealth::Unhealthy;
                marked += 1;
            }
        }
    }
    marked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, load_sources};
    use crate::lb_defaults::{EffectiveLoadBalancer, effective_load_balancer};

    fn config(by: &str) -> AgentConfig {
        let text = format!(
            "services:\n- name: web\n  endpoints: [{{address: '10.0.0.1:80'}}, {{address: '10.0.0.2:80'}}, {{address: '10.0.0.3:80'}}]\n  healthCheck: {{path: /healthz, interval: 1s{by}}}\n- name: other\n  endpoints: [{{address: '10.0.0.1:80'}}]\n"
        );
        load_sources(&[Source {
            file: "c.yaml".into(),
            text,
        }])
        .unwrap()
    }

    fn target(service: &str, address: &str) -> Target {
        Target {
            service: service.into(),
            address: address.into(),
        }
    }

    #[test]
    fn agent_checks_cover_every_endpoint_of_their_services_only() {
        let listed: Vec<Target> = targets(&config("")).into_keys().collect();
        assert_eq!(
            listed,
            [
                target("web", "10.0.0.1:80"),
                target("web", "10.0.0.2:80"),
                target("web", "10.0.0.3:80")
            ]
        );
        assert!(targets(&config(", by: envoy")).is_empty());
    }

    #[test]
    fn a_marked_endpoint_is_unhealthy_and_the_ring_is_sized_from_the_rest() {
        let mut config = config("");
        let before = effective_load_balancer(&config.services[0]);
        let marked = apply(
            &mut config,
            &BTreeSet::from([target("web", "10.0.0.2:80"), target("other", "10.0.0.1:80")]),
        );
        assert_eq!(marked, 1, "only the agent-checked service is marked");
        let web = &config.services[0];
        assert_eq!(web.endpoints[1].health, EndpointHealth::Unhealthy);
        assert_eq!(web.endpoints[0].health, EndpointHealth::Serving);
        assert_eq!(
            config.services[1].endpoints[0].health,
            EndpointHealth::Serving
        );
        let size = |lb| match lb {
            EffectiveLoadBalancer::RingHash {
                minimum_ring_size, ..
            } => minimum_ring_size,
            EffectiveLoadBalancer::Maglev { table_size, .. } => table_size,
        };
        assert_eq!(size(before), 3 * 2048);
        assert_eq!(size(effective_load_balancer(web)), 2 * 2048);
    }
}

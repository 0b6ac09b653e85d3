//! The kubeconfig that points kubectl and kube-rs at the fake: one cluster (plain HTTP), one user without
//! credentials, one context, set as current.

/// The kubeconfig YAML for a server at `url`.
pub fn text(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
users:
- name: fake
  user: {{}}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
current-context: fake
preferences: {{}}
"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_current_context_names_the_server() {
        let text = super::text("http://127.0.0.1:8080");
        assert!(text.contains("    server: http://127.0.0.1:8080\n"));
        assert!(text.contains("current-context: fake\n"));
        assert!(text.contains("  user: {}\n"));
    }
}

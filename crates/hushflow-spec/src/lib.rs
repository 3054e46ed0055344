//! What the user wrote: pipeline files (one sync, or a DAG of `[[task]]`s), their schedules,
//! and validation into a [`Plan`] before any data moves. `hushflow validate` is this crate.
//!
//! Reads the pipeline files and, to check the policy's fields, a CSV source's header; does no
//! other I/O and moves no record. Every path a pipeline names is checked against the
//! [`Protected`] directories (the state directory, which the caller names) before that. Must not depend on the engine, the state directory or the
//! scheduler: the scheduler depends on this crate for the `Dag` alone.

pub mod dag;
pub mod duration;
pub mod paths;
pub mod pipeline;
pub mod plan;
pub mod schedule;
pub mod schema;
mod secret_scan;

pub use paths::Protected;
pub use pipeline::{OnError, SpecError};
pub use plan::Plan;

/// Secret providers for tests: the built-ins and a stand-in `vault:` that resolves nothing.
#[cfg(test)]
pub(crate) fn with_vault() -> hushflow_secrets::SecretProviders<'static> {
    use hushflow_secrets::{SecretError, SecretProvider, SecretValue};
    struct Vault;
    impl SecretProvider for Vault {
        fn scheme(&self) -> &'static str {
            "vault"
        }
        fn usage(&self) -> &'static str {
            "vault:PATH"
        }
        fn example(&self) -> &'static str {
            "vault:kv/crm"
        }
        fn resolve(&self, _: &str) -> Result<SecretValue, SecretError> {
            unreachable!("validation resolves nothing")
        }
    }
    let mut providers = hushflow_secrets::SecretProviders::default();
    providers.register(Vault);
    providers
}

//! The one list of connectors. A pipeline's `[source]` and `[sink]` tables are read into
//! [`SourceSpec`] and [`SinkSpec`] by their `type`; everything else reaches a connector through
//! its [`SourceConfig`] or [`SinkConfig`] and never names one.
//!
//! Adding a connector: a folder beside `csv/` with its config, source and/or sink, its `mod`
//! line and its lines in `registry!` below (behind its Cargo feature when it brings
//! dependencies). Nothing else names a connector.

use crate::{SinkConfig, SourceConfig};
use serde::Deserialize;

// The connectors, each a folder under `src/` (`#[path]` keeps them there rather than under
// `src/registry/`); the crate root re-exports them as `hushflow_connectors::csv` and so on.
#[cfg(feature = "csv")]
#[path = "csv/mod.rs"]
pub mod csv;
#[cfg(feature = "hubspot")]
#[path = "hubspot/mod.rs"]
pub mod hubspot;
#[cfg(feature = "jsonl")]
#[path = "jsonl/mod.rs"]
pub mod jsonl;
#[cfg(feature = "postgres")]
#[path = "postgres/mod.rs"]
pub mod postgres;
#[cfg(feature = "salesforce")]
#[path = "salesforce/mod.rs"]
pub mod salesforce;
#[cfg(feature = "sqlite")]
#[path = "sqlite/mod.rs"]
pub mod sqlite;

/// Declares the `type` words and their config types, and the enums serde reads them into.
macro_rules! registry {
    (
        sources { $( $(#[$sattr:meta])* $sname:literal => $svariant:ident($stype:ty), )* }
        sinks { $( $(#[$kattr:meta])* $kname:literal => $kvariant:ident($ktype:ty), )* }
    ) => {
        /// A `[source]` table, by its `type`.
        #[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
        #[serde(tag = "type")]
        pub enum SourceSpec {
            $(
                #[doc = concat!("A `[source]` table with `type = \"", $sname, "\"`.")]
                $(#[$sattr])* #[serde(rename = $sname)] $svariant($stype),
            )*
        }

        /// A `[sink]` table, by its `type`.
        #[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
        #[serde(tag = "type")]
        pub enum SinkSpec {
            $(
                #[doc = concat!("A `[sink]` table with `type = \"", $kname, "\"`.")]
                $(#[$kattr])* #[serde(rename = $kname)] $kvariant($ktype),
            )*
        }

        impl std::ops::Deref for SourceSpec {
            type Target = dyn SourceConfig;
            fn deref(&self) -> &Self::Target {
                match self { $( $(#[$sattr])* SourceSpec::$svariant(c) => c, )* }
            }
        }

        impl std::ops::DerefMut for SourceSpec {
            fn deref_mut(&mut self) -> &mut Self::Target {
                match self { $( $(#[$sattr])* SourceSpec::$svariant(c) => c, )* }
            }
        }

        impl std::ops::Deref for SinkSpec {
            type Target = dyn SinkConfig;
            fn deref(&self) -> &Self::Target {
                match self { $( $(#[$kattr])* SinkSpec::$kvariant(c) => c, )* }
            }
        }

        impl std::ops::DerefMut for SinkSpec {
            fn deref_mut(&mut self) -> &mut Self::Target {
                match self { $( $(#[$kattr])* SinkSpec::$kvariant(c) => c, )* }
            }
        }

        /// The source `type` words this build knows, for messages.
        pub const SOURCE_TYPES: &[&str] = &[ $( $(#[$sattr])* $sname, )* ];
        /// The sink `type` words this build knows, for messages.
        pub const SINK_TYPES: &[&str] = &[ $( $(#[$kattr])* $kname, )* ];
    };
}

registry! {
    sources {
        #[cfg(feature = "csv")] "csv" => Csv(csv::CsvSourceConfig),
        #[cfg(feature = "jsonl")] "jsonl" => Jsonl(jsonl::JsonlSourceConfig),
        #[cfg(feature = "sqlite")] "sqlite" => Sqlite(sqlite::SqliteSourceConfig),
        #[cfg(feature = "postgres")] "postgres" => Postgres(postgres::PostgresSourceConfig),
        #[cfg(feature = "hubspot")] "hubspot" => HubSpot(hubspot::HubSpotSourceConfig),
        #[cfg(feature = "salesforce")] "salesforce" => Salesforce(salesforce::SalesforceSourceConfig),
    }
    sinks {
        #[cfg(feature = "csv")] "csv" => Csv(csv::CsvSinkConfig),
        #[cfg(feature = "jsonl")] "jsonl" => Jsonl(jsonl::JsonlSinkConfig),
        #[cfg(feature = "sqlite")] "sqlite" => Sqlite(sqlite::SqliteSinkConfig),
        #[cfg(feature = "postgres")] "postgres" => Postgres(postgres::PostgresSinkConfig),
        #[cfg(feature = "hubspot")] "hubspot" => HubSpot(hubspot::HubSpotSinkConfig),
        #[cfg(feature = "salesforce")] "salesforce" => Salesforce(salesforce::SalesforceSinkConfig),
    }
}

//! The one list of connectors. A pipeline's `[source]` and `[sink]` tables are read into
//! [`SourceSpec`] and [`SinkSpec`] by their `type`; everything else reaches a connector through
//! its [`SourceConfig`] or [`SinkConfig`] and never names one.
//!
//! Adding a connector: a folder beside `csv/` with its config, source and/or sink, and one line
//! below (behind its Cargo feature when it brings dependencies).

use crate::{SinkConfig, SourceConfig};
use serde::Deserialize;

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
        #[cfg(feature = "csv")] "csv" => Csv(crate::csv::CsvSourceConfig),
        #[cfg(feature = "jsonl")] "jsonl" => Jsonl(crate::jsonl::JsonlSourceConfig),
        #[cfg(feature = "sqlite")] "sqlite" => Sqlite(crate::sqlite::SqliteSourceConfig),
        #[cfg(feature = "postgres")] "postgres" => Postgres(crate::postgres::PostgresSourceConfig),
    }
    sinks {
        #[cfg(feature = "csv")] "csv" => Csv(crate::csv::CsvSinkConfig),
        #[cfg(feature = "jsonl")] "jsonl" => Jsonl(crate::jsonl::JsonlSinkConfig),
        #[cfg(feature = "sqlite")] "sqlite" => Sqlite(crate::sqlite::SqliteSinkConfig),
        #[cfg(feature = "postgres")] "postgres" => Postgres(crate::postgres::PostgresSinkConfig),
    }
}

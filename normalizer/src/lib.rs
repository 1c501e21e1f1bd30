//! hsm-audit's normalizer: PKCS#11 call events in, `CloudHsmServiceOperationAuditLogs`
//! rows out.
//!
//! Data flows one way: [`event::Event`] (sent by the shim) → [`writer`] thread →
//! [`transform::Normalizer`] (catalog lookup, naming) → [`row::Row`] → [`chain`] (hash
//! chain, checkpoints, optionally [`signing`]) → [`sink`]s. [`verify`] checks the result.

#![deny(missing_docs)]

pub mod catalog;
pub mod chain;
pub mod clock;
pub mod config;
pub mod context;
pub mod event;
pub mod function;
pub mod health;
pub mod lanes;
pub mod names;
pub mod resource_id;
pub mod row;
pub mod schema;
pub mod signing;
pub mod sink;
pub mod summary;
pub mod transform;
pub mod upload;
pub mod verify;
pub mod wait;
pub mod writer;

pub use config::Config;
pub use event::{Event, Origin};
pub use function::FunctionId;
pub use row::Row;
pub use writer::{Msg, Writer};

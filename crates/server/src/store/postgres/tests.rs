//! Tests of the PostgreSQL store, each on a fresh database: the shared
//! suite (`store::suite`), then what only several nodes on one database
//! show: numbering and deduplication under concurrent appends from several
//! stores, nodes with other settings refused, and outages.

use std::sync::Arc;

use chatus_protocol::history::Page;
use chatus_protocol::{Seq, Timestamp};

use super::PgStore;
use super::scratch::ScratchDb;
use crate::store::suite::{Kind, lobby, msg, new_user};
use crate::store::{Appended, Store, StoreError};

crate::store::suite::store_suite!(Kind::Postgres);

async fn scratch() -> Option<ScratchDb> {
    ScratchDb::create().await.unwrap()
}

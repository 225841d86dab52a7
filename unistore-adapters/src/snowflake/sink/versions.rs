//! Versioned templates on Snowflake standard tables.
//!
//! Standard tables enforce no primary key, and an `INSERT` takes no lock, so neither can keep
//! two savers from giving two contents one version. What Snowflake does serialize is `UPDATE`
//! on a table (a statement that waits for another's lock then sees its committed rows), so a
//! version is claimed by a single-row compare-and-set on the id's current row in
//! `TEST_TEMPLATES` (`UPDATE ... SET VERSION = v + 1 ... WHERE VERSION = v`, checked by its
//! affected-row count), and only the claimer writes version `v + 1` into
//! `TEST_TEMPLATE_VERSIONS`. The one step without a row to compare is an id's first version: the
//! first current row is inserted if absent, then read back, and a saver that finds another
//! content beside its own removes its row and tries again. Of two such savers at least one sees
//! the other (each reads after its own insert), so at most one keeps version 1.
//!
//! Until version 1 is in the history, later savers wait rather than move it on (see
//! `settled`).
//!
//! Limits (documented in `sql/schema/snowflake/results.sql`): a saver killed between inserting a
//! first version and checking it can leave a second first version beside the real one until the
//! id is deleted; two first savers of identical content may both keep theirs, which leaves a
//! duplicate row with that same content (readers show it once).

use std::time::Duration;

use unistore_core::sink::same_template_json;
use unistore_core::{Error, ErrorKind, Result, StoredTemplate, Value};

use super::{ts, SnowflakeResultsStore};
use crate::snowflake::{to_json, Row};

/// Attempts before a save gives up with `ErrorKind::Conflict`.
const SAVE_ATTEMPTS: u32 = 40;

async fn backoff(attempt: u32) {
    // Jitter from the clock, so that savers that collided do not collide again in step.
    let jitter = u64::from(chrono::Utc::now().timestamp_subsec_micros() % 17);
    tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(10)) * 5 + jitter)).await;
}

/// A lost race (a lock conflict, or a key the emulator enforces) means: look again.
fn lost_race(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Conflict | ErrorKind::Constraint)
}

/// The version the caller claimed, or `None` when another saver got there first.
type Claim = Option<u32>;

struct Content {
    id: Value,
    name: Value,
    json: String,
    at: Value,
}

impl SnowflakeResultsStore {
    /// [`unistore_core::ResultsSink::save_template_version`] on standard tables: see the module
    /// documentation.
    pub(super) async fn save_version(&self, template: &StoredTemplate) -> Result<u32> {
        let content = Content {
            id: Value::text(&template.template_id),
            name: Value::text(&template.template.name),
            json: to_json(&template.template, "the template")?,
            at: ts(template.updated_at),
        };
        let current = self.table("TEST_TEMPLATES");
        for attempt in 0..SAVE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let rows = self
                .pool
                .rows(
                    &format!(
                        "SELECT VERSION, TEMPLATE_JSON FROM {current} WHERE TEMPLATE_ID = ? ORDER BY VERSION DESC"
                    ),
                    std::slice::from_ref(&content.id),
                )
                .await?;
            let claim = match rows.first() {
                None => self.claim_first(&content).await?,
                Some(row) => {
                    let row = Row(row);
                    let version = u32::try_from(row.u64(0)?).unwrap_or(u32::MAX);
                    if !self.settled(&content.id, version, attempt).await? {
                        continue;
                    }
                    if same_template_json(&row.text(1)?, &content.json) {
                        self.restore_version_row(&content.id, version).await?;
                        return Ok(version);
                    }
                    self.claim_next(&content, version).await?
                }
            };
            if let Some(version) = claim {
                self.insert_version_row(&content, version).await?;
                return Ok(version);
            }
        }
        Err(Error::backend(
            ErrorKind::Conflict,
            format!(
                "template {}: {SAVE_ATTEMPTS} attempts lost to concurrent saves of other contents; try again",
                template.template_id
            ),
        ))
    }

    /// Version 1 of a new id: inserted if absent, then checked for a concurrent first version.
    async fn claim_first(&self, c: &Content) -> Result<Claim> {
        let current = self.table("TEST_TEMPLATES");
        let inserted = self
            .pool
            .execute(
                &format!(
                    "INSERT INTO {current} (TEMPLATE_ID, NAME, TEMPLATE_JSON, UPDATED_AT, VERSION) \
                     SELECT ?, ?, ?, ?, 1 WHERE NOT EXISTS (SELECT 1 FROM {current} WHERE TEMPLATE_ID = ?)"
                ),
                &[c.id.clone(), c.name.clone(), Value::text(&c.json), c.at.clone(), c.id.clone()],
            )
            .await;
        match inserted {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if lost_race(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
        let rows = self
            .pool
            .rows(
                &format!("SELECT TEMPLATE_JSON FROM {current} WHERE TEMPLATE_ID = ? AND VERSION = 1"),
                std::slice::from_ref(&c.id),
            )
            .await?;
        let contents = rows.iter().map(|r| Row(r).text(0)).collect::<Result<Vec<_>>>()?;
        // Kept only if this content is there (a later saver may already have moved the row on)
        // and no other is.
        if !contents.is_empty() && contents.iter().all(|j| same_template_json(j, &c.json)) {
            return Ok(Some(1));
        }
        self.pool
            .execute(
                &format!("DELETE FROM {current} WHERE TEMPLATE_ID = ? AND VERSION = 1 AND TEMPLATE_JSON = ?"),
                &[c.id.clone(), Value::text(&c.json)],
            )
            .await?;
        Ok(None)
    }

    /// Whether a saver may build on the current row's `version`. Version 1 is tentative until its
    /// saver has checked it and written it into the history: a first version that its saver is
    /// about to withdraw (it found a rival first version) must not be moved on, or that version
    /// would be lost, and with it the history's version 1. So until the history holds version 1,
    /// later savers wait. Past half the attempts the row is taken as left by a saver that
    /// stopped before writing it, and is copied into the history (at worst, a first version whose
    /// saver then withdraws it stays as a version of its content, and that saver saves again).
    async fn settled(&self, id: &Value, version: u32, attempt: u32) -> Result<bool> {
        if version != 1 {
            return Ok(true);
        }
        let rows = self
            .pool
            .rows(
                &format!(
                    "SELECT 1 FROM {} WHERE TEMPLATE_ID = ? AND VERSION = 1 LIMIT 1",
                    self.table("TEST_TEMPLATE_VERSIONS")
                ),
                std::slice::from_ref(id),
            )
            .await?;
        if !rows.is_empty() {
            return Ok(true);
        }
        if attempt < SAVE_ATTEMPTS / 2 {
            return Ok(false);
        }
        self.restore_version_row(id, 1).await?;
        Ok(true)
    }

    /// Version `latest + 1`: a compare-and-set on the current row.
    async fn claim_next(&self, c: &Content, latest: u32) -> Result<Claim> {
        let next = latest.saturating_add(1);
        let updated = self
            .pool
            .execute(
                &format!(
                    "UPDATE {} SET VERSION = ?, NAME = ?, TEMPLATE_JSON = ?, UPDATED_AT = ? \
                     WHERE TEMPLATE_ID = ? AND VERSION = ?",
                    self.table("TEST_TEMPLATES")
                ),
                &[
                    Value::Int(i64::from(next)),
                    c.name.clone(),
                    Value::text(&c.json),
                    c.at.clone(),
                    c.id.clone(),
                    Value::Int(i64::from(latest)),
                ],
            )
            .await;
        match updated {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(next)),
            Err(e) if lost_race(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the claimed version into the history (once: a replayed or repaired row is there).
    async fn insert_version_row(&self, c: &Content, version: u32) -> Result<()> {
        let versions = self.table("TEST_TEMPLATE_VERSIONS");
        let v = Value::Int(i64::from(version));
        let inserted = self
            .pool
            .execute(
                &format!(
                    "INSERT INTO {versions} (TEMPLATE_ID, VERSION, NAME, TEMPLATE_JSON, CREATED_AT) \
                     SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS \
                     (SELECT 1 FROM {versions} WHERE TEMPLATE_ID = ? AND VERSION = ?)"
                ),
                &[
                    c.id.clone(),
                    v.clone(),
                    c.name.clone(),
                    Value::text(&c.json),
                    c.at.clone(),
                    c.id.clone(),
                    v,
                ],
            )
            .await;
        match inserted {
            Err(e) if !lost_race(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Copies the current row into the history if its version is missing there (a saver that
    /// stopped between claiming a version and writing it).
    async fn restore_version_row(&self, id: &Value, version: u32) -> Result<()> {
        let versions = self.table("TEST_TEMPLATE_VERSIONS");
        let v = Value::Int(i64::from(version));
        let copied = self
            .pool
            .execute(
                &format!(
                    "INSERT INTO {versions} (TEMPLATE_ID, VERSION, NAME, TEMPLATE_JSON, CREATED_AT) \
                     SELECT c.TEMPLATE_ID, c.VERSION, c.NAME, c.TEMPLATE_JSON, c.UPDATED_AT FROM {} c \
                     WHERE c.TEMPLATE_ID = ? AND c.VERSION = ? AND NOT EXISTS \
                     (SELECT 1 FROM {versions} h WHERE h.TEMPLATE_ID = ? AND h.VERSION = ?) LIMIT 1",
                    self.table("TEST_TEMPLATES")
                ),
                &[id.clone(), v.clone(), id.clone(), v],
            )
            .await;
        match copied {
            Err(e) if !lost_race(&e) => Err(e),
            _ => Ok(()),
        }
    }
}

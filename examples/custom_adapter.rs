//! The adapter seam: implement `TargetPool` (and a `TableManager`) for your own backend and run
//! the engine on it. Here the "database" is an in-process key-value map.
//!
//! `cargo run --release --example custom_adapter`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use unistore::core::runner::PreparedRun;
use unistore::core::table::{ColumnInfo, RenderRequest};
use unistore::core::target::{ParamRole, ParamSpec, TargetCapabilities};
use unistore::core::template::parse_mix;
use unistore::{
    ColumnType, Error, ErrorKind, QueryKind, Result, RunId, StatementSpec, TableManager, TableProfile,
    TableRef, TableType, TargetPool, TargetSession, Template, Value, WorkerIdentity,
};

/// The toy backend: a map from key to value, shared by all sessions.
#[derive(Debug, Clone)]
struct MapTarget {
    data: Arc<std::sync::RwLock<HashMap<i64, String>>>,
}

#[async_trait]
impl TargetPool for MapTarget {
    fn kind(&self) -> &'static str {
        "map"
    }
    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities { cancel: false, server_side_prepare: false }
    }
    async fn connect(&self) -> Result<Box<dyn TargetSession>> {
        Ok(Box::new(MapSession { target: self.clone(), kinds: Vec::new() }))
    }
}

struct MapSession {
    target: MapTarget,
    kinds: Vec<QueryKind>,
}

#[async_trait]
impl TargetSession for MapSession {
    async fn prepare(&mut self, statements: &[StatementSpec]) -> Result<()> {
        // A real adapter prepares SQL on the server here; we remember what each index does.
        self.kinds = statements.iter().map(|s| s.kind).collect();
        Ok(())
    }

    async fn execute(&mut self, statement: usize, params: &[Value]) -> Result<u64> {
        let kind = self.kinds.get(statement).ok_or_else(|| Error::invalid("unknown statement"))?;
        // Point lookups bind (key); updates bind (value, key): the key is always last.
        let key = params.last().and_then(Value::as_i64).ok_or_else(|| Error::invalid("missing key"))?;
        match kind {
            QueryKind::PointLookup => {
                Ok(u64::from(self.target.data.read().map_err(poisoned)?.contains_key(&key)))
            }
            QueryKind::Update => {
                let mut map = self.target.data.write().map_err(poisoned)?;
                Ok(map.get_mut(&key).map(|v| v.push('!')).is_some() as u64)
            }
            other => Err(Error::Unsupported(format!("{other} on the map target"))),
        }
    }
}

/// Table manager of the toy backend: one "table" of integer keys.
struct MapTables {
    target: MapTarget,
}

#[async_trait]
impl TableManager for MapTables {
    fn table_type(&self) -> TableType {
        TableType::Sqlite
    }
    fn supported_kinds(&self) -> &'static [QueryKind] {
        &[QueryKind::PointLookup, QueryKind::Update]
    }
    async fn profile(&self, table: &TableRef) -> Result<TableProfile> {
        let len = self.target.data.read().map_err(poisoned)?.len() as i64;
        let column = |name: &str, column_type| ColumnInfo {
            name: name.into(),
            column_type,
            native_type: "map".into(),
            nullable: false,
            has_default: false,
            max_length: None,
            generated: None,
            indexed: None,
        };
        Ok(TableProfile {
            table: table.clone(),
            table_type: TableType::Sqlite,
            columns: vec![column("key", ColumnType::Integer), column("value", ColumnType::Text)],
            primary_key: vec!["key".into()],
            row_estimate: len as u64,
            key_range: Some((0, len - 1)),
            time_column: None,
            indexes: vec![],
            triggers: Vec::new(),
            foreign_keys: Vec::new(),
        })
    }
    async fn sample_values(
        &self,
        _profile: &TableProfile,
        _column: &str,
        limit: usize,
    ) -> Result<Vec<Value>> {
        let map = self.target.data.read().map_err(poisoned)?;
        Ok(map.keys().take(limit).map(|k| Value::Int(*k)).collect())
    }
    fn render(&self, _profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec> {
        let key = ParamSpec { column: "key".into(), column_type: ColumnType::Integer, role: ParamRole::Key };
        let params = match request.kind {
            QueryKind::Update => {
                vec![
                    ParamSpec {
                        column: "value".into(),
                        column_type: ColumnType::Text,
                        role: ParamRole::ColumnValue,
                    },
                    key,
                ]
            }
            _ => vec![key],
        };
        Ok(StatementSpec {
            kind: request.kind,
            sql: format!("map {}", request.kind),
            params,
            returning: None,
        })
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::backend(ErrorKind::Other, "map lock poisoned")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let target = MapTarget {
        data: Arc::new(std::sync::RwLock::new((0..10_000).map(|k| (k, format!("v{k}"))).collect())),
    };
    let tables = MapTables { target: target.clone() };
    let mut template = Template::new("kv", parse_mix("point_lookup=100")?);
    template.name = "custom-adapter".into();
    template.phases.warmup = Duration::from_millis(500);
    template.phases.measurement = Duration::from_secs(2);
    let run_id = RunId::new();
    let prepared =
        PreparedRun::prepare(template, run_id, WorkerIdentity::solo(), Arc::new(target), &tables).await?;
    let finished = prepared.connect().await?.start(None).await.finish(|_| {}).await;
    let s = &finished.summary;
    println!(
        "{} lookups on the map target in {:.3} s: {:.0} ops/s, p99 {:.3} ms",
        s.total.ops, s.duration_s, s.total.qps, s.total.latency_ms.p99
    );
    Ok(())
}

//! The workload plan: rendered statements, the mix, and the parameter generators that the
//! connection tasks use on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::distributions::{Alphanumeric, Distribution as _};
use rand::rngs::SmallRng;
use rand::Rng;

use crate::error::{Error, Result};
use crate::model::{QueryKind, RunId, WorkerIdentity};
use crate::table::TableProfile;
use crate::target::{ParamRole, StatementSpec};
use crate::template::{Distribution, KeySource, ParamGenerator, Template};
use crate::value::{ColumnType, Value};

/// How keys are drawn: a source (sampled pool or integer range) and a distribution over it.
#[derive(Debug)]
pub struct KeyGenerator {
    source: KeySpace,
    picker: IndexPicker,
}

#[derive(Debug)]
enum KeySpace {
    Pool(Arc<[Value]>),
    Range { min: i64, len: u64 },
}

#[derive(Debug)]
enum IndexPicker {
    Uniform,
    Zipfian { zipf: ZipfSampler, scramble: bool },
    Sequential(AtomicU64),
    Hotspot { hot: u64, probability: f64 },
}

impl KeyGenerator {
    /// Keys from a sampled pool. Workers take disjoint shares of the pool (entry `i` belongs to
    /// worker `i % count`), so they do not contend for the same rows.
    pub fn from_pool(pool: Vec<Value>, distribution: Distribution, worker: &WorkerIdentity) -> Result<Self> {
        if pool.is_empty() {
            return Err(Error::invalid(
                "the value pool is empty: the table has no rows to look up; load data first or use values.source = \"range\"",
            ));
        }
        let count = worker.count.max(1) as usize;
        let share: Vec<Value> = if pool.len() >= count {
            pool.into_iter()
                .enumerate()
                .filter(|(i, _)| i % count == worker.index as usize)
                .map(|(_, v)| v)
                .collect()
        } else {
            pool
        };
        let len = share.len() as u64;
        Ok(KeyGenerator {
            source: KeySpace::Pool(share.into()),
            picker: IndexPicker::new(distribution, len, false)?,
        })
    }

    /// Keys from the integer range `min..=max`, split into contiguous shares per worker.
    pub fn from_range(
        min: i64,
        max: i64,
        distribution: Distribution,
        worker: &WorkerIdentity,
    ) -> Result<Self> {
        if max < min {
            return Err(Error::invalid(format!("empty key range {min}..={max}")));
        }
        let total = (max as i128 - min as i128 + 1) as u128;
        let count = worker.count.max(1) as u128;
        let (start, len) = if total >= count {
            let per = total / count;
            let start = min as i128 + (per * worker.index as u128) as i128;
            let len = if worker.index as u128 == count - 1 { total - per * (count - 1) } else { per };
            (start as i64, len as u64)
        } else {
            (min, total as u64)
        };
        Ok(KeyGenerator {
            source: KeySpace::Range { min: start, len },
            picker: IndexPicker::new(distribution, len, true)?,
        })
    }

    /// Number of distinct keys this worker draws from.
    pub fn len(&self) -> u64 {
        match &self.source {
            KeySpace::Pool(p) => p.len() as u64,
            KeySpace::Range { len, .. } => *len,
        }
    }

    /// Whether there are no keys (never true for a constructed generator).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Draws the next key.
    #[inline]
    pub fn next(&self, rng: &mut SmallRng) -> Value {
        let idx = self.picker.pick(rng, self.len());
        match &self.source {
            KeySpace::Pool(p) => p[idx as usize].clone(),
            KeySpace::Range { min, .. } => Value::Int(min.wrapping_add(idx as i64)),
        }
    }
}

impl IndexPicker {
    fn new(distribution: Distribution, n: u64, scramble: bool) -> Result<Self> {
        Ok(match distribution {
            Distribution::Uniform => IndexPicker::Uniform,
            Distribution::Zipfian { theta } => {
                IndexPicker::Zipfian { zipf: ZipfSampler::new(n.max(1), theta)?, scramble }
            }
            Distribution::Sequential => IndexPicker::Sequential(AtomicU64::new(0)),
            Distribution::Hotspot { hot_fraction, hot_probability } => IndexPicker::Hotspot {
                hot: ((n as f64 * hot_fraction).ceil() as u64).clamp(1, n.max(1)),
                probability: hot_probability,
            },
        })
    }

    #[inline]
    fn pick(&self, rng: &mut SmallRng, n: u64) -> u64 {
        match self {
            IndexPicker::Uniform => rng.gen_range(0..n),
            IndexPicker::Zipfian { zipf, scramble } => {
                let rank = zipf.sample(rng).min(n - 1);
                // On a key range the hot keys would otherwise be the lowest keys, all on the
                // same pages; scatter them as YCSB's scrambled zipfian does.
                if *scramble {
                    fnv1a(rank) % n
                } else {
                    rank
                }
            }
            IndexPicker::Sequential(next) => next.fetch_add(1, Ordering::Relaxed) % n,
            IndexPicker::Hotspot { hot, probability } => {
                if *hot >= n || rng.gen::<f64>() < *probability {
                    rng.gen_range(0..*hot)
                } else {
                    hot + rng.gen_range(0..n - hot)
                }
            }
        }
    }
}

/// Zipf-distributed ranks `0..n` (rank 0 the most frequent).
///
/// For `theta < 1` (YCSB's 0.99 included) this is the method of Gray et al., "Quickly generating
/// billion-record synthetic databases" (SIGMOD 1994), which YCSB uses: after an O(n) set-up,
/// one uniform draw and one `powf` per sample. `rand_distr::Zipf`'s rejection sampler costs
/// several times more per draw, which showed as a third of the engine's per-operation overhead;
/// it is still used for `theta >= 1`, where Gray's method does not apply.
#[derive(Debug)]
enum ZipfSampler {
    Gray { n: f64, alpha: f64, zetan: f64, eta: f64, half_pow_theta: f64 },
    Rejection(rand_distr::Zipf<f64>),
}

impl ZipfSampler {
    fn new(n: u64, theta: f64) -> Result<Self> {
        if theta < 1.0 && n >= 2 {
            let zetan = zeta(n, theta);
            let zeta2 = zeta(2, theta);
            let nf = n as f64;
            Ok(ZipfSampler::Gray {
                n: nf,
                alpha: 1.0 / (1.0 - theta),
                zetan,
                eta: (1.0 - (2.0 / nf).powf(1.0 - theta)) / (1.0 - zeta2 / zetan),
                half_pow_theta: 0.5f64.powf(theta),
            })
        } else {
            rand_distr::Zipf::new(n, theta)
                .map(ZipfSampler::Rejection)
                .map_err(|e| Error::invalid(format!("invalid zipfian parameters: {e}")))
        }
    }

    #[inline]
    fn sample(&self, rng: &mut SmallRng) -> u64 {
        match self {
            ZipfSampler::Gray { n, alpha, zetan, eta, half_pow_theta } => {
                let u: f64 = rng.gen();
                let uz = u * zetan;
                if uz < 1.0 {
                    0
                } else if uz < 1.0 + half_pow_theta {
                    1
                } else {
                    (n * (eta * u - eta + 1.0).powf(*alpha)) as u64
                }
            }
            ZipfSampler::Rejection(z) => (z.sample(rng) as u64).max(1) - 1,
        }
    }
}

/// The generalized harmonic number `sum(1 / i^theta, i = 1..=n)`: exact up to a million terms,
/// with the integral (midpoint rule) for the tail of larger key ranges.
fn zeta(n: u64, theta: f64) -> f64 {
    const EXACT: u64 = 1_000_000;
    let head: f64 = (1..=n.min(EXACT)).map(|i| (i as f64).powf(-theta)).sum();
    if n <= EXACT {
        return head;
    }
    let integral = |x: f64| x.powf(1.0 - theta) / (1.0 - theta);
    head + integral(n as f64 + 0.5) - integral(EXACT as f64 + 0.5)
}

fn fnv1a(x: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in x.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Generates keys that are not in the table yet, for inserts. Integer keys continue above the
/// profiled maximum, interleaved across workers; text keys carry the run id, so that rows a run
/// inserted can be found and removed afterwards.
#[derive(Debug)]
pub struct NewKeyGenerator {
    next: AtomicU64,
    integer_base: i64,
    worker_index: u64,
    worker_count: u64,
    text_prefix: String,
}

impl NewKeyGenerator {
    fn new(key_max: Option<i64>, run_id: RunId, worker: &WorkerIdentity) -> Self {
        let run = run_id.to_string();
        NewKeyGenerator {
            next: AtomicU64::new(0),
            integer_base: key_max.unwrap_or(0).saturating_add(1),
            worker_index: u64::from(worker.index),
            worker_count: u64::from(worker.count.max(1)),
            text_prefix: format!("unistore-{}-w{}-", &run[..8], worker.index),
        }
    }

    fn next(&self, column_type: &ColumnType) -> Value {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match column_type {
            ColumnType::Integer => {
                let offset = n * self.worker_count + self.worker_index;
                Value::Int(self.integer_base.saturating_add(offset as i64))
            }
            _ => Value::text(format!("{}{n}", self.text_prefix)),
        }
    }

    /// How many keys were handed out.
    pub fn issued(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

/// A generator bound to one parameter.
#[derive(Debug)]
enum ParamSource {
    Key,
    KeyUpperBound(i64),
    NewKey(ColumnType),
    Column { column_type: ColumnType, max_len: usize },
    Custom(CustomGenerator),
}

#[derive(Debug)]
enum CustomGenerator {
    Int(i64, i64),
    Float(f64, f64),
    Text(usize),
    Choice(Vec<Value>),
    Now,
}

/// Everything a connection task needs to run the workload: statements, mix, generators.
/// Shared read-only between tasks (the only shared mutable state is a few relaxed atomics).
#[derive(Debug)]
pub struct WorkloadPlan {
    statements: Vec<StatementSpec>,
    sources: Vec<Vec<ParamSource>>,
    /// 100 slots, each holding a group (a kind) index: the mix is exact to the percent.
    mix_slots: [u8; 100],
    /// The statements of each kind in the mix.
    groups: Vec<Group>,
    /// Per statement: the name of a named custom statement, reported on its own row.
    labels: Vec<Option<String>>,
    keys: Option<KeyGenerator>,
    new_keys: NewKeyGenerator,
    /// Read-your-writes: keys this worker inserted, drawn by lookups beside the pool.
    recent: Option<RecentKeys>,
    /// Per statement: how it yields the key of a row it inserts (read-your-writes only).
    yields_key: Vec<YieldsKey>,
}

/// The statements that share one kind's percentage of the mix.
#[derive(Debug)]
enum Group {
    One(usize),
    /// Several custom statements, picked by weight.
    Weighted {
        members: Vec<usize>,
        cumulative: Vec<u32>,
        total: u32,
    },
}

/// How an INSERT tells the key of the row it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YieldsKey {
    /// It does not (not an insert, or read-your-writes is off).
    No,
    /// The key is the parameter at this position (a key the tool supplies).
    Param(usize),
    /// The statement returns it (`INSERT ... RETURNING key`, a key the database generates).
    Returned,
}

/// The most recent keys this worker inserted, a ring of fixed size: lookups draw from it in
/// proportion to its share of all keys, so reads reach new rows as they would in the
/// application, without the pool growing without bound.
#[derive(Debug)]
struct RecentKeys {
    ring: parking_lot::Mutex<(Vec<Value>, usize)>,
    capacity: usize,
    len: AtomicU64,
}

impl RecentKeys {
    fn new(capacity: usize) -> Self {
        RecentKeys {
            ring: parking_lot::Mutex::new((Vec::new(), 0)),
            capacity: capacity.max(1),
            len: AtomicU64::new(0),
        }
    }

    fn push(&self, v: Value) {
        let mut guard = self.ring.lock();
        let (ring, next) = &mut *guard;
        if ring.len() < self.capacity {
            ring.push(v);
            self.len.store(ring.len() as u64, Ordering::Relaxed);
        } else {
            ring[*next] = v;
            *next = (*next + 1) % self.capacity;
        }
    }

    fn pick(&self, rng: &mut SmallRng) -> Option<Value> {
        let guard = self.ring.lock();
        let ring = &guard.0;
        (!ring.is_empty()).then(|| ring[rng.gen_range(0..ring.len())].clone())
    }
}

impl WorkloadPlan {
    /// Builds the plan from rendered statements (one per kind in the mix), the template, the
    /// profile and (for pool keys) the sampled key pool.
    pub fn build(
        template: &Template,
        profile: &TableProfile,
        statements: Vec<StatementSpec>,
        key_pool: Option<Vec<Value>>,
        run_id: RunId,
        worker: &WorkerIdentity,
    ) -> Result<Self> {
        // Statements of one kind share its percentage: one statement per kind, except custom
        // SQL, whose statements (in template order) split it by weight.
        let custom_of: Vec<Option<usize>> = {
            let mut k = 0;
            statements
                .iter()
                .map(|st| {
                    (st.kind == QueryKind::CustomSql).then(|| {
                        k += 1;
                        k - 1
                    })
                })
                .collect()
        };
        let mut groups: Vec<Group> = Vec::new();
        let mut mix_slots = [0u8; 100];
        let mut slot = 0usize;
        for kind in QueryKind::ALL {
            let members: Vec<usize> = (0..statements.len()).filter(|i| statements[*i].kind == kind).collect();
            if members.is_empty() {
                continue;
            }
            let pct = template.mix.get(&kind).copied().unwrap_or(0) as usize;
            if slot + pct > 100 {
                return Err(Error::invalid("the mix sums to more than 100%"));
            }
            let group = if members.len() == 1 {
                Group::One(members[0])
            } else {
                let mut cumulative = Vec::with_capacity(members.len());
                let mut total = 0u32;
                for i in &members {
                    let weight =
                        custom_of[*i].and_then(|k| template.custom_sql.get(k)).map_or(1, |c| c.weight);
                    total = total.saturating_add(weight.max(1));
                    cumulative.push(total);
                }
                Group::Weighted { members, cumulative, total }
            };
            mix_slots[slot..slot + pct].fill(groups.len() as u8);
            groups.push(group);
            slot += pct;
        }
        if slot != 100 {
            return Err(Error::invalid(format!(
                "the statements cover {slot}% of the mix, not 100%: render one statement per kind in the mix"
            )));
        }
        let labels: Vec<Option<String>> = custom_of
            .iter()
            .map(|k| k.and_then(|k| template.custom_sql.get(k)).and_then(|c| c.name.clone()))
            .collect();
        let needs_keys = statements.iter().any(|s| s.params.iter().any(|p| p.role == ParamRole::Key));
        let keys = if needs_keys {
            Some(match template.values.source {
                KeySource::Pool => KeyGenerator::from_pool(
                    key_pool
                        .ok_or_else(|| Error::invalid("values.source = pool needs a sampled key pool"))?,
                    template.values.distribution,
                    worker,
                )?,
                KeySource::Range => {
                    let (min, max) = profile.key_range.ok_or_else(|| {
                        Error::invalid(format!(
                            "values.source = range needs an integer key with known bounds, and {} has none: use values.source = \"pool\"",
                            profile.table
                        ))
                    })?;
                    KeyGenerator::from_range(min, max, template.values.distribution, worker)?
                }
            })
        } else {
            None
        };
        let sources = statements
            .iter()
            .enumerate()
            .map(|(index, st)| {
                let custom = custom_of[index]
                    .and_then(|k| template.custom_sql.get(k))
                    .map_or(&[][..], |c| c.params.as_slice());
                let mut last_key_type_ok = false;
                st.params
                    .iter()
                    .map(|p| {
                        Ok(match &p.role {
                            ParamRole::Key => {
                                last_key_type_ok = p.column_type.is_integer();
                                ParamSource::Key
                            }
                            ParamRole::KeyUpperBound { width } => {
                                if !last_key_type_ok {
                                    return Err(Error::invalid(
                                        "a range upper bound needs an integer key before it",
                                    ));
                                }
                                ParamSource::KeyUpperBound(i64::from(*width))
                            }
                            ParamRole::NewKey => ParamSource::NewKey(p.column_type.clone()),
                            ParamRole::ColumnValue => ParamSource::Column {
                                column_type: p.column_type.clone(),
                                max_len: profile
                                    .column(&p.column)
                                    .and_then(|c| c.max_length)
                                    .map(|m| m as usize)
                                    .unwrap_or(16)
                                    .clamp(1, 16),
                            },
                            ParamRole::Custom(i) => {
                                let g = custom.get(*i).ok_or_else(|| {
                                    Error::invalid(format!("custom_sql parameter {} has no generator", i + 1))
                                })?;
                                ParamSource::Custom(match g {
                                    // Rendered as ParamRole::Key by the dialect.
                                    ParamGenerator::Key => return Ok(ParamSource::Key),
                                    ParamGenerator::Int { min, max } => CustomGenerator::Int(*min, *max),
                                    ParamGenerator::Float { min, max } => CustomGenerator::Float(*min, *max),
                                    ParamGenerator::Text { len } => CustomGenerator::Text(*len),
                                    ParamGenerator::Choice { values } => {
                                        CustomGenerator::Choice(values.iter().map(Value::text).collect())
                                    }
                                    ParamGenerator::Now => CustomGenerator::Now,
                                })
                            }
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let yields_key = statements
            .iter()
            .map(|st| match (template.values.read_your_writes, &st.returning) {
                (false, _) => YieldsKey::No,
                (true, Some(_)) => YieldsKey::Returned,
                (true, None) => st
                    .params
                    .iter()
                    .position(|p| p.role == ParamRole::NewKey)
                    .map_or(YieldsKey::No, YieldsKey::Param),
            })
            .collect();
        Ok(WorkloadPlan {
            statements,
            sources,
            mix_slots,
            groups,
            labels,
            keys,
            new_keys: NewKeyGenerator::new(profile.key_range.map(|r| r.1), run_id, worker),
            recent: template.values.read_your_writes.then(|| RecentKeys::new(template.values.pool_size)),
            yields_key,
        })
    }

    /// How statement `i` yields the key of the row it inserts, for read-your-writes.
    #[inline]
    pub fn yields_key(&self, i: usize) -> YieldsKey {
        self.yields_key[i]
    }

    /// Adds the key of a row this worker inserted to the keys lookups draw from.
    pub fn remember_key(&self, key: Value) {
        if let Some(r) = &self.recent {
            r.push(key);
        }
    }

    /// Keys inserted and remembered for read-your-writes.
    pub fn remembered_keys(&self) -> u64 {
        self.recent.as_ref().map_or(0, |r| r.len.load(Ordering::Relaxed))
    }

    /// The rendered statements, in plan order (statement index = position).
    pub fn statements(&self) -> &[StatementSpec] {
        &self.statements
    }

    /// Query kind of statement `i`.
    #[inline]
    pub fn kind(&self, i: usize) -> QueryKind {
        self.statements[i].kind
    }

    /// Picks the next statement by the mix.
    #[inline]
    pub fn pick(&self, rng: &mut SmallRng) -> usize {
        match &self.groups[self.mix_slots[rng.gen_range(0..100usize)] as usize] {
            Group::One(i) => *i,
            Group::Weighted { members, cumulative, total } => {
                let r = rng.gen_range(0..*total);
                members[cumulative.partition_point(|c| *c <= r)]
            }
        }
    }

    /// The name of statement `i` when it is a named custom statement.
    pub fn label(&self, i: usize) -> Option<&str> {
        self.labels[i].as_deref()
    }

    /// Keys inserted so far by this worker's plan.
    pub fn inserted_keys(&self) -> u64 {
        self.new_keys.issued()
    }

    /// Generates the parameters of statement `i` into `out` (cleared first). `out` is reused
    /// across operations, so steady state allocates nothing for integer keys.
    #[inline]
    pub fn generate(&self, i: usize, rng: &mut SmallRng, out: &mut Vec<Value>) {
        out.clear();
        let mut last_key = 0i64;
        for source in &self.sources[i] {
            let v = match source {
                ParamSource::Key => self.next_key(rng),
                ParamSource::KeyUpperBound(width) => Value::Int(last_key.saturating_add(*width)),
                ParamSource::NewKey(t) => self.new_keys.next(t),
                ParamSource::Column { column_type, max_len } => random_value(column_type, *max_len, rng),
                ParamSource::Custom(g) => match g {
                    CustomGenerator::Int(min, max) => Value::Int(rng.gen_range(*min..=*max)),
                    CustomGenerator::Float(min, max) => Value::Float(rng.gen_range(*min..*max)),
                    CustomGenerator::Text(len) => random_text(*len, rng),
                    CustomGenerator::Choice(values) => values[rng.gen_range(0..values.len())].clone(),
                    CustomGenerator::Now => Value::Timestamp(now_micros()),
                },
            };
            if let Value::Int(k) = v {
                last_key = k;
            }
            out.push(v);
        }
    }

    #[inline]
    fn next_key(&self, rng: &mut SmallRng) -> Value {
        if let (Some(recent), Some(keys)) = (&self.recent, &self.keys) {
            // New rows take their share of the lookups: recent / (recent + pool).
            let n = recent.len.load(Ordering::Relaxed);
            if n > 0 && rng.gen_range(0..n + keys.len()) < n {
                if let Some(v) = recent.pick(rng) {
                    return v;
                }
            }
        }
        match &self.keys {
            Some(k) => k.next(rng),
            None => Value::Null,
        }
    }
}

fn random_text(len: usize, rng: &mut SmallRng) -> Value {
    let s: String = (&mut *rng).sample_iter(&Alphanumeric).take(len).map(char::from).collect();
    Value::Text(s.into())
}

fn random_value(t: &ColumnType, max_len: usize, rng: &mut SmallRng) -> Value {
    match t {
        // Small enough for every integer width (SMALLINT included).
        ColumnType::Integer => Value::Int(rng.gen_range(0..=32_000)),
        ColumnType::Float => Value::Float(rng.gen_range(0.0..1000.0)),
        ColumnType::Decimal => Value::Float((rng.gen_range(0.0..1000.0f64) * 100.0).round() / 100.0),
        ColumnType::Boolean => Value::Bool(rng.gen()),
        ColumnType::Timestamp | ColumnType::Date => Value::Timestamp(now_micros()),
        ColumnType::Text | ColumnType::Json | ColumnType::Other(_) => random_text(max_len, rng),
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

//! One connection of either backend, the same calls for both: SQL is written once with SQLite's
//! `?N` placeholders (rewritten to PostgreSQL's `$N`), values and rows go through [`V`] and
//! [`Row`]. A connection left in an open transaction (an error, a dropped future) is rolled back
//! (SQLite) or closed (PostgreSQL, whose server then rolls back) when dropped.

use bytes::BytesMut;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql as PgToSql, Type};

/// A failure of either backend.
#[derive(Debug)]
pub enum DbErr {
    Lite(rusqlite::Error),
    Pg(tokio_postgres::Error),
    /// No connection from the pool, a value the schema cannot hold, a row that cannot be read.
    Other(String),
}

impl std::fmt::Display for DbErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbErr::Lite(e) => write!(f, "sqlite: {e}"),
            DbErr::Pg(e) => match e.as_db_error() {
                Some(d) => write!(f, "postgres: {}: {}", d.code().code(), d.message()),
                None => write!(f, "postgres: {e}"),
            },
            DbErr::Other(s) => f.write_str(s),
        }
    }
}

impl From<rusqlite::Error> for DbErr {
    fn from(e: rusqlite::Error) -> Self {
        DbErr::Lite(e)
    }
}

impl From<tokio_postgres::Error> for DbErr {
    fn from(e: tokio_postgres::Error) -> Self {
        DbErr::Pg(e)
    }
}

pub type R<T> = Result<T, DbErr>;

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum V<'a> {
    Null,
    I(i64),
    B(bool),
    T(&'a str),
}

impl From<i64> for V<'_> {
    fn from(v: i64) -> Self {
        V::I(v)
    }
}
impl From<bool> for V<'_> {
    fn from(v: bool) -> Self {
        V::B(v)
    }
}
impl<'a> From<&'a str> for V<'a> {
    fn from(v: &'a str) -> Self {
        V::T(v)
    }
}
impl<'a> From<&'a String> for V<'a> {
    fn from(v: &'a String) -> Self {
        V::T(v)
    }
}
impl<'a, T: Into<V<'a>>> From<Option<T>> for V<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(V::Null, Into::into)
    }
}
impl<'a> From<&'a Option<String>> for V<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().into()
    }
}
impl From<&Option<i64>> for V<'_> {
    fn from(v: &Option<i64>) -> Self {
        (*v).into()
    }
}
impl From<&i64> for V<'_> {
    fn from(v: &i64) -> Self {
        V::I(*v)
    }
}

/// `vals![a, b]`: the parameters of one statement.
macro_rules! vals {
    ($($x:expr),* $(,)?) => { [$($crate::store::conn::V::from($x)),*] };
}
pub(crate) use vals;

impl rusqlite::ToSql for V<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            V::Null => ValueRef::Null,
            V::I(i) => ValueRef::Integer(i),
            V::B(b) => ValueRef::Integer(b as i64),
            V::T(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

impl PgToSql for V<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            V::Null => Ok(IsNull::Yes),
            V::I(i) if *ty == Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
            V::I(i) => i.to_sql(ty, out),
            V::B(b) => b.to_sql(ty, out),
            V::T(s) => s.to_sql(ty, out),
        }
    }

    // The schema decides the types; a mismatch fails in `to_sql` of the inner value.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A result row of either backend, read by column name or index.
pub enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a tokio_postgres::Row),
}

/// A column: its name or its index.
pub trait Col:
    rusqlite::RowIndex + tokio_postgres::row::RowIndex + std::fmt::Display + Copy
{
}
impl Col for &str {}
impl Col for usize {}

impl Row<'_> {
    pub fn i64(&self, c: impl Col) -> R<i64> {
        match self {
            Row::Lite(r) => Ok(r.get(c)?),
            Row::Pg(r) => Ok(r.try_get(c)?),
        }
    }
    pub fn opt_i64(&self, c: impl Col) -> R<Option<i64>> {
        match self {
            Row::Lite(r) => Ok(r.get(c)?),
            Row::Pg(r) => Ok(r.try_get(c)?),
        }
    }
    pub fn string(&self, c: impl Col) -> R<String> {
        match self {
            Row::Lite(r) => Ok(r.get(c)?),
            Row::Pg(r) => Ok(r.try_get(c)?),
        }
    }
    pub fn opt_string(&self, c: impl Col) -> R<Option<String>> {
        match self {
            Row::Lite(r) => Ok(r.get(c)?),
            Row::Pg(r) => Ok(r.try_get(c)?),
        }
    }
    /// SQLite keeps booleans as 0/1, PostgreSQL as BOOLEAN.
    pub fn bool(&self, c: impl Col) -> R<bool> {
        match self {
            Row::Lite(r) => Ok(r.get::<_, i64>(c)? != 0),
            Row::Pg(r) => Ok(r.try_get(c)?),
        }
    }
}

/// `?N` → `$N` (no statement of the store has a `?` or `$` inside a string literal).
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) type LiteConn = Arc<Mutex<rusqlite::Connection>>;

enum Inner {
    Lite(OwnedMutexGuard<rusqlite::Connection>),
    Pg(Box<deadpool_postgres::Object>),
}

/// A connection taken for a few statements (and at most one transaction).
pub struct Conn {
    inner: Option<Inner>,
    in_tx: bool,
}

impl Conn {
    pub(super) fn lite(g: OwnedMutexGuard<rusqlite::Connection>) -> Conn {
        let mut c = Conn {
            inner: Some(Inner::Lite(g)),
            in_tx: false,
        };
        // Left open by a panic under the lock: nothing half done survives.
        if let Some(Inner::Lite(g)) = &mut c.inner {
            if !g.is_autocommit() {
                let _ = g.execute_batch("ROLLBACK");
            }
        }
        c
    }

    pub(super) fn pg(o: deadpool_postgres::Object) -> Conn {
        Conn {
            inner: Some(Inner::Pg(Box::new(o))),
            in_tx: false,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, Some(Inner::Pg(_)))
    }

    fn inner(&mut self) -> &mut Inner {
        self.inner.as_mut().expect("connection present until drop")
    }

    pub async fn batch(&mut self, sql: &str) -> R<()> {
        match self.inner() {
            Inner::Lite(c) => Ok(c.execute_batch(sql)?),
            Inner::Pg(c) => Ok(c.batch_execute(sql).await?),
        }
    }

    pub async fn begin(&mut self) -> R<()> {
        self.in_tx = true;
        self.batch("BEGIN").await
    }

    pub async fn commit(&mut self) -> R<()> {
        self.batch("COMMIT").await?;
        self.in_tx = false;
        Ok(())
    }

    pub async fn rollback(&mut self) -> R<()> {
        self.batch("ROLLBACK").await?;
        self.in_tx = false;
        Ok(())
    }

    /// Rows changed.
    pub async fn execute(&mut self, sql: &str, params: &[V<'_>]) -> R<u64> {
        match self.inner() {
            Inner::Lite(c) => {
                Ok(c.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params))? as u64)
            }
            Inner::Pg(c) => {
                let st = c.prepare_cached(&pg_sql(sql)).await?;
                Ok(c.execute(&st, &pg_params(params)).await?)
            }
        }
    }

    pub async fn query<T>(
        &mut self,
        sql: &str,
        params: &[V<'_>],
        mut f: impl FnMut(&Row) -> R<T>,
    ) -> R<Vec<T>> {
        match self.inner() {
            Inner::Lite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(params))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r))?);
                }
                Ok(out)
            }
            Inner::Pg(c) => {
                let st = c.prepare_cached(&pg_sql(sql)).await?;
                let rows = c.query(&st, &pg_params(params)).await?;
                rows.iter().map(|r| f(&Row::Pg(r))).collect()
            }
        }
    }

    /// The first row, if any.
    pub async fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[V<'_>],
        f: impl FnOnce(&Row) -> R<T>,
    ) -> R<Option<T>> {
        let mut f = Some(f);
        let mut out = self
            .query(sql, params, |r| match f.take() {
                Some(f) => f(r).map(Some),
                None => Ok(None),
            })
            .await?;
        Ok(if out.is_empty() {
            None
        } else {
            out.swap_remove(0)
        })
    }

    pub async fn query_one<T>(
        &mut self,
        sql: &str,
        params: &[V<'_>],
        f: impl FnOnce(&Row) -> R<T>,
    ) -> R<T> {
        self.query_opt(sql, params, f)
            .await?
            .ok_or_else(|| DbErr::Other("no row".into()))
    }
}

fn pg_params<'a>(params: &'a [V<'a>]) -> Vec<&'a (dyn PgToSql + Sync)> {
    params.iter().map(|p| p as &(dyn PgToSql + Sync)).collect()
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.in_tx {
            return;
        }
        match self.inner.take() {
            Some(Inner::Lite(c)) => {
                let _ = c.execute_batch("ROLLBACK");
            }
            // Out of the pool and closed: the server rolls the transaction back.
            Some(Inner::Pg(o)) => drop(deadpool_postgres::Object::take(*o)),
            None => {}
        }
    }
}

/// A statement built from the filters actually given (absent ones stay out of the SQL, so the
/// planner sees only what narrows the rows).
pub struct Sql<'a> {
    pub text: String,
    pub params: Vec<V<'a>>,
}

impl<'a> Sql<'a> {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter; answers its placeholder (`?N`).
    pub fn param(&mut self, v: impl Into<V<'a>>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }

    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

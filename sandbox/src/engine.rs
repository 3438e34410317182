//! The acquisition server's rules. Every operation runs under one lock, stages its changes in a
//! [`Batch`], and commits them (SQLite first, then memory) only when it succeeds: an error leaves
//! nothing half-done.

use crate::beneficiaries::{self, Behaviour, Scripted, TABLE};
use crate::faults::{FaultBook, Faults};
use crate::model::*;
use crate::store::{Row, Store};
use cvco_core::lifecycle::{AbortReason, CaptureMode};
use cvco_core::time::Date;
use cvco_core::wire::{
    self, Authorization, CancelRequest, CaptureRequest, CreatePreTransaction, CreateTransaction,
    DailyTotal, DailyTotals, Delivery, Notification, NotificationKind, Payer, PaymentQr,
    PreTransaction, Refund, RefundRequest, RemittanceStatement, RequestAuthorization, TokenRequest,
    TokenResponse, Transaction, TransactionFilter, TransactionList,
};
use cvco_core::{
    Amount, BeneficiaryId, Channel, CvcoError, ErrorCode, MerchantSettings, OrderFacts,
    PreTransactionState, ShopId, Timestamp, TransactionState,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

pub type Result<T, E = CvcoError> = std::result::Result<T, E>;

/// Notification retries: exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub base_ms: u64,
    pub factor: u32,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_ms: 500,
            factor: 2,
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `n + 1` once `n` attempts failed.
    pub fn delay_ms(&self, failed: u32) -> u64 {
        let exp = failed.saturating_sub(1).min(30);
        self.base_ms
            .saturating_mul((self.factor.max(1) as u64).saturating_pow(exp))
            .min(3_600_000)
    }
}

pub const DEMO_SHOP: &str = "SHOP-DEMO-01";

pub enum Change {
    Shop(ShopRec),
    Token(TokenRec),
    Tx(TxRec),
    Pt(PtRec),
    Idem(IdemRec),
    Ben(BenState),
    Email(Email),
    Delivery(DeliveryRec),
    ClockOffset(i64),
}

impl Change {
    fn row(&self) -> Row {
        fn json<T: Serialize>(v: &T) -> String {
            serde_json::to_string(v).expect("records serialize")
        }
        let (kind, id, json) = match self {
            Change::Shop(s) => ("shop", s.shop_id.to_string(), json(s)),
            Change::Token(t) => ("token", t.hash.clone(), json(t)),
            Change::Tx(t) => ("tx", t.tx.id.clone(), json(t)),
            Change::Pt(p) => ("pt", p.pt.id.clone(), json(p)),
            Change::Idem(i) => ("idem", IdemRec::map_key(&i.shop_id, &i.key), json(i)),
            Change::Ben(b) => ("ben", b.id.clone(), json(b)),
            Change::Email(e) => ("email", e.id.clone(), json(e)),
            Change::Delivery(d) => ("delivery", d.id.clone(), json(d)),
            Change::ClockOffset(o) => ("meta", "clock_offset_ms".to_string(), json(o)),
        };
        Row { kind, id, json }
    }
}

/// Changes staged by one operation; reads inside the operation see them first.
#[derive(Default)]
pub struct Batch {
    changes: Vec<Change>,
}

impl Batch {
    pub fn push(&mut self, c: Change) {
        self.changes.push(c);
    }
}

pub struct Inner {
    pub shops: BTreeMap<String, ShopRec>,
    pub tokens: HashMap<String, TokenRec>,
    pub txs: HashMap<String, TxRec>,
    pub pts: HashMap<String, PtRec>,
    pub idem: HashMap<String, IdemRec>,
    pub bens: BTreeMap<String, BenState>,
    pub outbox: Vec<Email>,
    pub deliveries: HashMap<String, DeliveryRec>,
    pub faults: FaultBook,
    pub clock_offset_ms: i64,
    pub approve_delay_ms: u64,
    pub retry: RetryPolicy,
    /// Deliveries a task is sending right now (never persisted).
    pub in_flight: HashSet<String>,
    delivery_order: u64,
    store: Option<Store>,
}

pub fn random_token(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

pub fn new_id(prefix: &str) -> String {
    random_token(prefix, 20)
}

fn authorization_number() -> String {
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000))
}

pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The wall clock, for signature timestamps (receivers compare them with their own clock).
pub fn wall_clock() -> Timestamp {
    Timestamp(wall_clock_ms())
}

fn err(code: ErrorCode, fr: &str, en: &str) -> CvcoError {
    CvcoError::new(code).with_detail(fr, en)
}

/// Remembers what a request under an idempotency key made, so its replays answer the same.
fn remember_key(
    b: &mut Batch,
    shop: &ShopId,
    key: Option<&str>,
    scope: &str,
    body: serde_json::Value,
    id: &str,
    now: Timestamp,
) {
    if let Some(k) = key {
        b.push(Change::Idem(IdemRec {
            shop_id: shop.clone(),
            key: k.to_string(),
            scope: scope.to_string(),
            body,
            transaction_id: id.to_string(),
            created_at: now,
        }));
    }
}

fn tx_not_found() -> CvcoError {
    CvcoError::new(ErrorCode::TransactionNotFound)
}

fn pt_not_found() -> CvcoError {
    CvcoError::new(ErrorCode::PreTransactionNotFound)
}

/// The demo shop every fresh sandbox has.
pub fn demo_shop(now: Timestamp) -> ShopRec {
    ShopRec {
        shop_id: ShopId::parse(DEMO_SHOP).expect("constant"),
        name: Some("Boutique démo CVCo".to_string()),
        client_id: "demo-client".to_string(),
        client_secret: "demo-secret".to_string(),
        notification_secret: "whsec_demo_change_me".to_string(),
        channels: Channel::ALL.to_vec(),
        settings: MerchantSettings::default(),
        cancel_password: None,
        fee_bps: 250,
        token_ttl_s: 3600,
        created_at: now,
    }
}

/// What /app shows of an account.
#[derive(Debug, Clone, Serialize)]
pub struct BenView {
    pub id: String,
    pub email: String,
    pub holder: String,
    pub behaviour: Behaviour,
    pub description_fr: String,
    pub balance_cents: Amount,
    pub locked: bool,
    pub wrong_pins: u8,
    pub id_qr_payload: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub beneficiary: String,
    pub transactions: Vec<Transaction>,
    pub payment_requests: Vec<PreTransaction>,
}

/// Admin request to create a shop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateShop {
    pub shop_id: ShopId,
    #[serde(default)]
    pub name: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub notification_secret: String,
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub settings: MerchantSettings,
    #[serde(default)]
    pub cancel_password: Option<String>,
    #[serde(default)]
    pub fee_bps: Option<u32>,
    #[serde(default)]
    pub token_ttl_s: Option<u32>,
}

impl Inner {
    pub fn open(data: Option<&Path>, approve_delay_ms: u64, retry: RetryPolicy) -> Result<Inner> {
        let mut inner = Inner {
            shops: BTreeMap::new(),
            tokens: HashMap::new(),
            txs: HashMap::new(),
            pts: HashMap::new(),
            idem: HashMap::new(),
            bens: BTreeMap::new(),
            outbox: Vec::new(),
            deliveries: HashMap::new(),
            faults: FaultBook::default(),
            clock_offset_ms: 0,
            approve_delay_ms,
            retry,
            in_flight: HashSet::new(),
            delivery_order: 0,
            store: None,
        };
        for b in &TABLE {
            inner.bens.insert(
                b.id.to_string(),
                BenState {
                    id: b.id.to_string(),
                    balance_cents: b.initial_balance(),
                    wrong_pins: 0,
                    locked: false,
                },
            );
        }
        if let Some(path) = data {
            let store = Store::open(path)?;
            inner.load(&store)?;
            inner.store = Some(store);
        }
        if !inner.shops.contains_key(DEMO_SHOP) {
            let shop = demo_shop(inner.now());
            inner.commit(Batch {
                changes: vec![Change::Shop(shop)],
            })?;
        }
        Ok(inner)
    }

    fn load(&mut self, store: &Store) -> Result<()> {
        fn parse<T: for<'de> Deserialize<'de>>(kind: &str, s: &str) -> Result<T> {
            serde_json::from_str(s).map_err(|e| {
                err(
                    ErrorCode::Internal,
                    &format!("Enregistrement {kind} illisible : {e}."),
                    &format!("Unreadable {kind} record: {e}."),
                )
            })
        }
        for s in store.load("shop")? {
            let r: ShopRec = parse("shop", &s)?;
            self.shops.insert(r.shop_id.to_string(), r);
        }
        for s in store.load("token")? {
            let r: TokenRec = parse("token", &s)?;
            self.tokens.insert(r.hash.clone(), r);
        }
        for s in store.load("tx")? {
            let r: TxRec = parse("tx", &s)?;
            self.txs.insert(r.tx.id.clone(), r);
        }
        for s in store.load("pt")? {
            let r: PtRec = parse("pt", &s)?;
            self.pts.insert(r.pt.id.clone(), r);
        }
        for s in store.load("idem")? {
            let r: IdemRec = parse("idem", &s)?;
            self.idem.insert(IdemRec::map_key(&r.shop_id, &r.key), r);
        }
        for s in store.load("ben")? {
            let r: BenState = parse("ben", &s)?;
            self.bens.insert(r.id.clone(), r);
        }
        for s in store.load("email")? {
            self.outbox.push(parse("email", &s)?);
        }
        for s in store.load("delivery")? {
            let r: DeliveryRec = parse("delivery", &s)?;
            self.delivery_order = self.delivery_order.max(r.order);
            self.deliveries.insert(r.id.clone(), r);
        }
        if let Some(s) = store.load("meta")?.first() {
            self.clock_offset_ms = parse("meta", s)?;
        }
        Ok(())
    }

    /// Sandbox time: the wall clock shifted by the admin clock offset (time travel for tests).
    pub fn now(&self) -> Timestamp {
        Timestamp(wall_clock_ms().saturating_add(self.clock_offset_ms))
    }

    pub fn commit(&mut self, batch: Batch) -> Result<()> {
        if batch.changes.is_empty() {
            return Ok(());
        }
        if let Some(store) = &mut self.store {
            let rows: Vec<Row> = batch.changes.iter().map(Change::row).collect();
            store.write(&rows)?;
        }
        for c in batch.changes {
            match c {
                Change::Shop(s) => {
                    self.shops.insert(s.shop_id.to_string(), s);
                }
                Change::Token(t) => {
                    self.tokens.insert(t.hash.clone(), t);
                }
                Change::Tx(t) => {
                    self.txs.insert(t.tx.id.clone(), t);
                }
                Change::Pt(p) => {
                    self.pts.insert(p.pt.id.clone(), p);
                }
                Change::Idem(i) => {
                    self.idem.insert(IdemRec::map_key(&i.shop_id, &i.key), i);
                }
                Change::Ben(b) => {
                    self.bens.insert(b.id.clone(), b);
                }
                Change::Email(e) => {
                    if let Some(old) = self.outbox.iter_mut().find(|o| o.id == e.id) {
                        *old = e;
                    } else {
                        self.outbox.push(e);
                    }
                }
                Change::Delivery(d) => {
                    self.deliveries.insert(d.id.clone(), d);
                }
                Change::ClockOffset(o) => self.clock_offset_ms = o,
            }
        }
        Ok(())
    }

    /// Runs `op` after applying what fell due, then commits its batch; an error commits nothing.
    pub fn run<T>(
        &mut self,
        op: impl FnOnce(&mut Inner, Timestamp, &mut Batch) -> Result<T>,
    ) -> Result<T> {
        self.sync();
        let now = self.now();
        let mut batch = Batch::default();
        let out = op(self, now, &mut batch)?;
        self.commit(batch)?;
        Ok(out)
    }

    /// Applies everything due (scripted beneficiaries, expiries), so reads are always right.
    pub fn sync(&mut self) {
        let now = self.now();
        let mut b = Batch::default();
        self.run_due(now, &mut b);
        if let Err(e) = self.commit(b) {
            tracing::error!("could not store due changes: {e}");
        }
    }

    // ---- staged reads -------------------------------------------------------------------

    fn tx_staged(&self, id: &str, b: &Batch) -> Option<TxRec> {
        for c in b.changes.iter().rev() {
            if let Change::Tx(t) = c {
                if t.tx.id == id {
                    return Some(t.clone());
                }
            }
        }
        self.txs.get(id).cloned()
    }

    fn pt_staged(&self, id: &str, b: &Batch) -> Option<PtRec> {
        for c in b.changes.iter().rev() {
            if let Change::Pt(p) = c {
                if p.pt.id == id {
                    return Some(p.clone());
                }
            }
        }
        self.pts.get(id).cloned()
    }

    fn ben_staged(&self, id: &str, b: &Batch) -> BenState {
        for c in b.changes.iter().rev() {
            if let Change::Ben(s) = c {
                if s.id == id {
                    return s.clone();
                }
            }
        }
        self.bens.get(id).cloned().unwrap_or_else(|| BenState {
            id: id.to_string(),
            balance_cents: Amount::ZERO,
            wrong_pins: 0,
            locked: false,
        })
    }

    fn shop(&self, shop: &ShopId) -> Result<&ShopRec> {
        self.shops.get(shop.as_str()).ok_or_else(|| {
            err(
                ErrorCode::Forbidden,
                "Point d'accueil inconnu.",
                "Unknown shop.",
            )
        })
    }

    fn own_tx(&self, shop: &ShopId, id: &str) -> Result<TxRec> {
        self.txs
            .get(id)
            .filter(|r| &r.tx.shop_id == shop)
            .cloned()
            .ok_or_else(tx_not_found)
    }

    fn own_pt(&self, shop: &ShopId, id: &str) -> Result<PtRec> {
        self.pts
            .get(id)
            .filter(|r| &r.pt.shop_id == shop)
            .cloned()
            .ok_or_else(pt_not_found)
    }

    /// Balance the account can spend now.
    fn balance(&self, ben: &Scripted, b: &Batch) -> Amount {
        if ben.depletes() {
            self.ben_staged(ben.id, b).balance_cents
        } else {
            ben.initial_balance()
        }
    }

    /// Money going back to the payer (cancel, refund, uncaptured remainder): only the manual
    /// account's balance moves.
    fn credit_back(&self, rec: &TxRec, amount: Amount, b: &mut Batch) {
        let Some(ben) = rec
            .beneficiary
            .as_deref()
            .and_then(|id| TABLE.iter().find(|t| t.id == id))
        else {
            return;
        };
        if amount.is_zero() || !ben.depletes() {
            return;
        }
        let mut st = self.ben_staged(ben.id, b);
        st.balance_cents = st.balance_cents.saturating_add_amount(amount);
        b.push(Change::Ben(st));
    }

    // ---- notifications ------------------------------------------------------------------

    fn enqueue(
        &mut self,
        n: Notification,
        url: String,
        object_id: String,
        now: Timestamp,
        b: &mut Batch,
    ) {
        let faults: Faults = self.faults.for_shop(Some(&n.shop_id)).clone();
        self.delivery_order += 1;
        let body = serde_json::to_string(&n).expect("notification serializes");
        let (status, next, held_until) = if faults.drop_notifications {
            (DeliveryStatus::Dropped, None, None)
        } else if faults.reorder_notifications {
            let window_end = self
                .held_window(&n.shop_id, b)
                .unwrap_or_else(|| now.plus_millis(faults.reorder_hold_ms() as i64));
            (DeliveryStatus::Held, None, Some(window_end))
        } else {
            (DeliveryStatus::Pending, Some(now), None)
        };
        b.push(Change::Delivery(DeliveryRec {
            id: n.id.clone(),
            order: self.delivery_order,
            shop_id: n.shop_id.clone(),
            url,
            object_id,
            state: n.state.clone(),
            sequence: n.sequence,
            body,
            status,
            attempts: Vec::new(),
            next_attempt_at: next,
            held_until,
            duplicate: faults.duplicate_notifications,
            created_at: now,
        }));
    }

    /// End of the reorder window already open for this shop, if any.
    fn held_window(&self, shop: &ShopId, b: &Batch) -> Option<Timestamp> {
        let staged = b.changes.iter().filter_map(|c| match c {
            Change::Delivery(d) => Some(d),
            _ => None,
        });
        staged
            .chain(self.deliveries.values())
            .filter(|d| &d.shop_id == shop && d.status == DeliveryStatus::Held)
            .filter_map(|d| d.held_until)
            .max()
    }

    fn notify_tx(&mut self, rec: &mut TxRec, now: Timestamp, b: &mut Batch) {
        rec.seq += 1;
        let Some(url) = rec.tx.notification_url.clone() else {
            return;
        };
        let n = Notification {
            id: new_id("evt_"),
            kind: NotificationKind::TransactionUpdated,
            created_at: now,
            shop_id: rec.tx.shop_id.clone(),
            merchant_order_id: rec.tx.merchant_order_id.clone(),
            transaction_id: Some(rec.tx.id.clone()),
            pre_transaction_id: rec.tx.pre_transaction_id.clone(),
            state: rec.tx.state.as_str().to_string(),
            sequence: rec.seq,
        };
        self.enqueue(n, url, rec.tx.id.clone(), now, b);
    }

    fn notify_pt(&mut self, rec: &mut PtRec, now: Timestamp, b: &mut Batch) {
        rec.seq += 1;
        let Some(url) = rec.pt.notification_url.clone() else {
            return;
        };
        let n = Notification {
            id: new_id("evt_"),
            kind: NotificationKind::PreTransactionUpdated,
            created_at: now,
            shop_id: rec.pt.shop_id.clone(),
            merchant_order_id: rec.pt.merchant_order_id.clone(),
            transaction_id: rec.pt.transaction_id.clone(),
            pre_transaction_id: Some(rec.pt.id.clone()),
            state: rec.pt.state.as_str().to_string(),
            sequence: rec.seq,
        };
        self.enqueue(n, url, rec.pt.id.clone(), now, b);
    }

    fn move_tx(
        &mut self,
        rec: &mut TxRec,
        to: TransactionState,
        at: Timestamp,
        b: &mut Batch,
    ) -> Result<()> {
        rec.tx.state = rec.tx.state.transition(to)?;
        rec.tx.updated_at = at;
        if !rec.tx.state.is_awaiting_beneficiary() {
            rec.script_due = None;
        }
        self.notify_tx(rec, at, b);
        Ok(())
    }

    fn move_pt(
        &mut self,
        rec: &mut PtRec,
        to: PreTransactionState,
        at: Timestamp,
        b: &mut Batch,
    ) -> Result<()> {
        rec.pt.state = rec.pt.state.transition(to)?;
        rec.pt.updated_at = at;
        self.notify_pt(rec, at, b);
        Ok(())
    }

    /// The pre-transaction behind a transaction goes back to CREATED when its attempt failed.
    fn release_pt(&mut self, tx: &TxRec, at: Timestamp, b: &mut Batch) {
        let Some(pt_id) = &tx.tx.pre_transaction_id else {
            return;
        };
        if let Some(mut pt) = self.pt_staged(pt_id, b) {
            if pt.pt.state == PreTransactionState::Processing
                && pt.pt.transaction_id.as_deref() == Some(tx.tx.id.as_str())
            {
                pt.pt.transaction_id = None;
                if self
                    .move_pt(&mut pt, PreTransactionState::Created, at, b)
                    .is_ok()
                {
                    b.push(Change::Pt(pt));
                }
            }
        }
    }

    fn abort(
        &mut self,
        rec: &mut TxRec,
        reason: AbortReason,
        at: Timestamp,
        b: &mut Batch,
    ) -> Result<()> {
        rec.tx.abort_reason = Some(reason);
        rec.tx.expires_at = None;
        self.move_tx(rec, TransactionState::Aborted, at, b)?;
        self.release_pt(rec, at, b);
        Ok(())
    }

    fn expire(&mut self, rec: &mut TxRec, at: Timestamp, b: &mut Batch) -> Result<()> {
        self.move_tx(rec, TransactionState::Expired, at, b)?;
        self.release_pt(rec, at, b);
        Ok(())
    }

    /// The beneficiary authorized `pay` (already capped by the balance): NORMAL captures at once,
    /// DEFERRED waits for the merchant within the deferred window.
    fn authorize(
        &mut self,
        rec: &mut TxRec,
        ben: &'static Scripted,
        pay: Amount,
        at: Timestamp,
        b: &mut Batch,
    ) -> Result<()> {
        if rec.tx.state == TransactionState::Processing {
            self.move_tx(rec, TransactionState::Authorizing, at, b)?;
        }
        let window = self
            .shop(&rec.tx.shop_id)?
            .settings
            .deferred_capture_window_s;
        rec.tx.payers.push(Payer {
            beneficiary: rec
                .requested_as
                .clone()
                .unwrap_or_else(|| ben.id.to_string()),
            amount_cents: pay,
            authorizations: vec![Authorization {
                number: authorization_number(),
                kind: "DEBIT".to_string(),
                amount_cents: pay,
                validated_at: at,
                holder: ben.holder.to_string(),
            }],
        });
        rec.tx.authorized_cents = pay;
        rec.accepted_amount = None;
        match rec.tx.capture_mode {
            CaptureMode::Normal => {
                rec.tx.captured_cents = pay;
                rec.tx.expires_at = None;
                self.move_tx(rec, TransactionState::Validated, at, b)?;
            }
            CaptureMode::Deferred => {
                rec.tx.expires_at = Some(at.plus_secs(window as i64));
                self.move_tx(rec, TransactionState::Authorized, at, b)?;
            }
        }
        if ben.depletes() {
            let mut st = self.ben_staged(ben.id, b);
            st.balance_cents = st.balance_cents.saturating_sub(pay);
            b.push(Change::Ben(st));
        }
        if let Some(pt_id) = rec.tx.pre_transaction_id.clone() {
            if let Some(mut pt) = self.pt_staged(&pt_id, b) {
                if pt.pt.state == PreTransactionState::Processing {
                    pt.pt.transaction_id = Some(rec.tx.id.clone());
                    self.move_pt(&mut pt, PreTransactionState::Used, at, b)?;
                    b.push(Change::Pt(pt));
                }
            }
        }
        Ok(())
    }

    // ---- time -----------------------------------------------------------------------------

    fn run_due(&mut self, now: Timestamp, b: &mut Batch) {
        let due_txs: Vec<String> = self
            .txs
            .values()
            .filter(|r| tx_due(r).is_some_and(|d| d <= now))
            .map(|r| r.tx.id.clone())
            .collect();
        for id in due_txs {
            let Some(mut rec) = self.tx_staged(&id, b) else {
                continue;
            };
            let mut changed = false;
            for _ in 0..8 {
                match self.advance_tx(&mut rec, now, b) {
                    Ok(true) => changed = true,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::error!("transaction {id}: {e}");
                        break;
                    }
                }
            }
            if changed {
                b.push(Change::Tx(rec));
            }
        }
        let due_pts: Vec<String> = self
            .pts
            .values()
            .filter(|r| !r.pt.state.is_terminal() && r.pt.expires_at <= now)
            .map(|r| r.pt.id.clone())
            .collect();
        for id in due_pts {
            let Some(mut pt) = self.pt_staged(&id, b) else {
                continue;
            };
            if pt.pt.state.is_terminal() || pt.pt.expires_at > now {
                continue;
            }
            let at = pt.pt.expires_at;
            if let Some(tx_id) = pt.pt.transaction_id.clone() {
                if let Some(mut tx) = self.tx_staged(&tx_id, b) {
                    if tx.tx.state.is_awaiting_beneficiary() {
                        tx.tx.expires_at = Some(at);
                        let _ = self.move_tx(&mut tx, TransactionState::Expired, at, b);
                        b.push(Change::Tx(tx));
                    }
                }
            }
            if self
                .move_pt(&mut pt, PreTransactionState::Expired, at, b)
                .is_ok()
            {
                b.push(Change::Pt(pt));
            }
        }
    }

    /// One due step of a transaction; `Ok(false)` when nothing was due.
    fn advance_tx(&mut self, rec: &mut TxRec, now: Timestamp, b: &mut Batch) -> Result<bool> {
        let state = rec.tx.state;
        let expiry = rec.tx.expires_at.filter(|e| *e <= now);
        let script = rec
            .script_due
            .filter(|d| *d <= now && state.is_awaiting_beneficiary());
        match (script, expiry) {
            (Some(d), e) if e.is_none_or(|e| d < e) => {
                self.script_step(rec, d, b)?;
                Ok(true)
            }
            (_, Some(e))
                if state.is_awaiting_beneficiary() || state == TransactionState::Authorized =>
            {
                self.expire(rec, e, b)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn script_step(&mut self, rec: &mut TxRec, at: Timestamp, b: &mut Batch) -> Result<()> {
        rec.script_due = None;
        let Some(ben) = rec
            .beneficiary
            .as_deref()
            .and_then(|id| TABLE.iter().find(|t| t.id == id))
        else {
            return Ok(());
        };
        if self.ben_staged(ben.id, b).locked {
            return Ok(());
        }
        let desired = ben.scripted_amount(rec.tx.amount_cents, rec.tx.adjustable);
        let pay = desired.map(|d| d.min(self.balance(ben, b)));
        match (rec.tx.state, desired, pay) {
            (_, None, _) => self.abort(rec, AbortReason::DeclinedByBeneficiary, at, b),
            (_, _, Some(p)) if p.is_zero() => {
                self.abort(rec, AbortReason::InsufficientBalance, at, b)
            }
            (TransactionState::Processing, _, _) => {
                self.move_tx(rec, TransactionState::Authorizing, at, b)?;
                rec.script_due = Some(at.plus_millis(self.half_delay()));
                Ok(())
            }
            (_, _, Some(p)) => self.authorize(rec, ben, p, at, b),
            _ => Ok(()),
        }
    }

    fn half_delay(&self) -> i64 {
        (self.approve_delay_ms / 2) as i64
    }

    /// When a scripted account first acts on a fresh request.
    fn first_script_due(&self, ben: &Scripted, rec: &TxRec, now: Timestamp) -> Option<Timestamp> {
        if !ben.acts_alone() {
            return None;
        }
        let refuses = ben
            .scripted_amount(rec.tx.amount_cents, rec.tx.adjustable)
            .is_none()
            || ben.balance_cents == 0;
        Some(if refuses {
            now.plus_millis(self.approve_delay_ms as i64)
        } else {
            now.plus_millis(self.half_delay())
        })
    }

    /// The earliest instant something falls due (scheduler's next wake-up).
    pub fn next_due(&self) -> Option<Timestamp> {
        let txs = self.txs.values().filter_map(tx_due);
        let pts = self
            .pts
            .values()
            .filter(|p| !p.pt.state.is_terminal())
            .map(|p| p.pt.expires_at);
        let deliveries = self.deliveries.values().filter_map(|d| match d.status {
            DeliveryStatus::Pending if !self.in_flight.contains(&d.id) => d.next_attempt_at,
            DeliveryStatus::Held => d.held_until,
            _ => None,
        });
        txs.chain(pts).chain(deliveries).min()
    }

    // ---- merchant API ---------------------------------------------------------------------

    pub fn issue_token(&mut self, req: &TokenRequest) -> Result<(String, TokenResponse)> {
        let unauthorized = || CvcoError::new(ErrorCode::Unauthorized);
        if req.grant_type != "client_credentials" {
            return Err(unauthorized().with_detail(
                "grant_type attendu : client_credentials.",
                "Expected grant_type: client_credentials.",
            ));
        }
        let shop = self
            .shops
            .values()
            .find(|s| s.client_id == req.client_id)
            .ok_or_else(unauthorized)?;
        if sha256_hex(&shop.client_secret) != sha256_hex(&req.client_secret) {
            return Err(unauthorized());
        }
        let (shop_id, ttl) = (shop.shop_id.clone(), shop.token_ttl_s);
        let token = random_token("sbx_", 40);
        let now = self.now();
        let rec = TokenRec {
            hash: sha256_hex(&token),
            shop_id: shop_id.clone(),
            expires_at: now.plus_secs(ttl as i64),
        };
        self.commit(Batch {
            changes: vec![Change::Token(rec)],
        })?;
        Ok((
            token.clone(),
            TokenResponse {
                access_token: token,
                token_type: "Bearer".to_string(),
                expires_in: ttl,
                shop_id,
            },
        ))
    }

    /// The shop a bearer token acts for.
    pub fn authenticate(&self, token: &str) -> Result<ShopId> {
        let rec = self
            .tokens
            .get(&sha256_hex(token))
            .ok_or_else(|| CvcoError::new(ErrorCode::Unauthorized))?;
        if rec.expires_at <= self.now() {
            return Err(CvcoError::new(ErrorCode::Unauthorized)
                .with_detail("Jeton expiré.", "Token expired."));
        }
        Ok(rec.shop_id.clone())
    }

    /// Replays a request under an idempotency key, or reports a conflict.
    fn idempotent_replay(
        &self,
        shop: &ShopId,
        key: Option<&str>,
        scope: &str,
        body: &serde_json::Value,
    ) -> Result<Option<Transaction>> {
        let id = self.idempotent_id(shop, key, scope, body)?;
        Ok(id.and_then(|id| self.txs.get(&id)).map(|r| r.tx.clone()))
    }

    /// The resource an earlier request with this key created, if any.
    fn idempotent_id(
        &self,
        shop: &ShopId,
        key: Option<&str>,
        scope: &str,
        body: &serde_json::Value,
    ) -> Result<Option<String>> {
        let Some(key) = key else { return Ok(None) };
        let Some(rec) = self.idem.get(&IdemRec::map_key(shop, key)) else {
            return Ok(None);
        };
        if rec.scope != scope || &rec.body != body {
            return Err(
                CvcoError::new(ErrorCode::IdempotencyConflict).with_field("Idempotency-Key")
            );
        }
        Ok(Some(rec.transaction_id.clone()))
    }

    fn check_idem_key(key: Option<&str>) -> Result<()> {
        if let Some(k) = key {
            if k.is_empty() || k.len() > 255 || k.chars().any(|c| c.is_control()) {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "Clé d'idempotence : 1 à 255 caractères imprimables.",
                    "Idempotency key: 1 to 255 printable characters.",
                )
                .with_field("Idempotency-Key"));
            }
        }
        Ok(())
    }

    /// What ANCV knows of a merchant order at this shop: the rest its latest partial
    /// authorization left ("reste dû"). A chained transaction for exactly that rest may go down to
    /// the shop's `remainder_min_cents`, where its contract allows one (cvco-core's rule).
    fn order_facts(&self, shop: &ShopId, merchant_order_id: &str) -> Option<OrderFacts> {
        self.txs
            .values()
            .filter(|r| {
                &r.tx.shop_id == shop
                    && r.tx.merchant_order_id == merchant_order_id
                    && !r.tx.authorized_cents.is_zero()
                    && matches!(
                        r.tx.state,
                        TransactionState::Authorized
                            | TransactionState::Validated
                            | TransactionState::Used
                    )
            })
            .max_by(|a, b| (a.tx.created_at, &a.tx.id).cmp(&(b.tx.created_at, &b.tx.id)))
            .map(|r| OrderFacts {
                remaining_cents: r.tx.amount_cents.saturating_sub(r.tx.authorized_cents),
                cvco_authorized: true,
            })
    }

    fn check_sale(
        shop: &ShopRec,
        amount: Amount,
        channel: Channel,
        order: Option<OrderFacts>,
    ) -> Result<()> {
        shop.settings.check_amount_for(amount, order)?;
        if !shop.channels.contains(&channel) {
            return Err(CvcoError::new(ErrorCode::ShopNotAffiliated)
                .with_detail(
                    &format!("Canal : {}.", channel.as_str()),
                    &format!("Channel: {}.", channel.as_str()),
                )
                .with_field("channel"));
        }
        Ok(())
    }

    /// Checks that an account may be asked to pay.
    fn payable_account(
        &self,
        input: &str,
        b: &Batch,
    ) -> Result<(BeneficiaryId, &'static Scripted)> {
        let (id, ben) = beneficiaries::resolve(input)?;
        if ben.behaviour == Behaviour::Blocked || self.ben_staged(ben.id, b).locked {
            return Err(CvcoError::new(ErrorCode::BeneficiaryBlocked).with_field("beneficiary"));
        }
        Ok((id, ben))
    }

    /// CREATED → PROCESSING: the request reaches the beneficiary's app.
    fn push_to_beneficiary(
        &mut self,
        rec: &mut TxRec,
        id: &BeneficiaryId,
        ben: &'static Scripted,
        now: Timestamp,
        b: &mut Batch,
    ) -> Result<()> {
        let timeout = self.shop(&rec.tx.shop_id)?.settings.authorization_timeout_s;
        rec.beneficiary = Some(ben.id.to_string());
        rec.requested_as = Some(id.as_str().to_string());
        rec.tx.expires_at = Some(now.plus_secs(timeout as i64));
        self.move_tx(rec, TransactionState::Processing, now, b)?;
        rec.script_due = self.first_script_due(ben, rec, now);
        Ok(())
    }

    pub fn create_tx(
        &mut self,
        shop_id: &ShopId,
        req: CreateTransaction,
        key: Option<&str>,
    ) -> Result<(Transaction, bool)> {
        self.run(|s, now, b| {
            if &req.shop_id != shop_id {
                return Err(CvcoError::new(ErrorCode::Forbidden).with_field("shop_id"));
            }
            Self::check_idem_key(key)?;
            let body = serde_json::to_value(&req).expect("request serializes");
            if let Some(tx) = s.idempotent_replay(shop_id, key, "create_transaction", &body)? {
                return Ok((tx, false));
            }
            let amount = req.validate()?;
            let shop = s.shop(shop_id)?.clone();
            let order = s.order_facts(shop_id, &req.merchant_order_id);
            Self::check_sale(&shop, amount, req.channel, order)?;
            let target = match &req.beneficiary {
                Some(input) => Some(s.payable_account(input, b)?),
                None => None,
            };
            let mut rec = TxRec {
                tx: Transaction {
                    id: new_id("tx_"),
                    shop_id: shop_id.clone(),
                    merchant_order_id: req.merchant_order_id.clone(),
                    amount_cents: amount,
                    currency: "EUR".to_string(),
                    channel: req.channel,
                    adjustable: req.adjustable.unwrap_or(shop.settings.adjustable),
                    capture_mode: req.capture_mode,
                    state: TransactionState::Created,
                    abort_reason: None,
                    created_at: now,
                    updated_at: now,
                    expires_at: None,
                    payers: Vec::new(),
                    refunds: Vec::new(),
                    authorized_cents: Amount::ZERO,
                    captured_cents: Amount::ZERO,
                    refunded_cents: Amount::ZERO,
                    pre_transaction_id: None,
                    notification_url: req.notification_url.clone(),
                },
                seq: 0,
                beneficiary: None,
                requested_as: None,
                script_due: None,
                accepted_amount: None,
            };
            if let Some((id, ben)) = target {
                s.push_to_beneficiary(&mut rec, &id, ben, now, b)?;
            }
            remember_key(b, shop_id, key, "create_transaction", body, &rec.tx.id, now);
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok((tx, true))
        })
    }

    pub fn get_tx(&mut self, shop: &ShopId, id: &str) -> Result<Transaction> {
        self.sync();
        Ok(self.own_tx(shop, id)?.tx)
    }

    pub fn list_tx(&mut self, shop: &ShopId, filter: &TransactionFilter) -> TransactionList {
        self.sync();
        let mut items: Vec<&Transaction> = self
            .txs
            .values()
            .map(|r| &r.tx)
            .filter(|t| &t.shop_id == shop && filter.matches(t))
            .collect();
        items.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        let total = items.len();
        let limit = filter.limit.unwrap_or(100).min(1000);
        let items = items
            .into_iter()
            .skip(filter.offset.unwrap_or(0))
            .take(limit)
            .cloned()
            .collect();
        TransactionList { items, total }
    }

    pub fn request_authorization(
        &mut self,
        shop: &ShopId,
        id: &str,
        req: &RequestAuthorization,
        key: Option<&str>,
    ) -> Result<Transaction> {
        self.run(|s, now, b| {
            Self::check_idem_key(key)?;
            // The key is scoped to the transaction: the same push repeated answers it as it is now.
            let scope = format!("request_authorization:{id}");
            let body = serde_json::to_value(req).expect("request serializes");
            if s.idempotent_id(shop, key, &scope, &body)?.is_some() {
                return Ok(s.own_tx(shop, id)?.tx);
            }
            let mut rec = s.own_tx(shop, id)?;
            rec.tx.state.transition(TransactionState::Processing)?;
            let (bid, ben) = s.payable_account(&req.beneficiary, b)?;
            s.push_to_beneficiary(&mut rec, &bid, ben, now, b)?;
            remember_key(b, shop, key, &scope, body, &rec.tx.id, now);
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok(tx)
        })
    }

    pub fn capture(
        &mut self,
        shop: &ShopId,
        id: &str,
        req: &CaptureRequest,
    ) -> Result<Transaction> {
        self.run(|s, now, b| {
            let mut rec = s.own_tx(shop, id)?;
            if rec.tx.capture_mode != CaptureMode::Deferred
                || rec.tx.state != TransactionState::Authorized
            {
                return Err(rec
                    .tx
                    .state
                    .transition(TransactionState::Validated)
                    .err()
                    .unwrap_or_else(|| {
                        err(
                            ErrorCode::IllegalTransition,
                            "Seule une autorisation à capture différée se capture.",
                            "Only a deferred-capture authorization can be captured.",
                        )
                    }));
            }
            let amount = match req.amount_cents {
                None => rec.tx.authorized_cents,
                Some(c) => {
                    let a = Amount::from_i64(c).map_err(|e| e.with_field("amount_cents"))?;
                    if a.is_zero() || a > rec.tx.authorized_cents {
                        return Err(err(
                            ErrorCode::InvalidAmount,
                            &format!("Entre 0,01 € et {}.", rec.tx.authorized_cents.format_fr()),
                            &format!("Between €0.01 and {}.", rec.tx.authorized_cents.format_en()),
                        )
                        .with_field("amount_cents"));
                    }
                    a
                }
            };
            rec.tx.captured_cents = amount;
            s.credit_back(&rec, rec.tx.authorized_cents.saturating_sub(amount), b);
            rec.tx.expires_at = None;
            s.move_tx(&mut rec, TransactionState::Validated, now, b)?;
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok(tx)
        })
    }

    pub fn cancel(
        &mut self,
        shop_id: &ShopId,
        id: &str,
        req: &CancelRequest,
    ) -> Result<Transaction> {
        self.run(|s, now, b| {
            let mut rec = s.own_tx(shop_id, id)?;
            let shop = s.shop(shop_id)?;
            if let Some(expected) = &shop.cancel_password {
                let given = req.password.as_deref().unwrap_or("");
                if sha256_hex(given) != sha256_hex(expected) {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "Mot de passe d'annulation incorrect.",
                        "Wrong cancellation password.",
                    )
                    .with_field("password"));
                }
            }
            let debited = match rec.tx.state {
                TransactionState::Authorized => rec.tx.authorized_cents,
                TransactionState::Validated => {
                    rec.tx.captured_cents.saturating_sub(rec.tx.refunded_cents)
                }
                _ => Amount::ZERO,
            };
            s.move_tx(&mut rec, TransactionState::Cancelled, now, b)?;
            s.credit_back(&rec, debited, b);
            // A cancellation is a void: what was captured and not refunded goes back, so the
            // transaction keeps no captured money (captured = refunded, net 0).
            rec.tx.captured_cents = rec.tx.refunded_cents;
            rec.tx.expires_at = None;
            if let Some(pt_id) = rec.tx.pre_transaction_id.clone() {
                if let Some(mut pt) = s.pt_staged(&pt_id, b) {
                    if pt.pt.state == PreTransactionState::Processing {
                        s.move_pt(&mut pt, PreTransactionState::Cancelled, now, b)?;
                        b.push(Change::Pt(pt));
                    }
                }
            }
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok(tx)
        })
    }

    pub fn refund(
        &mut self,
        shop: &ShopId,
        id: &str,
        req: &RefundRequest,
        key: Option<&str>,
    ) -> Result<(Transaction, bool)> {
        self.run(|s, now, b| {
            Self::check_idem_key(key)?;
            let scope = format!("refund:{id}");
            let body = serde_json::to_value(req).expect("request serializes");
            let mut rec = s.own_tx(shop, id)?;
            if let Some(tx) = s.idempotent_replay(shop, key, &scope, &body)? {
                return Ok((tx, false));
            }
            if !rec.tx.state.can_refund() {
                return Err(err(
                    ErrorCode::IllegalTransition,
                    &format!(
                        "Remboursement impossible en {} : annulez avant l'encaissement.",
                        rec.tx.state.as_str()
                    ),
                    &format!(
                        "No refund in {}: cancel before capture.",
                        rec.tx.state.as_str()
                    ),
                ));
            }
            let left = rec.tx.captured_cents.saturating_sub(rec.tx.refunded_cents);
            let amount = match req.amount_cents {
                None => left,
                Some(c) => Amount::from_i64(c).map_err(|e| e.with_field("amount_cents"))?,
            };
            if req.amount_cents.is_some() && amount.is_zero() {
                return Err(err(
                    ErrorCode::InvalidAmount,
                    "Le montant doit être positif.",
                    "The amount must be positive.",
                )
                .with_field("amount_cents"));
            }
            if amount > left || amount.is_zero() {
                return Err(CvcoError::new(ErrorCode::RefundExceedsCaptured)
                    .with_detail(
                        &format!("Reste remboursable : {}.", left.format_fr()),
                        &format!("Refundable left: {}.", left.format_en()),
                    )
                    .with_field("amount_cents"));
            }
            if let Some(reason) = &req.reason {
                if reason.chars().count() > 255 {
                    return Err(err(
                        ErrorCode::InvalidRequest,
                        "Motif : 255 caractères au plus.",
                        "Reason: 255 characters at most.",
                    )
                    .with_field("reason"));
                }
            }
            rec.tx.refunds.push(Refund {
                id: new_id("rf_"),
                amount_cents: amount,
                created_at: now,
                reason: req.reason.clone(),
            });
            rec.tx.refunded_cents = rec.tx.refunded_cents.checked_add(amount)?;
            s.credit_back(&rec, amount, b);
            rec.tx.updated_at = now;
            // A refund is not a state change, but merchants want to hear about it.
            s.notify_tx(&mut rec, now, b);
            remember_key(b, shop, key, &scope, body, &rec.tx.id, now);
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok((tx, true))
        })
    }

    pub fn create_pt(
        &mut self,
        shop_id: &ShopId,
        req: CreatePreTransaction,
        base_url: &str,
        key: Option<&str>,
    ) -> Result<(PreTransaction, bool)> {
        self.run(|s, now, b| {
            if &req.shop_id != shop_id {
                return Err(CvcoError::new(ErrorCode::Forbidden).with_field("shop_id"));
            }
            Self::check_idem_key(key)?;
            let body = serde_json::to_value(&req).expect("request serializes");
            let scope = "create_pre_transaction";
            if let Some(id) = s.idempotent_id(shop_id, key, scope, &body)? {
                if let Some(p) = s.pts.get(&id) {
                    return Ok((p.pt.clone(), false));
                }
            }
            let amount = req.validate()?;
            let shop = s.shop(shop_id)?.clone();
            let order = s.order_facts(shop_id, &req.merchant_order_id);
            Self::check_sale(&shop, amount, req.channel, order)?;
            let expires_in = req.expires_in_s.unwrap_or(match req.delivery {
                Delivery::Email { .. } => shop.settings.email_request_expiry_s,
                Delivery::Qr => shop.settings.qr_request_expiry_s,
            });
            if expires_in == 0 || expires_in > 30 * 24 * 3600 {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "Validité entre 1 s et 30 jours.",
                    "Expiry between 1 s and 30 days.",
                )
                .with_field("expires_in_s"));
            }
            let id = new_id("pt_");
            let delivery = match req.delivery {
                Delivery::Email { email } => Delivery::Email {
                    email: BeneficiaryId::parse(&email)?.as_str().to_string(),
                },
                Delivery::Qr => Delivery::Qr,
            };
            let pt = PreTransaction {
                id: id.clone(),
                shop_id: shop_id.clone(),
                merchant_order_id: req.merchant_order_id.clone(),
                amount_cents: amount,
                currency: "EUR".to_string(),
                channel: req.channel,
                delivery: delivery.clone(),
                adjustable: req.adjustable.unwrap_or(shop.settings.adjustable),
                capture_mode: req.capture_mode,
                state: PreTransactionState::Created,
                created_at: now,
                updated_at: now,
                expires_at: now.plus_secs(expires_in as i64),
                qr_payload: PaymentQr {
                    pre_transaction_id: id.clone(),
                    shop_id: shop_id.clone(),
                    amount_cents: amount,
                }
                .payload(),
                payment_url: format!("{base_url}/app/pay/{id}"),
                transaction_id: None,
                notification_url: req.notification_url.clone(),
            };
            if let Delivery::Email { email } = &delivery {
                b.push(Change::Email(payment_request_email(&shop, &pt, email)));
            }
            remember_key(b, shop_id, key, scope, body, &pt.id, now);
            b.push(Change::Pt(PtRec {
                pt: pt.clone(),
                seq: 0,
            }));
            Ok((pt, true))
        })
    }

    pub fn get_pt(&mut self, shop: &ShopId, id: &str) -> Result<PreTransaction> {
        self.sync();
        Ok(self.own_pt(shop, id)?.pt)
    }

    pub fn cancel_pt(&mut self, shop: &ShopId, id: &str) -> Result<PreTransaction> {
        self.run(|s, now, b| {
            let mut pt = s.own_pt(shop, id)?;
            s.move_pt(&mut pt, PreTransactionState::Cancelled, now, b)?;
            if let Some(tx_id) = pt.pt.transaction_id.clone() {
                if let Some(mut tx) = s.tx_staged(&tx_id, b) {
                    if tx.tx.state.is_awaiting_beneficiary() {
                        tx.tx.expires_at = None;
                        s.move_tx(&mut tx, TransactionState::Cancelled, now, b)?;
                        b.push(Change::Tx(tx));
                    }
                }
            }
            let out = pt.pt.clone();
            b.push(Change::Pt(pt));
            Ok(out)
        })
    }

    /// The statement of one business day. Reading the statement of a day that has closed marks
    /// its VALIDATED transactions USED: ANCV has remitted them.
    pub fn remittance(&mut self, shop_id: &ShopId, date: Date) -> Result<RemittanceStatement> {
        self.run(|s, now, b| {
            let shop = s.shop(shop_id)?.clone();
            let (start, end) = Timestamp::business_day_bounds(date, shop.settings.closing_hour);
            let mut ids: Vec<(Timestamp, String)> = s
                .txs
                .values()
                .filter(|r| &r.tx.shop_id == shop_id)
                .filter_map(|r| {
                    wire::remittance_line(&r.tx, shop.fee_bps)
                        .map(|l| (l.authorized_at, r.tx.id.clone()))
                })
                .filter(|(at, _)| *at >= start && *at < end)
                .collect();
            ids.sort();
            let mut lines = Vec::new();
            for (_, id) in ids {
                let mut rec = s.tx_staged(&id, b).ok_or_else(tx_not_found)?;
                if end <= now && rec.tx.state == TransactionState::Validated {
                    s.move_tx(&mut rec, TransactionState::Used, now, b)?;
                    b.push(Change::Tx(rec.clone()));
                }
                lines.extend(wire::remittance_line(&rec.tx, shop.fee_bps));
            }
            Ok(wire::remittance_statement(
                shop_id.clone(),
                date,
                shop.fee_bps,
                lines,
            ))
        })
    }

    pub fn totals(
        &mut self,
        shop_id: &ShopId,
        from: Date,
        to: Date,
        closing_hour: Option<u8>,
    ) -> Result<DailyTotals> {
        self.sync();
        let shop = self.shop(shop_id)?;
        let closing = closing_hour.unwrap_or(shop.settings.closing_hour);
        if closing > 23 {
            return Err(err(
                ErrorCode::InvalidRequest,
                "Heure de clôture entre 0 et 23.",
                "Closing hour between 0 and 23.",
            )
            .with_field("closing_hour"));
        }
        if to < from {
            return Err(err(
                ErrorCode::InvalidRequest,
                "« to » précède « from ».",
                "\"to\" is before \"from\".",
            )
            .with_field("to"));
        }
        let mut days: BTreeMap<Date, DailyTotal> = BTreeMap::new();
        let mut d = from;
        while d <= to {
            if days.len() >= 366 {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "366 jours au plus.",
                    "366 days at most.",
                )
                .with_field("to"));
            }
            days.insert(
                d,
                DailyTotal {
                    date: d,
                    count: 0,
                    gross_cents: Amount::ZERO,
                    refunded_cents: Amount::ZERO,
                    net_cents: Amount::ZERO,
                    cancelled_count: 0,
                    declined_count: 0,
                    expired_count: 0,
                },
            );
            d = d.succ();
        }
        for t in self
            .txs
            .values()
            .map(|r| &r.tx)
            .filter(|t| &t.shop_id == shop_id)
        {
            let authorized_at = t
                .payers
                .iter()
                .flat_map(|p| p.authorizations.iter().map(|a| a.validated_at))
                .max();
            use TransactionState::*;
            let when = match t.state {
                Authorized | Validated | Used => authorized_at.unwrap_or(t.updated_at),
                Cancelled | Aborted | Expired => t.updated_at,
                _ => continue,
            };
            let Some(day) = days.get_mut(&when.business_date(closing)) else {
                continue;
            };
            match t.state {
                Authorized | Validated | Used => {
                    let gross = if t.state == Authorized {
                        t.authorized_cents
                    } else {
                        t.captured_cents
                    };
                    day.count += 1;
                    day.gross_cents = day.gross_cents.saturating_add_amount(gross);
                    day.refunded_cents = day.refunded_cents.saturating_add_amount(t.refunded_cents);
                    day.net_cents = day
                        .net_cents
                        .saturating_add_amount(gross.saturating_sub(t.refunded_cents));
                }
                Cancelled => day.cancelled_count += 1,
                Aborted => day.declined_count += 1,
                Expired => day.expired_count += 1,
                _ => {}
            }
        }
        Ok(DailyTotals {
            shop_id: shop_id.clone(),
            closing_hour: closing,
            days: days.into_values().collect(),
        })
    }

    // ---- the beneficiary app --------------------------------------------------------------

    pub fn ben_view(&self, ben: &Scripted) -> BenView {
        let st = self.ben_staged(ben.id, &Batch::default());
        BenView {
            id: ben.id.to_string(),
            email: ben.email.to_string(),
            holder: ben.holder.to_string(),
            behaviour: ben.behaviour,
            description_fr: ben.description_fr.to_string(),
            balance_cents: if ben.depletes() {
                st.balance_cents
            } else {
                ben.initial_balance()
            },
            locked: st.locked,
            wrong_pins: st.wrong_pins,
            id_qr_payload: ben.id_qr_payload(),
        }
    }

    pub fn beneficiaries(&mut self) -> Vec<BenView> {
        self.sync();
        TABLE.iter().map(|b| self.ben_view(b)).collect()
    }

    pub fn pending(&mut self, input: &str) -> Result<Pending> {
        self.sync();
        let (_, ben) = beneficiaries::resolve(input)?;
        let mut transactions: Vec<Transaction> = self
            .txs
            .values()
            .filter(|r| {
                r.beneficiary.as_deref() == Some(ben.id) && r.tx.state.is_awaiting_beneficiary()
            })
            .map(|r| r.tx.clone())
            .collect();
        transactions.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        let mut payment_requests: Vec<PreTransaction> = self
            .pts
            .values()
            .filter(|p| p.pt.state == PreTransactionState::Created)
            .filter(|p| matches!(&p.pt.delivery, Delivery::Email { email } if email == ben.email))
            .map(|p| p.pt.clone())
            .collect();
        payment_requests.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        Ok(Pending {
            beneficiary: ben.id.to_string(),
            transactions,
            payment_requests,
        })
    }

    /// A transaction the given account may act on in the app.
    fn app_tx(&self, tx_id: &str, input: &str, b: &Batch) -> Result<(TxRec, &'static Scripted)> {
        let (_, ben) = beneficiaries::resolve(input)?;
        if self.ben_staged(ben.id, b).locked {
            return Err(CvcoError::new(ErrorCode::AccountLocked));
        }
        let rec = self.tx_staged(tx_id, b).ok_or_else(tx_not_found)?;
        if rec.beneficiary.as_deref() != Some(ben.id) {
            return Err(err(
                ErrorCode::Forbidden,
                "Cette demande est adressée à un autre compte.",
                "This request is addressed to another account.",
            ));
        }
        if !rec.tx.state.is_awaiting_beneficiary() {
            return Err(err(
                ErrorCode::IllegalTransition,
                &format!("La transaction est {}.", rec.tx.state.as_str()),
                &format!("The transaction is {}.", rec.tx.state.as_str()),
            ));
        }
        Ok((rec, ben))
    }

    fn app_amount(rec: &TxRec, amount: Option<i64>) -> Result<Amount> {
        let Some(c) = amount else {
            return Ok(rec.accepted_amount.unwrap_or(rec.tx.amount_cents));
        };
        let a = Amount::from_i64(c).map_err(|e| e.with_field("amount_cents"))?;
        if a.is_zero() || a > rec.tx.amount_cents {
            return Err(err(
                ErrorCode::InvalidAmount,
                &format!("Entre 0,01 € et {}.", rec.tx.amount_cents.format_fr()),
                &format!("Between €0.01 and {}.", rec.tx.amount_cents.format_en()),
            )
            .with_field("amount_cents"));
        }
        if a < rec.tx.amount_cents && !rec.tx.adjustable {
            return Err(err(
                ErrorCode::InvalidAmount,
                "Le commerçant n'autorise pas l'ajustement du montant.",
                "The merchant does not allow adjusting the amount.",
            )
            .with_field("amount_cents"));
        }
        Ok(a)
    }

    /// The beneficiary validated the amount ("Payer") and reaches the code entry: AUTHORIZING.
    pub fn app_accept(
        &mut self,
        tx_id: &str,
        input: &str,
        amount: Option<i64>,
    ) -> Result<Transaction> {
        self.run(|s, now, b| {
            let (mut rec, _) = s.app_tx(tx_id, input, b)?;
            let a = Self::app_amount(&rec, amount)?;
            rec.accepted_amount = Some(a);
            rec.script_due = None;
            if rec.tx.state == TransactionState::Processing {
                s.move_tx(&mut rec, TransactionState::Authorizing, now, b)?;
            }
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok(tx)
        })
    }

    /// Code entry. The outer error commits nothing; the inner one (wrong code, lock) is committed.
    pub fn app_confirm(
        &mut self,
        tx_id: &str,
        input: &str,
        pin: &str,
        amount: Option<i64>,
    ) -> Result<Result<Transaction>> {
        self.run(|s, now, b| {
            let (mut rec, ben) = s.app_tx(tx_id, input, b)?;
            let desired = Self::app_amount(&rec, amount)?;
            let mut st = s.ben_staged(ben.id, b);
            rec.script_due = None;
            if rec.tx.state == TransactionState::Processing {
                s.move_tx(&mut rec, TransactionState::Authorizing, now, b)?;
            }
            if pin.trim() != ben.pin {
                st.wrong_pins += 1;
                let left = 3u8.saturating_sub(st.wrong_pins);
                let outcome = if left == 0 {
                    st.locked = true;
                    s.abort(&mut rec, AbortReason::AccountLocked, now, b)?;
                    Err(CvcoError::new(ErrorCode::AccountLocked))
                } else {
                    rec.accepted_amount = Some(desired);
                    Err(CvcoError::new(ErrorCode::WrongPin)
                        .with_detail(
                            &format!("Il reste {left} essai(s)."),
                            &format!("{left} attempt(s) left."),
                        )
                        .with_field("pin"))
                };
                b.push(Change::Ben(st));
                b.push(Change::Tx(rec));
                return Ok(outcome);
            }
            if st.wrong_pins != 0 {
                st.wrong_pins = 0;
                b.push(Change::Ben(st));
            }
            let pay = desired.min(s.balance(ben, b));
            if pay.is_zero() {
                s.abort(&mut rec, AbortReason::InsufficientBalance, now, b)?;
            } else {
                s.authorize(&mut rec, ben, pay, now, b)?;
            }
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok(Ok(tx))
        })
    }

    pub fn app_decline(&mut self, tx_id: &str, input: &str) -> Result<Transaction> {
        self.run(|s, now, b| {
            let (mut rec, _) = s.app_tx(tx_id, input, b)?;
            s.abort(&mut rec, AbortReason::DeclinedByBeneficiary, now, b)?;
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok(tx)
        })
    }

    /// The app scanned a payment QR code or followed an e-mailed link: a transaction is created
    /// from the pre-transaction, addressed to this beneficiary.
    pub fn app_pay(
        &mut self,
        input: &str,
        pt_id: Option<&str>,
        qr_payload: Option<&str>,
    ) -> Result<Transaction> {
        self.run(|s, now, b| {
            let (bid, ben) = beneficiaries::resolve(input)?;
            if s.ben_staged(ben.id, b).locked {
                return Err(CvcoError::new(ErrorCode::AccountLocked));
            }
            if ben.behaviour == Behaviour::Blocked {
                return Err(CvcoError::new(ErrorCode::BeneficiaryBlocked).with_field("beneficiary"));
            }
            let pt_id = match (pt_id, qr_payload) {
                (Some(id), _) => id.to_string(),
                (None, Some(payload)) => {
                    let qr = PaymentQr::parse(payload).map_err(|e| e.with_field("qr_payload"))?;
                    let pt = s.pts.get(&qr.pre_transaction_id).ok_or_else(pt_not_found)?;
                    if pt.pt.shop_id != qr.shop_id || pt.pt.amount_cents != qr.amount_cents {
                        return Err(err(
                            ErrorCode::InvalidRequest,
                            "QR code falsifié : il ne correspond pas à la demande.",
                            "Tampered QR code: it does not match the request.",
                        )
                        .with_field("qr_payload"));
                    }
                    qr.pre_transaction_id
                }
                (None, None) => {
                    return Err(err(
                        ErrorCode::InvalidRequest,
                        "pre_transaction_id ou qr_payload attendu.",
                        "pre_transaction_id or qr_payload expected.",
                    ))
                }
            };
            let mut pt = s.pt_staged(&pt_id, b).ok_or_else(pt_not_found)?;
            if pt.pt.state != PreTransactionState::Created {
                return Err(err(
                    ErrorCode::IllegalTransition,
                    &format!("Demande de paiement {}.", pt.pt.state.as_str()),
                    &format!("Payment request {}.", pt.pt.state.as_str()),
                ));
            }
            let timeout = s.shop(&pt.pt.shop_id)?.settings.authorization_timeout_s;
            let mut rec = TxRec {
                tx: Transaction {
                    id: new_id("tx_"),
                    shop_id: pt.pt.shop_id.clone(),
                    merchant_order_id: pt.pt.merchant_order_id.clone(),
                    amount_cents: pt.pt.amount_cents,
                    currency: pt.pt.currency.clone(),
                    channel: pt.pt.channel,
                    adjustable: pt.pt.adjustable,
                    capture_mode: pt.pt.capture_mode,
                    state: TransactionState::Processing,
                    abort_reason: None,
                    created_at: now,
                    updated_at: now,
                    expires_at: Some(now.plus_secs(timeout as i64).min(pt.pt.expires_at)),
                    payers: Vec::new(),
                    refunds: Vec::new(),
                    authorized_cents: Amount::ZERO,
                    captured_cents: Amount::ZERO,
                    refunded_cents: Amount::ZERO,
                    pre_transaction_id: Some(pt.pt.id.clone()),
                    notification_url: pt.pt.notification_url.clone(),
                },
                seq: 0,
                beneficiary: Some(ben.id.to_string()),
                requested_as: Some(bid.as_str().to_string()),
                script_due: None,
                accepted_amount: None,
            };
            s.notify_tx(&mut rec, now, b);
            pt.pt.transaction_id = Some(rec.tx.id.clone());
            s.move_pt(&mut pt, PreTransactionState::Processing, now, b)?;
            b.push(Change::Pt(pt));
            let tx = rec.tx.clone();
            b.push(Change::Tx(rec));
            Ok(tx)
        })
    }

    pub fn app_unlock(&mut self, input: &str) -> Result<BenView> {
        self.run(|s, _, b| {
            let (_, ben) = beneficiaries::resolve(input)?;
            let mut st = s.ben_staged(ben.id, b);
            st.locked = false;
            st.wrong_pins = 0;
            b.push(Change::Ben(st));
            Ok(ben)
        })
        .map(|ben| self.ben_view(ben))
    }

    pub fn app_reset_balance(&mut self, input: &str) -> Result<BenView> {
        self.run(|s, _, b| {
            let (_, ben) = beneficiaries::resolve(input)?;
            let mut st = s.ben_staged(ben.id, b);
            st.balance_cents = ben.initial_balance();
            b.push(Change::Ben(st));
            Ok(ben)
        })
        .map(|ben| self.ben_view(ben))
    }

    pub fn pt_public(&mut self, id: &str) -> Result<PreTransaction> {
        self.sync();
        self.pts
            .get(id)
            .map(|p| p.pt.clone())
            .ok_or_else(pt_not_found)
    }

    pub fn tx_public(&mut self, id: &str) -> Result<TxRec> {
        self.sync();
        self.txs.get(id).cloned().ok_or_else(tx_not_found)
    }

    pub fn shop_name(&self, shop: &ShopId) -> String {
        self.shops
            .get(shop.as_str())
            .map(|s| s.display_name())
            .unwrap_or_else(|| shop.to_string())
    }

    // ---- admin -------------------------------------------------------------------------------

    pub fn create_shop(&mut self, req: CreateShop) -> Result<ShopRec> {
        self.run(|s, now, b| {
            if s.shops.contains_key(req.shop_id.as_str()) {
                return Err(err(
                    ErrorCode::IllegalTransition,
                    "Ce point d'accueil existe déjà.",
                    "This shop already exists.",
                )
                .with_field("shop_id"));
            }
            if s.shops.values().any(|x| x.client_id == req.client_id) {
                return Err(err(
                    ErrorCode::IllegalTransition,
                    "Ce client_id est déjà utilisé.",
                    "This client_id is already used.",
                )
                .with_field("client_id"));
            }
            for (field, v) in [
                ("client_id", &req.client_id),
                ("client_secret", &req.client_secret),
                ("notification_secret", &req.notification_secret),
            ] {
                if v.is_empty() || v.len() > 256 {
                    return Err(err(
                        ErrorCode::ConfigInvalid,
                        "1 à 256 caractères.",
                        "1 to 256 characters.",
                    )
                    .with_field(field));
                }
            }
            req.settings.validate()?;
            let fee_bps = req.fee_bps.unwrap_or(250);
            if fee_bps > 10_000 {
                return Err(err(
                    ErrorCode::ConfigInvalid,
                    "Commission de 10 000 pb au plus.",
                    "Fee of 10,000 bps at most.",
                )
                .with_field("fee_bps"));
            }
            let ttl = req.token_ttl_s.unwrap_or(3600);
            if ttl == 0 || ttl > 86_400 {
                return Err(err(
                    ErrorCode::ConfigInvalid,
                    "Durée du jeton entre 1 et 86 400 s.",
                    "Token lifetime between 1 and 86,400 s.",
                )
                .with_field("token_ttl_s"));
            }
            let mut channels = req.channels.clone();
            channels.dedup();
            let shop = ShopRec {
                shop_id: req.shop_id.clone(),
                name: req.name.clone(),
                client_id: req.client_id.clone(),
                client_secret: req.client_secret.clone(),
                notification_secret: req.notification_secret.clone(),
                channels,
                settings: req.settings.clone(),
                cancel_password: req.cancel_password.clone().filter(|p| !p.is_empty()),
                fee_bps,
                token_ttl_s: ttl,
                created_at: now,
            };
            b.push(Change::Shop(shop.clone()));
            Ok(shop)
        })
    }

    pub fn shop_rec(&self, shop_id: &str) -> Result<ShopRec> {
        self.shops.get(shop_id).cloned().ok_or_else(|| {
            err(
                ErrorCode::NotFound,
                "Point d'accueil inconnu.",
                "Unknown shop.",
            )
        })
    }

    /// Merges a partial settings object (plus channels, cancel_password, fee_bps, token_ttl_s);
    /// unknown keys are refused so a typo is not silently ignored.
    pub fn update_shop(
        &mut self,
        shop_id: &str,
        patch: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ShopRec> {
        self.run(|s, _, b| {
            let mut shop = s.shop_rec(shop_id)?;
            let mut settings =
                match serde_json::to_value(&shop.settings).expect("settings serialize") {
                    serde_json::Value::Object(m) => m,
                    _ => unreachable!("settings are an object"),
                };
            let bad = |field: &str, e: &dyn std::fmt::Display| {
                err(ErrorCode::ConfigInvalid, &format!("{e}."), &format!("{e}.")).with_field(field)
            };
            for (k, v) in patch {
                match k.as_str() {
                    "channels" => {
                        shop.channels =
                            serde_json::from_value(v).map_err(|e| bad("channels", &e))?
                    }
                    "cancel_password" => {
                        shop.cancel_password = serde_json::from_value::<Option<String>>(v)
                            .map_err(|e| bad("cancel_password", &e))?
                            .filter(|p| !p.is_empty())
                    }
                    "fee_bps" => {
                        shop.fee_bps = serde_json::from_value(v).map_err(|e| bad("fee_bps", &e))?
                    }
                    "token_ttl_s" => {
                        shop.token_ttl_s =
                            serde_json::from_value(v).map_err(|e| bad("token_ttl_s", &e))?
                    }
                    "name" => shop.name = serde_json::from_value(v).map_err(|e| bad("name", &e))?,
                    _ if settings.contains_key(&k) => {
                        settings.insert(k, v);
                    }
                    _ => {
                        return Err(err(
                            ErrorCode::ConfigInvalid,
                            "Paramètre inconnu.",
                            "Unknown setting.",
                        )
                        .with_field(&k));
                    }
                }
            }
            shop.settings = serde_json::from_value(serde_json::Value::Object(settings))
                .map_err(|e| bad("settings", &e))?;
            shop.settings.validate()?;
            if shop.fee_bps > 10_000 || shop.token_ttl_s == 0 || shop.token_ttl_s > 86_400 {
                return Err(err(
                    ErrorCode::ConfigInvalid,
                    "fee_bps ≤ 10 000, token_ttl_s entre 1 et 86 400.",
                    "fee_bps ≤ 10,000, token_ttl_s between 1 and 86,400.",
                ));
            }
            b.push(Change::Shop(shop.clone()));
            Ok(shop)
        })
    }

    /// Moves sandbox time forward (or back) for everything: expiries, business days, tokens.
    pub fn advance_clock(&mut self, delta_ms: i64) -> Result<Timestamp> {
        let offset = self.clock_offset_ms.saturating_add(delta_ms);
        self.commit(Batch {
            changes: vec![Change::ClockOffset(offset)],
        })?;
        self.sync();
        Ok(self.now())
    }

    // ---- notification delivery ----------------------------------------------------------------

    /// Releases held notifications whose window closed and picks what is due; each inner list is
    /// delivered in order by one task.
    pub fn due_deliveries(&mut self) -> Vec<Vec<String>> {
        let now = self.now();
        let mut batch = Batch::default();
        let mut held: BTreeMap<String, Vec<DeliveryRec>> = BTreeMap::new();
        for d in self.deliveries.values() {
            if d.status == DeliveryStatus::Held && d.held_until.is_some_and(|h| h <= now) {
                held.entry(d.shop_id.to_string())
                    .or_default()
                    .push(d.clone());
            }
        }
        let mut out = Vec::new();
        for (_, mut group) in held {
            group.sort_by_key(|d| std::cmp::Reverse(d.order));
            let ids: Vec<String> = group.iter().map(|d| d.id.clone()).collect();
            for mut d in group {
                d.status = DeliveryStatus::Pending;
                d.next_attempt_at = Some(now);
                d.held_until = None;
                batch.push(Change::Delivery(d));
            }
            out.push(ids);
        }
        if let Err(e) = self.commit(batch) {
            tracing::error!("could not release held notifications: {e}");
            return Vec::new();
        }
        let released: HashSet<&String> = out.iter().flatten().collect();
        let mut due: Vec<&DeliveryRec> = self
            .deliveries
            .values()
            .filter(|d| {
                d.status == DeliveryStatus::Pending
                    && d.next_attempt_at.is_some_and(|t| t <= now)
                    && !self.in_flight.contains(&d.id)
                    && !released.contains(&d.id)
            })
            .collect();
        due.sort_by_key(|d| d.order);
        let singles: Vec<Vec<String>> = due.into_iter().map(|d| vec![d.id.clone()]).collect();
        out.extend(singles);
        for ids in &out {
            self.in_flight.extend(ids.iter().cloned());
        }
        out
    }

    /// URL, body and signing secret of a delivery still to send.
    pub fn delivery_target(&self, id: &str) -> Option<(String, String, String, bool)> {
        let d = self.deliveries.get(id)?;
        if d.status != DeliveryStatus::Pending {
            return None;
        }
        let secret = self
            .shops
            .get(d.shop_id.as_str())?
            .notification_secret
            .clone();
        Some((d.url.clone(), d.body.clone(), secret, d.duplicate))
    }

    pub fn record_attempt(&mut self, id: &str, attempt: Attempt, acknowledged: bool) {
        let Some(mut d) = self.deliveries.get(id).cloned() else {
            return;
        };
        let duplicate = attempt.duplicate;
        d.attempts.push(attempt);
        if !duplicate {
            let failed = d.attempts.iter().filter(|a| !a.duplicate).count() as u32;
            if acknowledged {
                d.status = DeliveryStatus::Delivered;
                d.next_attempt_at = None;
            } else if failed >= self.retry.max_attempts {
                d.status = DeliveryStatus::Failed;
                d.next_attempt_at = None;
            } else {
                d.next_attempt_at =
                    Some(self.now().plus_millis(self.retry.delay_ms(failed) as i64));
            }
        }
        if let Err(e) = self.commit(Batch {
            changes: vec![Change::Delivery(d)],
        }) {
            tracing::error!("could not store a delivery attempt: {e}");
        }
    }
}

/// When a transaction next needs the clock: its script step or its deadline.
fn tx_due(r: &TxRec) -> Option<Timestamp> {
    let s = r.tx.state;
    let script = r.script_due.filter(|_| s.is_awaiting_beneficiary());
    let expiry =
        r.tx.expires_at
            .filter(|_| s.is_awaiting_beneficiary() || s == TransactionState::Authorized);
    match (script, expiry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Paris wall-clock rendering for French texts: "22/11/2026 à 22:49".
pub fn format_paris(t: Timestamp) -> String {
    let (d, h, m) = t.paris_local();
    format!("{:02}/{:02}/{} à {h:02}:{m:02}", d.day, d.month, d.year)
}

fn payment_request_email(shop: &ShopRec, pt: &PreTransaction, to: &str) -> Email {
    let name = shop.display_name();
    let amount = pt.amount_cents.format_fr();
    let body = format!(
        "Bonjour,\n\n\
         {name} vous demande de régler {amount} en Chèque-Vacances Connect \
         pour la référence {reference}.\n\n\
         Pour payer depuis votre application Chèque-Vacances Connect, ouvrez ce lien :\n{link}\n\n\
         Cette demande expire le {expiry} (heure de Paris).\n\n\
         Si vous n'êtes pas à l'origine de cette commande, ignorez ce message.\n\n\
         — ANCV, Chèque-Vacances Connect (environnement de recette)\n",
        reference = pt.merchant_order_id,
        link = pt.payment_url,
        expiry = format_paris(pt.expires_at),
    );
    Email {
        id: new_id("msg_"),
        shop_id: shop.shop_id.clone(),
        to: to.to_string(),
        subject: format!("Demande de paiement de {amount} – {name}"),
        body,
        link: pt.payment_url.clone(),
        pre_transaction_id: pt.id.clone(),
        created_at: pt.created_at,
    }
}

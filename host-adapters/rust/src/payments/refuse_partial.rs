//! A partial authorization the merchant refuses on the payment's channel (a kiosk has no other
//! tender, cvco-core's `refuses_partial`) is voided wherever the engine records it: the kiosk
//! screen's read, the poller, a notification, the start-up reconciliation. Asked once, whatever
//! the number of readers or instances: under the order's lock the row is read again, and a
//! marker in the database goes to the first instance only.
//!
//! A host that dies between recording the partial authorization (final: never polled again) and
//! recording the void's outcome leaves it held: [`Engine::sweep_refused_partials`], at start-up
//! and every [`SWEEP_EVERY_MS`] in the poller, finds those whose void nobody holds and voids them.

use super::{outcome_unknown, Engine};
use crate::store::{PaymentRow, PaymentStatus, VOID_REFUSED};
use crate::util::now_ms;
use cvco_core::shop::Channel;
use cvco_core::{CvcoError, NormalizedStatus};

/// How often the poller sweeps for refused partial authorizations left unvoided.
pub const SWEEP_EVERY_MS: u64 = 10_000;
/// How far back the sweep looks: a kiosk payment lasts minutes, and older partial
/// authorizations may predate the merchant's choice to refuse them (never voided behind its back).
const SWEEP_HORIZON_MS: i64 = 7 * 24 * 3600 * 1000;
/// Payments voided per merchant and sweep at most (the rest at the next sweep).
const SWEEP_LIMIT: i64 = 32;

impl Engine {
    /// Whether `row` is a partial authorization its merchant refuses on its channel.
    fn refused_partial(&self, row: &PaymentRow) -> bool {
        row.status == PaymentStatus::Known(NormalizedStatus::PartiallyAuthorized)
            && row.is_final
            && self
                .merchant_settings(&row.merchant_id)
                .refuses_partial(row.channel)
    }

    /// Voids `row` when it is a refused partial authorization not voided yet; answers the payment
    /// as now recorded. A void ANCV refuses is recorded (`Store::partial_void`) and never asked
    /// again: the payment stays partially authorized, the reception settles it.
    pub async fn refuse_partial_if_asked(&self, row: PaymentRow) -> PaymentRow {
        if !self.refused_partial(&row) {
            return row;
        }
        match self.void_refused_partial(&row).await {
            Ok(row) => row,
            Err(e) => {
                tracing::warn!(payment_id = %row.payment_id, code = %e.code, "refused partial authorization: void not asked");
                self.store
                    .payment(&row.payment_id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(row)
            }
        }
    }

    async fn void_refused_partial(&self, row: &PaymentRow) -> Result<PaymentRow, CvcoError> {
        // The order's lock: no new payment of the order reads its remainder mid-void.
        let lock = self.order_lock(&row.order_ref);
        let _guard = lock.lock().await;
        let Some(now) = self.store.payment(&row.payment_id).await? else {
            return Ok(row.clone());
        };
        let at = now_ms();
        let claimed = self.refused_partial(&now)
            && self
                .store
                .claim_partial_void(&now.payment_id, at, at - self.void_claim_stale_ms())
                .await?;
        if !claimed {
            return Ok(now);
        }
        tracing::info!(payment_id = %now.payment_id, channel = %now.channel.as_str(), "partial authorization refused here: voiding");
        match self.cancel(&now.payment_id, None).await {
            Ok(row) => Ok(row),
            Err(e) => {
                // Unknown outcome: the claim goes back, the poller reads the truth and the next
                // read asks again if still needed. A refusal stays recorded.
                let marker = (!outcome_unknown(&e)).then_some(VOID_REFUSED);
                self.store
                    .settle_partial_void(&now.payment_id, marker)
                    .await?;
                tracing::warn!(payment_id = %now.payment_id, code = %e.code, "refused partial authorization not voided");
                Ok(self.store.payment(&now.payment_id).await?.unwrap_or(now))
            }
        }
    }

    /// A claim older than this is a dead holder's: the claimed section makes at most the cancel
    /// call (a request timeout, plus the read of a lost answer: another) and a read (a third),
    /// with database writes between; a fourth timeout is the margin. Taking over a live holder's
    /// claim would only send ANCV a second cancel of a cancelled transaction (a replay, no money
    /// moves), so erring long costs a later void, never money.
    fn void_claim_stale_ms(&self) -> i64 {
        4 * self.cfg.request_timeout_ms as i64
    }

    /// Voids the refused partial authorizations no live holder is voiding: recorded (final, so
    /// never polled again) without a marker, or with a stale claim, by a host that died before
    /// recording the void's outcome. Each is read at ANCV first (a void that reached it records
    /// `cancelled`, nothing sent), then goes through [`Engine::refuse_partial_if_asked`], whose
    /// claim stays the arbiter between instances. Answers how many were handed over.
    pub async fn sweep_refused_partials(&self) -> usize {
        let mut merchants = self.tenants.as_ref().map(|t| t.ids()).unwrap_or_default();
        if !merchants.contains(&self.main_merchant) {
            merchants.push(self.main_merchant.clone());
        }
        let mut handed = 0;
        for merchant in merchants {
            if !self
                .merchant_settings(&merchant)
                .refuses_partial(Channel::Kiosk)
            {
                continue;
            }
            let at = now_ms();
            let ids = match self
                .store
                .partials_without_void(
                    &merchant,
                    Channel::Kiosk.as_str(),
                    at - SWEEP_HORIZON_MS,
                    at - self.void_claim_stale_ms(),
                    SWEEP_LIMIT,
                )
                .await
            {
                Ok(ids) => ids,
                Err(_) => continue,
            };
            for id in ids {
                tracing::info!(payment_id = %id, "refused partial authorization left unvoided: voiding");
                match self.refresh(&id).await {
                    Ok(row) => {
                        self.refuse_partial_if_asked(row).await;
                        handed += 1;
                    }
                    // ANCV unreachable: the next sweep tries again.
                    Err(e) => {
                        tracing::warn!(payment_id = %id, code = %e.code, "refused partial authorization: not read")
                    }
                }
            }
        }
        handed
    }
}

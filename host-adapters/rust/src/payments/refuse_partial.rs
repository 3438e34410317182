//! A partial authorization the merchant refuses on the payment's channel (a kiosk has no other
//! tender, cvco-core's `refuses_partial`) is voided wherever the engine records it: the kiosk
//! screen's read, the poller, a notification, the start-up reconciliation. Asked once, whatever
//! the number of readers or instances: under the order's lock the row is read again, and a
//! marker in the database goes to the first instance only.

use super::{outcome_unknown, Engine};
use crate::store::{PaymentRow, PaymentStatus, VOID_REFUSED};
use cvco_core::{CvcoError, NormalizedStatus};

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
        if !self.refused_partial(&now) || !self.store.claim_partial_void(&now.payment_id).await? {
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
}

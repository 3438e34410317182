//! The plugin exports the engine calls, behind a trait: `cvco_plugin_host::Pool` in the host, a
//! fake in the engine's unit tests.

use cvco_core::plugin_api::exports::{
    CancelPayment, CancelPaymentRequest, CapturePayment, CheckConnection, CreatePayment,
    CreatePaymentRequest, DailyTotals, GetPayment, GetPaymentRequest, RefundPayment,
    VerifyNotification,
};
use cvco_core::plugin_api::Export;
use cvco_core::CvcoError;
use cvco_plugin_host::Pool;
use std::future::Future;
use std::pin::Pin;

/// One plugin call's answer (typed as the export's output).
pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, CvcoError>> + Send + 'a>>;

/// The export's input and output types.
pub type In<E> = <E as Export>::Input;
pub type Out<E> = <E as Export>::Output;

macro_rules! plugin_calls {
    ($($(#[$doc:meta])* $method:ident => $export:ident,)*) => {
        /// Every plugin export the host calls, one method each (input and output are cvco-core's
        /// `plugin_api` types).
        pub trait PluginCalls: Send + Sync {
            $($(#[$doc])* fn $method(&self, input: In<$export>) -> Call<'_, Out<$export>>;)*
        }

        impl PluginCalls for Pool {
            $(fn $method(&self, input: In<$export>) -> Call<'_, Out<$export>> {
                Box::pin(async move { self.call_async::<$export>(&input).await })
            })*
        }

        // A merchant's reception point: its pool is looked up (built, rebuilt) at each call.
        impl PluginCalls for crate::tenants::PointPlugin {
            $(fn $method(&self, input: In<$export>) -> Call<'_, Out<$export>> {
                Box::pin(async move { self.pool().await?.call_async::<$export>(&input).await })
            })*
        }
    };
}

plugin_calls! {
    /// Start-up: credentials and allow-list checked against ANCV.
    check_connection => CheckConnection,
    create_payment => CreatePayment,
    create_payment_request => CreatePaymentRequest,
    get_payment => GetPayment,
    get_payment_request => GetPaymentRequest,
    cancel_payment => CancelPayment,
    cancel_payment_request => CancelPaymentRequest,
    capture_payment => CapturePayment,
    refund_payment => RefundPayment,
    verify_notification => VerifyNotification,
    /// ANCV's own figures of a day, for the totals' reconciliation.
    daily_totals => DailyTotals,
}

//! Business-day totals since the last closing, the closing itself, printable receipts.

use super::html_escape;
use crate::payments::Engine;
use crate::store::{PaymentStatus, Unclosed};
use crate::util::{now_ms, rfc3339};
use cvco_core::plugin_api::{DailyReport, DailyTotalsInput};
use cvco_core::time::Date;
use cvco_core::{Amount, CvcoError, NormalizedStatus, Timestamp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Totals of a business day; `with_ancv` adds ANCV's own figures for that day (plugin
/// `daily_totals`), for reconciliation. The day closes at the merchant's `closing_hour`
/// (`Engine::merchant_settings`, the one closing-hour setting). The open period (today, or no
/// date) is what the next closing will take: everything recorded and not closed yet, whatever
/// its authorization time; another day is a report of the payments authorized in it.
pub async fn totals(
    engine: &Engine,
    merchant_id: &str,
    date: Option<&str>,
    with_ancv: bool,
) -> Result<Value, CvcoError> {
    let hour = engine.merchant_settings(merchant_id).closing_hour;
    let today = Timestamp(now_ms()).business_date(hour);
    let date = match date.filter(|d| !d.is_empty()) {
        Some(d) => Date::parse(d).map_err(|e| e.with_field("date"))?,
        None => today,
    };
    if date != today {
        return totals_of(engine, merchant_id, date, hour, with_ancv).await;
    }
    let (start, end) = Timestamp::business_day_bounds(date, hour);
    let since = period_start(engine, merchant_id, start.0, end.0).await?;
    let rows = engine
        .store
        .unclosed_payments(merchant_id, i64::MAX)
        .await?;
    let mut t = period_totals(&rows, date, hour, since, end.0);
    if with_ancv {
        t["ancv"] = ancv_figures_or_null(engine, merchant_id, date).await;
    }
    Ok(t)
}

/// Where the period shown began: the day's latest closing, else the day's start.
async fn period_start(
    engine: &Engine,
    merchant_id: &str,
    start: i64,
    end: i64,
) -> Result<i64, CvcoError> {
    let last = engine.store.last_closing(merchant_id, start, end).await?;
    Ok(last.unwrap_or(start).max(start))
}

/// The figures of what a closing takes: per payment, what changed since the closings before
/// (a sale, more authorized, a refund, a cancellation), each line with its authorization time
/// (`earlier`: authorized before the period began, recorded in it).
fn period_totals(rows: &[Unclosed], date: Date, hour: u8, since: i64, until: i64) -> Value {
    let mut t = Tally::default();
    for p in rows {
        let more = p.authorized_cents - p.closed_authorized_cents;
        let refund = p.refunded_cents - p.closed_refunded_cents;
        if p.closed_authorized_cents == 0 && p.authorized_cents > 0 {
            t.count += 1;
        }
        t.gross += more;
        t.refunded += refund;
        if more != 0 || refund != 0 {
            t.lines.push(json!({
                "payment_id": p.payment_id,
                "transaction_id": p.transaction_id,
                "order_ref": p.order_ref,
                "status": p.status,
                "authorized_cents": more,
                "refunded_cents": refund,
                "at": p.authorized_at.map(rfc3339),
                "recorded_at": rfc3339(p.updated_at),
                "earlier": p.authorized_at.is_some_and(|a| a < since),
            }));
        }
        if p.status != p.closed_status {
            if let Some(status) = PaymentStatus::parse(&p.status) {
                t.ended(&status);
            }
        }
    }
    t.json(date, hour, since, until, Value::Null)
}

/// The figures of a period, and the totals object PROTOCOL.md §2 gives them in.
#[derive(Default)]
struct Tally {
    count: i64,
    gross: i64,
    refunded: i64,
    cancelled: i64,
    declined: i64,
    expired: i64,
    lines: Vec<Value>,
}

impl Tally {
    /// Counts a payment that ended in the period without money.
    fn ended(&mut self, status: &PaymentStatus) {
        match status {
            PaymentStatus::Known(NormalizedStatus::Cancelled) => self.cancelled += 1,
            PaymentStatus::Known(NormalizedStatus::Declined) => self.declined += 1,
            PaymentStatus::Known(NormalizedStatus::Expired) => self.expired += 1,
            _ => {}
        }
    }

    fn json(self, date: Date, hour: u8, since: i64, until: i64, ancv: Value) -> Value {
        json!({
            "date": date.to_string(),
            "closing_hour": hour,
            "since": rfc3339(since),
            "until": rfc3339(until),
            "count": self.count,
            "gross_cents": self.gross,
            "refunded_cents": self.refunded,
            "net_cents": self.gross - self.refunded,
            "cancelled_count": self.cancelled,
            "declined_count": self.declined,
            "expired_count": self.expired,
            "lines": self.lines,
            "ancv": ancv,
        })
    }
}

/// ANCV's own figures for `date` (plugin `daily_totals`); `null` when ANCV does not answer.
/// Err only when the merchant has no plugin.
async fn ancv_figures(engine: &Engine, merchant_id: &str, date: Date) -> Result<Value, CvcoError> {
    let r: Result<DailyReport, _> = engine
        .plugin_for(merchant_id)?
        .daily_totals(DailyTotalsInput {
            from: date,
            to: date,
            now: None,
        })
        .await;
    Ok(match r {
        Ok(r) => json!(r.days.first()),
        Err(e) => {
            tracing::warn!(code = %e.code, "daily_totals");
            Value::Null
        }
    })
}

/// [`ancv_figures`], `null` as well when the merchant has no plugin (the open period, a
/// closing: ANCV's figures are an extra there).
async fn ancv_figures_or_null(engine: &Engine, merchant_id: &str, date: Date) -> Value {
    ancv_figures(engine, merchant_id, date)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(code = %e.code, "daily_totals");
            Value::Null
        })
}

/// A day's report by authorization time (a day other than the open one).
async fn totals_of(
    engine: &Engine,
    merchant_id: &str,
    date: Date,
    hour: u8,
    with_ancv: bool,
) -> Result<Value, CvcoError> {
    let (start, end) = Timestamp::business_day_bounds(date, hour);
    let since = period_start(engine, merchant_id, start.0, end.0).await?;
    let rows = engine
        .store
        .payments_for_totals(merchant_id, since, end.0)
        .await?;
    let in_period = |t: Option<i64>| t.is_some_and(|t| t >= since && t < end.0);
    let mut t = Tally::default();
    for p in &rows {
        if in_period(p.authorized_at) && p.authorized_cents > 0 {
            t.count += 1;
            t.gross += p.authorized_cents;
            t.refunded += p.refunded_cents;
            t.lines.push(json!({
                "payment_id": p.payment_id,
                "transaction_id": p.transaction_id,
                "order_ref": p.order_ref,
                "status": p.status.as_str(),
                "authorized_cents": p.authorized_cents,
                "refunded_cents": p.refunded_cents,
                "at": p.authorized_at.map(rfc3339),
            }));
        }
        if in_period(p.final_at) {
            t.ended(&p.status);
        }
    }
    let ancv = if with_ancv {
        ancv_figures(engine, merchant_id, date).await?
    } else {
        Value::Null
    };
    Ok(t.json(date, hour, since, end.0, ancv))
}

/// Closes the current period now (by hand): what was recorded and not closed yet, stamped,
/// and a new period from now.
pub async fn close(engine: &Engine, merchant_id: &str) -> Result<Value, CvcoError> {
    let hour = engine.merchant_settings(merchant_id).closing_hour;
    let date = Timestamp(now_ms()).business_date(hour);
    // ANCV is asked before the closing's transaction, never while it holds rows.
    let ancv = ancv_figures_or_null(engine, merchant_id, date).await;
    let (start, end) = Timestamp::business_day_bounds(date, hour);
    let since = period_start(engine, merchant_id, start.0, end.0).await?;
    let now = now_ms();
    let (id, totals) = engine
        .store
        .insert_closing(merchant_id, now, |rows| {
            let mut t = period_totals(rows, date, hour, since, now);
            t["closed_at"] = json!(rfc3339(now));
            t["kind"] = json!("manual");
            t["ancv"] = ancv;
            t.to_string()
        })
        .await?;
    let mut t: Value = serde_json::from_str(&totals).unwrap_or_else(|_| json!({}));
    t["id"] = json!(id);
    Ok(t)
}

/// The clock of automatic closings: the real one, moved by `closing_clock_offset_ms` (tests see
/// the closing hour come in seconds).
fn closing_clock(engine: &Engine) -> i64 {
    now_ms().saturating_add(engine.cfg.closing_clock_offset_ms)
}

/// The latest business day that has ended at `now` (the one `now` belongs to has not).
fn last_ended_day(now: i64, hour: u8) -> Date {
    Timestamp(now).business_date(hour).pred()
}

/// Automatic closings missed after a restart are written back this many days at most.
const CATCH_UP_DAYS: usize = 31;

/// The merchants this host serves.
fn merchant_ids(engine: &Engine) -> Vec<String> {
    let mut ids = engine.tenants.as_ref().map(|t| t.ids()).unwrap_or_default();
    if !ids.contains(&engine.main_merchant) {
        ids.push(engine.main_merchant.clone());
    }
    ids
}

/// Writes the merchant's automatic closings due at `now`: every business day that ended since
/// its last automatic closing (the last one only, the first time), each exactly once whatever
/// the number of instances. Returns the ids written by this call.
pub async fn close_due(
    engine: &Engine,
    merchant_id: &str,
    now: i64,
) -> Result<Vec<i64>, CvcoError> {
    let hour = engine.merchant_settings(merchant_id).closing_hour;
    let last = last_ended_day(now, hour);
    let mut day = match engine.store.last_auto_closing_date(merchant_id).await? {
        Some(d) => Date::parse(&d).map(Date::succ).unwrap_or(last),
        None => last,
    };
    let mut oldest = last;
    for _ in 1..CATCH_UP_DAYS {
        oldest = oldest.pred();
    }
    day = day.max(oldest);
    let mut written = Vec::new();
    while day <= last {
        let (start, end) = Timestamp::business_day_bounds(day, hour);
        let since = period_start(engine, merchant_id, start.0, end.0).await?;
        // Takes what was recorded before the closing hour and not closed yet (also days before).
        if let Some((id, _)) = engine
            .store
            .insert_auto_closing(merchant_id, &day.to_string(), end.0, |rows| {
                let mut t = period_totals(rows, day, hour, since, end.0);
                t["closed_at"] = json!(rfc3339(end.0));
                t["kind"] = json!("auto");
                t["recorded_at"] = json!(rfc3339(now_ms()));
                t.to_string()
            })
            .await?
        {
            tracing::info!(merchant_id, date = %day, id, "day closed at the closing hour");
            written.push(id);
        }
        day = day.succ();
    }
    Ok(written)
}

/// Closes each merchant's day at its closing hour (TETRA: totals printed and the day's file
/// closed), and at start-up the days missed while no instance ran. ANCV is not called: with
/// many merchants that would build every plugin pool at once; the closing's ticket shows ours.
pub async fn closing_loop(engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    // The last ended day already closed, per merchant: no query until the next one ends.
    let mut done: HashMap<String, Date> = HashMap::new();
    loop {
        let now = closing_clock(&engine);
        let mut next = now + MAX_CLOSING_SLEEP_MS;
        for m in merchant_ids(&engine) {
            let hour = engine.merchant_settings(&m).closing_hour;
            let last = last_ended_day(now, hour);
            let (_, end) = Timestamp::business_day_bounds(last.succ(), hour);
            next = next.min(end.0);
            if done.get(&m) == Some(&last) {
                continue;
            }
            match close_due(&engine, &m, now).await {
                Ok(_) => {
                    done.insert(m, last);
                }
                Err(e) => {
                    tracing::warn!(merchant_id = %m, code = %e.code, "automatic closing (retried)")
                }
            }
        }
        // Wake at the next closing hour (a setting changed meanwhile is read within the cap).
        let wait = (next - closing_clock(&engine)).clamp(20, MAX_CLOSING_SLEEP_MS) as u64;
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
        }
    }
}

const MAX_CLOSING_SLEEP_MS: i64 = 30_000;

fn euros(cents: i64) -> String {
    Amount::from_cents(cents.max(0) as u64)
        .map(|a| a.format_fr())
        .unwrap_or_default()
}

/// A closing's figure may be negative (a cancellation of a payment an earlier closing counted).
fn signed_euros(cents: i64) -> String {
    if cents < 0 {
        format!("-{}", euros(-cents))
    } else {
        euros(cents)
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <link rel=\"stylesheet\" href=\"/examples/receipt.css\"></head><body class=\"receipt\">{body}</body></html>",
        html_escape(title)
    )
}

pub fn receipt_html(engine: &Engine, merchant_id: &str, p: &Value, duplicate: bool) -> String {
    // The payment's own merchant: its brand and settings, never the host's default shop.
    render_receipt(
        &engine.merchant_name(merchant_id),
        &engine.merchant_shop_id(merchant_id),
        &engine.merchant_settings(merchant_id),
        p,
        duplicate,
    )
}

/// Status words as the back-office shows them (examples/shared/i18n.js), never the raw enum word.
fn status_words(status: &str) -> (&'static str, &'static str) {
    match status {
        "pending" => ("En attente", "Pending"),
        "awaiting_beneficiary" => ("En attente du bénéficiaire", "Waiting for the beneficiary"),
        "authorized" => ("Autorisé", "Authorized"),
        "partially_authorized" => ("Partiellement autorisé", "Partially authorized"),
        "declined" => ("Refusé", "Declined"),
        "expired" => ("Expiré", "Expired"),
        "cancelled" => ("Annulé", "Cancelled"),
        "refunded" => ("Remboursé", "Refunded"),
        "failed" => ("Échec", "Failed"),
        _ => (
            "Vérification en cours auprès de l'ANCV",
            "Being checked with ANCV",
        ),
    }
}

/// "03/12/2026 18:45" in Europe/Paris (the shop's clock), from an RFC 3339 instant.
fn paris_time(rfc: &str) -> Option<String> {
    let (d, h, m) = Timestamp::parse_rfc3339(rfc).ok()?.paris_local();
    Some(format!(
        "{:02}/{:02}/{} {h:02}:{m:02}",
        d.day, d.month, d.year
    ))
}

/// The ticket(s) of one payment: `settings.tickets` copies (merchant's, then customer's when 2),
/// the transaction reference as a QR code when `settings.ticket_qr`. Laid out for a 58/80 mm
/// ticket printer and for A4 by examples/receipt.css.
pub fn render_receipt(
    brand: &str,
    shop_id: &str,
    settings: &cvco_core::shop::MerchantSettings,
    p: &Value,
    duplicate: bool,
) -> String {
    let s = |k: &str| p[k].as_str().map(html_escape).unwrap_or_default();
    let n = |k: &str| p[k].as_i64().unwrap_or(0);
    let row = |k: &str, v: String| format!("<tr><th>{}</th><td>{}</td></tr>", html_escape(k), v);
    let mut t = String::new();
    t.push_str(&format!(
        "<h1>{}</h1><p>Point d'accueil / Shop : {}</p>",
        html_escape(brand),
        html_escape(shop_id)
    ));
    t.push_str("<h2>Chèque-Vacances Connect</h2><table>");
    let when = p["updated_at"].as_str().and_then(paris_time);
    t.push_str(&row(
        "Date (heure de Paris / Paris time)",
        when.map(|w| html_escape(&w)).unwrap_or_default(),
    ));
    t.push_str(&row("Commande / Order", s("order_ref")));
    t.push_str(&row(
        "Référence transaction / Transaction reference",
        s("transaction_id"),
    ));
    let (fr, en) = status_words(p["status"].as_str().unwrap_or(""));
    t.push_str(&row(
        "Statut / Status",
        html_escape(&format!("{fr} / {en}")),
    ));
    if let Some(auths) = p["authorizations"].as_array() {
        for a in auths {
            t.push_str(&row(
                "N° d'autorisation / Authorization number",
                format!(
                    "{} ({})",
                    html_escape(a["number"].as_str().unwrap_or("")),
                    html_escape(&euros(a["amount_cents"].as_i64().unwrap_or(0)))
                ),
            ));
        }
    }
    t.push_str(&row(
        "Montant demandé / Amount requested",
        html_escape(&euros(n("amount_cents"))),
    ));
    t.push_str(&row(
        "Payé en Chèque-Vacances Connect / Paid",
        html_escape(&euros(n("authorized_cents"))),
    ));
    if n("refunded_cents") > 0 {
        t.push_str(&row(
            "Remboursé / Refunded",
            html_escape(&euros(n("refunded_cents"))),
        ));
    }
    if n("authorized_cents") > 0 && n("remaining_cents") > 0 {
        t.push_str(&row(
            "Reste dû / Remaining due",
            html_escape(&euros(n("remaining_cents"))),
        ));
    }
    t.push_str("</table>");
    let tx = p["transaction_id"].as_str().unwrap_or("");
    if settings.ticket_qr && !tx.is_empty() {
        if let Some(svg) = cvco_widget_qr::qr_svg(tx) {
            t.push_str(&format!(
                "<figure class=\"ticket-qr\" role=\"img\" aria-label=\"QR code : {0}\">{svg}<figcaption>{0}</figcaption></figure>",
                html_escape(tx)
            ));
        }
    }
    let copies: &[&str] = if settings.tickets >= 2 {
        &[
            "Exemplaire commerçant / Merchant copy",
            "Exemplaire client / Customer copy",
        ]
    } else {
        &[""]
    };
    let mut b = String::new();
    for copy in copies {
        b.push_str("<section class=\"ticket\">");
        if duplicate {
            b.push_str("<p class=\"duplicata\"><strong>DUPLICATA</strong></p>");
        }
        if !copy.is_empty() {
            b.push_str(&format!("<p class=\"copy\">{}</p>", html_escape(copy)));
        }
        b.push_str(&t);
        b.push_str("</section>");
    }
    page("Ticket Chèque-Vacances Connect", &b)
}

/// The day's running totals ticket (`duplicate`: a reprint, TETRA "duplicata du ticket des totaux").
pub fn totals_html(engine: &Engine, merchant_id: &str, t: &Value, duplicate: bool) -> String {
    totals_ticket(engine, merchant_id, t, duplicate)
}

/// A recorded closing's totals ticket (`duplicate`: a reprint).
pub fn closing_html(engine: &Engine, merchant_id: &str, t: &Value, duplicate: bool) -> String {
    totals_ticket(engine, merchant_id, t, duplicate)
}

/// "03/12/2026 18:50" (Paris) from an RFC 3339 instant; the text itself when unreadable.
fn local_time(rfc: &str) -> String {
    match Timestamp::parse_rfc3339(rfc) {
        Ok(ts) => {
            let (d, h, m) = ts.paris_local();
            let ymd = d.to_string();
            let p: Vec<&str> = ymd.split('-').collect();
            match p.as_slice() {
                [y, mo, da] => format!("{da}/{mo}/{y} {h:02}:{m:02}"),
                _ => ymd,
            }
        }
        Err(_) => rfc.to_string(),
    }
}

fn totals_ticket(engine: &Engine, merchant_id: &str, t: &Value, duplicate: bool) -> String {
    let n = |k: &str| t[k].as_i64().unwrap_or(0);
    let mut b = String::new();
    if duplicate {
        b.push_str("<p class=\"duplicata\"><strong>DUPLICATA</strong></p>");
    }
    b.push_str(&format!(
        "<h1>{}</h1><p>Point d'accueil / Shop : {}</p><h2>Totaux du {} / Totals</h2>",
        html_escape(&engine.merchant_name(merchant_id)),
        html_escape(&engine.merchant_shop_id(merchant_id)),
        html_escape(t["date"].as_str().unwrap_or("")),
    ));
    if let Some(closed) = t["closed_at"].as_str() {
        let how = match t["kind"].as_str() {
            Some("auto") => "automatique à l'heure de clôture / automatic",
            _ => "manuelle / by hand",
        };
        b.push_str(&format!(
            "<p>Clôture n° {} du {} ({})</p>",
            t["id"].as_i64().map(|i| i.to_string()).unwrap_or_default(),
            html_escape(&local_time(closed)),
            html_escape(how)
        ));
    }
    b.push_str(&format!(
        "<p>Du / From {} au / to {}</p><table>",
        html_escape(&local_time(t["since"].as_str().unwrap_or(""))),
        html_escape(&local_time(t["until"].as_str().unwrap_or("")))
    ));
    for (label, v) in [
        ("Transactions", n("count").to_string()),
        ("Brut / Gross", signed_euros(n("gross_cents"))),
        ("Remboursé / Refunded", signed_euros(n("refunded_cents"))),
        ("Net", signed_euros(n("net_cents"))),
        ("Annulées / Cancelled", n("cancelled_count").to_string()),
        ("Refusées / Declined", n("declined_count").to_string()),
        ("Expirées / Expired", n("expired_count").to_string()),
    ] {
        b.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            html_escape(label),
            html_escape(&v)
        ));
    }
    b.push_str("</table><h3>Détail</h3><table><tr><th>Transaction</th><th>Commande</th><th>Autorisée le / Authorized</th><th>Montant</th><th>Remboursé</th></tr>");
    for l in t["lines"].as_array().into_iter().flatten() {
        // A payment learnt after an earlier closing keeps its authorization time on its line.
        let at = l["at"].as_str().map(local_time).unwrap_or_default();
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(l["transaction_id"].as_str().unwrap_or("")),
            html_escape(l["order_ref"].as_str().unwrap_or("")),
            html_escape(&at),
            html_escape(&signed_euros(l["authorized_cents"].as_i64().unwrap_or(0))),
            html_escape(&signed_euros(l["refunded_cents"].as_i64().unwrap_or(0)))
        ));
    }
    b.push_str("</table>");
    page("Totaux Chèque-Vacances Connect", &b)
}

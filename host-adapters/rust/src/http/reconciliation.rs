//! The manager's accounting tools (PROTOCOL.md §2, cvco-host only): recorded closings (list,
//! one closing, its totals ticket, DUPLICATA after the first print) and ANCV's reimbursement
//! statements reconciled with our orders (JSON and CSV).

use super::reports;
use super::*;
use cvco_core::plugin_api::{DailyReport, DailyTotalsInput, MAX_TOTALS_DAYS};
use cvco_core::time::Date;
use cvco_core::Amount;
use std::collections::{HashMap, HashSet};

#[derive(Deserialize)]
pub(super) struct ClosingsQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

fn closing_value(row_id: i64, closed_at: i64, totals: &str) -> Value {
    let mut v: Value = serde_json::from_str(totals).unwrap_or_else(|_| json!({}));
    v["id"] = json!(row_id);
    v["closed_at"] = json!(crate::util::rfc3339(closed_at));
    if v["kind"].is_null() {
        // Closings recorded before automatic ones existed were all by hand.
        v["kind"] = json!("manual");
    }
    v
}

/// `GET /cvco/v1/closings`: the merchant's closings, newest first, without their lines.
pub(super) async fn list_closings(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ClosingsQuery>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid("limit", "Entre 1 et 200.", "Between 1 and 200.").into());
    }
    let rows = app
        .engine
        .store
        .closings(&s.merchant_id, q.before, limit)
        .await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = closing_value(r.id, r.closed_at, &r.totals);
            if let Some(o) = v.as_object_mut() {
                o.remove("lines");
                o.remove("ancv");
            }
            v
        })
        .collect();
    let next = (items.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(json!({"items": items, "next_before": next})).into_response())
}

async fn merchant_closing(app: &App, s: &BoSession, id: &str) -> Result<Value, ApiError> {
    let not_found = || {
        ApiError(
            CvcoError::new(ErrorCode::InvalidRequest)
                .with_detail("Clôture inconnue.", "Unknown closing.")
                .with_field("id"),
            Some(StatusCode::NOT_FOUND),
        )
    };
    let id: i64 = id.parse().map_err(|_| not_found())?;
    // Another merchant's closing: as if it did not exist.
    let row = app
        .engine
        .store
        .closing(&s.merchant_id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(closing_value(row.id, row.closed_at, &row.totals))
}

/// `GET /cvco/v1/closings/{id}`: one closing with its lines.
pub(super) async fn get_closing(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    Ok(Json(merchant_closing(&app, &s, &id).await?).into_response())
}

#[derive(Deserialize)]
pub(super) struct ReceiptQuery {
    duplicate: Option<bool>,
}

/// `GET /cvco/v1/closings/{id}/receipt`: the closing's totals ticket; every print after the
/// first says DUPLICATA (TETRA: "duplicata du ticket des totaux").
pub(super) async fn closing_receipt(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReceiptQuery>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    let t = merchant_closing(&app, &s, &id).await?;
    let first = app
        .engine
        .store
        .first_print_of_closing(t["id"].as_i64().unwrap_or(0))
        .await?;
    let duplicate = q.duplicate.unwrap_or(false) || !first;
    Ok(html_ok(reports::closing_html(
        &app.engine,
        &s.merchant_id,
        &t,
        duplicate,
    )))
}

#[derive(Deserialize)]
pub(super) struct ReconciliationQuery {
    from: Option<String>,
    to: Option<String>,
    /// A paid payment still not remitted this many days after its authorization is flagged.
    overdue_days: Option<i64>,
}

/// Days after which a paid payment missing from every statement is flagged.
const OVERDUE_DAYS: i64 = 3;
const DAY_MS: i64 = 86_400_000;

fn cents(a: Amount) -> i64 {
    a.cents() as i64
}

/// ANCV's statements of `from..=to` matched line by line with our orders and payments.
pub async fn reconcile(
    engine: &crate::payments::Engine,
    merchant_id: &str,
    q: &ReconciliationQuery,
) -> Result<Value, ApiError> {
    let settings = engine.merchant_settings(merchant_id);
    let hour = settings.closing_hour;
    let now = now_ms();
    let date = |v: &Option<String>, field: &str| -> Result<Option<Date>, CvcoError> {
        match v.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => Date::parse(d).map(Some).map_err(|e| e.with_field(field)),
            None => Ok(None),
        }
    };
    let to = date(&q.to, "to")?.unwrap_or_else(|| Timestamp(now).business_date(hour));
    let from = match date(&q.from, "from")? {
        Some(d) => d,
        None => (0..6).fold(to, |d, _| d.pred()),
    };
    let overdue_days = q.overdue_days.unwrap_or(OVERDUE_DAYS);
    if !(0..=365).contains(&overdue_days) {
        return Err(invalid("overdue_days", "Entre 0 et 365.", "Between 0 and 365.").into());
    }
    // The plugin checks the range (order, at most MAX_TOTALS_DAYS days) with a typed error.
    let report: DailyReport = engine
        .plugin_for(merchant_id)?
        .daily_totals(DailyTotalsInput {
            from,
            to,
            now: None,
        })
        .await?;
    let fee_bps = settings.fee_rate_bps;
    let (start, _) = Timestamp::business_day_bounds(from, hour);
    let (_, end) = Timestamp::business_day_bounds(to, hour);
    let ours = engine
        .store
        .payments_for_totals(merchant_id, start.0, end.0)
        .await?;
    let by_tx: HashMap<&str, &crate::store::PaymentRow> = ours
        .iter()
        .filter_map(|p| p.transaction_id.as_deref().map(|t| (t, p)))
        .collect();
    let mut remitted: HashSet<String> = HashSet::new();
    let mut orders_seen: HashMap<String, bool> = HashMap::new();
    let (mut n_lines, mut n_flagged) = (0i64, 0i64);
    let (mut gross, mut refunded, mut fee, mut net, mut expected_fee) = (0i64, 0, 0, 0, 0);
    let mut statements = Vec::new();
    for st in &report.remittances {
        let mut lines = Vec::new();
        let mut st_expected = 0i64;
        for l in &st.lines {
            remitted.insert(l.transaction_id.clone());
            // Our payment holding this transaction (outside the window too: clocks differ).
            let found = match by_tx.get(l.transaction_id.as_str()) {
                Some(p) => Some((*p).clone()),
                None => match engine
                    .store
                    .payment_id_by_ancv(Some(&l.transaction_id), None)
                    .await?
                {
                    Some(id) => engine
                        .store
                        .payment(&id)
                        .await?
                        .filter(|p| p.merchant_id == merchant_id),
                    None => None,
                },
            };
            let order_ours = match orders_seen.get(&l.merchant_order_id) {
                Some(v) => *v,
                None => {
                    let v = engine
                        .store
                        .order(&l.merchant_order_id)
                        .await?
                        .is_some_and(|o| o.merchant_id == merchant_id);
                    orders_seen.insert(l.merchant_order_id.clone(), v);
                    v
                }
            };
            let kept = l.gross_cents.saturating_sub(l.refunded_cents);
            let expected = cents(kept.basis_points(fee_bps));
            let mut flags: Vec<&str> = Vec::new();
            if !order_ours {
                flags.push("unknown_order");
            } else if found.is_none() {
                flags.push("unknown_transaction");
            }
            if let Some(p) = &found {
                if p.order_ref != l.merchant_order_id {
                    flags.push("reference_mismatch");
                }
                // A capture below the authorization is normal (a pre-reservation finalised for
                // less); ANCV remitting more than we recorded, or other refunds, is not.
                if cents(l.gross_cents) > p.authorized_cents
                    || cents(l.refunded_cents) != p.refunded_cents
                {
                    flags.push("amount_mismatch");
                }
            }
            if expected != cents(l.fee_cents) {
                flags.push("fee_mismatch");
            }
            n_lines += 1;
            if !flags.is_empty() {
                n_flagged += 1;
            }
            st_expected += expected;
            lines.push(json!({
                "transaction_id": l.transaction_id,
                "merchant_order_id": l.merchant_order_id,
                "channel": l.channel,
                "authorized_at": l.authorized_at.to_rfc3339(),
                "gross_cents": cents(l.gross_cents),
                "refunded_cents": cents(l.refunded_cents),
                "fee_cents": cents(l.fee_cents),
                "expected_fee_cents": expected,
                "net_cents": cents(l.net_cents),
                "matched": flags.is_empty(),
                "payment_id": found.as_ref().map(|p| p.payment_id.clone()),
                "order_ref": found.as_ref().map(|p| p.order_ref.clone()),
                "our_authorized_cents": found.as_ref().map(|p| p.authorized_cents),
                "our_refunded_cents": found.as_ref().map(|p| p.refunded_cents),
                "flags": flags,
            }));
        }
        gross += cents(st.gross_cents);
        refunded += cents(st.refunded_cents);
        fee += cents(st.fee_cents);
        net += cents(st.net_cents);
        expected_fee += st_expected;
        statements.push(json!({
            "date": st.date.to_string(),
            "shop_id": st.shop_id.to_string(),
            "form_factor": st.form_factor,
            "fee_bps": st.fee_bps,
            "count": st.count,
            "gross_cents": cents(st.gross_cents),
            "refunded_cents": cents(st.refunded_cents),
            "fee_cents": cents(st.fee_cents),
            "expected_fee_cents": st_expected,
            "net_cents": cents(st.net_cents),
            "lines": lines,
        }));
    }
    // Paid at ANCV (validated: captured) but in no statement of the period.
    let mut not_remitted = Vec::new();
    for p in &ours {
        let paid = matches!(p.ancv_state.as_deref(), Some("VALIDATED") | Some("USED"));
        let Some(tx) = p.transaction_id.as_deref() else {
            continue;
        };
        let Some(at) = p.authorized_at.filter(|t| *t >= start.0 && *t < end.0) else {
            continue;
        };
        if !paid || p.authorized_cents == 0 || remitted.contains(tx) {
            continue;
        }
        let overdue = now - at >= overdue_days * DAY_MS;
        if overdue {
            n_flagged += 1;
        }
        not_remitted.push(json!({
            "payment_id": p.payment_id,
            "transaction_id": tx,
            "order_ref": p.order_ref,
            "authorized_at": crate::util::rfc3339(at),
            "authorized_cents": p.authorized_cents,
            "refunded_cents": p.refunded_cents,
            "days": (now - at) / DAY_MS,
            "overdue": overdue,
            "flags": if overdue { json!(["not_remitted"]) } else { json!([]) },
        }));
    }
    Ok(json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "max_days": MAX_TOTALS_DAYS,
        "fee_rate_bps": fee_bps,
        "overdue_days": overdue_days,
        "remittances": statements,
        "not_remitted": not_remitted,
        "totals": {
            "lines": n_lines,
            "flagged": n_flagged,
            "gross_cents": gross,
            "refunded_cents": refunded,
            "fee_cents": fee,
            "expected_fee_cents": expected_fee,
            "net_cents": net,
        },
    }))
}

/// `GET /cvco/v1/reconciliation`: staff with the closing permission (managers).
pub(super) async fn reconciliation(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReconciliationQuery>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    s.require(Perm::CloseDay)?;
    Ok(Json(reconcile(&app.engine, &s.merchant_id, &q).await?).into_response())
}

/// Euros as French spreadsheets read them: "1234,50" (no grouping, decimal comma).
pub fn csv_euros(cents: i64) -> String {
    let a = Amount::from_cents(cents.unsigned_abs())
        .map(|a| a.format_plain())
        .unwrap_or_default()
        .replace('.', ",");
    if cents < 0 {
        format!("-{a}")
    } else {
        a
    }
}

/// One CSV field: quoted when it holds the separator, a quote or a line break (quotes
/// doubled); text a spreadsheet would run as a formula gets a leading apostrophe.
pub fn csv_field(s: &str) -> String {
    let number = s
        .strip_prefix('-')
        .unwrap_or(s)
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b',');
    let s = if !number && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The reconciliation as CSV for French Excel: UTF-8 with BOM, `;` between fields, CRLF, euros
/// with a decimal comma; one row per statement line, then our payments not remitted.
pub fn reconciliation_csv(v: &Value) -> String {
    let mut out = String::from("\u{feff}");
    let row = |out: &mut String, fields: &[String]| {
        let f: Vec<String> = fields.iter().map(|s| csv_field(s)).collect();
        out.push_str(&f.join(";"));
        out.push_str("\r\n");
    };
    row(
        &mut out,
        &[
            "Date remise",
            "Transaction ANCV",
            "Référence commerçant",
            "Commande",
            "Brut (EUR)",
            "Remboursé (EUR)",
            "Commission (EUR)",
            "Commission attendue (EUR)",
            "Net (EUR)",
            "Rapprochement",
        ]
        .map(String::from),
    );
    let s = |x: &Value| x.as_str().unwrap_or("").to_string();
    let e = |x: &Value| csv_euros(x.as_i64().unwrap_or(0));
    let flags = |x: &Value| {
        let f: Vec<&str> = x
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if f.is_empty() {
            "ok".to_string()
        } else {
            f.join(",")
        }
    };
    for st in v["remittances"].as_array().into_iter().flatten() {
        for l in st["lines"].as_array().into_iter().flatten() {
            row(
                &mut out,
                &[
                    s(&st["date"]),
                    s(&l["transaction_id"]),
                    s(&l["merchant_order_id"]),
                    s(&l["order_ref"]),
                    e(&l["gross_cents"]),
                    e(&l["refunded_cents"]),
                    e(&l["fee_cents"]),
                    e(&l["expected_fee_cents"]),
                    e(&l["net_cents"]),
                    flags(&l["flags"]),
                ],
            );
        }
    }
    for p in v["not_remitted"].as_array().into_iter().flatten() {
        let kept =
            p["authorized_cents"].as_i64().unwrap_or(0) - p["refunded_cents"].as_i64().unwrap_or(0);
        row(
            &mut out,
            &[
                String::new(),
                s(&p["transaction_id"]),
                s(&p["order_ref"]),
                s(&p["order_ref"]),
                e(&p["authorized_cents"]),
                e(&p["refunded_cents"]),
                String::new(),
                String::new(),
                csv_euros(kept),
                if p["overdue"] == true {
                    "not_remitted".into()
                } else {
                    "pending".into()
                },
            ],
        );
    }
    out
}

/// `GET /cvco/v1/reconciliation.csv`: the same, to download.
pub(super) async fn reconciliation_csv_file(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReconciliationQuery>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    s.require(Perm::CloseDay)?;
    let v = reconcile(&app.engine, &s.merchant_id, &q).await?;
    let name = format!(
        "attachment; filename=\"rapprochement-{}-{}.csv\"",
        v["from"].as_str().unwrap_or(""),
        v["to"].as_str().unwrap_or("")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        reconciliation_csv(&v),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_euros_use_a_decimal_comma_without_grouping() {
        assert_eq!(csv_euros(0), "0,00");
        assert_eq!(csv_euros(5), "0,05");
        assert_eq!(csv_euros(123456), "1234,56");
        assert_eq!(csv_euros(-250), "-2,50");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("CMD-1"), "CMD-1");
        assert_eq!(csv_field("a;b"), "\"a;b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("l1\nl2"), "\"l1\nl2\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-2,50"), "-2,50");
    }
}

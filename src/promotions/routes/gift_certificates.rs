use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::identity::guard::{CurrentCustomer, CurrentStaff};
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{self, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;
use crate::promotions::gift_certificates::{
    self as service, AdjustBalance, BatchSent, CertificateBalance, CertificateSent, CreateBatch,
    GiftCertificateDetail, GiftCertificateFilter, GiftCertificateView, MovementView, SendBatch,
    SendGiftCertificate, UpdateGiftCertificate,
};

/// Gift certificates; `sort` by `created_at`, `balance` or `expires_at`.
#[utoipa::path(get, path = "/gift-certificates", tag = "gift certificates",
    params(ListParams, GiftCertificateFilter),
    responses((status = 200, body = Page<GiftCertificateView>)))]
pub async fn list_gift_certificates(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<GiftCertificateFilter>,
) -> ApiResult<Json<Page<GiftCertificateView>>> {
    Ok(Json(
        service::list_certificates(&state, &list, &filter).await?,
    ))
}

/// A certificate with its balance history.
#[utoipa::path(get, path = "/gift-certificates/{id}", tag = "gift certificates",
    params(("id" = i64, Path)),
    responses((status = 200, body = GiftCertificateDetail, headers(("ETag" = String)))))]
pub async fn get_gift_certificate(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<GiftCertificateDetail>> {
    let detail = service::get_certificate(&state, id).await?;
    Ok(Tagged(detail.certificate.version, detail))
}

/// Issues a batch of certificates with fresh codes.
#[utoipa::path(post, path = "/gift-certificates/batches", tag = "gift certificates",
    request_body = CreateBatch,
    responses((status = 201, body = Vec<GiftCertificateView>),
        (status = 409, description = "The batch label is in use")))]
pub async fn create_gift_certificate_batch(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<CreateBatch>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let created = service::create_batch(&state, &actor, body).await?;
    let batch = created
        .first()
        .and_then(|c| c.batch.clone())
        .unwrap_or_default();
    let location = format!("/api/v1/admin/gift-certificates?batch={batch}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    ))
}

/// Activates, deactivates or re-dates a certificate; name the version you edited with
/// `If-Match` or `version`.
#[utoipa::path(patch, path = "/gift-certificates/{id}", tag = "gift certificates",
    params(("id" = i64, Path)), request_body = UpdateGiftCertificate,
    responses((status = 200, body = GiftCertificateView),
        (status = 409, description = "Stale version (body `version`)"),
        (status = 412, description = "Stale version (`If-Match`)")))]
pub async fn update_gift_certificate(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateGiftCertificate>,
) -> ApiResult<Tagged<GiftCertificateView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let updated = service::update_certificate(&state, &actor, id, expected, body).await?;
    Ok(Tagged(updated.version, updated))
}

/// Emails the certificate's code to `email`, its own address or its customer's.
#[utoipa::path(post, path = "/gift-certificates/{id}/send", tag = "gift certificates",
    params(("id" = i64, Path)), request_body = SendGiftCertificate,
    responses((status = 202, body = CertificateSent),
        (status = 409, description = "No address known, or the certificate cannot be spent")))]
pub async fn send_gift_certificate(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<SendGiftCertificate>,
) -> ApiResult<(StatusCode, Json<CertificateSent>)> {
    let actor = Actor::staff(&principal, &meta);
    let sent = service::send_certificate(&state, &actor, id, body).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// Emails every usable certificate of a batch that was not sent yet (all with `resend`).
#[utoipa::path(post, path = "/gift-certificates/send", tag = "gift certificates",
    request_body = SendBatch,
    responses((status = 202, body = BatchSent),
        (status = 404, description = "No such batch"),
        (status = 409, description = "A certificate of the batch has no address")))]
pub async fn send_gift_certificate_batch(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<SendBatch>,
) -> ApiResult<(StatusCode, Json<BatchSent>)> {
    let actor = Actor::staff(&principal, &meta);
    let sent = service::send_batch(&state, &actor, body).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// Corrects a balance by `delta`, recording the reason.
#[utoipa::path(post, path = "/gift-certificates/{id}/adjustments", tag = "gift certificates",
    params(("id" = i64, Path)), request_body = AdjustBalance,
    responses((status = 201, body = MovementView),
        (status = 409, description = "The balance would go below zero")))]
pub async fn adjust_gift_certificate(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<AdjustBalance>,
) -> ApiResult<(StatusCode, Json<MovementView>)> {
    let actor = Actor::staff(&principal, &meta);
    let recorded = service::adjust_balance(&state, &actor, id, body).await?;
    Ok((StatusCode::CREATED, Json(recorded)))
}

/// The balance of a certificate the signed-in customer holds.
#[utoipa::path(get, path = "/gift-certificates/{code}", tag = "storefront",
    operation_id = "storefront_get_gift_certificate", params(("code" = String, Path)),
    responses((status = 200, body = CertificateBalance),
        (status = 404, description = "Unknown code, or another customer's certificate")))]
pub async fn get_my_gift_certificate(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(code): Path<String>,
) -> ApiResult<Json<CertificateBalance>> {
    Ok(Json(
        service::balance_for_customer(&state, customer.customer_id, &code).await?,
    ))
}

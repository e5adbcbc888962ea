//! `/admin/merchants.csv`: the ledger (台账) of the search's filters, for
//! a member of staff with a session, within the session token's regions
//! (the same stream as `GET /api/v1/admin/merchants.csv`).

use actix_web::{web, HttpRequest, HttpResponse};

use super::staff::Staff;
use crate::web::error::ApiError;
use crate::web::ledger::ledger_of_request;
use crate::web::state::AppState;

pub async fn csv(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    ledger_of_request(&state, &req, &staff).await
}

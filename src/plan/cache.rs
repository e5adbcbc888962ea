//! The public answer's plan and results, read at most once a minute per
//! process for each plan: collecting results reads the records of every
//! drawn merchant (up to 5,000), too much to repeat for every visitor of a
//! public page. A plan never changes once stored; its results show up to
//! a minute late on the public page (the admin answer reads them fresh).

use std::sync::Arc;
use std::time::Duration;

use super::stored::{get, results, Plan, PlanResult};
use crate::store::{Store, StoreError};

/// How long a plan's results are served before they are read again.
pub const RESULTS_MAX_AGE_SECS: u64 = 60;

/// A plan and the results that had arrived when it was read.
#[derive(Debug)]
pub struct PlanWithResults {
    pub plan: Plan,
    pub results: Vec<PlanResult>,
}

/// Plans with their results, by name; concurrent misses are read once.
#[derive(Clone)]
pub struct PlanCache(moka::future::Cache<String, Arc<PlanWithResults>>);

impl Default for PlanCache {
    fn default() -> Self {
        PlanCache(
            moka::future::Cache::builder()
                .name("plans")
                .max_capacity(64)
                .time_to_live(Duration::from_secs(RESULTS_MAX_AGE_SECS))
                .build(),
        )
    }
}

enum Miss {
    NotFound,
    Store(StoreError),
}

impl PlanCache {
    /// The plan named `name` with its results, or `None` if there is none.
    pub async fn get(
        &self,
        store: &dyn Store,
        name: &str,
    ) -> Result<Option<Arc<PlanWithResults>>, StoreError> {
        let read = async {
            let plan = get(store, name)
                .await
                .map_err(Miss::Store)?
                .ok_or(Miss::NotFound)?;
            let results = results(store, &plan).await.map_err(Miss::Store)?;
            Ok::<_, Miss>(Arc::new(PlanWithResults { plan, results }))
        };
        match self.0.try_get_with(name.to_owned(), read).await {
            Ok(v) => Ok(Some(v)),
            Err(e) => match Arc::into_inner(e) {
                Some(Miss::Store(e)) => Err(e),
                Some(Miss::NotFound) => Ok(None),
                // Another caller holds the shared error: read again.
                None => match get(store, name).await? {
                    None => Ok(None),
                    Some(plan) => {
                        let results = results(store, &plan).await?;
                        Ok(Some(Arc::new(PlanWithResults { plan, results })))
                    }
                },
            },
        }
    }
}

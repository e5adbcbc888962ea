//! Grading: the rules as data (`rules`), the pure grading function
//! (`engine`) and the projection the scan page shows (`project`; its shape
//! is `crate::model::Projection`).
//!
//! Why it looks like this: grades must be explainable ("which rule, since
//! when, until when") and must improve by themselves when windows expire
//! (credit repair), so the batch job needs to know the next date a grade may
//! change. Rather than derive those dates with date arithmetic per rule (easy
//! to get wrong at the edges), every rule is evaluated as a predicate "does it
//! match on day `d`?" and the interesting days are found by evaluating it on
//! every *candidate* day the records imply (a record's date, the day a window
//! ends, the day after a deadline or a publicity period). Between two
//! consecutive candidates nothing can change, so scanning the candidates is
//! exact.
//!
//! No IO and no clock: `as_of` and `updated_at` are passed in.

mod demo;
mod engine;
mod project;
mod repair;
mod rules;
#[cfg(test)]
mod tests;

pub use demo::{demo_projections, wording_samples};
pub use engine::{grade, matching_rules, Grading};
pub use project::{project, SUMMARY_ITEMS};
pub use rules::{
    Condition, PatrolFrequency, Rule, Rules, RulesError, DEFAULT_RULES_TOML, GREEN_RULE, GREEN_TEXT,
};

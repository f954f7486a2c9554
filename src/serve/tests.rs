//! In-process tests of the router (tower's `oneshot`): every protocol's answers and refusals.

//! The end-to-end suite of the platform (its tests are in `e2e/`: the set-ups in `e2e/setup/`,
//! one module per user flow in `e2e/flows/`). This library is empty: the suite only uses the
//! public crates as a user's tools would.

//! The end-to-end suite of the platform (its tests are in `e2e/`, one module per user flow).
//! This library is empty: the suite only uses the public crates as a user's tools would.

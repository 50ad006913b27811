mod platform;
mod units;

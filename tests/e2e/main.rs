mod deploy;
mod logs;
mod platform;
mod push;
mod support;
mod units;

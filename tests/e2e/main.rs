mod deploy;
mod logs;
mod platform;
mod push;
mod restart;
mod support;
mod units;

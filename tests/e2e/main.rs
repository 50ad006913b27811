mod platform;

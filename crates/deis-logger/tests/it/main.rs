mod binary;
mod guard;
mod ingest;
mod redis;
mod shipper;

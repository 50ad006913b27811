mod binary;
mod ingest;
mod redis;
mod shipper;

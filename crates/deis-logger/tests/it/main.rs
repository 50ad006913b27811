mod binary;
mod ingest;
mod redis;

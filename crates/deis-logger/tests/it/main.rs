mod binary;
mod ingest;

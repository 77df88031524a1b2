"""Generated from protos/mailwright/ingest; do not edit (run `make protos`)."""

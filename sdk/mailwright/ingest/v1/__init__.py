"""Generated from protos/mailwright/ingest/v1; do not edit (run `make protos`)."""

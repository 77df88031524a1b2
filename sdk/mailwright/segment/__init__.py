"""Generated from protos/mailwright/segment; do not edit (run `make protos`)."""

"""Generated from protos/mailwright/segment/v1; do not edit (run `make protos`)."""

"""Generated from protos/mailwright/delivery/v1; do not edit (run `make protos`)."""

"""Generated from protos/mailwright/common/v1; do not edit (run `make protos`)."""

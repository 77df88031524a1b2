"""Generated from protos/mailwright/common; do not edit (run `make protos`)."""
